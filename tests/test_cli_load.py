"""`conformance load --system S`: stages, gates and quality under load outside pytest (at-rest answers asked
for the sampled cases only)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from conformance.cli import main
from conformance.testing.faultserver import Behaviour, FaultServer
from tests.plugin.conftest import TERMS_GOLDEN, make_suite_repo, two_endpoints

SUITE = """system: demo
load:
  max_tokens: 8
  stages: [{users: 2, spawn_rate: 2, duration_s: 2}]
  gates: {max_error_rate: 0.0}
  quality: {sample: 12, seed: 3, max_drop: 0.0}
"""
RIGHT, DRIFTED = Behaviour(text="甲方支付定金五万元。"), Behaviour(text="甲方支付订金五万元。")


def _repo(root: Path, old: FaultServer, new: FaultServer) -> Path:
    make_suite_repo(root, two_endpoints(old, new), golden=TERMS_GOLDEN)
    (root / "suites" / "demo" / "suite.yaml").write_text(SUITE)
    return root


def test_standalone_load_checks_quality_against_at_rest_answers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    def under_load(body: dict[str, object], n: int) -> Behaviour:
        return DRIFTED if body.get("max_tokens") == 8 else RIGHT

    with FaultServer(RIGHT, models=["m"]) as old, FaultServer(under_load, models=["m"]) as new:
        root = _repo(tmp_path, old, new)
        monkeypatch.chdir(root)
        code = main(["load", "--system", "demo", "--out", str(tmp_path / "out"), "--quiet", "--no-local-start"])
        at_rest = [r for r in new.requests if r.path.endswith("/chat/completions") and r.body.get("max_tokens") == 6]
    out = capsys.readouterr().out
    assert code == 1, out
    # 12 drifted samples against the baseline's steady ones: enough to show the drop is the candidate's
    assert "quality stage1 (candidate): 12 of" in out and "✗ demo.load.stage1.quality_drop" in out
    assert "demo.load.stage1.error_rate" in out  # judged too (its verdict is not what this test is about)
    quality = json.loads((tmp_path / "out" / "quality.json").read_text())
    sampled = {s["case_id"] for q in quality["stages"] for s in q["samples"] if q["role"] == "candidate"}
    assert 1 <= len(at_rest) <= 3 and len(at_rest) == len(
        {s["case_id"] for q in quality["stages"] for s in q["samples"]})  # only the sampled cases, once each
    assert sampled and (tmp_path / "out" / "stages.txt").read_text().count("quality stage1") == 2


def test_load_without_gates_fails_when_no_request_is_answered(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    """No `gates:` at all, every candidate request failing: used to exit 0."""
    with FaultServer(RIGHT, models=["m"]) as old, FaultServer(Behaviour(status=500), models=["m"]) as new:
        root = _repo(tmp_path, old, new)
        (root / "suites" / "demo" / "suite.yaml").write_text(
            "system: demo\nload:\n  stages: [{users: 1, spawn_rate: 1, duration_s: 1}]\n")
        monkeypatch.chdir(root)
        code = main(["load", "--system", "demo", "--out", str(tmp_path / "out"), "--quiet", "--no-local-start"])
    out = capsys.readouterr().out
    assert code == 1, out
    assert "✗ demo.load.stage1.answered 0 >= 1" in out and "answered: server_error×" in out
    assert "✓ demo.load.stage1.baseline_answered" in out


def test_progress_is_a_line_per_stage_not_a_repr(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """Without --quiet: per stage and endpoint, users · req/s · failures · TTFT p50 (a CI log gets lines; a
    terminal gets them redrawn in place — tests/test_progress.py)."""
    slow_first_token = Behaviour(text="甲方支付定金五万元。", chunk_chars=2, ttft_ms=30.0)
    with FaultServer(slow_first_token, models=["m"]) as old, FaultServer(slow_first_token, models=["m"]) as new:
        root = _repo(tmp_path, old, new)
        (root / "suites" / "demo" / "suite.yaml").write_text(
            "system: demo\nload:\n  max_tokens: 8\n"
            "  stages: [{users: 1, duration_s: 1.5}, {users: 2, duration_s: 1.5}]\n")
        monkeypatch.chdir(root)
        code = main(["load", "--system", "demo", "--out", str(tmp_path / "out"), "--no-local-start"])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "LoadProgress(" not in err
    stage2 = [ln for ln in err.splitlines() if ln.startswith("  new stage 2/2: 2 users · ")]
    assert stage2, err
    m = re.fullmatch(r"  new stage 2/2: 2 users · (\d+\.\d) req/s · 0 failed of (\d+) \(0\.0%\) · "
                     r"TTFT p50 (\d+) ms · \d+s", stage2[-1])
    assert m, stage2[-1]
    assert float(m.group(1)) > 0 and int(m.group(2)) > 0 and int(m.group(3)) >= 30  # the server's first-token delay
    assert any(ln.startswith("  old stage 1/2: 1 user · ") for ln in err.splitlines())
