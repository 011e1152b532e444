from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from conformance.checks.availability import availability_gates
from conformance.checks.result import CheckResult
from conformance.report.outcome import EXIT_CODES, INFRA_FAULTS, classify_exit, failure_breakdown
from conformance.report.trend import read_summary
from conformance.report.write import read_rows
from tests.report.runfolder import BASE, CAND, build_run, check_prop, response, response_prop, row


def _case(cid: str, cand_fault: str | None = None, check_passed: bool = True) -> tuple[dict[str, Any], Any]:
    b, c = response(BASE, "legal", cid, "定金"), response(CAND, "legal", cid, None if cand_fault else "定金",
                                                          fault=cand_fault)
    props = [response_prop("baseline", b), response_prop("candidate", c)]
    if cand_fault is None:
        props.append(check_prop("legal", cid, CheckResult("terms", passed=check_passed)))
    failed = cand_fault is not None or not check_passed
    return row(f"suites/legal/test_legal.py::test_terms[{cid}]", "legal", "failed" if failed else "passed",
               props), (b, c)


def _run(faults: list[str | None], drift_fails: bool = False) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Rows + summary the way the plugin and the collector would produce them, with real availability gates."""
    made = [_case(f"c{i}", f) for i, f in enumerate(faults)]
    rows = [r for r, _ in made]
    gates = [g.to_dict() for g in availability_gates("legal", [b for _, (b, _) in made], [c for _, (_, c) in made])]
    if drift_fails:
        gates.append({"suite": "legal", "gate": "terms.drift_rate", "statistic": 0.01, "threshold": 0.001,
                      "op": "<=", "n": 300, "verdict": "fail", "interval": None, "message": ""})
    gate_failed = any(g["verdict"] != "pass" for g in gates)
    rows.append(row("suites/legal/test_legal.py::test_gates", "legal", "failed" if gate_failed else "passed",
                    [{"kind": "gate", **g} for g in gates]))
    n_failed = sum(r["outcome"] == "failed" for r in rows)
    faults_count: dict[str, int] = {}
    for f in faults:
        if f:
            faults_count[f"candidate:{f}"] = faults_count.get(f"candidate:{f}", 0) + 1
    summary = {"run_id": "r", "exitstatus": 1 if n_failed else 0, "preflight": {},
               "suites": {"legal": {"tests": {"failed": n_failed, "passed": len(rows) - n_failed},
                                    "gates": gates, "faults": faults_count}}}
    return summary, rows


def test_a_clean_run_passes() -> None:
    summary, rows = _run([None, None, None])
    assert classify_exit(summary, rows) == "pass" == classify_exit(summary)


@pytest.mark.parametrize("fault", sorted(INFRA_FAULTS))
def test_endpoint_faults_only_are_infrastructure(fault: str) -> None:
    summary, rows = _run([None, fault, fault])
    assert classify_exit(summary, rows) == "infrastructure_failure"
    assert classify_exit(summary) == "infrastructure_failure"
    assert failure_breakdown(rows) == {"legal": {"infrastructure": 3, "regression": 0}}


def test_a_refused_request_is_the_candidates_problem() -> None:
    summary, rows = _run([None, "client_error"])
    assert classify_exit(summary, rows) == "gate_failure" == classify_exit(summary)


def test_one_real_regression_among_timeouts_is_a_gate_failure() -> None:
    summary, rows = _run([None, "timeout"], drift_fails=True)
    assert classify_exit(summary, rows) == "gate_failure" == classify_exit(summary)
    summary, rows = _run([None, "timeout"])
    rows.append(_case("drifted", check_passed=False)[0])
    summary["suites"]["legal"]["tests"]["failed"] += 1
    assert classify_exit(summary, rows) == "gate_failure"
    assert failure_breakdown(rows)["legal"] == {"infrastructure": 2, "regression": 1}


def test_a_stored_breakdown_decides_without_rows() -> None:
    summary, rows = _run([None, "timeout"])
    summary["suites"]["legal"]["failures"] = failure_breakdown(rows)["legal"]
    assert classify_exit(summary) == "infrastructure_failure"
    summary["suites"]["legal"]["failures"]["regression"] = 1
    assert classify_exit(summary) == "gate_failure"


def test_preflight_failure_and_aborted_runs_are_infrastructure() -> None:
    summary, rows = _run([None])
    summary["preflight"] = {CAND: {"ok": False, "status": "model_missing", "message": "no such model"}}
    assert classify_exit(summary, rows) == "infrastructure_failure"
    summary["preflight"] = {CAND: {"ok": False, "status": "unchecked", "message": "no /v1/models"}}
    assert classify_exit(summary, rows) == "pass"
    summary["exitstatus"] = 2  # interrupted / collection error
    assert classify_exit(summary, rows) == "infrastructure_failure"


def test_pytest_timeouts_in_setup_are_infrastructure() -> None:
    summary, _ = _run([None])
    rows = [row(f"suites/legal/test_legal.py::test_answered[c{i}]", "legal", "failed", [],
                "Failed: Timeout (>300.0s) from pytest-timeout.", when="setup") for i in range(3)]
    summary["suites"]["legal"]["tests"] = {"failed": 3}
    summary["exitstatus"] = 1
    assert classify_exit(summary, rows) == "infrastructure_failure"
    rows.append(row("suites/legal/test_legal.py::test_answered[c9]", "legal", "failed", [], "AssertionError"))
    assert classify_exit(summary, rows) == "gate_failure"


def test_the_built_run_folder_is_a_gate_failure(tmp_path: Path) -> None:
    run = build_run(tmp_path / "run")
    assert classify_exit(read_summary(run), read_rows(run / "results.jsonl")) == "gate_failure"
    assert EXIT_CODES["infrastructure_failure"] not in (EXIT_CODES["pass"], EXIT_CODES["gate_failure"])
