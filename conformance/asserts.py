"""The only place results become pytest failures (checks return values; the pytest layer asserts)."""

from __future__ import annotations

from collections.abc import Iterable

import pytest

from conformance.checks.result import CheckResult
from conformance.gates import GateResult


def assert_check(result: CheckResult) -> None:
    """Fail the current test with the check's explanation and findings, phrased for the consuming team."""
    __tracebackhide__ = True
    if not result.passed:
        lines = [f"[{result.check}] {result.explanation}"]
        lines += [f"  - {f.message}" for f in result.findings[:20]]
        if len(result.findings) > 20:
            lines.append(f"  … and {len(result.findings) - 20} more")
        pytest.fail("\n".join(lines), pytrace=False)


def assert_gates(gates: Iterable[GateResult]) -> None:
    """Fail when any gate did not pass; list every gate (passing ones too) so the failure reads in context."""
    __tracebackhide__ = True
    gates = list(gates)
    if any(not g.passed for g in gates):
        pytest.fail("suite gates:\n" + "\n".join("  " + g.line() for g in gates), pytrace=False)
