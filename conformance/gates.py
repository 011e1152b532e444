"""Suite gates: one suite-level statistic compared with a threshold.

Every gate carries its statistic, threshold, sample size and (where meaningful) a confidence
interval, so a reviewer never sees a bare ✓ — "agreement 1.00 (n=20, 95% CI 0.84–1.00) ≥ 0.95"
says how much certainty 20 cases really give.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

Verdict = Literal["pass", "fail", "insufficient", "error"]

_OPS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    "<=": operator.le,
    ">": operator.gt,
    "<": operator.lt,
    "==": operator.eq,
}


@dataclass(frozen=True)
class GateResult:
    """Verdict of one gate of one suite."""

    suite: str
    gate: str
    statistic: float | None
    threshold: float | None
    op: str
    n: int
    verdict: Verdict
    interval: tuple[float, float] | None = None
    message: str = ""

    @property
    def passed(self) -> bool:
        return self.verdict == "pass"

    def line(self) -> str:
        """One terminal line, e.g. ``✓ legal.terms drift_rate 0.0000 <= 0.001 (n=312)``."""
        mark = {"pass": "✓", "fail": "✗", "insufficient": "?", "error": "!"}[self.verdict]
        stat = "n/a" if self.statistic is None else f"{self.statistic:.4g}"
        thr = "" if self.threshold is None else f" {self.op} {self.threshold:g}"
        ci = "" if self.interval is None else f", 95% CI {self.interval[0]:.3f}–{self.interval[1]:.3f}"
        extra = f" — {self.message}" if self.message else ""
        return f"{mark} {self.suite}.{self.gate} {stat}{thr} (n={self.n}{ci}){extra}"

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> GateResult:
        """Inverse of :meth:`to_dict`; extra keys (e.g. a report row's ``kind``) are ignored."""
        interval = d.get("interval")
        return cls(
            suite=d["suite"], gate=d["gate"], statistic=d.get("statistic"), threshold=d.get("threshold"),
            op=d.get("op", ">="), n=int(d.get("n", 0)), verdict=d["verdict"],
            interval=(float(interval[0]), float(interval[1])) if interval else None, message=d.get("message", ""),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "suite": self.suite,
            "gate": self.gate,
            "statistic": self.statistic,
            "threshold": self.threshold,
            "op": self.op,
            "n": self.n,
            "verdict": self.verdict,
            "interval": list(self.interval) if self.interval else None,
            "message": self.message,
        }


def compare(
    suite: str,
    gate: str,
    statistic: float | None,
    threshold: float,
    op: str,
    n: int,
    *,
    interval: tuple[float, float] | None = None,
    min_n: int = 1,
    message: str = "",
) -> GateResult:
    """Build a GateResult; too few samples is its own verdict, never a silent pass."""
    if op not in _OPS:
        raise ValueError(f"unknown comparison {op!r}; use one of {sorted(_OPS)}")
    if statistic is None or n < min_n:
        msg = message or f"insufficient samples (n={n}, need ≥ {min_n})"
        return GateResult(suite, gate, statistic, threshold, op, n, "insufficient", interval, msg)
    verdict: Verdict = "pass" if _OPS[op](statistic, threshold) else "fail"
    return GateResult(suite, gate, statistic, threshold, op, n, verdict, interval, message)
