"""The check registry: every built-in check, the cases it applies to, the gates it feeds and their parameters.

Why a registry (and no per-suite Python): a suite is ``suite.yaml`` + goldens. The plugin asks this module which
checks apply to each case and generates one item per (case, check); the evaluation computes each (case, check)
once and feeds the same results to the per-case items, the suite gates, the report and quality under load. A check
declares here, once:

- ``applies``: the cases it judges — by their own expectations (``expect.json_schema``, ``expect.label`` …) or
  their kind, or a suite-level switch (a glossary, a label set, ``gates.text``) — so one suite can mix JSON,
  label, tool and prose cases and each gate sees only its own;
- ``run``: the per-case function (pure; a :class:`~conformance.suitedata.CaseView` in, a CheckResult out);
- ``gates``: the suite gates computed from those results, judged as :mod:`conformance.gates` says;
- ``params``: the JSON Schema of ``gates.<key>`` in suite.yaml — suite.schema.json is generated from it
  (``python -m conformance.suiteschema``), so lint and editors know every key, type and bound.

A consuming team that needs something else writes a test module next to its suite.yaml; it gets the same
evaluation through the ``suite_evaluation`` and ``case_view`` fixtures.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from conformance.checks import availability, classification, phrases, schema, terms, text, toolcalls
from conformance.checks.availability import answered, availability_gates
from conformance.checks.extract import extract_json
from conformance.checks.glossary import Glossary
from conformance.checks.result import CheckResult
from conformance.checks.schema import check_schema, run_consumer_parser
from conformance.consumers import load_consumer_parser
from conformance.gates import GateResult
from conformance.goldens.model import Case
from conformance.response import Response
from conformance.suitedata import CaseView, SuiteData, answer_text

Results = Mapping[str, CheckResult]
Applies = Callable[[SuiteData, Case], bool]
Run = Callable[[SuiteData, CaseView], CheckResult]
Gates = Callable[[SuiteData, Results, Sequence[CaseView]], list[GateResult]]


@dataclass(frozen=True)
class CheckSpec:
    """One registered check (see the module docstring)."""

    name: str
    gate_key: str
    summary: str
    applies: Applies
    run: Run
    gates: Gates
    params: dict[str, Any]
    expect_keys: tuple[str, ...] = ()


# --- per case ------------------------------------------------------------------------------------------------


def _answered(data: SuiteData, v: CaseView) -> CheckResult:
    return answered(v.baseline, v.candidate)


def _terms(data: SuiteData, v: CaseView) -> CheckResult:
    """Legal-term drift (glossary look-alikes, near-misses) plus the case's required/forbidden terms; the
    baseline's own expectation failures and its drift against its repeat are kept for the gates."""
    glossary = data.glossary or Glossary(())  # required/forbidden terms need no glossary
    e = v.case.expect
    base, cand = answer_text(v.baseline), answer_text(v.candidate)
    result = terms.term_findings(base, cand, glossary, required=e.terms_required, forbidden=e.terms_forbidden)
    details = dict(result.details)
    if data.glossary is not None and v.baseline_repeat is not None and v.baseline_repeat.ok:
        floor = terms.term_findings(base, answer_text(v.baseline_repeat), glossary)
        details["noise_drift"] = sum(floor.details.get("drift", {}).values())
    return dataclasses.replace(result, details=details)


def _schema(data: SuiteData, v: CaseView) -> CheckResult:
    """JSON output: extraction (think/fences/prose), schema validation and the structural diff."""
    json_schema = data.schema(v.case)
    allow_prose = bool((data.config.get("extraction") or {}).get("allow_prose", False))
    base = extract_json(answer_text(v.baseline), v.baseline.reasoning, allow_prose=allow_prose)
    cand = extract_json(answer_text(v.candidate), v.candidate.reasoning, allow_prose=allow_prose)
    result = check_schema(base, cand, json_schema)
    if not cand.ok and v.candidate.finish_reason == "length":  # the usual cause: say it, it has a different fix
        result = dataclasses.replace(result, explanation="answer cut off at max_tokens (finish_reason=length); "
                                     + result.explanation)
    return result


