"""Required and forbidden phrases: the golden's ``must_include`` / ``must_not_include``, on any kind of answer.

Why a check of its own: phrases pin down what a consuming team depends on in *any* answer — a document id a QA
answer must cite, the profit figure inside a finance JSON summary, an apology in a complaint reply. Bundled with
prose similarity they were only checked in suites that gated prose, and silently ignored in the JSON suites that
carried them. Matching folds width, case and punctuation (:func:`conformance.checks.envelope.contains_phrase`).

A phrase the baseline misses too (or a forbidden one it has too) is not a migration regression: kind ``*_shared``,
the case is marked xfail, the gates still count it — next to the baseline's own share on the same cases.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from conformance.checks.envelope import contains_phrase, missing_phrases, present_phrases
from conformance.checks.params import MARGIN, gate_params, rate
from conformance.checks.result import CheckResult, Finding
from conformance.gates import GateResult, rate_gate

PARAMS = gate_params("Required and forbidden phrases (expect.must_include / must_not_include).", {
    "max_missing_rate": rate("Highest share of cases with must_include where the candidate may miss a required "
                             "phrase, judged next to the baseline's share on the same cases.", 0.0),
    "max_forbidden_rate": rate("Highest share of cases with must_not_include where the candidate may say a "
                               "forbidden phrase, next to the baseline's share.", 0.0),
    "margin": MARGIN,
})


def phrase_check(baseline: str, candidate: str, *, must_include: Sequence[str] = (),
                 must_not_include: Sequence[str] = ()) -> CheckResult:
    """Per case: every required phrase present, no forbidden one; findings say whether the baseline had it."""
    findings: list[Finding] = []
    for p in missing_phrases(candidate, tuple(must_include)):
        had = contains_phrase(baseline, p)
        note = "the baseline had it" if had else "the baseline lacked it too"
        findings.append(Finding("missing_phrase" if had else "missing_phrase_shared",
                                f"required phrase {p!r} missing ({note})", path="must_include", candidate=p))
    for p in present_phrases(candidate, tuple(must_not_include)):
        had = contains_phrase(baseline, p)
        note = "the baseline had it too" if had else "new in the candidate"
        findings.append(Finding("forbidden_phrase_shared" if had else "forbidden_phrase",
                                f"forbidden phrase {p!r} present ({note})", path="must_not_include", candidate=p))
    shared = sum(f.kind.endswith("_shared") for f in findings)
    failing = [f for f in findings if not f.kind.endswith("_shared")]
    explanation = ("; ".join(f.message for f in findings[:3]) + (" …" if len(findings) > 3 else "")
                   if findings else "every required phrase present, no forbidden one")
    details: dict[str, Any] = {
        "must_include": list(must_include), "must_not_include": list(must_not_include),
        "missing": missing_phrases(candidate, tuple(must_include)),
        "baseline_missing": missing_phrases(baseline, tuple(must_include)),
        "forbidden": present_phrases(candidate, tuple(must_not_include)),
        "baseline_forbidden": present_phrases(baseline, tuple(must_not_include)),
        "shared_expectation_failures": shared,
    }
    return CheckResult("phrases", passed=not failing, explanation=explanation,
                       score=0.0 if findings else 1.0, findings=tuple(findings), details=details)


def phrase_gates(suite: str, results: Mapping[str, CheckResult], cfg: Mapping[str, Any] | None = None,
                 ) -> list[GateResult]:
    """``phrases.missing_rate`` and ``phrases.forbidden_rate`` over the cases that carry each expectation."""
    cfg = dict(cfg or {})
    gates = []
    for key, listed, gate, limit in (("must_include", "missing", "missing_rate", "max_missing_rate"),
                                     ("must_not_include", "forbidden", "forbidden_rate", "max_forbidden_rate")):
        having = {cid: r for cid, r in sorted(results.items()) if r.details.get(key)}
        if not having:
            continue
        cand = [bool(r.details[listed]) for r in having.values()]
        base = [bool(r.details[f"baseline_{listed}"]) for r in having.values()]
        hits = {cid: r.details[listed] for cid, r in having.items() if r.details[listed]}
        named = ", ".join(f"{cid} ({', '.join(repr(p) for p in v)})" for cid, v in list(hits.items())[:8])
        msg = (f"{sum(len(v) for v in hits.values())} phrase(s) {listed} in {len(hits)}/{len(having)} cases "
               f"(baseline: {sum(base)} cases): {named}" + (", …" if len(hits) > 8 else "")) if hits else ""
        gates.append(rate_gate(suite, f"phrases.{gate}", cand, base, float(cfg.get(limit, 0.0)), "<=",
                               min_n=int(cfg.get("min_n", 1)), margin=float(cfg.get("margin", 0.0)),
                               message=msg))
    return gates
