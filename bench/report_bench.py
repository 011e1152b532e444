"""Report generation for N results (goal: ≤ 10 s at 100,000): the collector's files, then the report files.

A *result* is one test row as :class:`~conformance.report.collect.ResultCollector` keeps it. The run is shaped like
the legal suite at scale: N/2 cases, two per-case tests each (``test_answered``, ``test_terms``), every row carrying
the baseline and candidate response props (as ``conformance.plugin._response`` records them: fingerprint, fault,
timings — the texts stay in ``responses/``) and its check, 2 % of the rows failing with term-drift findings, plus the
suite's gate rows; ``responses/`` holds both endpoints' answers to every case, as the run cache would. Building
these inputs is not timed; what is timed:

1. ``ResultCollector.write(plan, 1)`` — ``results.jsonl`` + ``summary.json``;
2. ``conformance.report.write.write_report(run_dir)`` — reads the folder back, builds the frame, writes
   ``results.parquet``, ``results.csv`` and ``report.html``.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from bench.common import Result, loadavg
from conformance.report.collect import ResultCollector

SUITE = "legal"
ANSWER = "第八条 定金：买方应当于本合同签订之日起五日内向卖方支付合同总价的20%作为定金。"


def _response(role: str, i: int) -> dict[str, Any]:
    faulted = i % 997 == 0 and role == "candidate"
    return {"kind": "response", "role": role, "suite": SUITE, "case_id": f"case-{i:06d}",
            "endpoint": f"{role}-ep", "fingerprint": f"{i:016x}", "fault": "timeout" if faulted else None,
            "error": "no complete answer within timeout_s=120" if faulted else None,
            "ttft_ms": 180.0 + (i * 37 % 400) + (40 if role == "candidate" else 0),
            "e2e_ms": 900.0 + (i * 53 % 1600), "finish_reason": None if faulted else "stop", "attempts": 1}


def _text(role: str, i: int) -> str | None:
    return None if i % 997 == 0 and role == "candidate" else f"{ANSWER}（{role} {i}）"


def _check(name: str, i: int, failed: bool) -> dict[str, Any]:
    findings = [{"kind": "forbidden_term", "message": "candidate uses 订金 where the baseline says 定金",
                 "path": "", "baseline": "定金", "candidate": "订金"}] if failed else []
    return {"kind": "check", "suite": SUITE, "case_id": f"case-{i:06d}", "check": name, "passed": not failed,
            "explanation": "term drift: 订金" if failed else "", "score": 0.0 if failed else 1.0,
            "findings": findings, "details": {"required": ["定金"], "forbidden": ["订金"]}}


def make_rows(n_results: int) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for k in range(n_results - 2):
        i, test = divmod(k, 2)
        name = ("answered", "terms")[test]
        failed = test == 1 and i % 25 == 0  # 2 % of the rows
        props = [_response("baseline", i), _response("candidate", i), _check(name, i, failed)]
        rows.append({"nodeid": f"suites/{SUITE}/test_{SUITE}.py::test_{name}[case-{i:06d}]", "suite": SUITE,
                     "outcome": "failed" if failed else "passed", "when": "call", "duration_s": 0.0004,
                     "message": "AssertionError: term drift: 订金" if failed else "", "props": props})
    for gate, stat, thr, op, verdict in (("availability", 0.001, 0.0, "<=", "fail"),
                                         ("terms", 0.02, 0.001, "<=", "fail")):
        g = {"kind": "gate", "suite": SUITE, "gate": gate, "statistic": stat, "threshold": thr, "op": op,
             "n": n_results // 2, "verdict": verdict, "interval": [stat * 0.8, stat * 1.2], "message": ""}
        rows.append({"nodeid": f"suites/{SUITE}/test_{SUITE}.py::test_gates[{gate}]", "suite": SUITE,
                     "outcome": "failed", "when": "call", "duration_s": 0.02, "message": "gate failed",
                     "props": [g]})
    return rows


def write_responses(run_dir: Path, n_cases: int) -> None:
    folder = run_dir / "responses"
    folder.mkdir(parents=True, exist_ok=True)
    for role in ("baseline", "candidate"):
        with open(folder / f"{role}-ep.main.jsonl", "w", encoding="utf-8") as fh:
            for i in range(n_cases):
                p = _response(role, i)
                r = {"endpoint": p["endpoint"], "system": SUITE, "case_id": p["case_id"], "fingerprint": f"{i:016x}",
                     "prompt_fingerprint": f"{i:016x}", "repeat": 0, "text": _text(role, i), "reasoning": None,
                     "tool_calls": [], "finish_reason": p["finish_reason"], "usage": {"prompt_tokens": 40,
                     "completion_tokens": 60, "total_tokens": 100}, "model": f"{role}-model", "server": "bench",
                     "status": 200, "fault": p["fault"], "error": p["error"], "queue_ms": 0.0,
                     "ttfc_ms": p["ttft_ms"] - 5, "ttft_ms": p["ttft_ms"], "e2e_ms": p["e2e_ms"], "n_chunks": 62,
                     "params": {"temperature": 0, "max_tokens": 128, "seed": 42},
                     "attempts": [{"n": 1, "elapsed_ms": p["e2e_ms"], "status": 200}],
                     "created_at": "2026-11-23T12:00:00+00:00", "source": "live"}
                fh.write(json.dumps(r, ensure_ascii=False) + "\n")


def _write_report() -> Any:
    try:
        from conformance.report.write import write_report
    except ImportError:
        return None
    return write_report


def report_generation(*, n_results: int, repeats: int, command: str) -> list[Result]:
    goal = f"≤ 10 s for {n_results:,} results" if n_results == 100_000 else \
        f"≤ 10 s (goal is for 100,000; here {n_results:,})"
    collect = Result(name=f"collector_write[{n_results}]", benchmark="report", metric="s wall (in process)",
                     goal="(part of the total)", command=command)
    report = Result(name=f"write_report[{n_results}]", benchmark="report", metric="s wall (in process)",
                    goal="(part of the total)", command=command)
    total = Result(name=f"report_total[{n_results}]", benchmark="report", metric="s wall (in process)", goal=goal,
                   goal_value=10.0, direction="max", command=command)
    write_report = _write_report()
    rows = make_rows(n_results)
    n_cases = (n_results - 2) // 2
    tmp = Path(tempfile.mkdtemp(prefix="bench-report-"))
    sizes: dict[str, int] = {}
    try:
        for rep in range(repeats):
            la = loadavg()
            for res in (collect, report, total):
                res.loadavg.append(la)
            run_dir = tmp / f"run{rep}"
            write_responses(run_dir, n_cases)
            plan = SimpleNamespace(run_id=f"bench-{rep}", run_dir=run_dir, baseline_label="baseline-ep",
                                   candidate="candidate-ep", preflight={}, notes=[])
            collector = ResultCollector()
            collector.rows = rows
            t0 = time.perf_counter()
            collector.write(plan, 1)
            t1 = time.perf_counter()
            if write_report is not None:
                write_report(run_dir)
            t2 = time.perf_counter()
            collect.ours_samples.append(round(t1 - t0, 3))
            total.ours_samples.append(round(t2 - t0, 3))
            if write_report is not None:
                report.ours_samples.append(round(t2 - t1, 3))
            sizes = {p.name: p.stat().st_size for p in run_dir.iterdir() if p.is_file()}
            shutil.rmtree(run_dir, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    extra = {"results": n_results, "cases": n_cases, "responses": 2 * n_cases, "file_bytes": sizes}
    total.extra = collect.extra = report.extra = extra
    if write_report is None:
        total.notes = "conformance.report.write.write_report is absent: only ResultCollector.write was timed"
    out = [collect.judge()]
    if report.ours_samples:
        out.append(report.judge())
    out.append(total.judge())
    return out