def _consumer_parser(data: SuiteData, v: CaseView) -> CheckResult:
    """The consuming system's own post-processing (suite.yaml ``consumer_parser``, an allow-listed parser) run on
    both answers: the candidate must not make it raise or return something different."""
    spec = str(data.config["consumer_parser"])
    return run_consumer_parser(load_consumer_parser(spec), answer_text(v.baseline) or "",
                               answer_text(v.candidate) or "", name=spec)


def _parse_calls(r: Response, tools: list[dict[str, Any]]) -> toolcalls.ParseResult:
    return toolcalls.parse_tool_calls(answer_text(r), r.tool_calls if r.ok else None, tools,
                                      finish_reason=r.finish_reason)


def _tool_calls(data: SuiteData, v: CaseView) -> CheckResult:
    """Tool calls parsed from any format, compared with the golden's expected calls (else the baseline's). A
    golden expectation the baseline misses too is shared — not a migration regression — unless the candidate also
    broke the format."""
    tools = list(v.case.tools)
    expected = v.case.expect.tool_calls
    tier = str(data.gate_config("tool_calls").get("tier", "strict"))
    result = toolcalls.compare_tool_calls(_parse_calls(v.baseline, tools), _parse_calls(v.candidate, tools),
                                          tools=tools, expected=expected, tier=tier)  # type: ignore[arg-type]
    details = dict(result.details)
    details["baseline_match"] = bool(details.get("baseline_matches_expected", True)) if expected is not None \
        else True
    shared = (not result.passed and expected is not None and not details["baseline_match"]
              and not details.get("format_regressions"))
    if shared:
        details["shared_expectation_failures"] = 1
        return dataclasses.replace(result, passed=True, details=details,
                                   explanation=result.explanation + " (the baseline misses the expected calls too)")
    return dataclasses.replace(result, details=details)


def _label(data: SuiteData, v: CaseView) -> CheckResult:
    assert data.labels is not None
    row = classification.LabelRow.from_texts(
        v.case.id, data.labels, gold=v.case.expect.label, baseline=answer_text(v.baseline),
        candidate=answer_text(v.candidate),
        baseline_repeat=answer_text(v.baseline_repeat) if v.baseline_repeat else None,
        candidate_repeat=answer_text(v.candidate_repeat) if v.candidate_repeat else None,
        baseline_perturbed=answer_text(v.baseline_perturbed) if v.baseline_perturbed else None,
        candidate_perturbed=answer_text(v.candidate_perturbed) if v.candidate_perturbed else None,
    )
    critical = data.gate_config("classification").get("critical_flips", ())
    result = classification.compare_labels(row.baseline, row.candidate, row.gold, critical)
    return dataclasses.replace(result, details={**result.details, "row": dataclasses.asdict(row)})


def _text(data: SuiteData, v: CaseView) -> CheckResult:
    e = v.case.expect
    return text.text_drift(answer_text(v.baseline) or "", answer_text(v.candidate) or "", reference=e.reference,
                           baseline_repeat=answer_text(v.baseline_repeat) if v.baseline_repeat else None,
                           config=data.text_config)


def _phrases(data: SuiteData, v: CaseView) -> CheckResult:
    e = v.case.expect
    return phrases.phrase_check(answer_text(v.baseline) or "", answer_text(v.candidate) or "",
                                must_include=e.must_include, must_not_include=e.must_not_include)


# --- which cases -------------------------------------------------------------------------------------------------


def _kind_is(*kinds: str) -> Applies:
    return lambda data, case: data.kind(case) in kinds


def _applies_terms(data: SuiteData, case: Case) -> bool:
    e = case.expect
    return bool(e.terms_required or e.terms_forbidden) or (bool(data.config.get("glossary"))
                                                           and data.kind(case) != "tool")


