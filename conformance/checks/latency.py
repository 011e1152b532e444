"""Latency metrics and budgets, with the vLLM serving-benchmark definitions.

Why its own definitions rather than "response time": a streaming answer has three latencies a consumer feels —
time to the first token (TTFT, the wait before anything shows), time per output token after it (TPOT, the reading
speed) and the whole request (E2EL). All are measured from ``t0``, when the request is sent (the product client
stamps it in an httpx request hook, once the SDK has built the request; the Locust driver just before its POST);
waiting for a client-side slot is ``queue_ms`` and is reported next to them, never folded in. Output-token counts
come from the server's ``usage`` when it sends one, else from the number of token-bearing chunks — and every
summary says which (``tokens_source``), because a chunk may carry several tokens and TPOT is then an upper bound.

Percentiles are computed from raw samples (numpy, linear interpolation) and always carry their ``n``: a P99 of 40
samples is really the maximum, so a tail percentile needs ``1 / (1 - q)`` samples (P95: 20, P99: 100) before a gate
will judge it. Failed requests never enter a latency distribution; they count against SLO attainment instead.
"""

from __future__ import annotations

import itertools
import math
import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from conformance.checks.params import integer, number, rate
from conformance.checks.stats import (
    BOOTSTRAP_RESAMPLES,
    bootstrap_difference_ci,
    bootstrap_percentile_ci,
    bootstrap_ratio_ci,
    percentile,
    wilson_interval,
)
from conformance.gates import GateResult, compare
from conformance.goldens.model import Case
from conformance.response import Response

_METRICS = ("ttft", "tpot", "e2el")
_ABS_KEY = re.compile(r"^(?:(ttft|tpot|e2el)_)?p(\d{1,2})_ms$")
_RATIO_KEY = re.compile(r"^max_(?:(ttft|tpot|e2el)_)?p(\d{1,2})_ratio$")
#: Keys of ``gates.latency`` that configure the phase rather than name a gate.
_SETTINGS = frozenset({"samples", "concurrency", "slo", "seed", "bootstrap_resamples", "min_slo_attainment",
                       "allow_large"})


@dataclass(frozen=True)
class Sample:
    """One request's timings: the common ground of live responses and load-test records."""

    case_id: str
    ok: bool
    fault: str | None = None
    ttfc_ms: float | None = None
    ttft_ms: float | None = None
    e2el_ms: float | None = None
    n_out: int | None = None
    tokens_source: str = "none"  # usage | chunks | none
    queue_ms: float = 0.0
    finish_reason: str | None = None

    @property
    def tpot_ms(self) -> float | None:
        return tpot_ms(self.ttft_ms, self.e2el_ms, self.n_out)


def tpot_ms(ttft: float | None, e2el: float | None, n_out: int | None) -> float | None:
    """(E2EL − TTFT) / (N_out − 1); undefined for a single token, where there is no "per output token" gap."""
    if ttft is None or e2el is None or n_out is None or n_out <= 1:
        return None
    return (e2el - ttft) / (n_out - 1)


def itl_gaps(token_times_ms: Sequence[float]) -> list[float]:
    """Raw inter-token gaps from token-event timestamps — for diagnosing stalls, never for a gate."""
    return [b - a for a, b in itertools.pairwise(token_times_ms)]


def min_samples(q: float) -> int:
    """Samples needed before the ``q``-th percentile says anything beyond the maximum: P95 → 20, P99 → 100."""
    return max(1, math.ceil(1 / (1 - q / 100) - 1e-9))


@dataclass(frozen=True)
class Distribution:
    """Summary of one metric over the successful requests; ``n`` travels with every number."""

    n: int
    mean: float | None = None
    p50: float | None = None
    p90: float | None = None
    p95: float | None = None
    p99: float | None = None
    max: float | None = None


