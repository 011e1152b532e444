"""Suite gates: one suite-level statistic, judged from its interval, next to the baseline's own figure.

Why verdicts come from intervals and from the baseline (docs/VERDICTS.md is the user-facing account): a migration
harness asks "is the candidate worse than the baseline?", on golden sets of a few dozen cases. A point estimate
against a threshold answers a different question, and answers it badly — "agreement 20/20 ≥ 0.95" passes although
20 cases only show agreement ≥ 0.84, and a latency ratio of 1.24 with a 95% interval of 0.69–2.19 fails although
nothing was slowed. So every gate carries its statistic, threshold, n and interval, and is judged by
:func:`judge`:

``pass``            the interval shows the requirement is met (not worse than the margin)
``regression``      the interval shows it is violated — and the baseline does not violate it alike
``baseline_fails``  the candidate violates it, but so does the baseline, and the candidate is not shown worse: the
                    golden or the threshold needs attention; it is never blamed on the candidate
``insufficient``    the evidence allows neither — not enough cases, or an interval straddling the threshold
``error``           the statistic could not be computed (a bug or bad data, said in the message)

A threshold at the end of a rate's scale — at most 0 ("no invalid answer", "no critical flip") or at least 1 ("every
call matches") — is a *zero-tolerance* rule: it is judged on what was observed (none → pass, any → violated), with
the interval shown for scale — no number of clean cases could ever make an interval's bound reach 0 or 1.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

Verdict = Literal["pass", "regression", "insufficient", "baseline_fails", "error"]
Side = Literal["meets", "violates", "unknown"]
VERDICTS: tuple[Verdict, ...] = ("pass", "regression", "insufficient", "baseline_fails", "error")

_OPS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    "<=": operator.le,
    ">": operator.gt,
    "<": operator.lt,
    "==": operator.eq,
}

_MARK = {"pass": "✓", "regression": "✗", "insufficient": "?", "baseline_fails": "≈", "error": "!"}


@dataclass(frozen=True)
class GateResult:
    """Verdict of one gate of one suite.

    ``statistic``/``interval``: the candidate's figure and its 95% interval. ``baseline``/``baseline_interval``: the
    same figure for the baseline on the same cases, when the gate has one. ``difference_interval``: the paired
    interval of candidate − baseline, when computed. ``faults``: answers missing by role and fault class — what the
    run outcome uses to tell an outage from a regression.
    """

    suite: str
    gate: str
    statistic: float | None
    threshold: float | None
    op: str
    n: int
    verdict: Verdict
    interval: tuple[float, float] | None = None
    message: str = ""
    baseline: float | None = None
    baseline_interval: tuple[float, float] | None = None
    difference_interval: tuple[float, float] | None = None
    faults: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return self.verdict == "pass"

    def blocking(self, strict: bool = False) -> bool:
        """Does this verdict block a cutover? ``regression`` always; ``insufficient``/``baseline_fails`` under
        ``--strict``; ``error`` always (nothing was judged)."""
        return self.verdict in ("regression", "error") or (strict and self.verdict in ("insufficient",
                                                                                        "baseline_fails"))

    def line(self) -> str:
        """One terminal line, e.g. ``✗ legal.terms.drift_rate 0.042 <= 0.001 (n=71, 95% CI 0.014–0.117) …``."""
        stat = "n/a" if self.statistic is None else f"{self.statistic:.4g}"
        thr = "" if self.threshold is None else f" {self.op} {self.threshold:g}"
        ci = "" if self.interval is None else f", 95% CI {self.interval[0]:.3f}–{self.interval[1]:.3f}"
        base = "" if self.baseline is None else f"; baseline {self.baseline:.4g}"
        word = "" if self.verdict == "pass" else f" {self.verdict.upper()}"
        extra = f" — {self.message}" if self.message else ""
        mark = _MARK.get(self.verdict, "?")
        return f"{mark} {self.suite}.{self.gate} {stat}{thr} (n={self.n}{ci}{base}){word}{extra}"

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> GateResult:
        """Inverse of :meth:`to_dict`; extra keys (e.g. a report row's ``kind``) are ignored. A verdict of an
        older run (``fail``) reads as ``regression``."""
        def pair(v: Any) -> tuple[float, float] | None:
            return (float(v[0]), float(v[1])) if isinstance(v, list | tuple) and len(v) == 2 else None

        verdict = str(d.get("verdict", "error"))
        verdict = "regression" if verdict == "fail" else verdict
        return cls(
            suite=str(d["suite"]), gate=str(d["gate"]), statistic=d.get("statistic"), threshold=d.get("threshold"),
            op=str(d.get("op", ">=")), n=int(d.get("n") or 0),
            verdict=verdict if verdict in VERDICTS else "error",
            interval=pair(d.get("interval")), message=str(d.get("message") or ""), baseline=d.get("baseline"),
            baseline_interval=pair(d.get("baseline_interval")),
            difference_interval=pair(d.get("difference_interval")),
            faults={str(k): dict(v) for k, v in (d.get("faults") or {}).items() if isinstance(v, Mapping)},
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
            "baseline": self.baseline,
            "baseline_interval": list(self.baseline_interval) if self.baseline_interval else None,
            "difference_interval": list(self.difference_interval) if self.difference_interval else None,
            "faults": self.faults,
        }


def side(interval: tuple[float, float] | None, threshold: float, op: str, *, observed: float | None = None,
         zero_tolerance: bool = False) -> Side:
    """Where an interval lies relative to a threshold: wholly on the good side (``meets``), wholly on the bad side
    (``violates``), or across it (``unknown``). ``zero_tolerance`` judges ``observed`` itself (see the module
    docstring)."""
    if zero_tolerance and observed is not None:
        return "meets" if _OPS[op](observed, threshold) else "violates"
    if interval is None:
        if observed is None:
            return "unknown"
        return "meets" if _OPS[op](observed, threshold) else "violates"
    lo, hi = interval
    if op in ("<=", "<"):
        return "meets" if _OPS[op](hi, threshold) else "violates" if lo > threshold else "unknown"
    if op in (">=", ">"):
        return "meets" if _OPS[op](lo, threshold) else "violates" if hi < threshold else "unknown"
    return "meets" if lo == hi == threshold else "violates" if not lo <= threshold <= hi else "unknown"


def relative(difference: tuple[float, float] | None, op: str, margin: float) -> Side:
    """Candidate vs baseline from the interval of candidate − baseline: ``violates`` when the candidate is shown
    worse by more than ``margin``, ``meets`` when shown not worse by more than it. ``op`` is the gate's direction
    (``<=``: lower is better)."""
    if difference is None:
        return "unknown"
    lo, hi = difference
    if op in ("<=", "<"):
        return "violates" if lo > margin else "meets" if hi <= margin else "unknown"
    return "violates" if hi < -margin else "meets" if lo >= -margin else "unknown"


def judge(candidate: Side, *, baseline: Side | None = None, versus: Side | None = None) -> Verdict:
    """The verdict from three readings (see the module docstring): the candidate against the threshold, the
    baseline against the same threshold, and candidate vs baseline (``versus``: ``violates`` = shown worse)."""
    if candidate == "violates":
        if baseline == "violates" and versus != "violates":
            return "baseline_fails"
        return "regression"
    if candidate == "meets":
        return "pass"
    if versus == "violates":
        return "regression"
    if baseline == "violates":
        return "baseline_fails"
    return "insufficient"


def _finite(x: float | None) -> bool:
    return x is not None and not (isinstance(x, float) and math.isnan(x))


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
    baseline: float | None = None,
    baseline_interval: tuple[float, float] | None = None,
    baseline_n: int | None = None,
    difference_interval: tuple[float, float] | None = None,
    margin: float = 0.0,
    zero_tolerance: bool | None = None,
    faults: dict[str, dict[str, int]] | None = None,
) -> GateResult:
    """Build and judge one gate. Too few samples is its own verdict, never a silent pass.

    ``interval``: the candidate statistic's 95% interval (without one the point value is judged — only for
    figures that carry no sampling error). ``baseline``/``baseline_interval``: the same statistic for the baseline;
    ``difference_interval``: candidate − baseline, paired where the cases are shared; ``margin``: how much worse
    than the baseline still counts as not worse. ``zero_tolerance`` defaults to "threshold is 0 and lower is
    better".
    """
    if op not in _OPS:
        raise ValueError(f"unknown comparison {op!r}; use one of {sorted(_OPS)}")
    faults = faults or {}
    if not _finite(statistic) or n < min_n:
        msg = message or f"insufficient samples (n={n}, need ≥ {min_n})"
        if _finite(statistic) and message and f"n={n}" not in message:
            msg = f"{message} — n={n}, need ≥ {min_n}"
        return GateResult(suite, gate, statistic, threshold, op, n, "insufficient", interval, msg,
                          baseline, baseline_interval, difference_interval, faults)
    assert statistic is not None
    zero = (threshold == 0 and op == "<=") if zero_tolerance is None else zero_tolerance
    cand = side(interval, threshold, op, observed=statistic, zero_tolerance=zero)
    base: Side | None = None
    if _finite(baseline) and (baseline_n is None or baseline_n >= min_n):
        base = side(baseline_interval, threshold, op, observed=baseline, zero_tolerance=zero)
    versus = relative(difference_interval, op, margin) if difference_interval is not None else None
    verdict = judge(cand, baseline=base, versus=versus)
    return GateResult(suite, gate, statistic, threshold, op, n, verdict, interval, message, baseline,
                      baseline_interval, difference_interval, faults)


def error(suite: str, gate: str, message: str) -> GateResult:
    """A gate that could not be computed."""
    return GateResult(suite, gate, None, None, "==", 0, "error", message=message)


def rate_gate(suite: str, gate: str, candidate: list[bool], baseline: list[bool] | None, threshold: float,
              op: str, *, min_n: int = 1, margin: float = 0.0, message: str = "",
              faults: dict[str, dict[str, int]] | None = None) -> GateResult:
    """A gate on the share of cases where something happened (an invalid answer, a match, a refusal), for the
    candidate next to the baseline on the *same* cases: Wilson intervals for each, Newcombe's paired interval for
    the difference (``conformance.checks.stats``). ``candidate[i]``/``baseline[i]`` are case i's indicators."""
    from conformance.checks.stats import paired_difference_interval, wilson_interval

    n, k = len(candidate), sum(candidate)
    if baseline is not None and len(baseline) != n:
        raise ValueError(f"{gate}: baseline and candidate indicators differ in length ({len(baseline)} vs {n})")
    base = base_int = diff = None
    if baseline is not None and n:
        kb = sum(baseline)
        both = sum(1 for c, b in zip(candidate, baseline, strict=True) if c and b)
        only_c, only_b = k - both, kb - both
        base, base_int = kb / n, wilson_interval(kb, n)
        diff = paired_difference_interval(both, only_c, only_b, n - both - only_c - only_b)
    # "none may fail" / "all must match": judged on what was observed (see the module docstring)
    zero = (op == "<=" and threshold == 0) or (op == ">=" and threshold == 1)
    return compare(suite, gate, k / n if n else None, threshold, op, n, interval=wilson_interval(k, n) if n else None,
                   min_n=min_n, message=message, baseline=base, baseline_interval=base_int,
                   difference_interval=diff, margin=margin, zero_tolerance=zero, faults=faults)