def _applies_text(data: SuiteData, case: Case) -> bool:
    """Prose: cases with a reference text, and — when the suite declares ``gates.text`` — prose and label answers,
    and JSON answers embedded in prose (``extraction.allow_prose``: minutes with an action-item block)."""
    if case.expect.reference is not None:
        return True
    if "text" not in data.gates:
        return False
    kind = data.kind(case)
    return kind in ("text", "label") or (kind == "json" and bool((data.config.get("extraction") or {})
                                                                   .get("allow_prose")))


def _applies_label(data: SuiteData, case: Case) -> bool:
    return data.labels is not None and data.kind(case) == "label"


# --- suite gates -------------------------------------------------------------------------------------------------


def _availability_gates(data: SuiteData, results: Results, views: Sequence[CaseView]) -> list[GateResult]:
    return availability_gates(data.system, [v.baseline for v in views], [v.candidate for v in views],
                              data.gate_config("availability"))


def _label_gates(data: SuiteData, results: Results, views: Sequence[CaseView]) -> list[GateResult]:
    rows = [classification.LabelRow(**r.details["row"]) for r in results.values() if "row" in r.details]
    labels = data.labels.values if data.labels else ()
    return classification.classification_gates(data.system, rows, data.gate_config("classification"), labels)


CHECKS: tuple[CheckSpec, ...] = (
    CheckSpec("answered", "availability", "both endpoints answered (fault class and attempts when not)",
              lambda data, case: True, _answered, _availability_gates, availability.PARAMS),
    CheckSpec("terms", "terms", "legal-term look-alikes, near-misses, required and forbidden terms",
              _applies_terms, _terms, lambda d, r, v: terms.terms_gates(d.system, r, d.gate_config("terms")),
              terms.PARAMS, ("terms",)),
    CheckSpec("schema", "schema", "JSON extraction, JSON Schema, structural diff against the baseline",
              _kind_is("json"), _schema, lambda d, r, v: schema.schema_gates(d.system, r, d.gate_config("schema")),
              schema.PARAMS, ("json_schema",)),
    CheckSpec("consumer_parser", "consumer_parser", "the consuming system's own parser gives the same result",
              lambda data, case: bool(data.config.get("consumer_parser")) and data.kind(case) != "tool",
              _consumer_parser,
              lambda d, r, v: schema.consumer_parser_gates(d.system, r, d.gate_config("consumer_parser")),
              schema.CONSUMER_PARAMS),
    CheckSpec("tool_calls", "tool_calls", "tool calls parsed from any format, against the golden or the baseline",
              _kind_is("tool"), _tool_calls,
              lambda d, r, v: [toolcalls.tool_call_gate(d.system, r, d.gate_config("tool_calls"))],
              toolcalls.PARAMS, ("tool_calls",)),
    CheckSpec("label", "classification", "the label must not flip (agreement, κ, accuracy, critical flips)",
              _applies_label, _label, _label_gates, classification.PARAMS, ("label",)),
    CheckSpec("phrases", "phrases", "required and forbidden phrases (must_include / must_not_include)",
              lambda data, case: bool(case.expect.must_include or case.expect.must_not_include), _phrases,
              lambda d, r, v: phrases.phrase_gates(d.system, r, d.gate_config("phrases")), phrases.PARAMS,
              ("must_include", "must_not_include")),
    CheckSpec("text", "text", "free text: similarity vs the noise floor, reference CER, language, refusals",
              _applies_text, _text, lambda d, r, v: text.text_gates(d.system, r, d.text_config), text.PARAMS,
              ("reference",)),
)

BY_NAME: dict[str, CheckSpec] = {c.name: c for c in CHECKS}
BY_GATE: dict[str, CheckSpec] = {c.gate_key: c for c in CHECKS}


def applicable(data: SuiteData, case: Case) -> list[CheckSpec]:
    """The checks that judge ``case``, in registry order (``answered`` first)."""
    return [c for c in CHECKS if c.applies(data, case)]
