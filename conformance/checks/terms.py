"""Legal-term drift: did the candidate swap a legal term for a look-alike with a different legal effect?

Why this is its own check: in Chinese legal drafting one character changes the law — 定金 (a deposit that
triggers the double-return penalty) vs 订金 (a mere prepayment), 应当 (duty) vs 可以 (discretion), 以上
(inclusive) vs 超过 (exclusive). Free-text similarity scores such a swap as a 1-character edit; the legal
team counts it as an error (their limit: 0.1% of term occurrences). The glossary
(``goldens/<system>/glossary.yaml``, format and loading in :mod:`conformance.checks.glossary`, re-exported
here) lists each term with its **legally distinct look-alikes** and its **accepted variants**, and this
module reports, per case:

``required_missing`` / ``forbidden_present``
    the golden's ``expect.terms`` against the candidate (the message says when the baseline failed too).
``replaced``
    a glossary term the baseline used occurs fewer times in the candidate while one of its look-alikes occurs
    more often — the 定金 → 订金 swap. Look-alike relations are symmetric. Each lost and each new occurrence
    explains one swap at most. A swap *inside* a longer glossary term counts too (连带责任保证 → 按份责任保证, either
    way round), when the rest of the longer term is unchanged (:class:`~conformance.checks.glossary.Compound`);
    the drift is counted against the baseline's occurrence, so a term never drifts more often than it occurs.
``near_miss``
    a candidate span that is *almost* a glossary term (不可抗拒力 for 不可抗力) and is not in the baseline.

Counting is leftmost-longest over all glossary surfaces, so 撤销 inside 可撤销 is not counted as 撤销, and
连带责任保证 is one occurrence of itself, not also one of 连带责任 (连带责任人, not in the glossary, is one of
连带责任). Latin surfaces match whole words, inside compounds too ("jointly and severally liable"). Text is
folded (NFKC width folding, case folding, whitespace runs collapsed) with a map back to the original offsets,
so every finding carries the offsets and a ±10-character snippet of the *original* text.

Near misses are scored with ``rapidfuzz.fuzz.ratio`` (normalised Indel similarity) over windows: for CJK
terms, windows of len(term)−1, len(term), len(term)+1 characters, never shorter than 4 (three-character
windows are mostly real words: 不可抗 of 不可抗辩); for Latin terms, windows of k−1..k+1 words. Why not
``partial_ratio``: it aligns the shorter string inside the longer, so a window that contains the term or is
contained in it scores 100 (terminate in determinate, 不可抗 in 不可抗力) — containment, not closeness.
Thresholds (a glossary may override them with ``near_miss_threshold: {cjk: …, latin: …}``):

* CJK **85**: one inserted character fires (不可抗拒力 for 不可抗力: 88.9), and one deleted character in a
  term of ≥ 5 characters; a single *substitution* does not (法定代理人 for 法定代表人: 80) — substitutions
  usually make another real term, and the glossary's look-alike lists are the tool for those.
* Latin **91**: a dropped letter fires (indemnfy: 94); real neighbours do not (indemnity 88.9,
  determinate 90). A word that *starts with* the term is an inflection (terminated), not a near miss.

A near miss never fires on a window overlapping an exact glossary surface (term, variant or look-alike), nor
on text the baseline contains too.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pandas as pd
from rapidfuzz import fuzz

from conformance.checks.glossary import (
    DEFAULT_THRESHOLDS,
    LATIN_CHARS,
    Glossary,
    GlossaryEntry,
    Span,
    fold_term,
    fold_with_offsets,
    glossary_problems,
    is_latin,
    load_glossary,
    scan,
    surface_pattern,
    validate_glossary,
)
from conformance.checks.normalize import strip_punct
from conformance.checks.params import MARGIN, gate_params, rate
from conformance.checks.result import CheckResult, Finding
from conformance.checks.stats import wilson_interval
from conformance.gates import GateResult, compare, rate_gate

__all__ = [
    "DEFAULT_THRESHOLDS",
    "Glossary",
    "GlossaryEntry",
    "drift_table",
    "fold_with_offsets",
    "glossary_problems",
    "load_glossary",
    "near_misses",
    "term_findings",
    "terms_gates",
    "validate_glossary",
]

_LATIN_WORD = re.compile(rf"[{LATIN_CHARS}]+(?:['’\-][{LATIN_CHARS}]+)*")
_CJK_MIN_WINDOW = 4
_CJK_MIN_TERM = 3
_LATIN_MIN_TERM = 5


def _windows(folded: str, term: str, latin: bool) -> Iterable[tuple[int, int]]:
    """Candidate (start, end) windows in ``folded`` for ``term`` (see the module docstring)."""
    if latin:
        words = [(m.start(), m.end()) for m in _LATIN_WORD.finditer(folded)]
        k = len(term.split())
        for size in range(max(1, k - 1), k + 2):
            for i in range(len(words) - size + 1):
                yield words[i][0], words[i + size - 1][1]
        return
    chars = set(term)
    n = len(term)
    for start, ch in enumerate(folded):
        if ch in chars:
            for size in range(max(_CJK_MIN_WINDOW, n - 1), n + 2):
                if start + size <= len(folded):
                    yield start, start + size


def near_misses(text: str, glossary: Glossary, *, exclude: str = "") -> list[tuple[str, Span, float]]:
    """(term, span in ``text``, score) for every near miss of a glossary term; never raises.

    ``exclude`` (the baseline) suppresses near misses whose folded text it also contains.
    """
    folded, index = fold_with_offsets(text)
    covered = [False] * len(folded)
    for m in glossary.pattern.finditer(folded):
        covered[m.start():m.end()] = [True] * (m.end() - m.start())
    excl = fold_with_offsets(exclude)[0]
    hits: list[tuple[float, int, int, str]] = []
    for entry in glossary.near_miss_terms():
        term = fold_term(entry.term)
        latin = is_latin(term)
        if len(term) < (_LATIN_MIN_TERM if latin else _CJK_MIN_TERM):
            continue
        cutoff = glossary.threshold(latin)
        accepted = {fold_term(v) for v in (entry.term, *entry.variants)}
        for s, e in _windows(folded, term, latin):
            window = folded[s:e]
            if any(covered[s:e]) or window in accepted or (excl and window in excl):
                continue
            if latin and window.startswith(term):
                continue
            if not latin and strip_punct(window) != window:
                continue
            score = fuzz.ratio(term, window, score_cutoff=cutoff)
            if score:
                hits.append((score, s, e, entry.term))
    hits.sort(key=lambda h: (-h[0], h[1], h[2] - h[1]))
    taken: list[tuple[int, int]] = []
    out: list[tuple[str, Span, float]] = []
    for score, s, e, term in hits:
        if any(s < te and ts < e for ts, te in taken):
            continue
        taken.append((s, e))
        out.append((term, Span(folded[s:e], index[s], index[e - 1] + 1), score))
    return sorted(out, key=lambda h: h[1].start)


def _occurrences(text: str, term: str, glossary: Glossary, spans: Sequence[Span]) -> list[Span]:
    """Occurrences of an expectation term: glossary-aware when the glossary knows it, else plain search."""
    group = glossary.group(term)
    if group is not None:
        return [s for s in spans if glossary.group(s.surface) == group]
    return scan(text, surface_pattern((fold_term(term),))) if fold_term(term) else []


def _nearest(spans: Sequence[Span], target: Span, text_len: int, other_len: int) -> Span | None:
    """The span whose relative position best matches ``target``'s (aligns a replacement with its original)."""
    if not spans:
        return None
    rel = target.start / max(1, other_len)
    return min(spans, key=lambda s: abs(s.start / max(1, text_len) - rel))