def summarize(values: Sequence[float]) -> Distribution:
    if not len(values):
        return Distribution(0)
    arr = np.asarray(values, dtype=float)
    p50, p90, p95, p99 = (float(v) for v in np.percentile(arr, [50, 90, 95, 99], method="linear"))
    return Distribution(len(arr), float(arr.mean()), p50, p90, p95, p99, float(arr.max()))


def metric_values(samples: Sequence[Sample], metric: str) -> list[float]:
    """Values of ``ttft``/``tpot``/``e2el``/``ttfc``/``queue`` over the successful samples that have one."""
    get: Callable[[Sample], float | None] = {
        "ttft": lambda s: s.ttft_ms, "tpot": lambda s: s.tpot_ms, "e2el": lambda s: s.e2el_ms,
        "ttfc": lambda s: s.ttfc_ms, "queue": lambda s: s.queue_ms,
    }[metric]
    return [v for s in samples if s.ok and (v := get(s)) is not None]


def tokens_source(samples: Sequence[Sample]) -> str:
    """``usage``, ``chunks``, ``mixed`` or ``none`` over the successful samples."""
    kinds = {s.tokens_source for s in samples if s.ok and s.tokens_source != "none"}
    return kinds.pop() if len(kinds) == 1 else ("mixed" if kinds else "none")


def slo_met(sample: Sample, slo: Mapping[str, float]) -> bool:
    """Good = answered and within every configured SLO (``ttft_ms``, ``tpot_ms``, ``e2el_ms``).

    A bound on TPOT is met by a one-token answer (it has no TPOT); a missing TTFT/E2EL is not met.
    """
    if not sample.ok:
        return False
    for key, value in (("ttft_ms", sample.ttft_ms), ("tpot_ms", sample.tpot_ms), ("e2el_ms", sample.e2el_ms)):
        if key in slo and slo[key] is not None:
            if value is None:
                if key == "tpot_ms":
                    continue
                return False
            if value > float(slo[key]):
                return False
    return True


def slo_attainment(samples: Sequence[Sample], slo: Mapping[str, float]) -> tuple[int, int]:
    """(good, issued): failures are issued requests that were not good, so they count against attainment."""
    return sum(slo_met(s, slo) for s in samples), len(samples)


def sample_from_response(resp: Response) -> Sample:
    """A :class:`Sample` from a live :class:`Response`; output tokens from usage, else counted chunks."""
    n_out, source = None, "none"
    completion = (resp.usage or {}).get("completion_tokens")
    if isinstance(completion, int) and completion >= 0:
        n_out, source = completion, "usage"
    elif resp.ttft_ms is not None and resp.n_chunks > 0:
        # Response.n_chunks counts every chunk; without a usage chunk the role chunk and the finish chunk are the
        # only non-token ones vLLM / llama.cpp send. A future ``n_token_chunks`` field is preferred when present.
        exact = getattr(resp, "n_token_chunks", None)
        n_out, source = (int(exact) if exact is not None else max(1, resp.n_chunks - 2)), "chunks"
    streamed = resp.n_chunks > 0  # a non-streamed answer has no first token to time: only its E2EL is real
    return Sample(case_id=resp.case_id, ok=resp.ok, fault=resp.fault, ttfc_ms=resp.ttfc_ms if streamed else None,
                  ttft_ms=resp.ttft_ms if streamed else None, e2el_ms=resp.e2e_ms, n_out=n_out,
                  tokens_source=source, queue_ms=resp.queue_ms, finish_reason=resp.finish_reason)


@dataclass(frozen=True)
class LatencyStats:
    """Latency of one endpoint over a set of requests; ``samples`` keeps the raw data for bootstrap gates."""

    issued: int
    ok: int
    failures: dict[str, int]
    tokens_source: str
    output_tokens: int
    ttfc: Distribution
    ttft: Distribution
    tpot: Distribution
    e2el: Distribution
    queue: Distribution
    samples: tuple[Sample, ...] = field(default=(), repr=False)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("samples")
        return data


