"""Legal drafting and contract review: the candidate must keep answering, with the same legal terms.

Thin by design: the plugin parametrizes ``case`` from goldens/legal, replays baseline and candidate once per run
and hands each test their responses; the checks are pure functions from ``conformance.checks``.
"""

from __future__ import annotations

from typing import Any

from conformance import Case, Response, assert_check, assert_gates
from conformance.checks.availability import answered, availability_gates
from conformance.suite import Suite


def test_answered(case: Case, baseline: Response, candidate: Response, conformance_record: Any) -> None:
    result = answered(baseline, candidate)
    conformance_record.check(case, result)
    assert_check(result)


def test_gates(suite: Suite, suite_responses: dict[str, Any], conformance_record: Any) -> None:
    gates = availability_gates(suite.system, list(suite_responses["baseline"].values()),
                               list(suite_responses["candidate"].values()), suite.gates.get("availability"))
    conformance_record.gates(gates)
    assert_gates(gates)
