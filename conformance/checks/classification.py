"""Classification agreement: does the candidate hand out the same labels as the baseline (and the gold)?

Why the statistics are this careful: classification suites (sentiment, ticket routing, content safety) have a
few dozen golden cases, and a migration decision taken on "20/20 agree" must show that 20 cases only prove
agreement ≥ 0.84. And models are not deterministic even at temperature 0 (batching, kernels), so every
agreement figure is printed next to each endpoint's **self-agreement** (a second pass of the same endpoint):
a candidate is only blamed for disagreement beyond that noise floor.

Label extraction (:class:`LabelSet`): the suite's ``labels: {values: [...], aliases: {...}}``; answers are
folded (full/half width, case, punctuation and whitespace for CJK labels; whole-word matching for Latin
aliases) and the **first** label by position wins, the longest one when several start at the same place: a
label inside a longer one ("合规" in "不合规") never wins over it. That is also how a suite defuses negations:
give them as aliases (``aliases: {不合规: 违规}``). A ``<think>`` block is skipped. An answer with no label is
:data:`INVALID`, a label of its own that shows up in every confusion matrix — never silently dropped.

Gates (:func:`classification_gates`, config ``gates.classification``):

``min_agreement``          baseline↔candidate agreement (Wilson 95% CI), noise floors and flips in the message
``min_kappa``              Cohen's κ of baseline↔candidate (interval: see :mod:`conformance.checks.stats`)
``min_accuracy``           candidate vs gold (only rows with gold)
``noninferiority_margin``  candidate accuracy not worse than baseline's by more than δ: the lower bound of the
                           paired (Newcombe) 95% interval must be ≥ −δ; an interval straddling −δ is
                           "insufficient", not pass — small golden sets cannot show non-inferiority
``max_noise_excess``       (baseline↔candidate disagreement) − (the larger self-disagreement) ≤ the margin
``critical_flips``         ``[{from: 违规, to: 合规}, …]`` (``to: "*"``: any other label) must be 0,
                           whatever the rates
``max_perturbation_excess`` candidate flips under prompt perturbation − baseline flips ≤ the margin
``min_n``                  fewer rows → "insufficient"
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import pandas as pd

from conformance.checks.glossary import fold_with_offsets
from conformance.checks.params import gate_params, number, rate
from conformance.checks.result import CheckResult, Finding
from conformance.checks.stats import (
    cohens_kappa,
    kappa_interval,
    noninferiority,
    paired_difference_interval,
    wilson_interval,
)
from conformance.checks.think import THINK_OPEN, split_think
from conformance.gates import GateResult, compare, rate_gate

__all__ = [
    "INVALID",
    "Agreement",
    "ClassificationStats",
    "Flip",
    "LabelMatch",
    "LabelRow",
    "LabelSet",
    "agreement",
    "classification_gates",
    "classification_stats",
    "compare_labels",
]

INVALID = "<invalid>"
_LATIN = "a-z0-9\u00c0-\u024f"


@dataclass(frozen=True)
class LabelMatch:
    """Where a label was found: ``text[start:end]`` is the surface that matched (original offsets)."""

    label: str
    surface: str
    start: int
    end: int


def _answer(text: str) -> tuple[str, int] | None:
    """The text after any think block and its offset; None when the answer ended inside its reasoning.

    Stricter than :func:`~conformance.checks.think.split_think` on one point: an opening tag anywhere without a
    closing one also counts as "ended inside its reasoning" — a label found in unfinished reasoning is not an
    answer."""
    split = split_think(text)
    if split.unclosed or (split.reasoning is None and THINK_OPEN.search(text)):
        return None
    return split.answer, split.start


@dataclass(frozen=True)
class LabelSet:
    """A suite's labels and their aliases; builds the matching table once."""

    values: tuple[str, ...]
    aliases: tuple[tuple[str, str], ...] = ()
    _needles: tuple[tuple[str, str, re.Pattern[str] | None], ...] = field(
        init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        needles: dict[str, tuple[str, str, re.Pattern[str] | None]] = {}
        for surface, label in [(v, v) for v in self.values] + list(self.aliases):
            if label not in self.values:
                raise ValueError(f"alias {surface!r} points at {label!r}, "
                                 f"which is not one of {list(self.values)}")
            spaced = fold_with_offsets(surface)[0].strip()
            latin = bool(re.fullmatch(f"[{_LATIN} ]+", spaced))
            key = spaced if latin else fold_with_offsets(surface, punctuation=True)[0]
            if not key:
                raise ValueError(f"label or alias {surface!r} is empty once punctuation is folded away")
            if key in needles and needles[key][1] != label:
                raise ValueError(f"{surface!r} folds to the same text as an alias of {needles[key][1]!r}")
            pattern = re.compile(rf"(?<![{_LATIN}]){re.escape(key)}(?![{_LATIN}])") if latin else None
            needles[key] = (key, label, pattern)
        object.__setattr__(self, "_needles", tuple(needles.values()))

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> LabelSet:
        """From a suite's ``labels`` mapping: ``{values: [正面, 负面], aliases: {positive: 正面}}``."""
        aliases = cfg.get("aliases") or {}
        return cls(tuple(cfg["values"]), tuple((str(k), str(v)) for k, v in aliases.items()))

    def match(self, text: str | None) -> LabelMatch | None:
        """The first label in ``text`` (longest at the earliest position); never raises."""
        if not text:
            return None
        answer = _answer(text)
        if answer is None:
            return None
        body, offset = answer
        spaced, s_idx = fold_with_offsets(body)
        compact, c_idx = fold_with_offsets(body, punctuation=True)
        best: tuple[int, int, str] | None = None
        for key, label, pattern in self._needles:
            if pattern is not None:
                m = pattern.search(spaced)
                span = (s_idx[m.start()], s_idx[m.end() - 1] + 1) if m else None
            else:
                i = compact.find(key)
                span = (c_idx[i], c_idx[i + len(key) - 1] + 1) if i >= 0 else None
            if span and (best is None or (span[0], -span[1]) < (best[0], -best[1])):
                best = (span[0], span[1], label)
        if best is None:
            return None
        start, end, label = best
        return LabelMatch(label, text[offset + start:offset + end], offset + start, offset + end)

    def extract(self, text: str | None) -> str:
        """The canonical label of an answer, or :data:`INVALID`."""
        m = self.match(text)
        return m.label if m else INVALID

    def canonical(self, label: str | None) -> str | None:
        """A gold label written as a value or alias → its value (other strings are kept as they are)."""
        if label is None:
            return None
        spaced = fold_with_offsets(label)[0].strip()
        compact = fold_with_offsets(label, punctuation=True)[0]
        hits = (lab for key, lab, pattern in self._needles if key == (spaced if pattern else compact))
        return next(hits, label)


@dataclass(frozen=True)
class LabelRow:
    """One case's labels: gold (None when the golden has none), both endpoints, and the optional extra passes
    (a second pass of each endpoint for the noise floor, an answer to a perturbed prompt for robustness)."""

    case_id: str
    gold: str | None
    baseline: str
    candidate: str
    baseline_repeat: str | None = None
    candidate_repeat: str | None = None
    baseline_perturbed: str | None = None
    candidate_perturbed: str | None = None

    @classmethod
    def from_texts(cls, case_id: str, labels: LabelSet, *, gold: str | None, baseline: str | None,
                   candidate: str | None, **extra: str | None) -> LabelRow:
        """Extract every label from answer texts; ``extra`` takes the optional fields by name (texts too)."""
        return cls(case_id, labels.canonical(gold), labels.extract(baseline), labels.extract(candidate),
                   **{k: None if v is None else labels.extract(v) for k, v in extra.items()})


@dataclass(frozen=True)
class Flip:
    """One case whose label changed between two columns (``source`` → ``target``)."""

    case_id: str
    source: str
    target: str


@dataclass(frozen=True, eq=False)
class Agreement:
    """Agreement of two label columns over the rows where both exist."""

    left: str
    right: str
    n: int
    agree: int
    interval: tuple[float, float]
    kappa: float | None
    kappa_interval: tuple[float, float] | None
    confusion: pd.DataFrame
    flips: tuple[Flip, ...]

    @property
    def rate(self) -> float | None:
        return self.agree / self.n if self.n else None

    def flip_counts(self) -> dict[tuple[str, str], int]:
        return dict(sorted(Counter((f.source, f.target) for f in self.flips).items()))

    def per_label(self) -> pd.DataFrame:
        """Per label: rows on the left, flips away from it, flips into it."""
        cm = self.confusion
        diag = pd.Series([cm.at[lab, lab] for lab in cm.index], index=cm.index)
        return pd.DataFrame({"n": cm.sum(axis=1), "flips_out": cm.sum(axis=1) - diag,
                             "flips_in": cm.sum(axis=0) - diag})

    def describe(self) -> str:
        if not self.n:
            return f"{self.left}↔{self.right}: no rows"
        lo, hi = self.interval
        return f"{self.left}↔{self.right} {self.rate:.3f} ({self.agree}/{self.n}, 95% CI {lo:.3f}–{hi:.3f})"


def _order(values: Sequence[str], extra: Sequence[str]) -> list[str]:
    seen = [v for v in values if v != INVALID]
    return seen + sorted({x for x in extra if x not in seen and x != INVALID}) + [INVALID]


def agreement(rows: Sequence[LabelRow], left: str, right: str, labels: Sequence[str] = ()) -> Agreement:
    """Agreement between two :class:`LabelRow` fields (e.g. ``"baseline"``, ``"candidate"``, ``"gold"``)."""
    pairs = [(r.case_id, getattr(r, left), getattr(r, right)) for r in rows]
    pairs = [(c, a, b) for c, a, b in pairs if a is not None and b is not None]
    a = [p[1] for p in pairs]
    b = [p[2] for p in pairs]
    order = _order(labels, a + b)
    confusion = pd.crosstab(pd.Categorical(a, categories=order), pd.Categorical(b, categories=order),
                            rownames=[left], colnames=[right], dropna=False)
    agree = sum(1 for x, y in zip(a, b, strict=True) if x == y)
    return Agreement(left, right, len(pairs), agree, wilson_interval(agree, len(pairs)), cohens_kappa(a, b),
                     kappa_interval(a, b), confusion, tuple(Flip(c, x, y) for c, x, y in pairs if x != y))


@dataclass(frozen=True, eq=False)
class ClassificationStats:
    """All agreement figures of a suite. ``pairs`` keys: ``baseline~candidate`` (always), ``baseline~gold``,
    ``candidate~gold``, ``baseline~baseline_repeat``, ``candidate~candidate_repeat`` (those with rows)."""

    n: int
    pairs: dict[str, Agreement]

    def self_disagreement(self) -> dict[str, float]:
        out = {}
        for side in ("baseline", "candidate"):
            a = self.pairs.get(f"{side}~{side}_repeat")
            if a and a.n:
                out[side] = 1 - a.agree / a.n
        return out

    def noise_floor(self) -> tuple[str, float] | None:
        """The larger self-disagreement of the two endpoints (which one, how much), if any was measured."""
        noise = self.self_disagreement()
        return max(noise.items(), key=lambda kv: (kv[1], kv[0])) if noise else None

    def lines(self) -> list[str]:
        return [a.describe() + (f", κ {a.kappa:.3f}" if a.kappa is not None else "")
                for a in self.pairs.values()]


def classification_stats(rows: Sequence[LabelRow], labels: Sequence[str] = ()) -> ClassificationStats:
    """Every pairing the rows support, so a report can put each agreement next to its noise floor."""
    pairs = {}
    for left, right in (("baseline", "candidate"), ("baseline", "gold"), ("candidate", "gold"),
                        ("baseline", "baseline_repeat"), ("candidate", "candidate_repeat")):
        a = agreement(rows, left, right, labels)
        if a.n or (left, right) == ("baseline", "candidate"):
            pairs[f"{left}~{right}"] = a
    return ClassificationStats(len(rows), pairs)


def compare_labels(baseline: str, candidate: str, gold: str | None = None,
                   critical: Sequence[Mapping[str, str]] = ()) -> CheckResult:
    """Per-case result: the candidate must match the gold label (or the baseline's when there is none).

    When the candidate gives exactly the baseline's wrong answer, the miss is not a migration regression: the
    finding is kept (kind ``*_shared``) and ``details["shared_expectation_failures"]`` lets the pytest layer mark
    the case xfail — while the suite's accuracy and non-inferiority gates still count it.
    """
    reference, ref_name = (gold, "gold") if gold is not None else (baseline, "baseline")
    crit = [c for c in critical if _is_critical(c, baseline, candidate)]
    shared = candidate != reference and candidate == baseline
    suffix = " (the baseline answers the same)" if shared else ""
    findings: list[Finding] = []
    if candidate == INVALID:
        findings.append(Finding("invalid_shared" if shared else "invalid",
                                "the candidate's answer carries no known label" + suffix, baseline=baseline,
                                candidate=candidate))
    elif candidate != reference:
        findings.append(Finding("flip_shared" if shared else "flip",
                                f"{ref_name} says {reference!r}, the candidate {candidate!r}" + suffix,
                                baseline=baseline, candidate=candidate))
    if crit:
        findings.append(Finding("critical_flip", f"critical flip {baseline!r} → {candidate!r}",
                                baseline=baseline, candidate=candidate))
    ok = (candidate == reference or shared) and not crit
    explanation = findings[0].message if findings else f"label {candidate!r} matches the {ref_name}"
    return CheckResult("classification", passed=ok, score=1.0 if candidate == reference and not crit else 0.0,
                       explanation=explanation, findings=tuple(findings),
                       details={"baseline": baseline, "candidate": candidate, "gold": gold, "critical": bool(crit),
                                "shared_expectation_failures": int(shared)})


def _is_critical(spec: Mapping[str, str], source: str | None, target: str | None) -> bool:
    return (source == spec["from"] and target is not None and target != source
            and (spec["to"] == "*" or target == spec["to"]))


def _paired_excess(rows: Sequence[LabelRow], new: tuple[str, str],
                   old: tuple[str, str]) -> tuple[float, tuple[float, float], int, int, int]:
    """Paired difference of two per-case "labels differ" indicators, rate(new) − rate(old), with its Newcombe
    interval, n and both counts. Rows missing any of the four labels are left out."""
    fields = (*new, *old)
    pairs = [(getattr(r, new[0]) != getattr(r, new[1]), getattr(r, old[0]) != getattr(r, old[1]))
             for r in rows if all(getattr(r, f) is not None for f in fields)]
    a = sum(1 for x, y in pairs if x and y)
    b = sum(1 for x, y in pairs if x and not y)
    c = sum(1 for x, y in pairs if y and not x)
    n = len(pairs)
    return ((b - c) / n if n else 0.0), paired_difference_interval(a, b, c, n - a - b - c), n, a + b, a + c


def _noninferiority_gate(suite: str, rows: Sequence[LabelRow], margin: float, min_n: int) -> GateResult:
    """Candidate − baseline accuracy on the gold rows, paired (Newcombe): not worse than −margin."""
    gold = [r for r in rows if r.gold is not None]
    ni = noninferiority([r.candidate == r.gold for r in gold], [r.baseline == r.gold for r in gold], margin)
    if not ni.n:
        return compare(suite, "classification.noninferiority", None, -margin, ">=", 0,
                       message="no gold labels: non-inferiority needs expect.label")
    gate = compare(suite, "classification.noninferiority", ni.difference, -margin, ">=", ni.n,
                   interval=ni.interval, min_n=min_n, message=ni.describe(), zero_tolerance=False)
    if gate.verdict == "insufficient" and ni.n >= min_n:
        return replace(gate, message=f"{gate.message} — {ni.n} cases cannot show non-inferiority within {margin:g}")
    return gate


def _noise_gate(suite: str, rows: Sequence[LabelRow], stats: ClassificationStats, limit: float,
                min_n: int) -> GateResult:
    floor = stats.noise_floor()
    if floor is None:
        return compare(suite, "classification.noise_excess", None, limit, "<=", 0,
                       message="no self-replay labels: the noise floor is unknown (noise_floor: {repeats: 2})")
    side = floor[0]
    diff, ci, n, k_cross, k_self = _paired_excess(rows, ("baseline", "candidate"), (side, f"{side}_repeat"))
    return compare(suite, "classification.noise_excess", diff, limit, "<=", n, interval=ci, min_n=min_n,
                   message=f"baseline↔candidate disagreement {k_cross}/{n} vs {side} self-disagreement "
                           f"{k_self}/{n} (paired Newcombe CI of the excess)", zero_tolerance=False)


def _critical_gate(suite: str, rows: Sequence[LabelRow], flips: Sequence[Flip], specs: Sequence[Mapping[str, str]],
                   min_n: int) -> GateResult:
    """Zero tolerance: any critical flip (baseline ``from`` → candidate ``to``) is a regression, whatever the rates
    — unless the baseline flips the same way against its own repeat (then the baseline is too noisy to judge)."""
    hits = [f for f in flips if any(_is_critical(s, f.source, f.target) for s in specs)]
    exposed = sum(1 for r in rows if any(r.baseline == s["from"] for s in specs))
    noise = [r.case_id for r in rows if r.baseline_repeat is not None
             and any(_is_critical(s, r.baseline, r.baseline_repeat) for s in specs)]
    if hits:
        msg = ", ".join(f"{f.case_id} ({f.source}→{f.target})" for f in hits)
    elif exposed:
        upper = wilson_interval(0, exposed)[1]
        msg = f"none among {exposed} exposed cases (95% upper bound on the critical-flip rate: {upper:.1%})"
    else:
        msg = "no case where the baseline gave a critical 'from' label"
    if noise:
        msg += f"; the baseline flips critically against its own repeat in {len(noise)} case(s): {', '.join(noise)}"
    # a critical flip fails the gate whatever the sample size; only a clean run can be "insufficient"
    return compare(suite, "classification.critical_flips", float(len(hits)), 0.0, "<=", exposed,
                   min_n=1 if hits else min_n, message=msg, baseline=float(len(noise)) if noise else None)


PARAMS = gate_params("Classification: labels against the baseline's, the gold and each endpoint's own noise.", {
    "min_agreement": rate("Lowest baseline↔candidate label agreement; the lower end of its 95% interval must "
                          "reach it (20/20 only shows ≥ 0.84). The baseline's self-agreement stands next to it."),
    "min_kappa": number("Lowest Cohen's κ of baseline↔candidate labels (interval-judged).", minimum=-1, maximum=1),
    "min_accuracy": rate("Lowest candidate accuracy against the gold labels, next to the baseline's on the same "
                         "cases."),
    "noninferiority_margin": rate("Candidate accuracy may be at most this much below the baseline's (paired "
                                  "95% interval)."),
    "max_noise_excess": rate("Highest baseline↔candidate disagreement beyond the larger self-disagreement."),
    "critical_flips": {"type": "array", "description": "Flips that are never acceptable, whatever the rates.",
                       "items": {"type": "object", "additionalProperties": False, "required": ["from", "to"],
                                 "properties": {"from": {"type": "string", "minLength": 1},
                                                "to": {"type": "string", "minLength": 1,
                                                       "description": "a label, or * for any other label"}}}},
    "max_perturbation_excess": rate("Highest excess of candidate flips under prompt perturbation over the "
                                    "baseline's."),
})


def classification_gates(suite: str, rows: Sequence[LabelRow], cfg: Mapping[str, Any] | None,
                         labels: Sequence[str] = ()) -> list[GateResult]:
    """Suite gates from ``gates.classification`` (see the module docstring and :data:`PARAMS`); every gate names
    its statistic, threshold, n and interval, and the message carries the noise floors and the flipped case ids.
    Without any key, agreement is gated at 0.95 (the gate must not vanish because suite.yaml only names labels)."""
    cfg = dict(cfg or {})
    if not any(k in cfg for k in PARAMS["properties"] if k != "min_n"):
        cfg["min_agreement"] = 0.95
    min_n = int(cfg.get("min_n", 1))
    stats = classification_stats(rows, labels)
    bc = stats.pairs["baseline~candidate"]
    bb = stats.pairs.get("baseline~baseline_repeat")
    gates: list[GateResult] = []
    if "min_agreement" in cfg:
        noise = ", ".join(f"{k} self-agreement {1 - v:.3f}" for k, v in stats.self_disagreement().items())
        flips = ", ".join(f"{s}→{t} ×{k}" for (s, t), k in bc.flip_counts().items())
        ids = ", ".join(f.case_id for f in bc.flips[:10]) + (" …" if len(bc.flips) > 10 else "")
        msg = (noise or "no self-replay (noise_floor: {repeats: 2} measures it)") + (
            f"; flips {flips} ({ids})" if bc.flips else "")
        gates.append(compare(suite, "classification.agreement", bc.rate, float(cfg["min_agreement"]), ">=",
                             bc.n, interval=bc.interval if bc.n else None, min_n=min_n, message=msg,
                             baseline=bb.rate if bb and bb.n else None,
                             baseline_interval=bb.interval if bb and bb.n else None, zero_tolerance=False))
    if "min_kappa" in cfg:
        msg = "" if bc.kappa is not None or not bc.n else "κ undefined: both endpoints used a single label"
        gates.append(compare(suite, "classification.kappa", bc.kappa, float(cfg["min_kappa"]), ">=", bc.n,
                             interval=bc.kappa_interval, min_n=min_n, message=msg,
                             baseline=bb.kappa if bb and bb.n else None,
                             baseline_interval=bb.kappa_interval if bb and bb.n else None, zero_tolerance=False))
    if "min_accuracy" in cfg:
        gold = [r for r in rows if r.gold is not None]
        base_ok = [r.baseline == r.gold for r in gold]
        msg = f"baseline accuracy {sum(base_ok) / len(gold):.3f} on the same cases" if gold else "no gold labels"
        gates.append(rate_gate(suite, "classification.accuracy", [r.candidate == r.gold for r in gold], base_ok,
                               float(cfg["min_accuracy"]), ">=", min_n=min_n, message=msg))
    if "noninferiority_margin" in cfg:
        gates.append(_noninferiority_gate(suite, rows, float(cfg["noninferiority_margin"]), min_n))
    if "max_noise_excess" in cfg:
        gates.append(_noise_gate(suite, rows, stats, float(cfg["max_noise_excess"]), min_n))
    if "critical_flips" in cfg:
        gates.append(_critical_gate(suite, rows, bc.flips, cfg["critical_flips"], min_n))
    if "max_perturbation_excess" in cfg:
        diff, ci, n, k_c, k_b = _paired_excess(rows, ("candidate", "candidate_perturbed"),
                                               ("baseline", "baseline_perturbed"))
        msg = (f"candidate flips under perturbation {k_c}/{n}, baseline {k_b}/{n}" if n
               else "no perturbed answers (suite.yaml perturbation: {seed: N})")
        gates.append(compare(suite, "classification.perturbation_excess", diff if n else None,
                             float(cfg["max_perturbation_excess"]), "<=", n, interval=ci if n else None,
                             min_n=min_n, message=msg, zero_tolerance=False))
    return gates