def stats_from_samples(samples: Sequence[Sample]) -> LatencyStats:
    ok = [s for s in samples if s.ok]
    return LatencyStats(
        issued=len(samples), ok=len(ok),
        failures=dict(sorted(Counter(str(s.fault) for s in samples if not s.ok).items())),
        tokens_source=tokens_source(samples), output_tokens=sum(s.n_out or 0 for s in ok),
        ttfc=summarize(metric_values(samples, "ttfc")), ttft=summarize(metric_values(samples, "ttft")),
        tpot=summarize(metric_values(samples, "tpot")), e2el=summarize(metric_values(samples, "e2el")),
        queue=summarize(metric_values(samples, "queue")), samples=tuple(samples),
    )


def latency_stats(responses: Sequence[Response]) -> LatencyStats:
    """Latency of one endpoint's responses (failures counted by class, excluded from the distributions)."""
    return stats_from_samples([sample_from_response(r) for r in responses])


# -------------------------------------------------------------------------------------------------- gates


def _failed_note(stats: LatencyStats, role: str) -> str:
    if not stats.failures:
        return ""
    detail = ", ".join(f"{k}×{v}" for k, v in stats.failures.items())
    return f"{role}: {stats.issued - stats.ok} failed request(s) excluded ({detail})"


def _join(*parts: str) -> str:
    return "; ".join(p for p in parts if p)


def percentile_gate(suite: str, gate: str, samples: Sequence[Sample], metric: str, q: float, threshold: float,
                    *, seed: int = 0, n_resamples: int = BOOTSTRAP_RESAMPLES, note: str = "",
                    baseline: Sequence[Sample] | None = None) -> GateResult:
    """Candidate ``metric`` percentile ≤ ``threshold`` ms, insufficient below :func:`min_samples`; the baseline's
    percentile in the same run stands next to it (a budget both miss is ``baseline_fails``)."""
    values = metric_values(samples, metric)
    n, need = len(values), min_samples(q)
    stat = percentile(values, q)
    ci = bootstrap_percentile_ci(values, q, seed=seed, n_resamples=n_resamples) if n >= need else None
    b_stat = b_ci = diff = None
    b_n = 0
    if baseline is not None:
        b_values = metric_values(baseline, metric)
        b_n = len(b_values)
        b_stat = percentile(b_values, q)
        if b_n >= need and n >= need:
            b_ci = bootstrap_percentile_ci(b_values, q, seed=seed, n_resamples=n_resamples)
            diff = bootstrap_difference_ci(values, b_values, q, seed=seed, n_resamples=n_resamples)
    msg = f"insufficient samples (n={n}, need ≥ {need} for P{q:g})" if n < need else ""
    return compare(suite, gate, stat, threshold, "<=", n, interval=ci, min_n=need, message=_join(msg, note),
                   baseline=b_stat, baseline_interval=b_ci, baseline_n=b_n, difference_interval=diff,
                   zero_tolerance=False)


def ratio_gate(suite: str, gate: str, baseline: Sequence[Sample], candidate: Sequence[Sample], metric: str,
               q: float, threshold: float, *, seed: int = 0, n_resamples: int = BOOTSTRAP_RESAMPLES,
               note: str = "") -> GateResult:
    """Candidate/baseline ratio of a percentile ≤ ``threshold``, both sides measured in the same run."""
    b, c = metric_values(baseline, metric), metric_values(candidate, metric)
    n, need = min(len(b), len(c)), min_samples(q)
    pb, pc = percentile(b, q), percentile(c, q)
    stat = pc / pb if pb and pc is not None else None
    ci = bootstrap_ratio_ci(c, b, q, seed=seed, n_resamples=n_resamples) if n >= need else None
    head = f"P{q:g} {metric} candidate {pc:.1f} ms / baseline {pb:.1f} ms" if pb and pc is not None else ""
    msg = f"insufficient samples (n={n}, need ≥ {need} on both sides for P{q:g})" if n < need else ""
    return compare(suite, gate, stat, threshold, "<=", n, interval=ci, min_n=need, message=_join(msg, head, note),
                   zero_tolerance=False)