def _expectations(base: str, cand: str, glossary: Glossary, b_spans: Sequence[Span], c_spans: Sequence[Span],
                  required: Sequence[str], forbidden: Sequence[str]) -> list[Finding]:
    out = []
    for term in required:
        if not _occurrences(cand, term, glossary, c_spans):
            had = _occurrences(base, term, glossary, b_spans)
            out.append(Finding("required_missing" if had else "required_missing_shared",
                               f"required term {term!r} is missing" + ("" if had else " (the baseline misses it too)"),
                               path=term,
                               baseline=had[0].describe(base) if had else None))
    for term in forbidden:
        got = _occurrences(cand, term, glossary, c_spans)
        if got:
            had = _occurrences(base, term, glossary, b_spans)
            out.append(Finding("forbidden_present_shared" if had else "forbidden_present",
                               f"forbidden term {term!r} appears {len(got)}×"
                               + (" (the baseline has it too)" if had else ""), path=term,
                               baseline=had[0].describe(base) if had else None,
                               candidate=got[0].describe(cand)))
    return out


def _replacements(base: str, cand: str, glossary: Glossary, b_spans: Sequence[Span],
                  c_spans: Sequence[Span]) -> tuple[list[Finding], Counter[str]]:
    """Term occurrences lost in the candidate while a look-alike's occurrences grew, paired up count-wise.

    Each lost and each gained occurrence explains at most one drift: two terms sharing a look-alike (A → C,
    B → C) are one drift when C appears once. What the whole surfaces leave unexplained is then tried as a swap
    inside a longer term (:func:`_compound_swaps`).
    """
    b_count = Counter(g for s in b_spans if (g := glossary.group(s.surface)))
    c_count = Counter(g for s in c_spans if (g := glossary.group(s.surface)))
    lost, gained = b_count - c_count, c_count - b_count
    out: list[Finding] = []
    drift: Counter[str] = Counter()
    for group in sorted(lost):
        for other, note in sorted(glossary.lookalikes_of(group).items()):
            k = min(lost[group], gained[other])
            if k <= 0:
                continue
            lost[group] -= k
            gained[other] -= k
            drift[group] += k
            c_at = next(s for s in c_spans if glossary.group(s.surface) == other)
            b_at = _nearest([s for s in b_spans if glossary.group(s.surface) == group], c_at, len(base),
                            len(cand))
            out.append(Finding("replaced", f"{group!r} replaced by look-alike {other!r} ({k}×): {note}",
                               path=group, baseline=b_at.describe(base) if b_at else None,
                               candidate=c_at.describe(cand)))
    swaps, swap_drift = _compound_swaps(base, cand, glossary, b_spans, c_spans, lost, gained)
    return out + swaps, drift + swap_drift


