"""The value every check returns.

Checks are pure: they take responses/expectations as plain data and return a :class:`CheckResult`.
Only the pytest layer turns a failed result into ``pytest.fail`` — so the same result can also be
aggregated into suite gates and written to reports without re-running anything.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Finding:
    """One concrete thing a consuming team can act on (a field that changed type, a drifted term...)."""

    kind: str
    message: str
    path: str = ""
    baseline: Any = None
    candidate: Any = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "message": self.message,
            "path": self.path,
            "baseline": self.baseline,
            "candidate": self.candidate,
        }


@dataclass(frozen=True)
class CheckResult:
    """Outcome of one check on one case.

    ``passed`` is the verdict, ``score`` an optional number the suite gates aggregate (a match rate,
    a similarity), ``explanation`` one human sentence, ``findings`` the details, ``details`` any
    extra JSON-serialisable data for the report.
    """

    check: str
    passed: bool
    explanation: str = ""
    score: float | None = None
    findings: tuple[Finding, ...] = ()
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "check": self.check,
            "passed": self.passed,
            "explanation": self.explanation,
            "score": self.score,
            "findings": [f.to_dict() for f in self.findings],
            "details": self.details,
        }