def attainment_gate(suite: str, gate: str, samples: Sequence[Sample], slo: Mapping[str, float] | None,
                    threshold: float) -> GateResult:
    """Share of issued requests that met every SLO ≥ ``threshold`` (Wilson interval; failures count as misses)."""
    if not slo:
        return GateResult(suite, gate, None, threshold, ">=", len(samples), "error",
                          message="min_slo_attainment needs `slo: {ttft_ms, tpot_ms, e2el_ms}` next to it")
    good, issued = slo_attainment(samples, slo)
    failed = sum(not s.ok for s in samples)
    slo_text = ", ".join(f"{k} ≤ {v:g}" for k, v in slo.items())
    msg = f"{good}/{issued} met {slo_text}" + (f" ({failed} failed)" if failed else "")
    return compare(suite, gate, good / issued if issued else None, threshold, ">=", issued,
                   interval=wilson_interval(good, issued) if issued else None, message=msg,
                   zero_tolerance=threshold == 1)


def parse_gate_key(key: str) -> tuple[str, str, int] | None:
    """``("abs"|"ratio", metric, q)`` for a percentile gate key (``p99_ms``, ``ttft_p95_ms``, ``max_p99_ratio``,
    ``max_tpot_p50_ratio`` …); the metric defaults to ``e2el``. None for anything else."""
    for kind, pattern in (("abs", _ABS_KEY), ("ratio", _RATIO_KEY)):
        if (m := pattern.match(key)) and 0 < int(m[2]) < 100:
            return kind, m[1] or "e2el", int(m[2])
    return None


#: Bounds a suite may not pass without ``allow_large: true`` next to them (each request costs real time).
MAX_SAMPLES, MAX_CONCURRENCY = 5000, 256

_SLO = {"type": "object", "additionalProperties": False, "minProperties": 1,
        "description": "Per-request objectives; a request is good when it met every one and did not fail.",
        "properties": {k: number(f"{k.removesuffix('_ms').upper()} objective in ms.", minimum=0,
                                 exclusive_minimum=True) for k in ("ttft_ms", "tpot_ms", "e2el_ms")}}

PARAMS: dict[str, Any] = {
    "type": "object", "additionalProperties": False,
    "description": "The latency phase (`--latency` or the nightly profile): samples, concurrency, budgets, ratios.",
    "properties": {
        "samples": integer("Requests per endpoint (cases repeated round-robin). P99 needs ≥ 100.", minimum=1,
                           default=200),
        "concurrency": integer("Requests in flight per endpoint during the phase.", minimum=1, default=1),
        "seed": integer("Seed of the prompt order and of the bootstrap.", minimum=0, default=0),
        "bootstrap_resamples": integer("Bootstrap resamples for the intervals.", minimum=100, maximum=100_000,
                                       default=BOOTSTRAP_RESAMPLES),
        "min_slo_attainment": rate("Lowest share of issued requests that meet every `slo` objective."),
        "slo": _SLO,
        "allow_large": {"type": "boolean", "description": f"Allow samples > {MAX_SAMPLES} or concurrency > "
                                                          f"{MAX_CONCURRENCY} (a warning is printed)."},
    },
    "patternProperties": {
        _ABS_KEY.pattern: number("Budget in ms for that percentile of the candidate (metric defaults to e2el).",
                                 exclusive_minimum=True),
        _RATIO_KEY.pattern: number("Highest candidate/baseline ratio of that percentile, measured in the same run.",
                                   exclusive_minimum=True),
    },
    "if": {"not": {"properties": {"allow_large": {"const": True}}, "required": ["allow_large"]}},
    "then": {"properties": {"samples": {"maximum": MAX_SAMPLES}, "concurrency": {"maximum": MAX_CONCURRENCY}}},
}


