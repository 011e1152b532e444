"""The load plan: everything the locust process needs, as one JSON file the runner writes and the locustfile reads.

Why a file instead of importing our pytest plugin or settings: the locust process is gevent-monkey-patched and
must stay independent of the pytest process (and of its import side effects). The plan holds *no secret*: the
Authorization header is built inside the locust process from the environment variable named by ``api_key_env``.

Also here, pure and shared by both sides: the stage timeline (:func:`stage_at`), the seeded prompt order and the
seeded open-loop arrival schedule — computed identically for the baseline and the candidate run, so "side by side"
means the same prompts in the same order at the same offsets.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np

from conformance.errors import ConfigError

#: Environment variable through which the runner tells the locustfile where its plan is.
PLAN_ENV = "CONFORMANCE_LOAD_PLAN"
ARRIVALS = ("poisson", "gamma")


class PlanError(ConfigError):
    """A load configuration that cannot run (no target, a stage without a duration …)."""


@dataclass(frozen=True)
class Stage:
    """``users`` in flight (closed loop) or the pool serving ``rate_rps`` arrivals (open loop), for ``duration_s``."""

    users: int
    duration_s: float
    spawn_rate: float = 0.0  # 0 = all users at once (spawn_rate = users)
    rate_rps: float | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], index: int = 0) -> Stage:
        where = f"load.stages[{index}]"
        unknown = set(data) - {"users", "spawn_rate", "duration_s", "rate_rps"}
        if unknown:
            raise PlanError(f"{where}: unknown key(s) {sorted(unknown)}")
        try:
            users, duration = int(data["users"]), float(data["duration_s"])
        except (KeyError, TypeError, ValueError):
            raise PlanError(f"{where}: needs integer `users` and a number `duration_s`") from None
        if users < 1 or not 0 < duration < 86_400:
            raise PlanError(f"{where}: needs users ≥ 1 and 0 < duration_s < 86400 (every stage is time-bounded)")
        rate = data.get("rate_rps")
        if rate is not None and float(rate) <= 0:
            raise PlanError(f"{where}: rate_rps must be > 0")
        spawn = float(data.get("spawn_rate") or users)
        return cls(users, duration, spawn if spawn > 0 else float(users), None if rate is None else float(rate))


@dataclass(frozen=True)
class OpenLoop:
    """Open-loop arrivals: ``poisson`` or ``gamma`` inter-arrival times; ``burstiness`` is the gamma shape
    (1 = Poisson, < 1 burstier), as in vLLM's ``benchmark_serving``."""

    arrival: str = "poisson"
    burstiness: float = 1.0

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> OpenLoop:
        data = dict(data or {})
        arrival = str(data.get("arrival", "poisson"))
        burst = float(data.get("burstiness", 1.0))
        if arrival not in ARRIVALS or burst <= 0:
            raise PlanError(f"open_loop: arrival must be one of {ARRIVALS} and burstiness > 0")
        return cls(arrival, burst if arrival == "gamma" else 1.0)


@dataclass(frozen=True)
class PlanRequest:
    case_id: str
    body: dict[str, Any]


@dataclass(frozen=True)
class LoadPlan:
    """One load run against one endpoint."""

    label: str
    url: str  # the full chat-completions URL
    requests: tuple[PlanRequest, ...]
    stages: tuple[Stage, ...]
    raw_dir: str
    seed: int = 0
    api_key_env: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    open_loop: OpenLoop | None = None
    timeout_s: float = 120.0
    connect_timeout_s: float = 5.0
    pause_after_failure_s: float = 0.1
    workers: int = 1
    metrics_url: str | None = None

    @property
    def total_s(self) -> float:
        return sum(s.duration_s for s in self.stages)

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False, indent=1)

    @classmethod
    def from_json(cls, text: str) -> LoadPlan:
        d = json.loads(text)
        d["requests"] = tuple(PlanRequest(**r) for r in d["requests"])
        d["stages"] = tuple(Stage(**s) for s in d["stages"])
        d["open_loop"] = OpenLoop(**d["open_loop"]) if d.get("open_loop") else None
        return cls(**d)

    def write(self, path: Path) -> Path:
        path.write_text(self.to_json(), encoding="utf-8")
        return path

    @classmethod
    def read(cls, path: str | Path) -> LoadPlan:
        return cls.from_json(Path(path).read_text(encoding="utf-8"))


def chat_url(base_url: str | None) -> str:
    """``<base_url>/chat/completions``; a target must be given explicitly — there is no default host."""
    if not base_url:
        raise PlanError("no base_url: a load target must be named explicitly (there is no default host)")
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise PlanError(f"base_url {base_url!r} is not an http(s) URL with a host")
    return base_url.rstrip("/") + "/chat/completions"


def build_body(request: Mapping[str, Any], model: str, *, max_tokens: int | None = None, ignore_eos: bool = False,
               extra_body: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A golden request as a streaming body with usage; ``ignore_eos`` only when asked (llama.cpp ignores it,
    vLLM then always generates ``max_tokens``)."""
    body: dict[str, Any] = {**(extra_body or {}), **request, "model": model, "stream": True,
                            "stream_options": {"include_usage": True}}
    if max_tokens is not None:
        body["max_tokens"] = int(max_tokens)
    if ignore_eos:
        body["ignore_eos"] = True
    return body


def stage_starts(stages: Sequence[Stage]) -> list[float]:
    """Offset (s) at which each stage starts."""
    return [float(x) for x in np.cumsum([0.0, *(s.duration_s for s in stages[:-1])])] if stages else []


def stage_at(stages: Sequence[Stage], t: float) -> int | None:
    """Index of the stage running ``t`` seconds after the start; None once the last one is over."""
    end = 0.0
    for i, s in enumerate(stages):
        end += s.duration_s
        if t < end:
            return i
    return None


def prompt_order(n: int, seed: int) -> list[int]:
    """Seeded permutation of request indices; request k of a run uses ``order[k % n]``."""
    return [int(i) for i in np.random.default_rng(seed).permutation(n)] if n else []


def arrival_schedule(stages: Sequence[Stage], open_loop: OpenLoop, seed: int) -> list[tuple[float, int]]:
    """Seeded arrival offsets (s from the start) with their stage, at each stage's ``rate_rps``.

    Gamma inter-arrivals with shape k and scale 1/(rate·k) keep the mean rate while k < 1 makes bursts; k = 1 is
    the exponential (Poisson process). Each stage restarts at its own start, so a stage's count does not depend on
    the previous stage's last gap.
    """
    rng = np.random.default_rng(seed)
    out: list[tuple[float, int]] = []
    for i, (stage, start) in enumerate(zip(stages, stage_starts(stages), strict=True)):
        if stage.rate_rps is None:
            raise PlanError(f"load.stages[{i}]: open-loop mode needs rate_rps")
        k, t = open_loop.burstiness, 0.0
        # draw in batches: the expected count plus a margin, then more if the stage is not yet covered
        while t < stage.duration_s:
            batch = max(16, int(stage.rate_rps * stage.duration_s * 1.2))
            gaps = rng.gamma(k, 1.0 / (stage.rate_rps * k), size=batch)
            for gap in gaps:
                t += float(gap)
                if t >= stage.duration_s:
                    break
                out.append((start + t, i))
    return out
