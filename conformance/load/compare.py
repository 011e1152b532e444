"""Load gates: the candidate's load run against budgets and against the baseline's run with the same schedule.

Why relative gates: absolute numbers from a load generator depend on the machine it runs on; the baseline, run
with the same seeded schedule and prompt order from the same machine, is the fair yardstick. Gates per stage
(``load.stage2.error_rate`` …), so a candidate that holds at 4 users but collapses at 16 says so.

``gates`` keys (``load.gates`` in suite.yaml):

- ``max_error_rate``: candidate failures / requests per stage (Wilson interval);
- ``p99_ms``, ``ttft_p95_ms``, ``<ttft|tpot|e2el>_p<q>_ms``: candidate percentile per stage (bootstrap interval,
  "insufficient" below 1/(1−q) samples);
- ``max_p99_ratio``, ``max_<metric>_p<q>_ratio``: candidate/baseline percentile per stage;
- ``min_throughput_ratio``: candidate/baseline output tokens per second per stage;
- ``min_slo_attainment`` (needs ``slo``): share of issued requests meeting every SLO, per stage;
- ``min_capacity_ratio`` (needs ``slo``): candidate/baseline capacity under SLO — the best goodput (requests per
  second that met the SLO) over the stages;
- ``slo: {ttft_ms, tpot_ms, e2el_ms}``, ``seed``, ``bootstrap_resamples``: settings, not gates.

Built in, always on, whatever ``gates`` says: ``load.stageN.answered`` fails a candidate stage in which not one
request succeeded, and ``load.stageN.baseline_answered`` is an error when the baseline's stage had none (its
relative gates then have nothing to compare with). Without them a suite with no load gates exited 0 with every
request failed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from conformance.checks.latency import (
    BOOTSTRAP_RESAMPLES,
    attainment_gate,
    parse_gate_key,
    percentile_gate,
    ratio_gate,
    slo_attainment,
)
from conformance.checks.stats import bootstrap_mean_ratio_ci, wilson_interval
from conformance.gates import GateResult, compare
from conformance.load.stats import LoadResult, StageStats

_SETTINGS = frozenset({"slo", "seed", "bootstrap_resamples"})
_ABSOLUTE = frozenset({"max_error_rate", "min_slo_attainment"})
_RELATIVE = frozenset({"min_throughput_ratio"})


def _error_rate(suite: str, gate: str, stage: StageStats, threshold: float,
                base: StageStats | None = None) -> GateResult:
    """The candidate's failed share of the stage's requests, next to the baseline's under the same schedule; the
    failures by class travel as ``faults`` (an outage is infrastructure, not a regression)."""
    n, failed = stage.requests, stage.requests - stage.ok
    detail = ", ".join(f"{k}×{v}" for k, v in stage.failures.items())
    msg = f"{failed}/{n} failed: {detail}" if failed else ""
    faults = {"candidate": dict(stage.failures)}
    b_rate = b_int = None
    if base is not None:
        b_failed = base.requests - base.ok
        faults["baseline"] = dict(base.failures)
        if base.requests:
            b_rate, b_int = b_failed / base.requests, wilson_interval(b_failed, base.requests)
            msg += f"{'; ' if msg else ''}baseline {b_failed}/{base.requests} failed"
    return compare(suite, gate, stage.error_rate, threshold, "<=", n,
                   interval=wilson_interval(failed, n) if n else None, message=msg, baseline=b_rate,
                   baseline_interval=b_int, faults=faults)


def _answered(suite: str, gate: str, stage: StageStats, *, baseline: bool = False) -> GateResult:
    """At least one request of the stage succeeded (see the module doc); the baseline's failing is an error."""
    detail = ", ".join(f"{k}×{v}" for k, v in stage.failures.items())
    if stage.ok:
        msg = ""
    elif stage.requests:
        msg = f"0/{stage.requests} answered: {detail}" if detail else f"0/{stage.requests} answered"
    else:
        msg = "no request was sent in this stage"
    if baseline and not stage.ok:
        msg += "; the baseline's relative gates have nothing to compare with"
    faults = {"baseline" if baseline else "candidate": dict(stage.failures)} if stage.failures else {}
    g = compare(suite, gate, float(stage.ok), 1.0, ">=", stage.requests, min_n=0, message=msg, faults=faults)
    return dataclasses.replace(g, verdict="error") if baseline and g.verdict == "regression" else g


#: Seconds a stage needs for a throughput interval (each second's output tokens is one sample).
MIN_WINDOWS = 5


def _throughput(suite: str, gate: str, base: StageStats, cand: StageStats, threshold: float, *, seed: int = 0,
                n_resamples: int = BOOTSTRAP_RESAMPLES) -> GateResult:
    """Candidate/baseline output tokens per second, with a bootstrap interval over the stage's seconds: a busy
    load machine makes some seconds slow, and an identical candidate must not be judged on one noisy figure."""
    stat = cand.output_tok_s / base.output_tok_s if base.output_tok_s > 0 else None
    msg = (f"output {cand.output_tok_s:.1f} vs {base.output_tok_s:.1f} tok/s "
           f"({cand.requests} vs {base.requests} requests; tokens from {cand.tokens_source}/{base.tokens_source})")
    if stat is None:
        msg = f"the baseline produced no output tokens in this stage; {msg}"
    windows = min(len(cand.tok_windows), len(base.tok_windows))
    if windows < MIN_WINDOWS:
        return compare(suite, gate, stat, threshold, ">=", windows, min_n=MIN_WINDOWS,
                       message=f"{msg}; a {windows}-second stage is too short for a throughput interval "
                               f"(need ≥ {MIN_WINDOWS} s)")
    ci = bootstrap_mean_ratio_ci(cand.tok_windows, base.tok_windows, seed=seed, n_resamples=n_resamples)
    return compare(suite, gate, stat, threshold, ">=", windows, interval=ci, message=msg, zero_tolerance=False)


