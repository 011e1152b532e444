"""Per-stage statistics computed by us from the raw JSONL records — never from Locust's own numbers.

Why not Locust's CSV: its response time for a streamed request ends at the headers, its percentiles are bucketed
approximations, and it has no notion of output tokens or SLOs. Each record here is one request (one line written
by the locustfile the moment it ended), so everything — failures by class, throughput, TTFT/TPOT/E2EL percentiles
with their ``n``, SLO attainment — is reproducible from the files left in the run folder.

A request belongs to the stage in which it *started*. ``finish_reason=length`` (cut by ``max_tokens``) is
counted but is not an error: with ``ignore_eos`` every answer ends that way by design.
"""

from __future__ import annotations

import itertools
import json
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from conformance.checks.latency import (
    Distribution,
    Sample,
    metric_values,
    slo_attainment,
    summarize,
    tokens_source,
    tpot_ms,
)
from conformance.load.plan import Stage, stage_starts
from conformance.load.vllm_metrics import ServerStageMetrics
from conformance.stream import output_tokens


@dataclass(frozen=True)
class StageStats:
    """One stage of one endpoint's load run."""

    index: int
    users: int
    rate_rps: float | None
    duration_s: float
    requests: int
    ok: int
    failures: dict[str, int]
    finish_length: int
    error_rate: float | None
    rps: float
    output_tok_s: float
    tokens_source: str
    ttft: Distribution
    tpot: Distribution
    e2el: Distribution
    queue: Distribution
    slo_good: int | None = None
    slo_attainment: float | None = None
    goodput_rps: float | None = None
    server: ServerStageMetrics | None = None
    samples: tuple[Sample, ...] = field(default=(), repr=False, compare=False)
    #: output tokens of the answers that completed in each second of the stage: throughput's own sample, from
    #: which its interval comes (a stage on a busy machine has noisy seconds, and says so)
    tok_windows: tuple[float, ...] = field(default=(), repr=False, compare=False)

    @property
    def name(self) -> str:
        return f"stage{self.index + 1}"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("samples")
        data.pop("tok_windows")
        return data

    def line(self) -> str:
        """``stage1 4 users 30s: 212 req (3 failed: rate_limited×3) 7.1 rps 850 tok/s TTFT p95 210 ms …``."""
        load = f"{self.rate_rps:g} rps offered" if self.rate_rps else f"{self.users} users"
        failed = self.requests - self.ok
        detail = ", ".join(f"{k}×{v}" for k, v in self.failures.items())
        fails = f" ({failed} failed: {detail})" if failed else ""
        parts = [f"{self.name} {load} {self.duration_s:g}s: {self.requests} req{fails}", f"{self.rps:.2f} rps",
                 f"{self.output_tok_s:.0f} tok/s ({self.tokens_source})"]
        for label, dist in (("TTFT", self.ttft), ("TPOT", self.tpot), ("E2EL", self.e2el)):
            if dist.n:
                parts.append(f"{label} p50 {dist.p50:.0f} p95 {dist.p95:.0f} p99 {dist.p99:.0f} ms (n={dist.n})")
        if self.slo_attainment is not None:
            parts.append(f"SLO {self.slo_attainment:.1%}")
        return " · ".join(parts)


