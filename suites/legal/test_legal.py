"""Legal drafting and contract review: the candidate must keep answering, with the same legal terms.

Thin by design: the plugin parametrizes ``case`` from goldens/legal and replays baseline and candidate once per run;
``conformance.evaluate`` picks the checks suite.yaml asks for; these tests only record and assert.
"""

from __future__ import annotations

from typing import Any

from conformance import assert_gates
from conformance.checks.availability import answered
from conformance.checks.latency import latency_gates
from conformance.evaluate import CaseView, SuiteData, suite_gates, terms_check, views_from
from conformance.suite import Suite


def test_answered(case_view: CaseView, conformance_record: Any) -> None:
    conformance_record.verify(case_view.case, answered(case_view.baseline, case_view.candidate))


def test_terms(suite_data: SuiteData, case_view: CaseView, conformance_record: Any) -> None:
    conformance_record.verify(case_view.case, terms_check(suite_data, case_view))


def test_gates(suite_data: SuiteData, suite_responses: dict[str, Any], conformance_record: Any) -> None:
    gates = suite_gates(suite_data, views_from(suite_responses))
    conformance_record.gates(gates)
    assert_gates(gates)


def test_latency(suite: Suite, latency_responses: dict[str, Any], conformance_record: Any) -> None:
    """Only with --latency: budgets and candidate/baseline ratios from the separate latency phase."""
    gates = latency_gates(suite.system, latency_responses["baseline"], latency_responses["candidate"],
                          suite.gates["latency"])
    conformance_record.gates(gates)
    assert_gates(gates)


def test_load(load_run: Any, conformance_record: Any) -> None:
    """Only with --load: per-stage error rates and the candidate/baseline throughput ratio."""
    conformance_record.gates(load_run.gates)
    assert_gates(load_run.gates)
