"""The plugin end to end, in a subprocess, against the real embedded llama.cpp servers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conformance.cli import main as cli
from tests.plugin.conftest import make_suite_repo
from tests.support.live import LIVE_YAML

pytestmark = pytest.mark.live



@pytest.fixture
def live_repo(pytester: pytest.Pytester, live_servers: object) -> Path:
    return make_suite_repo(pytester.path, LIVE_YAML)


def _summary(root: Path) -> dict:  # type: ignore[type-arg]
    return json.loads((root / "reports" / "latest" / "summary.json").read_text())


def test_suite_runs_and_writes_the_report_folder(pytester: pytest.Pytester, live_repo: Path) -> None:
    result = pytester.runpytest_subprocess("suites/demo", "-v")
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines([
        "*baseline test-baseline vs candidate test-candidate*",
        "*answered?alpha? PASSED*",
        "*demo: PASS — 4 passed; missing answers: none*",
        "*✓ demo.availability.error_rate 0 <= 0 (n=3, 95% CI 0.000–0.561; baseline 0)*",
    ])
    summary = _summary(live_repo)
    assert summary["suites"]["demo"]["tests"] == {"passed": 4}
    assert summary["preflight"]["test-candidate"]["served"] == ["smollm2-135m-instruct-q4_0"]
    responses = list((live_repo / "reports" / "latest" / "responses").glob("*.jsonl"))
    assert sorted(p.name.split(".")[0] for p in responses) == ["test-baseline", "test-candidate"]


def test_k_filter_replays_only_selected_cases(pytester: pytest.Pytester, live_repo: Path) -> None:
    result = pytester.runpytest_subprocess("suites/demo", "-k", "beta or gates")
    result.assert_outcomes(passed=2)
    lines = (live_repo / "reports" / "latest" / "responses" / "test-candidate.main.jsonl").read_text().splitlines()
    assert [json.loads(line)["case_id"] for line in lines] == ["beta"]


def test_xdist_two_workers(pytester: pytest.Pytester, live_repo: Path) -> None:
    result = pytester.runpytest_subprocess("suites/demo", "-n", "2", "--dist", "loadgroup")
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(["*demo: PASS — 4 passed; missing answers: none*",
                                 "*✓ demo.availability.error_rate*"])
    assert _summary(live_repo)["suites"]["demo"]["tests"] == {"passed": 4}


def test_wrong_candidate_model_stops_at_preflight(pytester: pytest.Pytester, live_repo: Path) -> None:
    result = pytester.runpytest_subprocess("suites/demo", "--candidate", "test-typo-candidate")
    assert result.ret == 78  # config_error: a wrong model name is a config problem, never a gate failure
    result.stdout.fnmatch_lines([
        "*config_error: endpoint 'test-typo-candidate': model 'SmolLM2-135M-Q4_0-Local' is not served by http://127.0.0.1:8452/v1;"
        " it serves 'smollm2-135m-instruct-q4_0' — did you mean 'smollm2-135m-instruct-q4_0'?*"
    ])
    assert "Traceback" not in result.stderr.str() + result.stdout.str()


def test_record_then_replay_with_the_baseline_stopped(pytester: pytest.Pytester, live_repo: Path) -> None:
    assert cli(["--root", str(live_repo), "record", "--system", "demo", "--endpoint", "test-old-model", "--quiet"]) == 0
    rec = live_repo / "goldens" / "demo" / "recordings" / "test-old-model.jsonl"
    lines = [json.loads(line) for line in rec.read_text().splitlines()]
    assert lines[0]["_meta"]["served_models"] == ["smollm2-135m-instruct-q4_1"]
    assert [e["case_id"] for e in lines[1:]] == ["alpha", "beta", "gamma"]
    assert {"fingerprint", "params", "seed", "model", "server", "recorded_at"} <= set(lines[1])
    cli(["--root", str(live_repo), "local", "down", "test-old-model"])
    result = pytester.runpytest_subprocess("suites/demo", "--baseline", "recorded:test-old-model")
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(["*baseline replayed from recordings of 'test-old-model'*"])
    # change one case: its recording is now stale and that case fails, by name; the others still pass
    golden = live_repo / "goldens" / "demo" / "smoke.yaml"
    golden.write_text(golden.read_text().replace("Say hello.", "Say hello twice."))
    result = pytester.runpytest_subprocess("suites/demo", "--baseline", "recorded:test-old-model", "-rs")
    # alpha cannot be compared (skipped, by name); the baseline availability gate counts it — never the candidate's
    result.assert_outcomes(passed=2, skipped=1, xfailed=1)
    assert result.ret == 75
    result.stdout.fnmatch_lines(["*≈ demo.availability.baseline_error_rate 0.3333 <= 0*recording_stale×1 (alpha)*"])
    result.stdout.fnmatch_lines(["SKIPPED*goldens/demo/smoke.yaml:*recording_stale*recording of 'alpha'*is stale*"])
