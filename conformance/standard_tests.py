"""Ready-made suite tests. A suite module imports the ones its ``suite.yaml`` gates need::

    from conformance.standard_tests import test_answered, test_gates, test_label  # noqa: F401

pytest collects test functions from a module's namespace, so the import *is* the suite. Each test records its
result for the report and asserts through ``conformance_record`` (checks stay pure in ``conformance.checks``); a
suite that needs something else writes its own test next to these.
"""

from __future__ import annotations

from typing import Any

from conformance.asserts import assert_gates
from conformance.checks.availability import answered
from conformance.evaluate import (
    CaseView,
    SuiteData,
    consumer_parser_check,
    label_check,
    schema_check,
    suite_gates,
    terms_check,
    text_check,
    tool_call_check,
    views_from,
)
from conformance.suite import Suite


def test_answered(case_view: CaseView, conformance_record: Any) -> None:
    """Both endpoints answered (otherwise: the fault class and every attempt)."""
    conformance_record.verify(case_view.case, answered(case_view.baseline, case_view.candidate))


def test_terms(suite_data: SuiteData, case_view: CaseView, conformance_record: Any) -> None:
    """Legal terms: look-alike replacements (定金 → 订金), near-misses, required and forbidden terms."""
    conformance_record.verify(case_view.case, terms_check(suite_data, case_view))


def test_schema(suite_data: SuiteData, case_view: CaseView, conformance_record: Any) -> None:
    """JSON output: extraction (think/fences/prose), schema validation, structural diff vs the baseline."""
    conformance_record.verify(case_view.case, schema_check(suite_data, case_view))


def test_consumer_parser(suite_data: SuiteData, case_view: CaseView, conformance_record: Any) -> None:
    """The consuming system's own parser (suite.yaml ``consumer_parser``) gives the same result on both answers."""
    conformance_record.verify(case_view.case, consumer_parser_check(suite_data, case_view))


def test_tool_calls(suite_data: SuiteData, case_view: CaseView, conformance_record: Any) -> None:
    """Tool calls parsed from any format, compared with the baseline and the golden."""
    conformance_record.verify(case_view.case, tool_call_check(suite_data, case_view))


def test_label(suite_data: SuiteData, case_view: CaseView, conformance_record: Any) -> None:
    """The label (verdict, group, sentiment, intent) must not flip."""
    conformance_record.verify(case_view.case, label_check(suite_data, case_view))


def test_text(suite_data: SuiteData, case_view: CaseView, conformance_record: Any) -> None:
    """Free text: similarity vs the noise floor, language, refusals, required phrases."""
    conformance_record.verify(case_view.case, text_check(suite_data, case_view))


def test_gates(suite_data: SuiteData, suite_responses: dict[str, Any], conformance_record: Any) -> None:
    """Every gate suite.yaml declares, over all selected cases."""
    gates = suite_gates(suite_data, views_from(suite_responses))
    conformance_record.gates(gates)
    assert_gates(gates)


def test_latency(suite: Suite, latency_responses: dict[str, Any], conformance_record: Any) -> None:
    """Only with --latency: budgets and candidate/baseline ratios from the separate latency phase."""
    from conformance.checks.latency import latency_gates

    gates = latency_gates(suite.system, latency_responses["baseline"], latency_responses["candidate"],
                          suite.gates["latency"])
    conformance_record.gates(gates)
    assert_gates(gates)


def test_load(load_run: Any, conformance_record: Any) -> None:
    """Only with --load: per-stage error rates, latency and throughput ratios, and quality under load."""
    conformance_record.gates(load_run.gates)
    assert_gates(load_run.gates)
