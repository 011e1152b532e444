"""Which checks apply to a case, and which gates to a suite — pure glue between suite.yaml and the checks.

Suite test modules stay thin: they ask this module for a check result per case and for the suite's gates, and
assert. Everything here is pure: the suite's glossary and JSON Schemas are read once by :class:`SuiteData` (the I/O
edge) and passed in as data.

A failed answer is never silently skipped by a gate: it enters as an unparseable document, an ``<invalid>`` label
or an empty text, so a candidate that fails does not look more accurate than one that answers.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from conformance.checks import classification, terms, text, toolcalls
from conformance.checks.availability import availability_gates
from conformance.checks.extract import extract_json
from conformance.checks.glossary import Glossary, load_glossary
from conformance.checks.result import CheckResult
from conformance.checks.schema import check_schema, load_consumer_parser, run_consumer_parser, schema_gates
from conformance.endpoints.base import Response
from conformance.gates import GateResult
from conformance.goldens.model import Case
from conformance.goldens.yamlsource import read_yaml
from conformance.suite import Suite


@dataclass(frozen=True)
class CaseView:
    """Everything known about one case in this run."""

    case: Case
    baseline: Response
    candidate: Response
    baseline_repeat: Response | None = None
    candidate_repeat: Response | None = None
    baseline_perturbed: Response | None = None
    candidate_perturbed: Response | None = None


def _text(resp: Response | None) -> str | None:
    return resp.text if resp is not None and resp.ok else None


@dataclass
class SuiteData:
    """A suite plus the files its checks need (glossary, JSON Schemas), each read once."""

    suite: Suite
    _schemas: dict[str, Any] = field(default_factory=dict)

    @property
    def config(self) -> Mapping[str, Any]:
        return self.suite.config

    @property
    def gates(self) -> dict[str, dict[str, Any]]:
        return self.suite.gates

    @cached_property
    def glossary(self) -> Glossary | None:
        rel = self.config.get("glossary")
        return load_glossary(read_yaml(self.suite.root / rel).data) if rel else None

    @cached_property
    def labels(self) -> classification.LabelSet | None:
        cfg = self.config.get("labels")
        return classification.LabelSet.from_config(cfg) if cfg else None

    @cached_property
    def text_config(self) -> text.TextConfig:
        return text.TextConfig.from_dict(self.gates.get("text"))

    def schema(self, case: Case) -> dict[str, Any] | None:
        rel = case.expect.json_schema
        if not rel:
            return None
        if rel not in self._schemas:
            self._schemas[rel] = json.loads((case.path.parent / rel).read_text(encoding="utf-8"))
        return self._schemas[rel]


# --- per case ------------------------------------------------------------------------------------------------


def terms_check(data: SuiteData, v: CaseView) -> CheckResult | None:
    """Legal-term drift (glossary look-alikes, near-misses) plus the case's required/forbidden terms."""
    if data.glossary is None and not (v.case.expect.terms_required or v.case.expect.terms_forbidden):
        return None
    glossary = data.glossary or Glossary(())  # required/forbidden terms need no glossary
    return terms.term_findings(_text(v.baseline), _text(v.candidate), glossary,
                               required=v.case.expect.terms_required, forbidden=v.case.expect.terms_forbidden)


def schema_check(data: SuiteData, v: CaseView) -> CheckResult | None:
    """JSON output: extraction (think/fences/prose), schema validation and the structural diff."""
    schema = data.schema(v.case)
    if schema is None and "schema" not in data.gates:
        return None
    allow_prose = bool((data.config.get("extraction") or {}).get("allow_prose", False))
    base = extract_json(_text(v.baseline), v.baseline.reasoning, allow_prose=allow_prose)
    cand = extract_json(_text(v.candidate), v.candidate.reasoning, allow_prose=allow_prose)
    result = check_schema(base, cand, schema)
    if not cand.ok and v.candidate.finish_reason == "length":  # the usual cause: say it, it has a different fix
        result = dataclasses.replace(result, explanation="answer cut off at max_tokens (finish_reason=length); "
                                     + result.explanation)
    return result


def consumer_parser_check(data: SuiteData, v: CaseView) -> CheckResult | None:
    """The consuming system's own post-processing (suite.yaml ``consumer_parser: pkg.module:function``) run on
    both answers: the candidate must not make it raise or return something different."""
    spec = data.config.get("consumer_parser")
    if not spec:
        return None
    return run_consumer_parser(load_consumer_parser(spec), _text(v.baseline) or "", _text(v.candidate) or "")


