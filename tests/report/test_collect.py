"""The collector's files: results.jsonl line for line what ``json.dumps`` makes of each row, summary.json's outcome."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from types import SimpleNamespace

from conformance.report.collect import _BATCH, ResultCollector
from conformance.report.outcome import classify_run, suite_outcomes
from tests.report.runfolder import build_run


def test_results_jsonl_is_one_json_dumps_per_row(tmp_path: Path) -> None:
    # across batch boundaries; a date needs default=str, a tuple becomes a list
    props = [{"kind": "check", "on": date(2026, 1, 2), "interval": (0.1, 0.2)}]
    rows = [{"nodeid": f"t.py::test[c{i}]", "suite": "legal", "outcome": "passed", "when": "call",
             "duration_s": 0.01, "message": "定金 \"quoted\"\n", "props": props} for i in range(_BATCH * 2 + 3)]
    collector = ResultCollector()
    collector.rows = rows
    plan = SimpleNamespace(run_id="r", run_dir=tmp_path / "r", baseline_label="b", candidate="c", preflight={},
                           notes=[])
    collector.write(plan, 0)
    expected = "".join(json.dumps(r, ensure_ascii=False, default=str) + "\n" for r in rows)
    assert (tmp_path / "r" / "results.jsonl").read_text(encoding="utf-8") == expected
    summary = json.loads((tmp_path / "r" / "summary.json").read_text(encoding="utf-8"))
    assert summary["outcome"] == "pass" and summary["suites"]["legal"]["tests"] == {"passed": len(rows)}


def test_summary_outcome_uses_the_breakdown_it_stores(tmp_path: Path) -> None:
    from conformance.report.write import read_rows

    run = build_run(tmp_path / "run")
    collector = ResultCollector()
    collector.rows = read_rows(run / "results.jsonl")
    plan = SimpleNamespace(run_id="r", run_dir=run, baseline_label="b", candidate="c", preflight={}, notes=[])
    summary = collector.summary(plan, 1)
    assert {k: v["outcome"] for k, v in summary["suites"].items()} == suite_outcomes(collector.rows)
    assert summary["outcome"] == classify_run(summary, collector.rows) == "regression"
    assert summary["exit_code"] == 1 and summary["strict"] is False
