"""Run over run: how each suite gate moved since the previous run.

Why: a nightly gate that passes at 0.96 against a 0.95 threshold is fine today and fails tomorrow; a reviewer
wants to see the slide before it crosses. :func:`compare_runs` pairs the gates of two ``summary.json`` files by
(suite, gate) and says for each whether it is ``new``, ``removed``, ``moved`` (verdict or statistic changed) or
``unchanged``, and whether the move is *better* or *worse* — which direction is better follows from the gate's
comparison operator (``>=``: higher is better; ``<=``: lower is better).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from conformance.errors import ConformanceError

Change = Literal["new", "removed", "moved", "unchanged"]

#: Statistic changes smaller than this (relative to the threshold, or absolute when there is none) are noise.
TOLERANCE = 1e-9

_VERDICT_RANK = {"pass": 3, "insufficient": 2, "baseline_fails": 1, "error": 0, "fail": 0, "regression": 0}


@dataclass(frozen=True)
class GateMove:
    """One gate of one suite, previous run → current run."""

    suite: str
    gate: str
    change: Change
    previous_statistic: float | None = None
    current_statistic: float | None = None
    previous_verdict: str | None = None
    current_verdict: str | None = None
    op: str = ">="
    threshold: float | None = None

    @property
    def delta(self) -> float | None:
        if self.previous_statistic is None or self.current_statistic is None:
            return None
        return self.current_statistic - self.previous_statistic

    @property
    def direction(self) -> Literal["better", "worse", "same"] | None:
        """Verdict changes decide first; otherwise the statistic, in the direction the operator prefers."""
        if self.change in ("new", "removed"):
            return None
        pv, cv = _VERDICT_RANK.get(str(self.previous_verdict), 0), _VERDICT_RANK.get(str(self.current_verdict), 0)
        if pv != cv:
            return "better" if cv > pv else "worse"
        d = self.delta
        if d is None or abs(d) <= TOLERANCE or self.op == "==":
            return "same"
        higher_is_better = self.op in (">=", ">")
        return "better" if (d > 0) == higher_is_better else "worse"

    @property
    def verdict_changed(self) -> bool:
        return self.change == "moved" and self.previous_verdict != self.current_verdict

    def line(self) -> str:
        """``legal.terms.drift_rate 0.0005 → 0.0012 (pass → fail) worse``."""
        name = f"{self.suite}.{self.gate}"
        if self.change == "new":
            return f"+ {name} {_stat(self.current_statistic)} ({self.current_verdict}) new"
        if self.change == "removed":
            return f"- {name} was {_stat(self.previous_statistic)} ({self.previous_verdict}), gone"
        verdicts = (f"{self.previous_verdict} → {self.current_verdict}" if self.verdict_changed
                    else str(self.current_verdict))
        mark = {"better": "▲", "worse": "▼", "same": "="}.get(str(self.direction), " ")
        d = self.delta
        delta = f", Δ {d:+.4g}" if d is not None and abs(d) > TOLERANCE else ""
        return (f"{mark} {name} {_stat(self.previous_statistic)} → {_stat(self.current_statistic)} "
                f"({verdicts}{delta}) {self.direction}")

    def to_dict(self) -> dict[str, Any]:
        return {"suite": self.suite, "gate": self.gate, "change": self.change, "direction": self.direction,
                "previous_statistic": self.previous_statistic, "current_statistic": self.current_statistic,
                "previous_verdict": self.previous_verdict, "current_verdict": self.current_verdict,
                "op": self.op, "threshold": self.threshold, "delta": self.delta}


def _stat(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.4g}"


def _num(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _gates(summary: Mapping[str, Any] | None) -> dict[tuple[str, str], Mapping[str, Any]]:
    """(suite, gate) → gate dict; a gate recorded twice (a re-run test) keeps its last value."""
    out: dict[tuple[str, str], Mapping[str, Any]] = {}
    suites = (summary or {}).get("suites")
    for suite_name, s in suites.items() if isinstance(suites, Mapping) else ():
        gates = s.get("gates") if isinstance(s, Mapping) else None
        for g in gates if isinstance(gates, list) else ():
            if isinstance(g, Mapping):  # a hand-edited or foreign summary: skip what is not a gate
                out[(str(g.get("suite") or suite_name), str(g.get("gate")))] = g
    return out


def _moved(prev: Mapping[str, Any], cur: Mapping[str, Any]) -> bool:
    if prev.get("verdict") != cur.get("verdict"):
        return True
    a, b = _num(prev.get("statistic")), _num(cur.get("statistic"))
    if (a is None) != (b is None):
        return True
    if a is None or b is None:
        return False
    scale = max(abs(_num(cur.get("threshold")) or 0.0), 1.0)
    return abs(a - b) > TOLERANCE * scale


def compare_runs(current: Mapping[str, Any], previous: Mapping[str, Any] | None) -> list[GateMove]:
    """Every gate of either run, sorted by suite and gate. ``previous=None`` makes every gate ``new``."""
    cur, prev = _gates(current), _gates(previous)
    moves = []
    for key in sorted(cur.keys() | prev.keys()):
        c, p = cur.get(key), prev.get(key)
        ref = c if c is not None else (p or {})
        op, threshold = str(ref.get("op", ">=")), _num(ref.get("threshold"))
        if p is None:
            moves.append(GateMove(*key, "new", current_statistic=_num(ref.get("statistic")),
                                  current_verdict=ref.get("verdict"), op=op, threshold=threshold))
        elif c is None:
            moves.append(GateMove(*key, "removed", previous_statistic=_num(p.get("statistic")),
                                  previous_verdict=p.get("verdict"), op=op, threshold=threshold))
        else:
            moves.append(GateMove(*key, "moved" if _moved(p, c) else "unchanged",
                                  _num(p.get("statistic")), _num(c.get("statistic")), p.get("verdict"),
                                  c.get("verdict"), op=op, threshold=threshold))
    return moves


def trend_lines(moves: Sequence[GateMove], previous_run: str | None = None, *, all_gates: bool = False) -> list[str]:
    """Terminal lines: a header and one line per gate that moved (or every gate with ``all_gates``)."""
    shown = [m for m in moves if all_gates or m.change != "unchanged"]
    worse = sum(1 for m in moves if m.direction == "worse")
    flips = sum(1 for m in moves if m.verdict_changed)
    since = f" since run {previous_run}" if previous_run else ""
    head = (f"gate trend{since}: {len(moves)} gates, {sum(m.change == 'moved' for m in moves)} moved "
            f"({worse} worse, {flips} verdict changes), {sum(m.change == 'new' for m in moves)} new, "
            f"{sum(m.change == 'removed' for m in moves)} removed")
    return [head, *("  " + m.line() for m in shown)]


def read_summary(path: Path) -> dict[str, Any]:
    """``summary.json`` from a run folder, a ``latest`` link, or the file itself.

    Raises :class:`ConformanceError` naming the file when it cannot be read or is not a JSON object: missing,
    cut short by a killed run, not UTF-8, or another JSON value (a list, a number)."""
    target = path / "summary.json" if path.is_dir() else path
    try:
        data = json.loads(target.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConformanceError(f"{target}: cannot read the run summary ({exc.strerror or exc})") from None
    except UnicodeDecodeError:
        raise ConformanceError(f"{target}: the run summary is not UTF-8 text") from None
    except ValueError as exc:  # JSONDecodeError: cut short, or not JSON at all
        raise ConformanceError(f"{target}: the run summary is not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ConformanceError(f"{target}: the run summary is a JSON {type(data).__name__}, not an object")
    return data


def read_previous(path: Path | None) -> tuple[dict[str, Any] | None, str | None]:
    """The previous run's summary for the gate trend, or ``(None, warning line)`` when it is unusable.

    A bad previous run — corrupt, cut short, deleted since — must not stop this run's report: it means "no trend",
    said in one line."""
    if path is None:
        return None, None
    try:
        return read_summary(path), None
    except ConformanceError as exc:
        return None, f"gate trend: skipped, the previous run is unusable: {exc}"


def previous_run_dir(reports_dir: Path, current_run_id: str) -> Path | None:
    """The run to compare with: the folder ``reports/latest`` points at unless it is the current run (the plugin
    asks *before* the collector moves ``latest``), else the newest older run folder (run ids sort by time) that
    has a ``summary.json``."""
    if not reports_dir.is_dir():
        return None
    latest = reports_dir / "latest"
    candidates: list[Path] = []
    if latest.exists() and latest.resolve().name != current_run_id:
        candidates.append(latest.resolve())
    candidates += sorted((d for d in reports_dir.iterdir() if d.is_dir() and not d.is_symlink()
                          and d.name != current_run_id and d.name < current_run_id), reverse=True)
    return next((d for d in candidates if (d / "summary.json").is_file()), None)


def previous_summary(reports_dir: Path, current_run_id: str) -> dict[str, Any] | None:
    """The summary of :func:`previous_run_dir`, or None (no earlier run, or its summary is unusable)."""
    return read_previous(previous_run_dir(reports_dir, current_run_id))[0]
