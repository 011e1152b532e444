"""What the server says about itself under load: vLLM's Prometheus ``/metrics``, scraped around each stage.

Why: client latencies say *that* the candidate is slower; the server's gauges say *why* — requests waiting in its
queue, a full KV cache, preemptions — and its TTFT histogram separates time spent in the server from time on the
network or in our load generator. Everything here is pure parsing and arithmetic except :func:`fetch` (urllib),
so it runs in the locust process (which scrapes) and in the pytest process (which summarises) alike.

Names followed: gauges ``vllm:num_requests_running``, ``vllm:num_requests_waiting``, ``vllm:kv_cache_usage_perc``
(older releases: ``vllm:gpu_cache_usage_perc`` — whichever exists is used and named), the counter
``vllm:num_preemptions`` (exposed as ``…_total``) and the histogram ``vllm:time_to_first_token_seconds``. Series
with several label sets (one per model or engine) are summed.
"""

from __future__ import annotations

import json
import math
import re
import urllib.request
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
_LINE = re.compile(rf"^({_NAME})\s*(?:\{{(.*)\}})?\s+(\S+)(?:\s+-?\d+)?\s*$")
_LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*(?:,|$)')
_UNESCAPE = {"\\\\": "\\", '\\"': '"', "\\n": "\n"}
KV_METRICS = ("vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc")
TTFT = "vllm:time_to_first_token_seconds"


@dataclass(frozen=True)
class MetricSample:
    """One exposition line: ``name{labels} value``."""

    name: str
    labels: tuple[tuple[str, str], ...]
    value: float

    def label(self, key: str) -> str | None:
        return dict(self.labels).get(key)


def parse_prometheus(text: str) -> list[MetricSample]:
    """Samples of a Prometheus text exposition (``# HELP``/``# TYPE`` and malformed lines are skipped)."""
    out = []
    for raw in text.split("\n"):  # not splitlines(): a label value may hold \x1e, \x85, \u2028 …
        line = raw.strip(" \t\r")
        if not line or line.startswith("#"):
            continue
        m = _LINE.match(line)
        if m is None:
            continue
        labels = _labels(m[2] or "")
        try:
            value = float(m[3])
        except ValueError:
            continue
        if labels is not None:
            out.append(MetricSample(m[1], labels, value))
    return out


def _labels(text: str) -> tuple[tuple[str, str], ...] | None:
    pairs: list[tuple[str, str]] = []
    pos = 0
    while pos < len(text):
        m = _LABEL.match(text, pos)
        if m is None:
            return None if text[pos:].strip() else tuple(pairs)
        value = re.sub(r"\\[\\\"n]", lambda e: _UNESCAPE[e[0]], m[2])
        pairs.append((m[1], value))
        pos = m.end()
    return tuple(pairs)


def fetch(url: str, timeout_s: float = 2.0) -> str:
    """GET the metrics text (raises OSError subclasses on failure; the caller records the miss)."""
    req = urllib.request.Request(url, headers={"Accept": "text/plain"})
    with urllib.request.urlopen(req, timeout=timeout_s) as resp:  # the URL comes from endpoints.yaml
        return str(resp.read().decode("utf-8", errors="replace"))


@dataclass(frozen=True)
class VllmSnapshot:
    """The metrics we use from one scrape; None where the server does not expose them."""

    running: float | None = None
    waiting: float | None = None
    kv_cache_usage: float | None = None
    kv_metric: str | None = None
    preemptions: float | None = None
    ttft_buckets: tuple[tuple[float, float], ...] = ()  # (upper bound s, cumulative count), +Inf last
    ttft_count: float | None = None


def _total(samples: Iterable[MetricSample], name: str) -> float | None:
    values = [s.value for s in samples if s.name == name]
    return sum(values) if values else None


def snapshot(samples: Sequence[MetricSample]) -> VllmSnapshot:
    kv_metric = next((k for k in KV_METRICS if any(s.name == k for s in samples)), None)
    buckets: dict[float, float] = {}
    for s in samples:
        if s.name == TTFT + "_bucket" and (le := s.label("le")) is not None:
            bound = float(le)
            buckets[bound] = buckets.get(bound, 0.0) + s.value
    preempt = _total(samples, "vllm:num_preemptions_total")
    return VllmSnapshot(
        running=_total(samples, "vllm:num_requests_running"), waiting=_total(samples, "vllm:num_requests_waiting"),
        kv_cache_usage=_total(samples, kv_metric) if kv_metric else None, kv_metric=kv_metric,
        preemptions=preempt if preempt is not None else _total(samples, "vllm:num_preemptions"),
        ttft_buckets=tuple(sorted(buckets.items())), ttft_count=_total(samples, TTFT + "_count"),
    )


