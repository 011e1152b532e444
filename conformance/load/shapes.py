"""Locust-side load shapes: stages of users (closed loop) and seeded arrivals (open loop).

Imported only by the locustfile, inside the locust process (it imports locust and gevent, which monkey-patch
the interpreter) — the pytest process never imports this module.

- **Closed loop** (``load.stages: [{users, spawn_rate, duration_s}]``): :class:`StagesShape` asks Locust for each
  stage's user count in turn; every user sends its next request as soon as the previous one finished.
- **Open loop** (``open_loop: {arrival: poisson|gamma}`` plus ``rate_rps`` per stage): requests arrive on a
  precomputed seeded schedule regardless of how fast the server answers. The stage's ``users`` are a pool that
  serves the arrivals (:class:`ArrivalClock`); an arrival that finds every user busy is sent late, and the lag is
  recorded as the request's client-side ``queue_ms`` — never hidden inside its latency.

Each tick (about once a second) the shape also scrapes the endpoint's Prometheus ``metrics_url`` when one is
configured, into ``metrics.jsonl`` next to the raw records.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import ClassVar

import gevent
from locust import LoadTestShape

from conformance.load.plan import LoadPlan, arrival_schedule, stage_at
from conformance.load.vllm_metrics import fetch


class StagesShape(LoadTestShape):
    """One stage after another; ``None`` after the last one stops the run (in-flight requests get
    ``--stop-timeout`` to finish). Made concrete for one plan by :func:`shape_for`."""

    abstract = True
    plan: ClassVar[LoadPlan]

    def __init__(self) -> None:
        super().__init__()
        self._last_scrape = -1e9
        self._scrapes: list[gevent.Greenlet] = []

    def tick(self) -> tuple[int, float] | None:
        t = self.get_run_time()
        i = stage_at(self.plan.stages, t)
        self._maybe_scrape(t, i)
        if i is None:
            return None
        stage = self.plan.stages[i]
        return stage.users, stage.spawn_rate

    def _maybe_scrape(self, t: float, stage: int | None) -> None:
        url = self.plan.metrics_url
        if not url or t - self._last_scrape < 0.9:
            return
        self._last_scrape = t
        self._scrapes = [g for g in self._scrapes if not g.dead]
        if len(self._scrapes) < 2:  # a slow metrics endpoint must not pile up scrapes
            self._scrapes.append(gevent.spawn(_scrape, url, Path(self.plan.raw_dir) / "metrics.jsonl", t, stage))


def _scrape(url: str, path: Path, t: float, stage: int | None) -> None:
    try:
        text, error = fetch(url, timeout_s=2.0), None
    except OSError as exc:  # URLError, timeouts, refused: a missing scrape is data, not a failed run
        text, error = None, f"{type(exc).__name__}: {exc}"[:200]
    line = json.dumps({"t": round(t, 3), "wall": time.time(), "stage": stage, "text": text, "error": error})
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(line + "\n")


def shape_for(plan: LoadPlan) -> type[StagesShape]:
    """The concrete shape class for ``plan`` (bind it to exactly one name in the locustfile: Locust runs every
    non-abstract shape class it finds there)."""
    return type("PlanShape", (StagesShape,), {"plan": plan, "abstract": False})


class ArrivalClock:
    """Hands out open-loop arrivals ``(index, due offset s, stage)`` to whichever user is free, in order.

    With several worker processes each one serves the arrivals ``index % workers == worker_index``, so the
    schedule is split, not repeated. Cooperative (gevent): no lock is needed within a process.
    """

    def __init__(self, plan: LoadPlan, worker_index: int = 0) -> None:
        assert plan.open_loop is not None
        schedule = arrival_schedule(plan.stages, plan.open_loop, plan.seed)
        workers = max(1, plan.workers)
        self.arrivals = [(i, t, s) for i, (t, s) in enumerate(schedule) if i % workers == worker_index % workers]
        self._next = 0

    def take(self) -> tuple[int, float, int] | None:
        if self._next >= len(self.arrivals):
            return None
        self._next += 1
        return self.arrivals[self._next - 1]
