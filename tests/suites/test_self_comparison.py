"""The baseline against itself, for every shipped suite: no regression, and nothing blamed on the candidate.

Why: a gate that an identical candidate can turn red is a gate nobody will trust at cutover. Every suite in
suites/ runs with its real goldens against a scripted endpoint answering deterministically by request (a tool call
for tool cases, a JSON object when JSON is asked for, prose otherwise) — as the baseline and as the candidate: once
under two names, once through a pass-through relay (the same server behind another address). Whatever the gates
say about those answers (plenty of them miss their goldens), the candidate is not worse than the baseline, so no
suite may end as a regression — only pass, insufficient or baseline_fails.
"""

from __future__ import annotations

import json
import subprocess
import sys
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from conformance.testing.faultserver import Behaviour, FaultServer, ToolCallScript
from conformance.testing.passthrough import PassThrough

ROOT = Path(__file__).resolve().parents[2]
SUITES = sorted(p.parent.name for p in (ROOT / "suites").glob("*/suite.yaml"))
NOT_BLAMED = {"pass", "insufficient", "baseline_fails"}


def scripted(req: dict[str, Any], n: int) -> Behaviour:
    """A deterministic answer to a request: the same request always gets the same answer."""
    tools = req.get("tools") or []
    if tools:
        name = tools[0]["function"]["name"]
        return Behaviour(text="", tool_calls=[ToolCallScript(name, {})], finish_reason="tool_calls")
    fmt = req.get("response_format") or {}
    prompt = str(req["messages"][-1]["content"])
    if isinstance(fmt, dict) and fmt.get("type") in ("json_object", "json_schema"):
        return Behaviour(text=json.dumps({"summary": prompt[:20]}, ensure_ascii=False))
    return Behaviour(text=f"回答：{prompt[:30]}")


def _run(tmp_path: Path, baseline_url: str, candidate_url: str) -> tuple[subprocess.CompletedProcess[str], dict]:
    endpoints = tmp_path / "endpoints.yaml"
    endpoints.write_text("defaults: {baseline: old, candidate: new}\nendpoints:\n"
                         f"  old: {{base_url: '{baseline_url}', model: m, max_retries: 0, max_concurrency: 8}}\n"
                         f"  new: {{base_url: '{candidate_url}', model: m, max_retries: 0, max_concurrency: 8}}\n")
    reports = tmp_path / "reports"
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "suites", "-q", "-p", "no:randomly", "-p", "no:cacheprovider",
         "--endpoints", str(endpoints), "--conformance-reports", str(reports), "--no-local-start",
         "--conformance-run-id", "self"],
        cwd=ROOT, capture_output=True, text=True, timeout=900, check=False)
    summary = json.loads((reports / "self" / "summary.json").read_text(encoding="utf-8"))
    return proc, summary


def _assert_not_blamed(proc: subprocess.CompletedProcess[str], summary: dict) -> None:
    out = proc.stdout[-6000:] + proc.stderr[-2000:]
    assert sorted(summary["suites"]) == SUITES, out
    outcomes = {name: s["outcome"] for name, s in summary["suites"].items()}
    assert set(outcomes.values()) <= NOT_BLAMED, (outcomes, out)
    regressions = [g for s in summary["suites"].values() for g in s["gates"] if g["verdict"] == "regression"]
    assert regressions == [], out
    assert summary["outcome"] in NOT_BLAMED and proc.returncode == 0, out
    assert "failed" not in {k for s in summary["suites"].values() for k in s["tests"]}, out


@pytest.mark.xdist_group("self-comparison")
def test_every_suite_against_itself_is_never_a_regression(tmp_path: Path) -> None:
    with FaultServer(scripted, models=["m"], record=False) as server:
        proc, summary = _run(tmp_path, server.base_url, server.base_url)
    _assert_not_blamed(proc, summary)


@pytest.mark.xdist_group("self-comparison")
def test_every_suite_against_the_same_server_behind_a_pass_through_is_never_a_regression(tmp_path: Path) -> None:
    with ExitStack() as stack:
        server = stack.enter_context(FaultServer(scripted, models=["m"], record=False))
        relay = stack.enter_context(PassThrough(server.port))
        proc, summary = _run(tmp_path, server.base_url, relay.base_url)
        relayed = relay.connections
    assert relayed > 0  # the candidate's answers really came through the relay
    _assert_not_blamed(proc, summary)
