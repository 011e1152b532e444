"""A real Locust subprocess against FaultServers: raw records, our statistics, and a slowed candidate failing.

Timings here are lower bounds only: the load generator and the fake server share two CPUs with the test, and
FaultServer's sockets are subject to Nagle's algorithm (first event of a reused connection can wait ~40 ms).
"""

from __future__ import annotations

import csv
import itertools
import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from conformance.endpoints.config import EndpointConfig
from conformance.errors import ConfigError
from conformance.goldens.model import Case
from conformance.load.runner import LoadError, LoadProgress, compare_load, run_load
from conformance.load.stats import LoadResult, read_records
from conformance.testing import Behaviour, FaultServer
from tests.load.support import serve_text, vllm_text

TEXT = "abcdefghijklmnopqrstuvwxyz012345"  # 8 token chunks of 4 characters
TTFT_MS, ITL_MS = 20.0, 5.0
STAGES = [{"users": 1, "spawn_rate": 1, "duration_s": 2}, {"users": 2, "spawn_rate": 2, "duration_s": 2}]
CASES = [Case(system="legal", set_name="s", id=f"case-{i}", params={"temperature": 0, "max_tokens": 16},
              messages=({"role": "user", "content": f"起草定金条款 {i}"},)) for i in range(3)]
KEY_ENV, KEY = "LOAD_TEST_KEY", "sk-load-test-secret"


@dataclass
class Run:
    server: FaultServer
    result: LoadResult
    progress: list[LoadProgress]


def run_against(behaviour: Behaviour, out: Path, metrics_url: str | None = None, **kw: object) -> Run:
    progress: list[LoadProgress] = []
    with FaultServer(behaviour) as srv, pytest.MonkeyPatch.context() as mp:
        mp.setenv(KEY_ENV, KEY)
        cfg = EndpointConfig(name=out.name, base_url=srv.base_url, model="fault-model", api_key_env=KEY_ENV,
                             timeout_s=5, metrics_url=metrics_url)
        result = run_load(CASES, cfg, STAGES, out, seed=7, progress=progress.append, **kw)  # type: ignore[arg-type]
    return Run(srv, result, progress)