def read_records(raw_dir: Path) -> tuple[list[dict[str, Any]], int]:
    """All records of every locust process (ordered by start time) and the number of unreadable lines — a
    process killed mid-write leaves its last line cut.

    The locustfile writes each record raw (times as whole µs, nothing derived: it is the CPU-bound side); the
    records returned here carry seconds, ms and the derived timings (``ttft_ms``, ``e2el_ms``, ``tpot_ms``,
    ``itl_ms``, ``n_out`` …, see :func:`expand_record`) — what every consumer reads.
    """
    records, bad = [], 0
    for path in sorted(raw_dir.glob("records-*.jsonl")):
        with open(path, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                try:
                    rec = json.loads(line)
                except ValueError:
                    bad += 1
                    continue
                if isinstance(rec, dict) and isinstance(rec.get("stage"), int):
                    records.append(expand_record(rec))
                else:
                    bad += 1
    records.sort(key=lambda r: (r.get("t_start") or 0.0, r.get("seq") or 0))
    return records, bad


#: A record's keys, in order, as :func:`expand_record` returns it — what every consumer of load records reads.
RECORD_KEYS = ("seq", "case_id", "stage", "worker", "t_start", "t_mono", "t_offset_s", "queue_ms", "elapsed_ms",
               "status", "fault", "error", "ttfc_ms", "ttft_ms", "e2el_ms", "tpot_ms", "n_out", "tokens_source",
               "n_token_events", "n_events", "itl_ms", "finish_reason", "usage", "text", "reasoning", "tool_calls")
#: Raw µs fields (the locustfile's and ``StreamTrace.record``'s) → the record's, and their scale.
_FROM_US = {"t_start_us": ("t_start", 1e6), "t_mono_us": ("t_mono", 1e6), "t_offset_us": ("t_offset_s", 1e6),
            "queue_us": ("queue_ms", 1e3), "elapsed_us": ("elapsed_ms", 1e3), "ttfc_us": ("ttfc_ms", 1e3)}


def expand_record(raw: dict[str, Any]) -> dict[str, Any]:
    """A raw record as the locustfile writes it → the record every consumer reads (keys :data:`RECORD_KEYS`).

    Why the split: the load process is CPU-bound against a fast endpoint, so it writes times as whole µs
    (``*_us``; ``tok_us`` the token-bearing events) and derives nothing. Here they become seconds and ms, and
    ``ttft_ms`` (first token-bearing event), ``e2el_ms`` (last), ``tpot_ms``, ``itl_ms``, ``n_out`` /
    ``tokens_source`` and ``n_token_events``. A record without ``tok_us`` (written before this layout) is
    returned as it is.
    """
    tok = raw.get("tok_us")
    if not isinstance(tok, list):
        return raw
    out = dict.fromkeys(RECORD_KEYS)
    for key, value in raw.items():
        if key in _FROM_US:
            name, scale = _FROM_US[key]
            out[name] = value / scale if isinstance(value, int) else None
        elif key != "tok_us":
            out[key] = value
    ttft, e2el = (tok[0] / 1000, tok[-1] / 1000) if tok else (None, None)
    n_out, source = output_tokens(raw.get("usage"), len(tok))
    tpot = tpot_ms(ttft, e2el, n_out)
    out.update(ttft_ms=ttft, e2el_ms=e2el, tpot_ms=None if tpot is None else round(tpot, 3), n_out=n_out,
               tokens_source=source, n_token_events=len(tok),
               itl_ms=[(b - a) / 1000 for a, b in itertools.pairwise(tok)])
    return out


def record_sample(rec: Mapping[str, Any]) -> Sample:
    return Sample(
        case_id=str(rec.get("case_id")), ok=rec.get("fault") is None, fault=rec.get("fault"),
        ttfc_ms=rec.get("ttfc_ms"), ttft_ms=rec.get("ttft_ms"), e2el_ms=rec.get("e2el_ms"), n_out=rec.get("n_out"),
        tokens_source=str(rec.get("tokens_source") or "none"), queue_ms=float(rec.get("queue_ms") or 0.0),
        finish_reason=rec.get("finish_reason"),
    )


def token_windows(records: Sequence[Mapping[str, Any]], start_s: float, duration_s: float) -> tuple[float, ...]:
    """Output tokens of the answered records, by the second of the stage in which each completed (an answer
    finishing after the stage's end counts in its last second)."""
    n = max(1, math.ceil(duration_s - 1e-9))
    out = [0.0] * n
    for r in records:
        if r.get("fault") is not None or r.get("t_offset_s") is None:
            continue
        done = float(r["t_offset_s"]) + float(r.get("e2el_ms") or r.get("elapsed_ms") or 0) / 1000 - start_s
        out[min(n - 1, max(0, int(done)))] += int(r.get("n_out") or 0)
    return tuple(out)


def stage_stats(index: int, stage: Stage, records: Sequence[Mapping[str, Any]], *, duration_s: float | None = None,
                slo: Mapping[str, float] | None = None, server: ServerStageMetrics | None = None,
                start_s: float = 0.0) -> StageStats:
    """Statistics of the records that started in stage ``index``; rates are per second of ``duration_s``
    (the configured stage length unless the run was cut short); ``start_s``: when the stage began in the run."""
    mine = [r for r in records if r.get("stage") == index]
    samples = [record_sample(r) for r in mine]
    duration = max(1e-3, duration_s if duration_s is not None else stage.duration_s)
    ok = [s for s in samples if s.ok]
    good: int | None = None
    if slo:
        good, _ = slo_attainment(samples, slo)
    n = len(samples)
    return StageStats(
        index=index, users=stage.users, rate_rps=stage.rate_rps, duration_s=round(duration, 3), requests=n,
        ok=len(ok), failures=dict(sorted(Counter(str(s.fault) for s in samples if not s.ok).items())),
        finish_length=sum(s.finish_reason == "length" for s in ok),
        error_rate=(n - len(ok)) / n if n else None, rps=n / duration,
        output_tok_s=sum(s.n_out or 0 for s in ok) / duration, tokens_source=tokens_source(samples),
        ttft=summarize(metric_values(samples, "ttft")), tpot=summarize(metric_values(samples, "tpot")),
        e2el=summarize(metric_values(samples, "e2el")), queue=summarize(metric_values(samples, "queue")),
        slo_good=good, slo_attainment=(good / n if n and good is not None else None),
        goodput_rps=(good / duration if good is not None else None), server=server, samples=tuple(samples),
        tok_windows=token_windows(mine, start_s, duration),
    )


def observed_durations(stages: Sequence[Stage], records: Sequence[Mapping[str, Any]], cut_short: bool) -> list[float]:
    """Each stage's length; when the run was cut short (deadline), what was actually run of it."""
    if not cut_short:
        return [s.duration_s for s in stages]
    end = max((float(r.get("t_offset_s") or 0) + float(r.get("elapsed_ms") or 0) / 1000 for r in records),
              default=0.0)
    return [min(s.duration_s, max(0.0, end - start)) for s, start in zip(stages, stage_starts(stages), strict=True)]


def all_stage_stats(stages: Sequence[Stage], records: Sequence[Mapping[str, Any]], *, cut_short: bool = False,
                    slo: Mapping[str, float] | None = None,
                    server: Sequence[ServerStageMetrics | None] | None = None) -> tuple[StageStats, ...]:
    durations = observed_durations(stages, records, cut_short)
    server = list(server or [None] * len(stages))
    starts = stage_starts(stages)
    return tuple(stage_stats(i, s, records, duration_s=durations[i], slo=slo, server=server[i], start_s=starts[i])
                 for i, s in enumerate(stages))


@dataclass(frozen=True)
class LoadResult:
    """One endpoint's load run: per-stage statistics plus where everything it left behind lives.

    ``killed`` is ``"SIGTERM"``/``"SIGKILL"`` when the run hit its overall deadline and was stopped by signal;
    ``returncode`` is Locust's (it exits 1 when any request failed — failures are judged by the gates instead).
    """

    label: str
    out_dir: Path
    stages: tuple[StageStats, ...]
    seed: int
    open_loop: bool
    returncode: int | None
    killed: str | None
    elapsed_s: float
    records: int
    bad_lines: int = 0
    pid: int | None = None
    log_tail: str = ""

    @property
    def raw_dir(self) -> Path:
        return self.out_dir / "raw"

    @property
    def html(self) -> Path:
        return self.out_dir / "locust.html"

    def lines(self) -> list[str]:
        """Terminal lines: a header, then one per stage."""
        cut = f", stopped by {self.killed} at the deadline" if self.killed else ""
        head = f"load {self.label}: {self.records} requests in {self.elapsed_s:.1f}s (seed {self.seed}{cut})"
        return [head, *(f"  {s.line()}" for s in self.stages)]

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label, "out_dir": str(self.out_dir), "seed": self.seed, "open_loop": self.open_loop,
            "returncode": self.returncode, "killed": self.killed, "elapsed_s": self.elapsed_s,
            "records": self.records, "bad_lines": self.bad_lines, "pid": self.pid,
            "stages": [s.to_dict() for s in self.stages],
        }