def _capacity(suite: str, baseline: list[StageStats], candidate: list[StageStats], slo: Mapping[str, float],
              threshold: float) -> GateResult:
    def capacity(stages: list[StageStats]) -> float:
        return max((slo_attainment(s.samples, slo)[0] / s.duration_s for s in stages if s.duration_s > 0),
                   default=0.0)

    b, c = capacity(baseline), capacity(candidate)
    n = sum(s.requests for s in candidate)
    msg = f"best goodput under SLO: candidate {c:.2f} vs baseline {b:.2f} req/s"
    return compare(suite, "load.capacity_ratio", c / b if b > 0 else None, threshold, ">=", n, message=msg,
                   zero_tolerance=False)


def compare_load(baseline: LoadResult | None, candidate: LoadResult, gates_cfg: Mapping[str, Any] | None, *,
                 suite: str = "load", slo: Mapping[str, float] | None = None) -> list[GateResult]:
    """Gate a candidate :class:`~conformance.load.stats.LoadResult` against the baseline's (see module doc).

    Stages are paired by position; runs with different stage lists cannot be compared and give one error gate.
    ``baseline=None`` (the old endpoint is retired, only recordings remain) judges the absolute gates and
    reports every relative one as "insufficient". A run stopped by its deadline is still judged on what it
    measured, with the cut noted in every message.
    """
    cfg = dict(gates_cfg or {})
    slo = slo or cfg.get("slo")
    seed, boots = int(cfg.get("seed", 0)), int(cfg.get("bootstrap_resamples", BOOTSTRAP_RESAMPLES))
    cs = list(candidate.stages)
    bs = list(baseline.stages) if baseline is not None else [None] * len(cs)
    if len(bs) != len(cs):
        return [GateResult(suite, "load.stages", None, None, "==", 0, "error",
                           message=f"baseline ran {len(bs)} stages, candidate {len(cs)}: not comparable")]
    cut = "; ".join(f"{r.label} stopped at its deadline" for r in (baseline, candidate) if r and r.killed)
    out: list[GateResult] = []
    for key, value in cfg.items():
        if key in _SETTINGS or key == "min_capacity_ratio":
            continue
        parsed = parse_gate_key(key)
        if parsed is None and key not in _ABSOLUTE and key not in _RELATIVE:
            out.append(GateResult(suite, f"load.{key}", None, None, "<=", 0, "error", message=(
                f"unknown load gate {key!r}; see conformance.load.compare for the keys")))
            continue
        for b, c in zip(bs, cs, strict=True):
            name = f"load.{c.name}.{key.removeprefix('max_').removeprefix('min_')}"
            relative = key in _RELATIVE or (parsed is not None and parsed[0] == "ratio")
            if relative and b is None:
                g = _no_baseline(suite, name, key, float(value))
            elif key == "max_error_rate":
                g = _error_rate(suite, name, c, float(value), b)
            elif key == "min_throughput_ratio":
                assert b is not None
                g = _throughput(suite, name, b, c, float(value), seed=seed, n_resamples=boots)
            elif key == "min_slo_attainment":
                g = attainment_gate(suite, name, c.samples, slo, float(value))
            elif parsed is not None and parsed[0] == "abs":
                g = percentile_gate(suite, name, c.samples, parsed[1], parsed[2], float(value), seed=seed,
                                    n_resamples=boots, baseline=b.samples if b is not None else None)
            else:
                assert parsed is not None and b is not None
                g = ratio_gate(suite, name, b.samples, c.samples, parsed[1], parsed[2], float(value), seed=seed,
                               n_resamples=boots)
            out.append(_noted(g, cut))
    if "min_capacity_ratio" in cfg:
        threshold = float(cfg["min_capacity_ratio"])
        if not slo:
            out.append(GateResult(suite, "load.capacity_ratio", None, threshold, ">=", 0, "error",
                                  message="min_capacity_ratio needs `slo: {ttft_ms, tpot_ms, e2el_ms}`"))
        elif baseline is None:
            out.append(_no_baseline(suite, "load.capacity_ratio", "min_capacity_ratio", threshold))
        else:
            out.append(_noted(_capacity(suite, list(baseline.stages), cs, slo, threshold), cut))
    for b, c in zip(bs, cs, strict=True):  # built in: see the module doc
        out.append(_noted(_answered(suite, f"load.{c.name}.answered", c), cut))
        if b is not None:
            out.append(_noted(_answered(suite, f"load.{b.name}.baseline_answered", b, baseline=True), cut))
    return out


def _no_baseline(suite: str, gate: str, key: str, threshold: float) -> GateResult:
    return GateResult(suite, gate, None, threshold, ">=" if key.startswith("min_") else "<=", 0, "insufficient",
                      message="no live baseline was load-tested (recorded baseline): nothing to compare with")


def _noted(g: GateResult, note: str) -> GateResult:
    if not note:
        return g
    return dataclasses.replace(g, message=f"{g.message}; {note}" if g.message else note)
