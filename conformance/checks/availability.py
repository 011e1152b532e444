"""Did each endpoint answer at all? The first thing a cutover must not break.

A failed answer (fault class: timeout, 503, truncated stream …) is data, not an exception, so it is counted here
and shown by class; the gate is on the candidate's failure rate, with a Wilson interval so 20 clean cases are not
read as proof of a 0% failure rate.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from conformance.checks.params import MARGIN, gate_params, rate
from conformance.checks.result import CheckResult, Finding
from conformance.gates import GateResult, rate_gate
from conformance.response import Response, is_infrastructure

PARAMS = gate_params("Did every case get an answer? Judged next to the baseline's error rate on the same cases.", {
    "max_error_rate": rate("Highest share of cases the candidate may fail to answer (0: none may fail).", 0.0),
    "max_baseline_error_rate": rate("Highest share the baseline (or its recordings) may fail to answer; above it "
                                    "the comparison is incomplete (verdict baseline_fails, never the candidate's).",
                                    0.0),
    "margin": MARGIN,
})


def answered(baseline: Response, candidate: Response) -> CheckResult:
    """Both endpoints produced an answer; when not, say which, with the fault class and attempts.

    When both failed with the same fault class, it is reported as shared (the pytest layer marks the case xfail):
    the candidate did no worse than the baseline on it, and the suite gates still count it.
    """
    findings = []
    for role, resp in (("baseline", baseline), ("candidate", candidate)):
        if not resp.ok:
            findings.append(Finding(kind=str(resp.fault), message=f"{role} {resp.endpoint}: {resp.describe_failure()}"))
    shared = not baseline.ok and not candidate.ok and baseline.fault == candidate.fault
    return CheckResult(
        check="answered",
        passed=candidate.ok or shared,
        explanation=" and ".join(f"the {f.message.split(' ', 1)[0]} did not answer" for f in findings)
        or "both endpoints answered",
        findings=tuple(findings),
        details={"baseline_fault": baseline.fault, "candidate_fault": candidate.fault,
                 "shared_expectation_failures": int(shared),
                 "infrastructure": all(is_infrastructure(f.kind) for f in findings) if findings else False},
    )


def fault_counts(responses: Sequence[Response]) -> dict[str, int]:
    """How many answers are missing, by fault class."""
    return dict(sorted(Counter(str(r.fault) for r in responses if not r.ok).items()))


def availability_gates(suite: str, baselines: Sequence[Response], candidates: Sequence[Response],
                       cfg: Mapping[str, Any] | None = None) -> list[GateResult]:
    """``max_error_rate`` (default 0: zero tolerance) on the candidate, judged next to the baseline's error rate on
    the same cases, and ``max_baseline_error_rate`` (default 0) on the baseline: a case the baseline (or its
    recording) could not answer was never compared, so a suite whose recordings went stale must not pass quietly —
    but that is never the candidate's regression (verdict ``baseline_fails``). Both gates carry the missing answers
    by role and fault class (``faults``), from which the run outcome tells an outage from a regression."""
    cfg = cfg or {}
    faults = {"baseline": fault_counts(baselines), "candidate": fault_counts(candidates)}
    cand_bad = [not r.ok for r in candidates]
    base_bad = [not r.ok for r in baselines]
    gates = [
        rate_gate(suite, "availability.error_rate", cand_bad, base_bad, float(cfg.get("max_error_rate", 0.0)), "<=",
                  margin=float(cfg.get("margin", 0.0)), message=_message("candidate", candidates), faults=faults),
        rate_gate(suite, "availability.baseline_error_rate", base_bad, None,
                  float(cfg.get("max_baseline_error_rate", 0.0)), "<=", message=_message("baseline", baselines),
                  faults=faults),
    ]
    if gates[1].verdict == "regression":  # the baseline's own failures are never the candidate's regression
        gates[1] = replace(gates[1], verdict="baseline_fails")
    return gates


def _message(role: str, responses: Sequence[Response]) -> str:
    failed = [r for r in responses if not r.ok]
    if not failed:
        return ""
    detail = ", ".join(f"{k}×{v}" for k, v in fault_counts(responses).items())
    cases = ", ".join(r.case_id for r in failed[:8]) + (" …" if len(failed) > 8 else "")
    note = ("; infrastructure faults only: says nothing about the model (run outcome: infrastructure)"
            if all(r.infrastructure_fault for r in failed) else "")
    return f"{role} failed {len(failed)}/{len(responses)}: {detail} ({cases}){note}"