def histogram_quantile(q: float, buckets: Sequence[tuple[float, float]]) -> float | None:
    """Prometheus' ``histogram_quantile``: linear inside the bucket holding rank ``q·total``; a rank in the +Inf
    bucket answers the highest finite bound. ``q`` in [0, 1]; buckets are cumulative and sorted."""
    if not buckets or buckets[-1][1] <= 0:
        return None
    rank = q * buckets[-1][1]
    prev_bound, prev_count = 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            if math.isinf(bound):
                return prev_bound
            if count == prev_count:
                return bound
            return prev_bound + (bound - prev_bound) * (rank - prev_count) / (count - prev_count)
        prev_bound, prev_count = bound, count
    return prev_bound


def _diff_buckets(before: VllmSnapshot, after: VllmSnapshot) -> tuple[tuple[float, float], ...]:
    old = dict(before.ttft_buckets)
    diff = [(b, c - old.get(b, 0.0)) for b, c in after.ttft_buckets]
    if any(c < 0 for _, c in diff):  # the server restarted: its counters started again from zero
        return after.ttft_buckets
    return tuple(diff)


@dataclass(frozen=True)
class ServerStageMetrics:
    """Server-side view of one stage: gauges over its scrapes, counters and the TTFT histogram as differences."""

    scrapes: int
    failed_scrapes: int = 0
    running_max: float | None = None
    waiting_mean: float | None = None
    waiting_max: float | None = None
    kv_cache_usage_max: float | None = None
    kv_metric: str | None = None
    preemptions: float | None = None
    ttft_n: float | None = None
    ttft_p50_ms: float | None = None
    ttft_p95_ms: float | None = None
    ttft_p99_ms: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def stage_server_metrics(before: VllmSnapshot | None, during: Sequence[VllmSnapshot],
                         after: VllmSnapshot | None = None, failed_scrapes: int = 0) -> ServerStageMetrics:
    """Summarise a stage: gauges over the scrapes ``during`` it; counters and the TTFT histogram as the difference
    between the last scrape ``before`` it and the first ``after`` it (falling back to its own first/last)."""
    if not during:
        return ServerStageMetrics(0, failed_scrapes)
    before = before or during[0]
    after = after or during[-1]

    def series(attr: str) -> list[float]:
        return [v for s in during if (v := getattr(s, attr)) is not None]

    def top(attr: str) -> float | None:
        return max(vals) if (vals := series(attr)) else None

    waiting = series("waiting")
    preempt = None
    if after.preemptions is not None:
        start = before.preemptions or 0.0
        preempt = after.preemptions - start if after.preemptions >= start else after.preemptions
    buckets = _diff_buckets(before, after)
    n = buckets[-1][1] if buckets else None

    def ms(q: float) -> float | None:
        v = histogram_quantile(q, buckets) if n else None
        return None if v is None else v * 1000

    return ServerStageMetrics(
        scrapes=len(during), failed_scrapes=failed_scrapes, running_max=top("running"),
        waiting_mean=sum(waiting) / len(waiting) if waiting else None, waiting_max=top("waiting"),
        kv_cache_usage_max=top("kv_cache_usage"), kv_metric=after.kv_metric, preemptions=preempt,
        ttft_n=n, ttft_p50_ms=ms(0.5), ttft_p95_ms=ms(0.95), ttft_p99_ms=ms(0.99),
    )


def metrics_by_stage(path: Path, n_stages: int) -> list[ServerStageMetrics | None]:
    """Read the locust process' ``metrics.jsonl`` and summarise each stage; None per stage when never scraped."""
    if not path.is_file():
        return [None] * n_stages
    scrapes: list[tuple[int | None, VllmSnapshot | None]] = []
    with open(path, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            text = rec.get("text")
            scrapes.append((rec.get("stage"), snapshot(parse_prometheus(text)) if text else None))
    out: list[ServerStageMetrics | None] = []
    for i in range(n_stages):
        mine = [k for k, (st, _) in enumerate(scrapes) if st == i]
        if not mine:
            out.append(None)
            continue
        before = next((s for st, s in reversed(scrapes[: mine[0]]) if s is not None), None)
        after = next((s for st, s in scrapes[mine[-1] + 1:] if s is not None), None)
        during = [s for k in mine if (s := scrapes[k][1]) is not None]
        out.append(stage_server_metrics(before, during, after, len(mine) - len(during)))
    return out
