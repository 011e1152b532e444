"""The run's outcome from structured data: an outage is infrastructure, a shared failure is baseline_fails,
not enough evidence is insufficient, and only evidence that the candidate is worse is a regression."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from conformance.checks.availability import answered, availability_gates
from conformance.checks.result import CheckResult
from conformance.gates import GateResult
from conformance.report.outcome import (
    EXIT_CODES,
    SEVERITY,
    classify_run,
    exit_code,
    gate_outcome,
    suite_outcomes,
    worst,
)
from conformance.report.trend import read_summary
from conformance.report.write import read_rows
from conformance.response import INFRASTRUCTURE
from tests.report.runfolder import BASE, CAND, build_run, check_prop, response, response_prop, row


def _case(cid: str, cand_fault: str | None = None, check_passed: bool = True) -> tuple[dict[str, Any], Any]:
    b, c = response(BASE, "legal", cid, "定金"), response(CAND, "legal", cid, None if cand_fault else "定金",
                                                          fault=cand_fault)
    props = [response_prop("baseline", b), response_prop("candidate", c)]
    if cand_fault is None:
        props.append(check_prop("legal", cid, CheckResult("terms", passed=check_passed)))
        name = f"terms[{cid}]"
    else:
        props.append(check_prop("legal", cid, answered(b, c)))
        name = f"answered[{cid}]"
    failed = cand_fault is not None or not check_passed
    return row(f"suites/legal/suite.yaml::{name}", "legal", "failed" if failed else "passed", props), (b, c)


def _run(faults: list[str | None], extra_gate: dict[str, Any] | None = None,
         ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Rows + summary the way the plugin and the collector would produce them, with real availability gates."""
    made = [_case(f"c{i}", f) for i, f in enumerate(faults)]
    rows = [r for r, _ in made]
    gates = [g.to_dict() for g in availability_gates("legal", [b for _, (b, _) in made], [c for _, (_, c) in made])]
    if extra_gate:
        gates.append(extra_gate)
    blocking = any(GateResult.from_dict(g).blocking() for g in gates)
    rows.append(row("suites/legal/suite.yaml::gates", "legal", "failed" if blocking else "passed",
                    [{"kind": "gate", **g} for g in gates]))
    n_failed = sum(r["outcome"] == "failed" for r in rows)
    summary = {"run_id": "r", "exitstatus": 1 if n_failed else 0, "preflight": {},
               "suites": {"legal": {"tests": {"failed": n_failed, "passed": len(rows) - n_failed},
                                    "gates": gates}}}
    return summary, rows


def _gate(verdict: str, gate: str = "terms.drift_rate") -> dict[str, Any]:
    return {"suite": "legal", "gate": gate, "statistic": 0.01, "threshold": 0.001, "op": "<=", "n": 300,
            "verdict": verdict, "interval": None, "message": ""}


def test_a_clean_run_passes() -> None:
    summary, rows = _run([None, None, None])
    assert classify_run(summary, rows) == "pass"


@pytest.mark.parametrize("fault", sorted(INFRASTRUCTURE))
def test_endpoint_faults_only_are_infrastructure(fault: str) -> None:
    summary, rows = _run([None, fault, fault])
    assert classify_run(summary, rows) == "infrastructure"
    assert suite_outcomes(rows) == {"legal": "infrastructure"}


def test_a_refused_request_is_the_candidates_regression() -> None:
    summary, rows = _run([None, "client_error"])
    assert classify_run(summary, rows) == "regression"


def test_one_real_regression_among_timeouts_is_a_regression() -> None:
    summary, rows = _run([None, "timeout"], extra_gate=_gate("regression"))
    assert classify_run(summary, rows) == "regression"
    summary, rows = _run([None, "timeout"])
    rows.append(_case("drifted", check_passed=False)[0])
    assert classify_run(summary, rows) == "regression"


@pytest.mark.parametrize(("verdict", "outcome"), [("insufficient", "insufficient"),
                                                  ("baseline_fails", "baseline_fails"), ("pass", "pass"),
                                                  ("error", "infrastructure")])
def test_gate_verdicts_map_to_outcomes(verdict: str, outcome: str) -> None:
    summary, rows = _run([None, None], extra_gate=_gate(verdict))
    assert classify_run(summary, rows) == outcome


def test_a_shared_outage_is_infrastructure_not_baseline_fails() -> None:
    g = availability_gates("s", [response(BASE, "s", "a", None, fault="timeout")],
                           [response(CAND, "s", "a", None, fault="timeout")])[0]
    assert g.verdict == "baseline_fails" and gate_outcome(g.to_dict()) == "infrastructure"


def test_severity_order_and_exit_codes() -> None:
    assert SEVERITY == ("pass", "insufficient", "baseline_fails", "infrastructure", "regression", "config_error")
    assert worst(["insufficient", "regression", "infrastructure"]) == "regression"
    assert worst([]) == "pass" and worst(["gate_failure"]) == "regression"  # an older run's word
    assert [exit_code(o) for o in SEVERITY] == [0, 0, 0, 75, 1, 78]
    assert [exit_code(o, strict=True) for o in SEVERITY] == [0, 7, 6, 75, 1, 78]
    assert len({exit_code(o, strict=True) for o in SEVERITY}) == len(SEVERITY)  # each its own, when strict
    assert EXIT_CODES["regression"] == 1


def test_a_run_that_stopped_before_any_request_keeps_its_outcome() -> None:
    summary = {"exitstatus": 5, "suites": {}, "stopped": {"outcome": "config_error", "message": "x"}}
    assert classify_run(summary, []) == "config_error"


def test_an_empty_or_unreadable_summary_is_never_a_pass() -> None:
    assert classify_run({}) != "pass"
    assert classify_run({"exitstatus": 0}) == "insufficient"
    assert classify_run({"exitstatus": 5, "suites": {}}, []) == "insufficient"  # nothing was selected


def test_aborted_runs_are_infrastructure_unless_a_regression_was_already_shown() -> None:
    summary, rows = _run([None])
    summary["exitstatus"] = 2  # interrupted / collection error
    assert classify_run(summary, rows) == "infrastructure"
    summary, rows = _run([None], extra_gate=_gate("regression"))
    summary["exitstatus"] = 2
    assert classify_run(summary, rows) == "regression"


def test_pytest_timeouts_are_infrastructure() -> None:
    summary, _ = _run([None])
    rows = [row(f"suites/legal/suite.yaml::answered[c{i}]", "legal", "failed", [],
                "Failed: Timeout (>300.0s) from pytest-timeout.", when="setup") for i in range(3)]
    assert classify_run(summary, rows) == "infrastructure"
    rows.append(row("suites/legal/suite.yaml::answered[c9]", "legal", "failed", [], "AssertionError"))
    assert classify_run(summary, rows) == "regression"


def test_the_built_run_folder_is_a_regression(tmp_path: Path) -> None:
    run = build_run(tmp_path / "run")
    assert classify_run(read_summary(run), read_rows(run / "results.jsonl")) == "regression"
