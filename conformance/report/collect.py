"""Collect per-test results (also from xdist workers) and write the run folder.

Per-test data travels on ``item.user_properties`` as ``("conformance", {...})`` pairs — plain JSON-able dicts — so
it survives xdist's serialisation; aggregation happens only on the controller, once, at session end.

A row names the answers its test used (endpoint, fingerprint, fault, timings) without their texts, which are in
``responses/`` once (docs/ARCHITECTURE.md, "A run"): at 100,000 results the rows are written and read back again by
the report, and every byte here is paid for twice.
"""

from __future__ import annotations

import json
import os
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import pytest

from conformance.checks.result import CheckResult
from conformance.gates import GateResult
from conformance.goldens.model import Case


class Recorder:
    """What a suite test uses (through the ``conformance_record`` fixture) to attach results to itself."""

    def __init__(self, node: pytest.Item) -> None:
        self.node = node

    def check(self, case: Case, result: CheckResult) -> None:
        self.node.user_properties.append(
            ("conformance", {"kind": "check", "suite": case.system, "case_id": case.id, **result.to_dict()})
        )

    def verify(self, case: Case, result: CheckResult | None) -> None:
        """Record ``result`` and fail the test when it did not pass; skip when the check does not apply."""
        __tracebackhide__ = True
        if result is None:
            pytest.skip("check not applicable to this case")
        self.check(case, result)
        from conformance.asserts import assert_check

        assert_check(result)
        if result.findings and result.details.get("shared_expectation_failures"):
            pytest.xfail("not a regression — the baseline fails this expectation too: " + result.explanation)

    def gate(self, gate: GateResult) -> None:
        self.node.user_properties.append(("conformance", {"kind": "gate", **gate.to_dict()}))

    def gates(self, gates: list[GateResult]) -> None:
        for g in gates:
            self.gate(g)


#: ``json.dumps(row, ensure_ascii=False, default=str)`` without building a new encoder for every row (a tenth of
#: the cost at 100,000 rows); rows are written in batches of :data:`_BATCH` lines rather than one write each.
_encode = json.JSONEncoder(ensure_ascii=False, default=str).encode
_BATCH = 1000


def _suite_of(nodeid: str, props: list[dict[str, Any]]) -> str:
    for p in props:
        if p.get("suite"):
            return str(p["suite"])
    parts = Path(nodeid.split("::")[0]).parts
    return parts[-2] if len(parts) >= 2 else parts[0]


class ResultCollector:
    """Rows of one run: one per test (call phase, or a failed/skipped setup)."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []

    def add(self, report: pytest.TestReport) -> None:
        if report.when != "call" and not (report.when == "setup" and (report.failed or report.skipped)):
            return
        props = [v for k, v in report.user_properties if k == "conformance" and isinstance(v, dict)]
        if not props and "conformance_suite" not in report.keywords:
            return
        message = ""
        if report.failed:
            crash = getattr(report.longrepr, "reprcrash", None)
            message = crash.message if crash is not None else str(report.longrepr)[-2000:]
        self.rows.append({
            "nodeid": report.nodeid, "suite": _suite_of(report.nodeid, props),
            # an xfail ("the baseline fails this expectation too") is not a skip: keep the two apart
            "outcome": "xfailed" if hasattr(report, "wasxfail") else report.outcome,
            "when": report.when, "duration_s": round(report.duration, 4), "message": message, "props": props,
        })

    def gates(self) -> list[dict[str, Any]]:
        return [p for r in self.rows for p in r["props"] if p.get("kind") == "gate"]

    def summary(self, plan: Any, exitstatus: int, *, strict: bool = False,
                stopped: list[str] | tuple[str, ...] | None = None) -> dict[str, Any]:
        """``summary.json``: per suite its test outcomes, gates, missing answers by role and fault class, notes
        and outcome; for the run, the outcome and exit code (:mod:`conformance.report.outcome`)."""
        from conformance.report.outcome import classify_run, exit_code, fault_counts, suite_outcomes

        suites: dict[str, dict[str, Any]] = defaultdict(lambda: {"tests": Counter(), "gates": [], "notes": []})
        for r in self.rows:
            s = suites[r["suite"]]
            s["tests"][r["outcome"]] += 1
            for p in r["props"]:
                if p.get("kind") == "gate":
                    s["gates"].append(p)
                elif p.get("kind") == "note":
                    s["notes"].append(p.get("message", ""))
        faults = fault_counts(self.rows)
        outcomes = suite_outcomes(self.rows)
        out: dict[str, Any] = {
            "run_id": plan.run_id,
            "baseline": plan.baseline_label,
            "candidate": plan.candidate,
            "preflight": plan.preflight,
            "notes": plan.notes,
            "exitstatus": exitstatus,
            "strict": strict,
            "stopped": {"outcome": stopped[0], "message": stopped[1]} if stopped else None,
            "suites": {k: {"tests": dict(v["tests"]), "gates": v["gates"], "faults": dict(faults.get(k, {})),
                           "notes": v["notes"], "outcome": outcomes.get(k, "insufficient")}
                       for k, v in sorted(suites.items())},
        }
        out["outcome"] = classify_run(out, self.rows)
        out["exit_code"] = exit_code(out["outcome"], strict)
        return out

    def write(self, plan: Any, exitstatus: int, *, strict: bool = False,
              stopped: list[str] | tuple[str, ...] | None = None) -> Path:
        """``results.jsonl`` + ``summary.json`` in the run folder; ``reports/latest`` points at it."""
        from conformance.report.atomic import write_text_atomic
        from conformance.report.gcpause import gc_paused

        run_dir: Path = plan.run_dir
        run_dir.mkdir(parents=True, exist_ok=True)
        with gc_paused(), open(run_dir / "results.jsonl", "w", encoding="utf-8") as fh:
            for start in range(0, len(self.rows), _BATCH):
                fh.write("".join([_encode(row) + "\n" for row in self.rows[start:start + _BATCH]]))
            summary = self.summary(plan, exitstatus, strict=strict, stopped=stopped)
        write_text_atomic(run_dir / "summary.json", json.dumps(summary, ensure_ascii=False, indent=2, default=str))
        latest = run_dir.parent / "latest"
        tmp = run_dir.parent / f".latest.{os.getpid()}"
        try:
            tmp.unlink(missing_ok=True)
            tmp.symlink_to(run_dir.name)
            os.replace(tmp, latest)
        except OSError:
            tmp.unlink(missing_ok=True)
        return run_dir

    def summary_lines(self, plan: Any, *, strict: bool = False,
                      stopped: list[str] | tuple[str, ...] | None = None) -> list[str]:
        """The terminal's verdict block: per suite its outcome, tests, missing answers and every gate line."""
        summary = self.summary(plan, 0, strict=strict, stopped=stopped)
        lines = [f"conformance: baseline {plan.baseline_label} vs candidate {plan.candidate} — run {plan.run_id}"]
        if stopped:
            lines.append(f"  stopped before any request ({stopped[0]}): {stopped[1]}")
        for name, s in summary["suites"].items():
            tests = ", ".join(f"{n} {k}" for k, n in sorted(s["tests"].items()))
            faults = ", ".join(f"{k}×{n}" for k, n in sorted(s["faults"].items())) or "none"
            lines.append(f"  {name}: {s['outcome'].upper()} — {tests}; missing answers: {faults}")
            for note in s["notes"]:
                lines.append(f"    note: {note}")
            for g in s["gates"]:
                lines.append("    " + GateResult.from_dict(g).line())
        lines.append(f"  report folder: {plan.run_dir}")
        return lines