def _overlapping(spans: Sequence[Span], hit: Span, open_count: Counter[str], glossary: Glossary) -> Span | None:
    """The span under ``hit`` whose group still has an unexplained lost/gained occurrence (else None)."""
    return next((s for s in spans if s.start < hit.end and hit.start < s.end
                 and open_count[glossary.group(s.surface) or ""] > 0), None)


def _compound_swaps(base: str, cand: str, glossary: Glossary, b_spans: Sequence[Span], c_spans: Sequence[Span],
                    lost: Counter[str], gained: Counter[str]) -> tuple[list[Finding], Counter[str]]:
    """Look-alike swaps inside a longer glossary term (连带责任保证 → 按份责任保证), both ways round; consumes the
    ``lost``/``gained`` occurrences it explains. Drift is keyed by the group of the *baseline* occurrence, like
    every other drift, so a term never drifts more often than it occurs."""
    out: list[Finding] = []
    drift: Counter[str] = Counter()
    # The longer term in the baseline, its swapped form in the candidate (over an unexplained gained span).
    for group in sorted(lost):
        for c in glossary.compounds_of(group):
            pattern = surface_pattern((c.swapped,))
            hits, before = scan(cand, pattern), len(scan(base, pattern))
            for hit in hits[before:]:
                under = _overlapping(c_spans, hit, gained, glossary) if lost[group] > 0 else None
                if under is None:
                    continue
                lost[group] -= 1
                gained[glossary.group(under.surface) or ""] -= 1
                drift[group] += 1
                b_at = _nearest([s for s in b_spans if glossary.group(s.surface) == group], hit, len(base),
                                len(cand))
                out.append(Finding("replaced", f"{c.inner!r} inside {c.surface!r} replaced by look-alike "
                                   f"{c.lookalike!r} ({c.swapped!r}): {c.note}", path=group,
                                   baseline=b_at.describe(base) if b_at else None, candidate=hit.describe(cand)))
    # The swapped form in the baseline (over an unexplained lost span), the longer term in the candidate.
    for group in sorted(gained):
        for c in glossary.compounds_of(group):
            pattern = surface_pattern((c.swapped,))
            hits, after = scan(base, pattern), len(scan(cand, pattern))
            for hit in hits[after:]:
                under = _overlapping(b_spans, hit, lost, glossary) if gained[group] > 0 else None
                if under is None:
                    continue
                key = glossary.group(under.surface) or ""
                lost[key] -= 1
                gained[group] -= 1
                drift[key] += 1
                c_at = _nearest([s for s in c_spans if glossary.group(s.surface) == group], hit, len(cand),
                                len(base))
                out.append(Finding("replaced", f"{c.lookalike!r} inside {c.swapped!r} replaced by look-alike "
                                   f"{c.inner!r} ({c.surface!r}): {c.note}", path=key,
                                   baseline=hit.describe(base), candidate=c_at.describe(cand) if c_at else None))
    return out, drift