def tool_call_check(data: SuiteData, v: CaseView) -> CheckResult | None:
    if not v.case.tools and v.case.expect.tool_calls is None:
        return None
    tools = list(v.case.tools)

    def parse(r: Response) -> toolcalls.ParseResult:
        return toolcalls.parse_tool_calls(_text(r), r.tool_calls if r.ok else None, tools,
                                          finish_reason=r.finish_reason)

    return toolcalls.compare_tool_calls(parse(v.baseline), parse(v.candidate), tools=tools,
                                        expected=v.case.expect.tool_calls,
                                        tier=(data.gates.get("tool_calls") or {}).get("tier", "strict"))


def label_row(data: SuiteData, v: CaseView) -> classification.LabelRow | None:
    if data.labels is None or v.case.tools:
        return None
    return classification.LabelRow.from_texts(
        v.case.id, data.labels, gold=v.case.expect.label, baseline=_text(v.baseline), candidate=_text(v.candidate),
        baseline_repeat=_text(v.baseline_repeat) if v.baseline_repeat else None,
        candidate_repeat=_text(v.candidate_repeat) if v.candidate_repeat else None,
        baseline_perturbed=_text(v.baseline_perturbed) if v.baseline_perturbed else None,
        candidate_perturbed=_text(v.candidate_perturbed) if v.candidate_perturbed else None,
    )


def label_check(data: SuiteData, v: CaseView) -> CheckResult | None:
    row = label_row(data, v)
    if row is None:
        return None
    critical = (data.gates.get("classification") or {}).get("critical_flips", ())
    return classification.compare_labels(row.baseline, row.candidate, row.gold, critical)


def text_check(data: SuiteData, v: CaseView) -> CheckResult | None:
    if "text" not in data.gates or v.case.tools:
        return None
    e = v.case.expect
    return text.text_drift(_text(v.baseline) or "", _text(v.candidate) or "", reference=e.reference,
                           baseline_repeat=_text(v.baseline_repeat) if v.baseline_repeat else None,
                           must_include=e.must_include, must_not_include=e.must_not_include,
                           config=data.text_config)


CASE_CHECKS = {
    "terms": terms_check,
    "schema": schema_check,
    "consumer_parser": consumer_parser_check,
    "tool_calls": tool_call_check,
    "classification": label_check,
    "text": text_check,
}


# --- per suite -----------------------------------------------------------------------------------------------


def suite_gates(data: SuiteData, views: Sequence[CaseView]) -> list[GateResult]:
    """Every gate ``suite.yaml`` asks for, computed from all selected cases (availability always)."""
    name, g = data.suite.system, data.gates
    out = availability_gates(name, [v.baseline for v in views], [v.candidate for v in views], g.get("availability"))

    def results(check: str) -> dict[str, CheckResult]:
        fn = CASE_CHECKS[check]
        return {v.case.id: r for v in views if (r := fn(data, v)) is not None}

    if "terms" in g:
        out += terms.terms_gates(name, results("terms"), g["terms"])
    if "schema" in g:
        cfg = g["schema"]
        out += schema_gates(name, results("schema"), max_invalid_rate=float(cfg.get("max_invalid_rate", 0.0)),
                            min_n=int(cfg.get("min_n", 1)))
    if "tool_calls" in g:
        cfg = g["tool_calls"]
        out.append(toolcalls.tool_call_gate(name, results("tool_calls"),
                                            min_match_rate=float(cfg.get("min_match_rate", 1.0)),
                                            min_n=int(cfg.get("min_n", 1))))
    if "classification" in g:
        rows = [r for v in views if (r := label_row(data, v)) is not None]
        labels = data.labels.values if data.labels else ()
        out += classification.classification_gates(name, rows, g["classification"], labels)
    if "text" in g:
        out += text.text_gates(name, results("text"), data.text_config)
    return out


def views_from(responses: Mapping[str, Any]) -> list[CaseView]:
    """CaseViews from the plugin's ``suite_responses`` mapping."""
    def extra(key: str) -> dict[str, Response]:
        return responses.get(key) or {}

    rep_b, rep_c = extra("baseline_repeat"), extra("candidate_repeat")
    per_b, per_c = extra("baseline_perturbed"), extra("candidate_perturbed")
    return [CaseView(c, responses["baseline"][c.id], responses["candidate"][c.id], rep_b.get(c.id), rep_c.get(c.id),
                     per_b.get(c.id), per_c.get(c.id)) for c in responses["cases"]]
