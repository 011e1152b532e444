"""llm-conformance: replay golden suites against a retiring and a candidate LLM endpoint and gate the cutover.

Public API (what suites and integrations import)::

    from conformance import Case, Response, CheckResult, GateResult, assert_check, assert_gates
"""

from __future__ import annotations

from conformance.checks.result import CheckResult, Finding
from conformance.errors import (
    ConfigError,
    ConformanceError,
    EndpointError,
    GoldenError,
    RecordingError,
    RetiredEndpoint,
)
from conformance.gates import GateResult
from conformance.goldens.model import Case
from conformance.response import Response

__all__ = [
    "Case",
    "CheckResult",
    "ConfigError",
    "ConformanceError",
    "EndpointError",
    "Finding",
    "GateResult",
    "GoldenError",
    "RecordingError",
    "Response",
    "RetiredEndpoint",
    "assert_check",
    "assert_gates",
]


def __getattr__(name: str) -> object:
    # assert helpers import pytest; keep `import conformance` light for the CLI.
    if name in ("assert_check", "assert_gates"):
        from conformance import asserts

        return getattr(asserts, name)
    raise AttributeError(name)