def term_findings(baseline_text: str | None, candidate_text: str | None, glossary: Glossary,
                  required: Sequence[str] = (), forbidden: Sequence[str] = ()) -> CheckResult:
    """Per-case legal-term check (see the module docstring); never raises on model output.

    ``score`` is this case's drift findings per baseline glossary-term occurrence; ``details`` carries the
    counts :func:`terms_gates` aggregates (``baseline_occurrences``, ``drift``, ``expectation_failures``, and —
    when the case has expectations — ``baseline_expectation_failures``: the same expectations on the baseline's
    answer, the yardstick of the expectation gate).
    """
    base, cand = baseline_text or "", candidate_text or ""
    b_spans, c_spans = scan(base, glossary.pattern), scan(cand, glossary.pattern)
    findings = _expectations(base, cand, glossary, b_spans, c_spans, required, forbidden)
    n_expect = len(findings)
    replaced, drift = _replacements(base, cand, glossary, b_spans, c_spans)
    findings += replaced
    for term, span, score in near_misses(cand, glossary, exclude=base):
        key = glossary.group(term) or term
        drift[key] += 1
        b_at = next((s for s in b_spans if glossary.group(s.surface) == key), None)
        findings.append(Finding("near_miss", f"{span.surface!r} looks like a misspelt {term!r} "
                                f"(similarity {score:.0f})", path=term, candidate=span.describe(cand),
                                baseline=b_at.describe(base) if b_at else None))
    occurrences = dict(sorted(Counter(g for s in b_spans if (g := glossary.group(s.surface))).items()))
    total = sum(occurrences.values())
    explanation = ("; ".join(f.message for f in findings[:3]) + (" …" if len(findings) > 3 else "")
                   if findings else f"no term drift in {total} glossary-term occurrence(s)")
    # An expectation the baseline fails too is not a migration regression: it is reported (and the pytest layer
    # marks the case xfail with the reason) but does not fail the case.
    shared = sum(f.kind.endswith("_shared") for f in findings)
    details: dict[str, Any] = {"glossary": bool(glossary.entries), "baseline_occurrences": occurrences,
                               "drift": dict(sorted(drift.items())), "expectation_failures": n_expect,
                               "shared_expectation_failures": shared}
    if required or forbidden:
        details["baseline_expectation_failures"] = len(_expectations(cand, base, glossary, c_spans, b_spans,
                                                                     required, forbidden))
    return CheckResult("terms", passed=len(findings) == shared, explanation=explanation,
                       score=sum(drift.values()) / max(1, total), findings=tuple(findings), details=details)


