"""`-n 2`: the controller prepares the run once (preflight, probe) and hands the plan to the workers; each suite
stays on one worker, so no case is replayed twice — also when `--dist loadgroup` is forgotten."""

from __future__ import annotations

import json

import pytest

from conformance.testing.faultserver import FaultServer
from tests.plugin.conftest import make_suite_repo, two_endpoints


@pytest.mark.parametrize("dist", [["--dist", "loadgroup"], []], ids=["loadgroup", "default-dist"])
def test_two_workers_share_one_plan_and_ask_each_case_once(pytester: pytest.Pytester, dist: list[str]) -> None:
    with FaultServer(models=["m"]) as old, FaultServer(models=["m"]) as new:
        endpoints = two_endpoints(old, new, max_retries="0")
        make_suite_repo(pytester.path, endpoints, system="alpha")
        make_suite_repo(pytester.path, endpoints, system="beta")
        result = pytester.runpytest_subprocess("suites", "-n", "2", *dist, "-p", "no:randomly")
        chats = {name: [r.body["messages"][-1]["content"] for r in srv.requests
                        if r.path.endswith("/chat/completions")] for name, srv in (("old", old), ("new", new))}
        models = [r for srv in (old, new) for r in srv.requests if r.path.endswith("/models")]
        probes = len(old.probes) + len(new.probes)
    result.assert_outcomes(passed=8)  # answered ×3 + gates, per suite
    assert len(models) == 2 and probes == 2  # preflight once per endpoint, on the controller only
    for asked in chats.values():  # three cases per suite, two suites: each prompt once per endpoint
        assert sorted(asked) == sorted(["Say hello.", "Name a colour.", "Count to three."] * 2)
    summary = json.loads((pytester.path / "reports" / "latest" / "summary.json").read_text())
    assert {k: v["outcome"] for k, v in summary["suites"].items()} == {"alpha": "pass", "beta": "pass"}
    assert summary["outcome"] == "pass" and result.ret == 0
