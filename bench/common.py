"""What every benchmark shares: the result record, medians over repeats, the machine's load, and golden cases.

Why repeats and medians: the benchmark machine has 2 cores and is shared, so a single run says as much about the
neighbours as about us. Every figure is measured ``repeats`` times, ours and the reference interleaved (A B B A …)
so a burst of outside load hits both, and the median is reported with every sample and the 1-minute load average
seen at each repeat.
"""

from __future__ import annotations

import os
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from conformance.goldens.model import DEFAULT_PARAMS, Case

Verdict = Literal["met", "missed", "info", "skipped"]
Direction = Literal["max", "min"]  # the goal bounds the ratio from above (≤) or from below (≥)


def loadavg() -> tuple[float, float, float]:
    one, five, fifteen = os.getloadavg()
    return round(one, 2), round(five, 2), round(fifteen, 2)


def median(values: Sequence[float]) -> float | None:
    return float(statistics.median(values)) if values else None


def percentile(values: Sequence[float], q: float) -> float | None:
    """Linear-interpolated percentile (q in 0..100), the numpy default, without importing numpy here."""
    if not values:
        return None
    data = sorted(values)
    pos = (len(data) - 1) * q / 100
    lo = int(pos)
    hi = min(lo + 1, len(data) - 1)
    return data[lo] + (data[hi] - data[lo]) * (pos - lo)


@dataclass
class Result:
    """One benchmark figure: ours vs a reference (or vs an absolute goal), over repeats.

    ``ratio`` is ``ours / reference`` for relative goals; for absolute goals (seconds, ms) ``reference`` is None
    and ``goal_value`` is compared with ``ours`` directly. ``verdict`` is decided by :meth:`judge`.
    """

    name: str
    benchmark: str
    metric: str
    goal: str
    command: str
    ours: float | None = None
    reference: float | None = None
    reference_label: str = ""
    ratio: float | None = None
    goal_value: float | None = None
    direction: Direction = "max"
    verdict: Verdict = "info"
    ours_samples: list[float] = field(default_factory=list)
    reference_samples: list[float] = field(default_factory=list)
    ratio_samples: list[float] = field(default_factory=list)
    loadavg: list[tuple[float, float, float]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    notes: str = ""

    def judge(self) -> Result:
        """Medians of the samples, the ratio, and a verdict against ``goal_value`` (met / missed / info)."""
        self.ours = median(self.ours_samples) if self.ours_samples else self.ours
        self.reference = median(self.reference_samples) if self.reference_samples else self.reference
        if self.ratio_samples:
            self.ratio = median(self.ratio_samples)
        elif self.ours is not None and self.reference:
            self.ratio = self.ours / self.reference
        value = self.ratio if self.reference_label else self.ours
        if self.goal_value is None or value is None:
            self.verdict = "info" if self.verdict != "skipped" else "skipped"
        elif self.direction == "max":
            self.verdict = "met" if value <= self.goal_value else "missed"
        else:
            self.verdict = "met" if value >= self.goal_value else "missed"
        return self

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def skipped(name: str, benchmark: str, goal: str, command: str, why: str) -> Result:
    return Result(name=name, benchmark=benchmark, metric="", goal=goal, command=command, verdict="skipped",
                  notes=why, loadavg=[loadavg()])


def bench_cases(n: int, system: str = "bench", prompt_chars: int = 120) -> list[Case]:
    """``n`` distinct cases (distinct fingerprints, so nothing is served from the run cache)."""
    filler = ("Summarise the deposit clause of the attached contract in one sentence. " * 4)[:prompt_chars]
    return [Case(system=system, set_name="bench", id=f"case-{i:06d}",
                 messages=({"role": "user", "content": f"{filler} #{i}"},), params=dict(DEFAULT_PARAMS))
            for i in range(n)]