def drift_table(results: Mapping[str, CheckResult]) -> pd.DataFrame:
    """Per term: baseline occurrences, drifted occurrences, rate and the cases — most drifted first."""
    occ: Counter[str] = Counter()
    dr: Counter[str] = Counter()
    cases: dict[str, list[str]] = {}
    for cid, r in sorted(results.items()):
        occ.update(r.details.get("baseline_occurrences", {}))
        for term, k in r.details.get("drift", {}).items():
            dr[term] += k
            cases.setdefault(term, []).append(cid)
    terms = sorted(set(occ) | set(dr), key=lambda t: (-dr[t], -occ[t], t))
    return pd.DataFrame({"term": terms, "occurrences": [occ[t] for t in terms],
                         "drifted": [dr[t] for t in terms],
                         "rate": [dr[t] / occ[t] if occ[t] else float("nan") for t in terms],
                         "cases": [", ".join(cases.get(t, [])) for t in terms]},
                        columns=["term", "occurrences", "drifted", "rate", "cases"])


PARAMS = gate_params("Legal-term drift and the goldens' required/forbidden terms.", {
    "max_drift_rate": rate("Highest share of the baseline's glossary-term occurrences the candidate may swap for a "
                           "look-alike or misspell (the users' limit: 0.1%).", 0.001),
    "max_expectation_failure_rate": rate("Highest share of cases with expect.terms the candidate may fail, "
                                         "judged next to the baseline's share on the same cases.", 0.0),
    "margin": MARGIN,
})


def terms_gates(suite: str, results: Mapping[str, CheckResult], cfg: Mapping[str, Any] | None) -> list[GateResult]:
    """Suite gates from ``gates.terms`` (validated before the run; see :data:`PARAMS`).

    ``terms.drift_rate`` (when a glossary is in use): drift findings / baseline glossary-term occurrences, Wilson
    95% interval, the most drifted terms named; the baseline's drift against its own repeat (when
    ``noise_floor.repeats`` ≥ 2) stands next to it. ``terms.expectation_failure_rate`` (when cases carry
    ``expect.terms``): the share of those cases the candidate fails, next to the baseline's on the same cases.
    """
    cfg = dict(cfg or {})
    min_n = int(cfg.get("min_n", 1))
    gates: list[GateResult] = []
    glossary_results = {cid: r for cid, r in results.items() if r.details.get("glossary")}
    table = drift_table(glossary_results)
    if glossary_results:
        n, k = int(table["occurrences"].sum()), int(table["drifted"].sum())
        limit = float(cfg.get("max_drift_rate", 0.001))
        interval = wilson_interval(min(k, n), n) if n else None
        top = table[table["drifted"] > 0].head(5)
        parts = [f"{k} drifted of {n} glossary-term occurrences in {len(results)} cases"]
        if len(top):
            parts.append("most drifted: " + ", ".join(f"{r.term} ×{r.drifted} ({r.cases})"
                                                      for r in top.itertuples()))
        noise = [r.details["noise_drift"] for r in results.values() if "noise_drift" in r.details]
        base = base_int = None
        if noise and n:
            base, base_int = min(sum(noise), n) / n, wilson_interval(min(sum(noise), n), n)
            parts.append(f"baseline against its own repeat: {sum(noise)} drifted (noise floor)")
        if interval and k / n <= limit < interval[1] and limit > 0:
            parts.append(f"{n} occurrences only bound the rate below {interval[1]:.2%} — "
                         f"too few to demonstrate ≤ {limit:.2%}")
        gates.append(compare(suite, "terms.drift_rate", k / n if n else None, limit, "<=", n, min_n=min_n,
                             interval=interval, baseline=base, baseline_interval=base_int,
                             message="; ".join(parts) if n >= min_n else ""))
    expecting = {cid: r for cid, r in sorted(results.items()) if "baseline_expectation_failures" in r.details}
    if expecting:
        cand = [bool(r.details.get("expectation_failures")) for r in expecting.values()]
        base_bad = [bool(r.details["baseline_expectation_failures"]) for r in expecting.values()]
        failed = [cid for cid, bad in zip(expecting, cand, strict=True) if bad]
        msg = "failing: " + ", ".join(failed[:8]) + (" …" if len(failed) > 8 else "") if failed else ""
        gates.append(rate_gate(suite, "terms.expectation_failure_rate", cand, base_bad,
                               float(cfg.get("max_expectation_failure_rate", 0.0)), "<=", min_n=min_n,
                               margin=float(cfg.get("margin", 0.0)), message=msg))
    return gates
