"""Prometheus text parsing, vLLM metric names old and new, histogram quantiles and per-stage differences."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conformance.load.vllm_metrics import (
    MetricSample,
    fetch,
    histogram_quantile,
    metrics_by_stage,
    parse_prometheus,
    snapshot,
    stage_server_metrics,
)
from tests.load.support import serve_text, vllm_text


def test_snapshot_reads_the_gauges_counters_and_histogram() -> None:
    snap = snapshot(parse_prometheus(vllm_text(engines=2)))
    assert (snap.running, snap.waiting, snap.preemptions) == (6, 2, 0)  # summed over the engines
    assert snap.kv_cache_usage == pytest.approx(0.84) and snap.kv_metric == "vllm:kv_cache_usage_perc"
    assert snap.ttft_buckets[-1] == (math.inf, 20.0) and snap.ttft_count == 20.0


def test_older_vllm_cache_gauge_is_detected_and_named() -> None:
    snap = snapshot(parse_prometheus(vllm_text(old=True)))
    assert snap.kv_metric == "vllm:gpu_cache_usage_perc" and snap.kv_cache_usage == pytest.approx(0.42)
    assert snapshot(parse_prometheus("up 1\n")).kv_metric is None


def test_histogram_quantile_interpolates_inside_the_bucket() -> None:
    buckets = [(0.1, 10.0), (0.2, 30.0), (math.inf, 40.0)]
    assert histogram_quantile(0.25, buckets) == pytest.approx(0.1 + 0.1 * (10 - 10) / 20)
    assert histogram_quantile(0.5, buckets) == pytest.approx(0.1 + 0.1 * (20 - 10) / 20)
    assert histogram_quantile(0.99, buckets) == 0.2  # in the +Inf bucket: the highest finite bound
    assert histogram_quantile(0.5, []) is None and histogram_quantile(0.5, [(1.0, 0.0)]) is None


def test_stage_difference_uses_scrapes_around_the_stage() -> None:
    before = snapshot(parse_prometheus(vllm_text(ttft=(0, 0, 2, 5, 9, 10, 10, 10, 10, 10, 10))))
    during = [snapshot(parse_prometheus(vllm_text(waiting=w, kv=k))) for w, k in ((4, 0.5), (8, 0.9))]
    after = snapshot(parse_prometheus(vllm_text(preempt=3, ttft=(0, 0, 2, 5, 9, 10, 10, 10, 30, 50, 50))))
    m = stage_server_metrics(before, during, after)
    assert (m.scrapes, m.waiting_max, m.waiting_mean, m.kv_cache_usage_max, m.preemptions) == (2, 8, 6, 0.9, 3)
    # the 40 requests of this stage: 20 in (0.1, 0.25], 20 in (0.25, 0.5]
    assert m.ttft_n == 40
    assert m.ttft_p50_ms == pytest.approx(250.0)
    assert m.ttft_p95_ms == pytest.approx((0.25 + 0.25 * 18 / 20) * 1000)


def test_a_restarted_server_does_not_give_negative_counts() -> None:
    before = snapshot(parse_prometheus(vllm_text(preempt=9, ttft=(0, 0, 2, 5, 9, 10, 10, 10, 30, 50, 50))))
    after = snapshot(parse_prometheus(vllm_text(preempt=2)))
    m = stage_server_metrics(before, [after])
    assert m.preemptions == 2 and m.ttft_n == 10


_label_value = st.text(st.characters(exclude_categories=["Cs"]), max_size=12)


@given(st.lists(st.tuples(st.from_regex(r"[a-zA-Z_:][a-zA-Z0-9_:]{0,20}", fullmatch=True),
                          st.dictionaries(st.from_regex(r"[a-zA-Z_][a-zA-Z0-9_]{0,8}", fullmatch=True),
                                          _label_value, max_size=3),
                          st.floats(allow_nan=False) | st.sampled_from([math.inf, -math.inf])), max_size=8))
def test_parse_round_trips_rendered_samples(samples: list[tuple[str, dict[str, str], float]]) -> None:
    def esc(v: str) -> str:
        return v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")

    def num(v: float) -> str:
        return {math.inf: "+Inf", -math.inf: "-Inf"}.get(v, repr(v))

    text = "# HELP x y\n" + "".join(
        f"{name}{{{','.join(f'{k}={chr(34)}{esc(v)}{chr(34)}' for k, v in labels.items())}}} {num(value)}\n"
        if labels else f"{name} {num(value)} 1700000000000\n" for name, labels, value in samples)
    parsed = parse_prometheus(text)
    assert parsed == [MetricSample(n, tuple(lab.items()), v) for n, lab, v in samples]


def test_fetch_and_summarise_a_scrape_log(tmp_path: Path) -> None:
    with serve_text(vllm_text()) as url:
        text = fetch(url)
    assert snapshot(parse_prometheus(text)).running == 3
    log = tmp_path / "metrics.jsonl"
    rows = [{"t": 0.0, "stage": 0, "text": text}, {"t": 1.0, "stage": 0, "text": None, "error": "timeout"},
            {"t": 2.0, "stage": 1, "text": vllm_text(running=7)}, {"t": 3.0, "stage": None, "text": text}]
    log.write_text("".join(json.dumps(r) + "\n" for r in rows) + '{"cut": ')
    s0, s1, s2 = metrics_by_stage(log, 3)
    assert s0 is not None and (s0.scrapes, s0.failed_scrapes, s0.running_max) == (1, 1, 3)
    assert s1 is not None and s1.running_max == 7
    assert s2 is None
    assert metrics_by_stage(tmp_path / "absent.jsonl", 2) == [None, None]