def latency_gates(suite: str, baseline_responses: Sequence[Response], candidate_responses: Sequence[Response],
                  cfg: Mapping[str, Any] | None) -> list[GateResult]:
    """The gates configured under ``gates.latency``.

    Absolute budgets on the candidate: ``p99_ms`` (E2EL), ``ttft_p95_ms`` and any ``<metric>_p<q>_ms`` with metric
    ttft/tpot/e2el; ``min_slo_attainment`` with ``slo: {ttft_ms, tpot_ms, e2el_ms}``. Relative to the baseline in
    the same run: ``max_p99_ratio``, ``max_ttft_p95_ratio`` and any ``max_<metric>_p<q>_ratio`` — judged
    "insufficient" when the baseline's timings come from recordings (they were measured on another day).
    Intervals are seeded bootstraps (``seed``, ``bootstrap_resamples``); an unknown key is an error gate.
    """
    cfg = dict(cfg or {})
    seed, boots = int(cfg.get("seed", 0)), int(cfg.get("bootstrap_resamples", BOOTSTRAP_RESAMPLES))
    base, cand = latency_stats(baseline_responses), latency_stats(candidate_responses)
    cand_note, base_note = _failed_note(cand, "candidate"), _failed_note(base, "baseline")
    recorded = sum(r.source != "live" for r in baseline_responses)
    out: list[GateResult] = []
    for key, value in cfg.items():
        if key in _SETTINGS:
            continue
        gate, parsed = f"latency.{key}", parse_gate_key(key)
        if parsed is not None and parsed[0] == "abs":
            out.append(percentile_gate(suite, gate, cand.samples, parsed[1], parsed[2], float(value),
                                       seed=seed, n_resamples=boots, note=cand_note,
                                       baseline=None if recorded else base.samples))
        elif parsed is not None:
            if recorded:
                out.append(GateResult(suite, gate, None, float(value), "<=", 0, "insufficient", message=(
                    f"{recorded} baseline response(s) are recordings: their timings were not measured in this run, "
                    "so a latency ratio would compare different days and machines")))
                continue
            out.append(ratio_gate(suite, gate, base.samples, cand.samples, parsed[1], parsed[2], float(value),
                                  seed=seed, n_resamples=boots, note=_join(base_note, cand_note)))
        else:
            out.append(GateResult(suite, gate, None, None, "<=", 0, "error", message=(
                f"unknown latency gate {key!r}; use p99_ms, ttft_p95_ms, <ttft|tpot|e2el>_p<q>_ms, "
                "max_p99_ratio, max_<ttft|tpot|e2el>_p<q>_ratio or min_slo_attainment (with slo)")))
    if "min_slo_attainment" in cfg:
        out.append(attainment_gate(suite, "latency.slo_attainment", cand.samples, cfg.get("slo"),
                                   float(cfg["min_slo_attainment"])))
    return out


def latency_schedule(cases: Sequence[Case], samples: int, seed: int) -> list[Case]:
    """``samples`` requests: a seeded permutation of the cases, repeated round-robin.

    Both endpoints get the same list, so each percentile mixes the same prompts in the same order. With
    :func:`conformance.replay.replay` use ``cases=schedule[:len(cases)]`` and
    ``repeats=ceil(samples / len(cases))`` — replay iterates repeats outermost, which is exactly this order, and
    the repeat index keeps each repetition a distinct entry of the run cache.
    """
    if not cases or samples <= 0:
        return []
    order = np.random.default_rng(seed).permutation(len(cases))
    return [cases[int(order[i % len(cases)])] for i in range(samples)]


__all__ = [
    "Distribution", "LatencyStats", "Sample", "attainment_gate", "bootstrap_percentile_ci", "bootstrap_ratio_ci",
    "itl_gaps", "latency_gates", "latency_schedule", "latency_stats", "metric_values", "min_samples",
    "parse_gate_key", "percentile", "percentile_gate", "ratio_gate", "sample_from_response", "slo_attainment",
    "slo_met", "stats_from_samples", "summarize", "tokens_source", "tpot_ms",
]
