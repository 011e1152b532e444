"""Did each endpoint answer at all? The first thing a cutover must not break.

A failed answer (fault class: timeout, 503, truncated stream …) is data, not an exception, so it is counted here
and shown by class; the gate is on the candidate's failure rate, with a Wilson interval so 20 clean cases are not
read as proof of a 0% failure rate.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from conformance.checks.result import CheckResult, Finding
from conformance.checks.stats import wilson_interval
from conformance.endpoints.base import Response
from conformance.gates import GateResult, compare


def answered(baseline: Response, candidate: Response) -> CheckResult:
    """Both endpoints produced an answer; when not, say which, with the fault class and attempts."""
    findings = []
    for role, resp in (("baseline", baseline), ("candidate", candidate)):
        if not resp.ok:
            findings.append(Finding(kind=str(resp.fault), message=f"{role} {resp.endpoint}: {resp.describe_failure()}"))
    return CheckResult(
        check="answered",
        passed=not findings,
        explanation=" and ".join(f"the {f.message.split(' ', 1)[0]} did not answer" for f in findings)
        or "both endpoints answered",
        findings=tuple(findings),
        details={"baseline_fault": baseline.fault, "candidate_fault": candidate.fault},
    )


def availability_gates(suite: str, baselines: Sequence[Response], candidates: Sequence[Response],
                       cfg: dict[str, float] | None = None) -> list[GateResult]:
    """``max_error_rate`` (default 0) on the candidate, and ``max_baseline_error_rate`` (default 0) on the
    baseline: a case the baseline (or its recording) could not answer was never compared, so a suite whose
    recordings went stale must not pass quietly. Messages list failures by fault class and case."""
    cfg = cfg or {}
    return [
        _rate_gate(suite, "availability.error_rate", "candidate", candidates, float(cfg.get("max_error_rate", 0.0))),
        _rate_gate(suite, "availability.baseline_error_rate", "baseline", baselines,
                   float(cfg.get("max_baseline_error_rate", 0.0))),
    ]


def _rate_gate(suite: str, gate: str, role: str, responses: Sequence[Response], threshold: float) -> GateResult:
    n = len(responses)
    failed = [r for r in responses if not r.ok]
    rate = len(failed) / n if n else None
    by_class = Counter(str(r.fault) for r in failed)
    detail = ", ".join(f"{k}×{v}" for k, v in sorted(by_class.items()))
    cases = ", ".join(r.case_id for r in failed[:8]) + (" …" if len(failed) > 8 else "")
    message = f"{role} failed {len(failed)}/{n}: {detail} ({cases})" if failed else ""
    return compare(suite, gate, rate, threshold, "<=", n,
                   interval=wilson_interval(len(failed), n) if n else None, message=message)
