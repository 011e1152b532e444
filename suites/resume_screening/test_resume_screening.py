"""Suite `resume_screening` — see suite.yaml for what it gates. Thin: checks come from ``conformance.evaluate``."""

from __future__ import annotations

from typing import Any

from conformance import assert_gates
from conformance.checks.availability import answered
from conformance.evaluate import CaseView, SuiteData, schema_check, suite_gates, views_from


def test_answered(case_view: CaseView, conformance_record: Any) -> None:
    conformance_record.verify(case_view.case, answered(case_view.baseline, case_view.candidate))


def test_schema(suite_data: SuiteData, case_view: CaseView, conformance_record: Any) -> None:
    """JSON output: extraction, schema validation, structural diff vs the baseline."""
    conformance_record.verify(case_view.case, schema_check(suite_data, case_view))


def test_gates(suite_data: SuiteData, suite_responses: dict[str, Any], conformance_record: Any) -> None:
    gates = suite_gates(suite_data, views_from(suite_responses))
    conformance_record.gates(gates)
    assert_gates(gates)
