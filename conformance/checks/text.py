"""Free-text drift: did the candidate's prose change in a way the consuming team will notice?

Most consuming systems generate prose (answers, minutes, weekly reports, PRDs), and "the new model sounds
different" is not something an owner can sign off. This check turns it into numbers and named findings:

- **similarity** to the baseline (character level and token set, :mod:`conformance.checks.similarity`) and,
  when the case has ``expect.reference``, the CER against that reference for *both* models — always shown
  next to the **noise floor** (the baseline against a repeat of itself), because a similarity is only
  alarming relative to how much the baseline varies on its own;
- the **envelope** (:mod:`conformance.checks.envelope`): length ratio, a Chinese ↔ non-Chinese language
  switch, a new refusal, Markdown structure (required/forbidden phrases are :mod:`conformance.checks.phrases`).

Multi-turn cases need nothing special: the response *is* the final assistant turn (earlier turns are part of
the prompt), so ``baseline`` and ``candidate`` are simply the two final turns' text.

:func:`text_drift` is the per-case check; :func:`text_gates` turns the per-case results into suite gates.
Thresholds live in ``suite.yaml`` under ``gates.text`` and are read by :meth:`TextConfig.from_dict`::

    gates:
      text:
        metric: char               # or token_set, for prose whose sentences may be reordered
        punctuation: false         # true: punctuation stops counting as drift (never for ASR post-processing)
        max_similarity_drop: 0.05  # median / p10 similarity may sit at most this far below the noise floor
        max_median_cer: 0.08       # vs expect.reference; unset: the baseline's median CER + max_cer_increase
        max_refusal_increase: 0.0  # share of cases that newly refuse
        extra_refusal_phrases: [恕我无法]
        fail_on: [language_switch, refusal, missing_phrase, forbidden_phrase, structure_change]
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from conformance.checks.envelope import (
    CJK_HIGH,
    CJK_LOW,
    DEFAULT_REFUSAL_PHRASES,
    REFUSAL_WINDOW,
    Envelope,
    describe,
    language_switched,
    length_ratio,
    structure_changes,
)
from conformance.checks.params import gate_params, integer, number, rate
from conformance.checks.result import CheckResult, Finding
from conformance.checks.similarity import METRICS, Metric, compare_texts, noise_floor
from conformance.checks.stats import bootstrap_percentile_ci, percentile, wilson_interval
from conformance.gates import GateResult, compare

#: Findings that fail a case by default: each means the consuming team's users see a different product.
#: ``structure_change``, ``length_change`` and ``similarity_drop`` are reported but gated only when a suite
#: asks (``fail_on``): models legitimately vary in list length and wording, and the suite gates already
#: watch similarity in aggregate.
DEFAULT_FAIL_ON: frozenset[str] = frozenset({"language_switch", "refusal"})

_LANG = {"cjk": "Chinese (CJK)", "non_cjk": "a non-CJK language (e.g. English)"}


@dataclass(frozen=True)
class TextConfig:
    """Normalisation, envelope thresholds and suite gates of the text check (``gates.text`` in suite.yaml)."""

    metric: Metric = "char"
    punctuation: bool = False
    casefold: bool = True
    max_similarity_drop: float = 0.05
    max_median_cer: float | None = None
    max_cer_increase: float = 0.01
    max_refusal_increase: float = 0.0
    max_language_switches: int = 0
    refusal_phrases: tuple[str, ...] = DEFAULT_REFUSAL_PHRASES
    refusal_window: int = REFUSAL_WINDOW
    cjk_high: float = CJK_HIGH
    cjk_low: float = CJK_LOW
    min_length_ratio: float = 0.5
    max_length_ratio: float = 2.0
    fail_on: frozenset[str] = field(default=DEFAULT_FAIL_ON)
    min_n: int = 1

    def __post_init__(self) -> None:
        if self.metric not in METRICS:
            raise ValueError(f"text metric must be one of {list(METRICS)}, got {self.metric!r}")
        if not 0.0 <= self.cjk_low < self.cjk_high <= 1.0:
            raise ValueError(f"need 0 <= cjk_low < cjk_high <= 1, got {self.cjk_low}, {self.cjk_high}")
        if not 0.0 <= self.min_length_ratio <= self.max_length_ratio:
            raise ValueError(f"need 0 <= min_length_ratio <= max_length_ratio, got {self.min_length_ratio}, "
                             f"{self.max_length_ratio}")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> TextConfig:
        """Build from ``gates.text``; an unknown key is an error naming the known ones (typos must not
        silently fall back to a default threshold)."""
        data = dict(data or {})
        extra = tuple(data.pop("extra_refusal_phrases", ()) or ())
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            allowed = sorted(known | {"extra_refusal_phrases"})
            raise ValueError(f"unknown gates.text key(s) {unknown}; known: {allowed}")
        data["refusal_phrases"] = tuple(data.get("refusal_phrases", DEFAULT_REFUSAL_PHRASES)) + extra
        if "fail_on" in data:
            data["fail_on"] = frozenset(data["fail_on"])
        return cls(**data)


def _clip(text: str, n: int = 60) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= n else flat[: n - 1] + "…"


def _envelope_findings(baseline: str, candidate: str, b: Envelope, c: Envelope, ratio: float | None,
                       cfg: TextConfig) -> list[Finding]:
    out: list[Finding] = []
    if language_switched(b.script, c.script):
        msg = (f"candidate answered in {_LANG[c.script]} where the baseline answered in {_LANG[b.script]} "
               f"(CJK share of letters {b.cjk_share:.2f} → {c.cjk_share:.2f})")
        out.append(Finding("language_switch", msg, path="script", baseline=b.cjk_share,
                           candidate=c.cjk_share))
    if c.refusal and not b.refusal:
        msg = (f"candidate refuses ({c.refusal!r}: “{_clip(candidate)}”) "
               f"where the baseline answered (“{_clip(baseline)}”)")
        out.append(Finding("refusal", msg, path="refusal", candidate=c.refusal))
    elif b.refusal and not c.refusal:
        msg = f"baseline refused ({b.refusal!r}); the candidate answers (“{_clip(candidate)}”)"
        out.append(Finding("refusal_lifted", msg, path="refusal", baseline=b.refusal))
    out += structure_changes(b.markdown, c.markdown)
    if ratio is not None and not cfg.min_length_ratio <= ratio <= cfg.max_length_ratio:
        out.append(Finding("length_change", f"candidate is {ratio:.2f}× the baseline's length "
                                            f"({b.length} → {c.length} characters)",
                           path="length", baseline=b.length, candidate=c.length))
    return out


def text_drift(baseline: str, candidate: str, *, reference: str | None = None,
               baseline_repeat: str | None = None, config: TextConfig) -> CheckResult:
    """The per-case free-text check: candidate vs baseline (and vs ``reference``), next to the noise floor.

    ``score`` is the similarity to the baseline under ``config.metric``; the case fails on any finding whose
    kind is in ``config.fail_on``. ``details`` carries every number the suite gates and the report need.
    """
    norm = {"punctuation": config.punctuation, "casefold": config.casefold}
    vs_base = compare_texts(baseline, candidate, **norm)
    floor = noise_floor(baseline, baseline_repeat, **norm)
    vs_ref = compare_texts(reference, candidate, **norm) if reference is not None else None
    base_ref = compare_texts(reference, baseline, **norm) if reference is not None else None
    b_env, c_env = (describe(t, refusal_phrases=config.refusal_phrases, refusal_window=config.refusal_window,
                             cjk_high=config.cjk_high, cjk_low=config.cjk_low) for t in (baseline, candidate))
    ratio = length_ratio(baseline, candidate)

    findings = _envelope_findings(baseline, candidate, b_env, c_env, ratio, config)
    sim = vs_base.get(config.metric)
    floor_value = floor.get(config.metric) if floor is not None else 1.0
    if sim < floor_value - config.max_similarity_drop:
        msg = (f"{config.metric} similarity {sim:.3f} is below the noise floor {floor_value:.3f} "
               f"by more than {config.max_similarity_drop:g}")
        findings.append(Finding("similarity_drop", msg, path="similarity", baseline=floor_value,
                                candidate=sim))
    if vs_ref is not None and base_ref is not None and vs_ref.cer > base_ref.cer + config.max_cer_increase:
        findings.append(Finding("reference_drift", f"CER vs reference {base_ref.cer:.3f} → {vs_ref.cer:.3f}",
                                path="reference", baseline=base_ref.cer, candidate=vs_ref.cer))

    failing = [f for f in findings if f.kind in config.fail_on]
    floor_txt = f"{floor_value:.3f}" + ("" if floor is not None else " assumed")
    summary = f"{config.metric} similarity {sim:.3f} (noise floor {floor_txt}), CER {vs_base.cer:.3f}"
    if vs_ref is not None:
        summary += f", CER vs reference {vs_ref.cer:.3f}"
    explanation = summary
    if failing:
        explanation = "; ".join(f.message for f in failing[:3]) + (" …" if len(failing) > 3 else "")
    details: dict[str, Any] = {
        "metric": config.metric,
        "similarity": vs_base.to_dict(),
        "noise_floor": floor.to_dict() if floor is not None else None,
        "reference": None if vs_ref is None or base_ref is None
        else {"candidate": vs_ref.to_dict(), "baseline": base_ref.to_dict()},
        "length_ratio": ratio,
        "baseline": b_env.to_dict(),
        "candidate": c_env.to_dict(),
        "language_switch": any(f.kind == "language_switch" for f in findings),
        "refusal": {"baseline": b_env.refusal is not None, "candidate": c_env.refusal is not None},
        "baseline_language_switch": (floor is not None and baseline_repeat is not None
                                     and language_switched(b_env.script, describe(baseline_repeat).script)),
    }
    return CheckResult("text", passed=not failing, explanation=explanation, score=sim,
                       findings=tuple(findings), details=details)


def _ids(items: list[str], n: int = 8) -> str:
    return ", ".join(items[:n]) + (", …" if len(items) > n else "")


PARAMS = gate_params("Free text: similarity to the baseline next to its noise floor, reference CER, language, "
                     "refusals.", {
    "metric": {"enum": list(METRICS), "default": "char",
               "description": "char: character-level similarity; token_set: for prose whose sentences may be "
                              "reordered."},
    "punctuation": {"type": "boolean", "default": False,
                    "description": "true: punctuation stops counting as drift (never for ASR post-processing)."},
    "casefold": {"type": "boolean", "default": True},
    "max_similarity_drop": rate("How far the median / p10 similarity may sit below the noise floor.", 0.05),
    "max_median_cer": number("Absolute limit on the median CER against expect.reference; unset: the baseline's "
                             "median CER plus max_cer_increase."),
    "max_cer_increase": number("Highest increase of the median CER against expect.reference over the baseline's.",
                               default=0.01),
    "max_refusal_increase": rate("Highest share of cases that newly refuse (0: none may).", 0.0),
    "max_language_switches": integer("Cases that may switch language (0: none may).", default=0),
    "refusal_phrases": {"type": "array", "items": {"type": "string", "minLength": 1}},
    "extra_refusal_phrases": {"type": "array", "items": {"type": "string", "minLength": 1}},
    "refusal_window": integer("Characters at the start of an answer searched for a refusal.", minimum=1),
    "cjk_high": rate("CJK share of letters at or above which an answer is Chinese."),
    "cjk_low": rate("CJK share of letters at or below which an answer is not Chinese."),
    "min_length_ratio": number("Shortest candidate/baseline length ratio before a length_change finding."),
    "max_length_ratio": number("Longest candidate/baseline length ratio before a length_change finding."),
    "fail_on": {"type": "array", "uniqueItems": True,
                "items": {"enum": ["language_switch", "refusal", "structure_change", "length_change",
                                   "similarity_drop", "reference_drift", "refusal_lifted"]},
                "description": "Finding kinds that fail a case (default: language_switch, refusal)."},
})


def _similarity_gates(suite: str, scored: dict[str, CheckResult], cfg: TextConfig) -> list[GateResult]:
    """Median and p10 similarity to the baseline, each with a bootstrap interval, against the noise floor (the
    baseline against its own repeat) minus ``max_similarity_drop``."""
    metric, n = cfg.metric, len(scored)
    sims = {cid: float(r.details["similarity"][metric]) for cid, r in scored.items()}
    floors = {cid: float(r.details["noise_floor"][metric])
              for cid, r in scored.items() if r.details.get("noise_floor")}
    if floors:
        values = list(floors.values())
        floor_med, floor_p10 = percentile(values, 50) or 1.0, percentile(values, 10) or 1.0
        note = f"from {len(floors)}/{n} baseline repeats"
    else:
        floor_med = floor_p10 = 1.0
        note = "not measured: no baseline repeats, assumed 1.0"
    below = sorted((cid for cid in sims if sims[cid] < floors.get(cid, 1.0) - cfg.max_similarity_drop),
                   key=lambda cid: sims[cid])
    worst = below or sorted(sims, key=lambda cid: sims[cid])[:3]
    label = "below their noise floor" if below else "lowest"
    cases = ", ".join(f"{cid} ({sims[cid]:.3f} vs floor {floors.get(cid, 1.0):.3f})" for cid in worst[:8])
    tail = (f"; {len(below)}/{n} cases {label}: " if below else f"; {label}: ") + cases
    tail += ", …" if len(worst) > 8 else ""
    values = list(sims.values())
    gates = []
    for gate, q, floor in (("similarity_median", 50, floor_med), ("similarity_p10", 10, floor_p10)):
        stat = percentile(values, q)
        msg = "" if stat is None else f"{metric} similarity {stat:.3f} vs noise floor {floor:.3f} ({note})" + tail
        gates.append(compare(suite, f"text.{gate}", stat, floor - cfg.max_similarity_drop, ">=", n,
                             interval=bootstrap_percentile_ci(values, q) if n else None, min_n=cfg.min_n,
                             message=msg, zero_tolerance=False))
    return gates


def _reference_gate(suite: str, scored: dict[str, CheckResult], cfg: TextConfig) -> GateResult | None:
    """Median CER against ``expect.reference``: absolute (``max_median_cer``, the baseline's median CER next to
    it) or relative — the median paired increase over the baseline's CER, at most ``max_cer_increase``."""
    refs = {cid: r.details["reference"] for cid, r in scored.items() if r.details.get("reference")}
    if not refs:
        if cfg.max_median_cer is None:
            return None
        return compare(suite, "text.reference_cer", None, cfg.max_median_cer, "<=", 0, min_n=cfg.min_n,
                       message="max_median_cer is set but no case has expect.reference")
    ids = sorted(refs)
    cand = [float(refs[cid]["candidate"]["cer"]) for cid in ids]
    base = [float(refs[cid]["baseline"]["cer"]) for cid in ids]
    med_c, med_b = percentile(cand, 50), percentile(base, 50)
    worst = sorted(ids, key=lambda cid: (-(refs[cid]["candidate"]["cer"] - refs[cid]["baseline"]["cer"]), cid))[:5]
    msg = (f"median CER vs reference {med_c:.3f} (baseline {med_b:.3f}); largest increases: "
           + ", ".join(f"{cid} ({refs[cid]['baseline']['cer']:.3f} → {refs[cid]['candidate']['cer']:.3f})"
                       for cid in worst))
    if cfg.max_median_cer is not None:
        return compare(suite, "text.reference_cer", med_c, cfg.max_median_cer, "<=", len(ids), min_n=cfg.min_n,
                       interval=bootstrap_percentile_ci(cand, 50), baseline=med_b,
                       baseline_interval=bootstrap_percentile_ci(base, 50), message=msg, zero_tolerance=False)
    increase = [c - b for c, b in zip(cand, base, strict=True)]
    return compare(suite, "text.reference_cer_increase", percentile(increase, 50), cfg.max_cer_increase, "<=",
                   len(ids), min_n=cfg.min_n, interval=bootstrap_percentile_ci(increase, 50), message=msg,
                   zero_tolerance=False)