@pytest.fixture(scope="module")
def baseline(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    out = tmp_path_factory.mktemp("load") / "baseline"
    with serve_text(vllm_text(running=3, old=True)) as metrics_url:
        yield run_against(Behaviour(text=TEXT, chunk_chars=4, ttft_ms=TTFT_MS, itl_ms=ITL_MS), out, metrics_url)


def test_raw_records_time_every_request(baseline: Run) -> None:
    res = baseline.result
    records, bad = read_records(res.raw_dir)
    assert bad == 0 and res.records == len(records) > 10 and res.killed is None
    assert {r["stage"] for r in records} == {0, 1}
    for r in records:
        assert r["fault"] is None and r["status"] == 200 and r["finish_reason"] == "stop" and r["text"] == TEXT
        assert r["case_id"] in {c.id for c in CASES}
        assert (r["n_out"], r["tokens_source"], r["n_token_events"]) == (8, "usage", 8)
        assert r["ttfc_ms"] <= r["ttft_ms"] <= r["e2el_ms"] <= r["elapsed_ms"]
        # lower bounds: no token can arrive before the server sent it
        assert r["ttft_ms"] >= TTFT_MS * 0.95 and r["e2el_ms"] >= (TTFT_MS + 7 * ITL_MS) * 0.95
        assert len(r["itl_ms"]) == 7 and sum(r["itl_ms"]) == pytest.approx(r["e2el_ms"] - r["ttft_ms"], abs=0.01)
        assert r["tpot_ms"] == pytest.approx((r["e2el_ms"] - r["ttft_ms"]) / 7, abs=1e-2)
        assert r["queue_ms"] == 0.0 and r["t_start"] > 1e9
    assert sorted(r["seq"] for r in records) == list(range(len(records)))


def test_stage_statistics_are_ours_from_the_records(baseline: Run) -> None:
    records, _ = read_records(baseline.result.raw_dir)
    for stage in baseline.result.stages:
        mine = [r for r in records if r["stage"] == stage.index]
        assert stage.requests == stage.ok == len(mine) and stage.failures == {} and stage.error_rate == 0
        assert stage.ttft.n == len(mine) and stage.tokens_source == "usage"
        assert stage.ttft.p50 == pytest.approx(np.percentile([r["ttft_ms"] for r in mine], 50))
        assert stage.e2el.p95 == pytest.approx(np.percentile([r["e2el_ms"] for r in mine], 95))
        assert stage.output_tok_s == pytest.approx(8 * len(mine) / 2.0)
        assert stage.rps == pytest.approx(len(mine) / 2.0)
    # two users in flight in stage 2: overlapping requests (not a rate, which a busy machine bends)
    def overlapping(stage: int) -> bool:
        spans = sorted((r["t_offset_s"], r["t_offset_s"] + r["elapsed_ms"] / 1000) for r in records
                       if r["stage"] == stage)
        return any(b[0] < a[1] - 0.010 for a, b in itertools.pairwise(spans))  # > 10 ms: not rounding

    assert overlapping(1)
    assert baseline.progress and baseline.progress[-1].requests == baseline.result.records


def test_progress_carries_the_current_stage_figures(baseline: Run) -> None:
    """What `conformance load` shows live: the stage's users, finished requests per second since its first request
    started, failures and TTFT p50 — from the same records the statistics come from."""
    records, _ = read_records(baseline.result.raw_dir)
    last = baseline.progress[-1]
    mine = [r for r in records if r["stage"] == 1]
    assert (last.stage, last.stages, last.users, last.rate_rps) == (1, 2, 2, None)
    assert (last.stage_requests, last.stage_failures) == (len(mine), 0)
    assert last.ttft_p50_ms == pytest.approx(float(np.median([r["ttft_ms"] for r in mine])))
    span_s = max(r["t_offset_s"] + r["elapsed_ms"] / 1000 for r in mine) - min(r["t_offset_s"] for r in mine)
    assert last.rps == pytest.approx(len(mine) / span_s, rel=1e-3)
    first = next(p for p in baseline.progress if p.stage == 0)
    assert first.users == 1 and first.stage_requests <= first.requests


def test_server_metrics_are_scraped_around_each_stage(baseline: Run) -> None:
    for stage in baseline.result.stages:
        assert stage.server is not None and stage.server.scrapes >= 1 and stage.server.failed_scrapes == 0
        assert stage.server.running_max == 3 and stage.server.kv_metric == "vllm:gpu_cache_usage_perc"
        assert stage.server.ttft_n == 0  # the page never changes: no request was counted in between


def test_the_key_travels_in_the_header_never_in_the_plan(baseline: Run) -> None:
    assert baseline.server.requests
    assert all(r.headers.get("authorization") == f"Bearer {KEY}" for r in baseline.server.requests)
    body = baseline.server.requests[0].body
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert "ignore_eos" not in body and body["model"] == "fault-model"
    assert body["messages"][0]["content"].startswith("起草定金条款")  # CJK prompts arrive intact
    out = baseline.result.out_dir
    assert KEY not in (out / "plan.json").read_text() and KEY not in (out / "load_result.json").read_text()


def test_locust_reports_our_sse_timings(baseline: Run) -> None:
    out = baseline.result.out_dir
    with open(out / "locust_stats.csv", newline="") as fh:
        rows = {(r["Type"], r["Name"]): r for r in csv.DictReader(fh)}
    assert {("SSE", "ttft"), ("SSE", "tpot"), ("SSE", "e2el")} <= set(rows)
    # Locust writes its final CSV while the last in-flight requests may still land (how many depends on the machine's
    # load): its count is our events' count, never more than our records
    assert 0 < int(rows[("SSE", "e2el")]["Request Count"]) <= baseline.result.records
    assert (out / "locust.html").stat().st_size > 0
    saved = json.loads((out / "load_result.json").read_text())
    assert [s["requests"] for s in saved["stages"]] == [s.requests for s in baseline.result.stages]


def test_a_candidate_300ms_slower_fails_the_relative_gates(baseline: Run, tmp_path: Path) -> None:
    slow = run_against(Behaviour(text=TEXT, chunk_chars=4, ttft_ms=TTFT_MS + 300, itl_ms=ITL_MS),
                       tmp_path / "candidate")
    cfg = {"max_error_rate": 0.0, "min_throughput_ratio": 0.9, "max_ttft_p50_ratio": 1.5, "max_p99_ratio": 1.2}
    gates = {g.gate: g for g in compare_load(baseline.result, slow.result, cfg, suite="legal")}
    for stage in ("stage1", "stage2"):
        assert gates[f"load.{stage}.error_rate"].verdict == "pass"
        # 2-second stages are too short for a throughput interval (tests/load/test_stats.py judges one)
        assert gates[f"load.{stage}.throughput_ratio"].verdict == "insufficient"
        assert gates[f"load.{stage}.ttft_p50_ratio"].verdict == "regression"
        p99 = gates[f"load.{stage}.p99_ratio"]
        assert p99.verdict == "insufficient" and "insufficient samples (n=" in p99.message
    assert slow.result.stages[0].ttft.p50 >= TTFT_MS + 300  # type: ignore[operator]


def test_refuses_without_a_target_or_a_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LOAD_TEST_MISSING", raising=False)
    with pytest.raises(ConfigError, match="base_url"):
        run_load(CASES, EndpointConfig(name="x", base_url="", model="m"), STAGES, tmp_path)
    with pytest.raises(ConfigError, match="LOAD_TEST_MISSING"):
        run_load(CASES, EndpointConfig(name="x", base_url="http://127.0.0.1:9/v1", model="m",
                                       api_key_env="LOAD_TEST_MISSING"), STAGES, tmp_path)
    assert not (tmp_path / "plan.json").exists()


def test_locust_that_cannot_start_is_an_error_not_an_empty_pass(tmp_path: Path) -> None:
    cfg = EndpointConfig(name="x", base_url="http://127.0.0.1:9/v1", model="m")
    with pytest.raises(LoadError, match="before sending any request"):
        run_load(CASES, cfg, STAGES, tmp_path, locust_args=["--no-such-flag"])


def test_the_pytest_side_never_imports_locust_or_gevent() -> None:
    code = ("import sys, conformance.load.runner, conformance.checks.latency; "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'locust', 'gevent', 'geventhttpclient'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "[]"
