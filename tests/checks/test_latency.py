"""Latency metric math, percentiles with n, SLO attainment, bootstrap intervals and the latency gates."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from conformance.checks.latency import (
    Sample,
    bootstrap_percentile_ci,
    bootstrap_ratio_ci,
    itl_gaps,
    latency_gates,
    latency_schedule,
    latency_stats,
    min_samples,
    parse_gate_key,
    percentile,
    percentile_gate,
    sample_from_response,
    slo_attainment,
    slo_met,
    summarize,
    tpot_ms,
)
from conformance.goldens.model import Case
from conformance.response import Response

_times = st.floats(0, 1e5, allow_nan=False, allow_infinity=False)


def resp(i: int, *, ttft: float | None = 100.0, e2e: float | None = 500.0, tokens: int | None = 41,
         fault: str | None = None, n_chunks: int = 43, source: str = "live", queue_ms: float = 0.0) -> Response:
    return Response(endpoint="ep", system="legal", case_id=f"c{i}", fingerprint=f"f{i}", prompt_fingerprint=f"p{i}",
                    text=None if fault else "ok", finish_reason=None if fault else "stop",
                    usage=None if tokens is None else {"completion_tokens": tokens}, fault=fault,
                    ttft_ms=None if fault else ttft, e2e_ms=None if fault else e2e, ttfc_ms=None if fault else ttft,
                    n_chunks=n_chunks, source=source, queue_ms=queue_ms)


def spread(n: int, base: float, step: float = 1.0, **kw: Any) -> list[Response]:
    """n responses with E2EL base, base+step, … and TTFT a fifth of it."""
    return [resp(i, ttft=(base + i * step) / 5, e2e=base + i * step, **kw) for i in range(n)]


# --------------------------------------------------------------------------------------------- metric math


def test_tpot_is_the_decode_time_per_token_after_the_first() -> None:
    assert tpot_ms(100.0, 500.0, 41) == pytest.approx(10.0)
    assert tpot_ms(100.0, 100.0, 1) is None  # one token has no "per output token" gap
    assert tpot_ms(None, 500.0, 41) is None
    assert tpot_ms(100.0, 500.0, None) is None


@given(ttft=_times, gaps=st.lists(st.floats(0, 1e3, allow_nan=False), min_size=1, max_size=50))
def test_tpot_is_the_mean_itl_when_every_chunk_is_one_token(ttft: float, gaps: list[float]) -> None:
    times = [ttft]
    for g in gaps:
        times.append(times[-1] + g)
    assert itl_gaps(times) == pytest.approx(gaps, abs=1e-6)
    assert tpot_ms(times[0], times[-1], len(times)) == pytest.approx(sum(gaps) / len(gaps), abs=1e-6)


def test_min_samples_follow_the_tail_size() -> None:
    assert (min_samples(50), min_samples(95), min_samples(99)) == (2, 20, 100)


@given(st.lists(_times, min_size=1, max_size=300))
def test_percentiles_are_numpy_linear_on_raw_samples_and_carry_n(values: list[float]) -> None:
    d = summarize(values)
    assert d.n == len(values)
    for q, got in ((50, d.p50), (95, d.p95), (99, d.p99)):
        assert got == pytest.approx(float(np.percentile(values, q, method="linear")))
        assert got == percentile(values, q)
    assert d.p50 is not None and d.p99 is not None and d.max is not None
    assert min(values) <= d.p50 <= d.p99 <= d.max == max(values)


def test_no_values_give_an_empty_distribution_not_zero() -> None:
    assert summarize([]).n == 0 and summarize([]).p99 is None and percentile([], 99) is None


def test_stats_exclude_failures_from_distributions_and_count_them_by_class() -> None:
    rs = [*spread(5, 400.0), resp(10, fault="timeout"), resp(11, fault="timeout"), resp(12, fault="server_error")]
    stats = latency_stats(rs)
    assert (stats.issued, stats.ok) == (8, 5)
    assert stats.failures == {"server_error": 1, "timeout": 2}
    assert stats.e2el.n == stats.ttft.n == stats.tpot.n == 5
    assert stats.output_tokens == 5 * 41 and stats.tokens_source == "usage"


def test_tokens_fall_back_to_chunks_and_say_so() -> None:
    no_usage = resp(0, tokens=None, n_chunks=12)  # role chunk + 10 token chunks + finish chunk
    sample = sample_from_response(no_usage)
    assert (sample.n_out, sample.tokens_source) == (10, "chunks")
    assert latency_stats([no_usage]).tokens_source == "chunks"
    assert latency_stats([no_usage, resp(1)]).tokens_source == "mixed"


def test_a_non_streamed_answer_has_an_e2el_but_no_first_token_time() -> None:
    sample = sample_from_response(resp(0, ttft=500.0, e2e=500.0, n_chunks=0))
    assert (sample.ttft_ms, sample.e2el_ms, sample.tpot_ms, sample.n_out) == (None, 500.0, None, 41)


# ------------------------------------------------------------------------------------------- SLO attainment


def test_attainment_counts_failures_against_it() -> None:
    slo = {"ttft_ms": 200.0, "tpot_ms": 20.0, "e2el_ms": 1000.0}
    good = [Sample(f"c{i}", True, ttft_ms=100, e2el_ms=500, n_out=41) for i in range(7)]
    slow = [Sample("s", True, ttft_ms=300, e2el_ms=500, n_out=41)]
    failed = [Sample("f", False, fault="timeout"), Sample("g", False, fault="rate_limited")]
    assert slo_attainment(good + slow + failed, slo) == (7, 10)
    assert not slo_met(slow[0], slo) and not slo_met(failed[0], {})


def test_a_one_token_answer_meets_a_tpot_bound_but_a_missing_ttft_does_not() -> None:
    one = Sample("a", True, ttft_ms=50, e2el_ms=50, n_out=1)
    assert slo_met(one, {"tpot_ms": 1.0})
    assert not slo_met(Sample("b", True, ttft_ms=None, e2el_ms=50, n_out=3), {"ttft_ms": 100.0})


# ------------------------------------------------------------------------------------------------ bootstrap


def test_bootstrap_interval_is_deterministic_with_a_seed_and_brackets_the_estimate() -> None:
    values = list(np.random.default_rng(7).lognormal(6, 0.5, size=300))
    a = bootstrap_percentile_ci(values, 99, seed=3)
    assert a == bootstrap_percentile_ci(values, 99, seed=3)
    # the seed is what makes it reproducible: another seed draws other resamples (visible on the median)
    assert bootstrap_percentile_ci(values, 50, seed=3) != bootstrap_percentile_ci(values, 50, seed=4)
    assert a is not None and a[0] <= percentile(values, 99) <= a[1]  # type: ignore[operator]
    ratio = bootstrap_ratio_ci([v * 1.5 for v in values], values, 95, seed=1, n_resamples=500)
    assert ratio is not None and ratio[0] < 1.5 < ratio[1]
    assert bootstrap_percentile_ci([], 99) is None


# ------------------------------------------------------------------------------------------------ the gates


def test_p99_needs_100_samples_else_insufficient() -> None:
    few = [sample_from_response(r) for r in spread(99, 100.0)]
    g = percentile_gate("legal", "latency.p99_ms", few, "e2el", 99, 10_000.0)
    assert g.verdict == "insufficient" and g.n == 99
    assert "insufficient samples (n=99" in g.message
    enough = [*few, sample_from_response(resp(99, e2e=250.0))]
    g = percentile_gate("legal", "latency.p99_ms", enough, "e2el", 99, 10_000.0)
    assert g.verdict == "pass" and g.n == 100 and g.interval is not None
    assert g.statistic == pytest.approx(percentile([s.e2el_ms for s in enough], 99))  # type: ignore[misc]


def test_latency_gates_judge_budgets_and_ratios() -> None:
    base, cand = spread(120, 400.0), spread(120, 700.0)
    cfg = {"p99_ms": 900.0, "ttft_p95_ms": 100.0, "max_p99_ratio": 1.2, "max_ttft_p95_ratio": 2.0,
           "min_slo_attainment": 0.9, "slo": {"e2el_ms": 750.0}, "samples": 120, "concurrency": 4}
    gates = {g.gate: g for g in latency_gates("legal", base, cand, cfg)}
    assert set(gates) == {"latency.p99_ms", "latency.ttft_p95_ms", "latency.max_p99_ratio",
                          "latency.max_ttft_p95_ratio", "latency.slo_attainment"}
    p99 = float(np.percentile([700.0 + i for i in range(120)], 99))
    base_p99 = float(np.percentile([400.0 + i for i in range(120)], 99))
    assert gates["latency.p99_ms"].statistic == pytest.approx(p99)
    assert gates["latency.p99_ms"].verdict == "pass" and gates["latency.p99_ms"].n == 120
    assert gates["latency.ttft_p95_ms"].verdict == "regression"  # TTFT p95 ≈ 162 ms, the baseline's ≈ 92
    ratio = gates["latency.max_p99_ratio"]
    assert ratio.verdict == "regression" and ratio.statistic == pytest.approx(p99 / base_p99)
    assert ratio.interval is not None and ratio.interval[0] > 1.2
    assert gates["latency.max_ttft_p95_ratio"].verdict == "pass"
    att = gates["latency.slo_attainment"]
    assert att.statistic == pytest.approx(51 / 120) and att.verdict == "regression" and "51/120" in att.message


def test_gate_seed_makes_intervals_reproducible() -> None:
    base, cand = spread(150, 400.0, 3.0), spread(150, 420.0, 3.5)
    cfg = {"max_p99_ratio": 1.5, "seed": 11, "bootstrap_resamples": 400}
    assert latency_gates("s", base, cand, cfg) == latency_gates("s", base, cand, cfg)


def test_failures_are_noted_in_the_latency_gate_message() -> None:
    cand = [*spread(30, 100.0), resp(99, fault="unavailable_503")]
    (g,) = latency_gates("s", spread(30, 100.0), cand, {"ttft_p95_ms": 1000.0})
    assert g.verdict == "pass" and g.n == 30 and "unavailable_503×1" in g.message


def test_ratios_against_recorded_baselines_are_insufficient_not_computed() -> None:
    base = spread(120, 400.0, source="recorded")
    (g,) = latency_gates("s", base, spread(120, 4000.0), {"max_p99_ratio": 1.2})
    assert g.verdict == "insufficient" and "recordings" in g.message


def test_unknown_keys_and_a_missing_slo_are_errors_not_silence() -> None:
    gates = latency_gates("s", spread(3, 1.0), spread(3, 1.0), {"p99_msec": 10, "min_slo_attainment": 0.9})
    assert [g.verdict for g in gates] == ["error", "error"]
    assert "p99_msec" in gates[0].message and "slo" in gates[1].message


@pytest.mark.parametrize(("key", "parsed"), [
    ("p99_ms", ("abs", "e2el", 99)), ("ttft_p95_ms", ("abs", "ttft", 95)), ("tpot_p50_ms", ("abs", "tpot", 50)),
    ("max_p99_ratio", ("ratio", "e2el", 99)), ("max_ttft_p95_ratio", ("ratio", "ttft", 95)),
    ("p100_ms", None), ("max_error_rate", None), ("queue_p99_ms", None),
])
def test_gate_keys(key: str, parsed: tuple[str, str, int] | None) -> None:
    assert parse_gate_key(key) == parsed


# ------------------------------------------------------------------------------------------------ schedule


def case(i: int) -> Case:
    return Case(system="s", set_name="set", id=f"c{i}", messages=({"role": "user", "content": str(i)},), params={})


@given(n_cases=st.integers(1, 12), samples=st.integers(0, 60), seed=st.integers(0, 2**32 - 1))
def test_schedule_is_a_seeded_round_robin(n_cases: int, samples: int, seed: int) -> None:
    cases = [case(i) for i in range(n_cases)]
    sched = latency_schedule(cases, samples, seed)
    assert sched == latency_schedule(cases, samples, seed)
    assert len(sched) == samples
    counts = {c.id: sum(s.id == c.id for s in sched) for c in cases}
    assert max(counts.values()) - min(counts.values()) <= 1
    first = sched[:n_cases]
    assert all(sched[i] == first[i % n_cases] for i in range(samples))
    # what replay(cases=first, repeats=ceil(samples / n)) sends, repeats outermost, starts with the schedule
    replayed = [c for _ in range(math.ceil(samples / n_cases)) for c in first]
    assert replayed[:samples] == sched


def test_schedule_order_depends_on_the_seed() -> None:
    cases = [case(i) for i in range(10)]
    assert latency_schedule(cases, 10, 1) != latency_schedule(cases, 10, 2)
    assert latency_schedule([], 5, 0) == []