def _envelope_gates(suite: str, scored: dict[str, CheckResult], cfg: TextConfig) -> list[GateResult]:
    """New refusals (share of cases, paired: a refusal lifted elsewhere cannot hide a new one) and language
    switches, each next to what the baseline does against its own repeat where measured."""
    n = len(scored)
    refuse_b = [cid for cid, r in scored.items() if r.details["refusal"]["baseline"]]
    refuse_c = [cid for cid, r in scored.items() if r.details["refusal"]["candidate"]]
    new = [cid for cid in refuse_c if cid not in refuse_b]
    msg = f"candidate refuses {len(refuse_c)}/{n}, baseline {len(refuse_b)}/{n}"
    if new:
        msg += "; newly refusing: " + _ids([f"{cid} ({scored[cid].details['candidate']['refusal']!r})"
                                             for cid in new])
    gates = [compare(suite, "text.refusal_increase", len(new) / n if n else None, cfg.max_refusal_increase,
                     "<=", n, min_n=cfg.min_n, interval=wilson_interval(len(new), n) if n else None,
                     message=msg)]
    switched = [cid for cid, r in scored.items() if r.details["language_switch"]]
    noisy = [cid for cid, r in scored.items() if r.details.get("baseline_language_switch")]
    names = [f"{cid} (CJK share {scored[cid].details['baseline']['cjk_share']:.2f} → "
             f"{scored[cid].details['candidate']['cjk_share']:.2f})" for cid in switched]
    msg = f"{len(switched)}/{n} cases switched language: {_ids(names)}" if switched else ""
    if noisy:
        msg += f"; the baseline switches against its own repeat in {len(noisy)}/{n}"
    gates.append(compare(suite, "text.language_switches", float(len(switched)) if n else None,
                         float(cfg.max_language_switches), "<=", n, min_n=cfg.min_n, message=msg,
                         baseline=float(len(noisy)) if noisy else None))
    return gates


def text_gates(suite: str, results: Mapping[str, CheckResult], cfg: TextConfig) -> list[GateResult]:
    """Suite gates from :func:`text_drift` results keyed by case id.

    Always: median and p10 similarity vs the noise floor, the share of cases that newly refuse, language
    switches. When cases carry ``expect.reference``: the CER against it. Results without text details
    (a case whose request failed) are left out of every denominator.
    """
    scored = {cid: r for cid, r in sorted(results.items()) if "similarity" in r.details}
    gates = _similarity_gates(suite, scored, cfg)
    ref = _reference_gate(suite, scored, cfg)
    if ref is not None:
        gates.append(ref)
    return gates + _envelope_gates(suite, scored, cfg)
