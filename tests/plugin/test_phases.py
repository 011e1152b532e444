"""The latency phase (--latency) and load stages (--load) through pytest, against scripted servers."""

from __future__ import annotations

import json

import pytest

from conformance.testing.faultserver import Behaviour, FaultServer
from tests.plugin.conftest import TERMS_GOLDEN, make_suite_repo, two_endpoints

SUITE_YAML = """system: demo
gates:
  latency: {samples: 24, concurrency: 2, ttft_p95_ms: 2000, max_ttft_p95_ratio: 1.5}
load:
  max_tokens: 8
  stages: [{users: 2, spawn_rate: 2, duration_s: 2}, {users: 4, spawn_rate: 4, duration_s: 2}]
  gates: {max_error_rate: 0.0}
  quality: {sample: 4}
"""


def _repo(pytester: pytest.Pytester, old: FaultServer, new: FaultServer, **golden: str) -> None:
    root = make_suite_repo(pytester.path, two_endpoints(old, new), **golden)
    (root / "suites" / "demo" / "suite.yaml").write_text(SUITE_YAML)  # the phases are items of the suite itself


def test_phases_are_skipped_unless_asked(pytester: pytest.Pytester) -> None:
    with FaultServer(models=["m"]) as old, FaultServer(models=["m"]) as new:
        _repo(pytester, old, new)
        result = pytester.runpytest_subprocess("suites/demo", "-rs")
    result.assert_outcomes(passed=4, skipped=2)
    result.stdout.fnmatch_lines(["*latency phase not requested: pass --latency*", "*load stages not requested*"],
                                consecutive=False)


def test_slower_candidate_fails_the_relative_latency_gate(pytester: pytest.Pytester) -> None:
    with FaultServer(Behaviour(ttft_ms=20), models=["m"]) as old, \
            FaultServer(Behaviour(ttft_ms=320), models=["m"]) as new:
        _repo(pytester, old, new)
        result = pytester.runpytest_subprocess("suites/demo", "--latency", "-k", "latency")
        asked = sum(r.path.endswith("/chat/completions") for r in new.requests)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*✓ demo.latency.ttft_p95_ms*(n=24*", "*✗ demo.latency.max_ttft_p95_ratio*candidate*baseline*"],
        consecutive=False)
    assert asked == 24  # the latency phase is its own set of requests, not the correctness answers


def test_load_stages_write_locust_reports_and_our_table(pytester: pytest.Pytester) -> None:
    with FaultServer(Behaviour(itl_ms=2), models=["m"]) as old, FaultServer(Behaviour(itl_ms=2), models=["m"]) as new:
        _repo(pytester, old, new)
        result = pytester.runpytest_subprocess("suites/demo", "--load", "-k", "load")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*conformance load: *stage*", "*✓ demo.load.stage2.error_rate*"], consecutive=False)
    out = next((pytester.path / "reports").glob("*/load/demo"))
    table = (out / "stages.txt").read_text()
    assert table.count("stage") >= 2
    # quality under load: these goldens have no per-case check, so only "same text as at rest" is compared
    assert "quality stage2 (candidate): 4 of" in table and "4/4 same text as at rest" in table
    assert "4 not checked: no per-case check applies" in table and "quality_drop" not in table  # no max_drop
    quality = json.loads((out / "quality.json").read_text())
    assert {(q["role"], q["stage"]) for q in quality["stages"]} == {
        (r, s) for r in ("baseline", "candidate") for s in ("stage1", "stage2")}
    assert list(out.glob("candidate/*.html")) and list(out.glob("baseline/*stats.csv"))


@pytest.mark.parametrize("drifts", [True, False], ids=["drifts-under-load", "same-under-load"])
def test_a_candidate_that_drifts_only_under_load_fails_the_quality_gate(pytester: pytest.Pytester,
                                                                       drifts: bool) -> None:
    """At rest the candidate writes 定金 like the baseline; the load stages' requests (max_tokens 8, the load
    section's cap) get 订金 — the replay passes, the per-stage quality gate must not."""
    right, drifted = Behaviour(text="甲方支付定金五万元。"), Behaviour(text="甲方支付订金五万元。")

    def under_load(body: dict[str, object], n: int) -> Behaviour:
        return drifted if drifts and body.get("max_tokens") == 8 else right

    with FaultServer(right, models=["m"]) as old, FaultServer(under_load, models=["m"]) as new:
        _repo(pytester, old, new, golden=TERMS_GOLDEN)
        suite_yaml = pytester.path / "suites" / "demo" / "suite.yaml"
        gated = suite_yaml.read_text().replace("quality: {sample: 4}", "quality: {sample: 4, max_drop: 0}")
        suite_yaml.write_text(gated)
        result = pytester.runpytest_subprocess("suites/demo", "--load", "-rf")
    if not drifts:  # the control: the same candidate, steady under load, is never blamed (4 samples prove no more)
        result.assert_outcomes(passed=5, skipped=2)
        result.stdout.fnmatch_lines(["*? demo.load.stage2.quality_drop 0 <= 0 (n=4*INSUFFICIENT*4/4 same text*"],
                                    consecutive=False)
        assert "REGRESSION" not in result.stdout.str()
        return
    result.assert_outcomes(passed=5, skipped=1, failed=1)  # answered, terms ×2 and the gates pass; only load fails
    result.stdout.fnmatch_lines(["*✗ demo.load.stage1.quality_drop*0/*conform under load, *at rest*",
                                 "*FAILED*suite.yaml::load*"], consecutive=False)
    out = next((pytester.path / "reports").glob("*/load/demo"))
    table = (out / "stages.txt").read_text()
    assert "quality stage1 (baseline)" in table and "quality stage1 (candidate)" in table
    assert "(terms)" in table  # the failing sample names its check
