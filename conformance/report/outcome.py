"""Was a failed run the candidate's fault or the infrastructure's? One word for the nightly job.

Why: a red nightly means very different things to the on-call engineer. "The candidate drifts on legal terms"
blocks the cutover and goes to the model team; "the baseline endpoint timed out" means re-run (or fix the
network) and says nothing about the candidate. :func:`classify_exit` returns

``"pass"``
    nothing failed.
``"infrastructure_failure"``
    preflight failed, the run did not complete (pytest exit status other than 0/1), or *every* failed test
    failed because an endpoint did not answer (a fault class of :data:`INFRA_FAULTS`, a pytest-timeout, or an
    availability gate whose failures are all such faults).
``"gate_failure"``
    anything else: at least one failure is about what the candidate answered.

``client_error`` (the candidate refused the request: an unsupported parameter) is deliberately *not*
infrastructure — consumers sending that request would break after the cutover. Recording problems
(missing/stale recordings) are infrastructure: the comparison could not be made, nothing was learnt about
the candidate.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

Outcome = Literal["pass", "gate_failure", "infrastructure_failure"]

#: Endpoint fault classes (see ``conformance.endpoints.base.Fault``) that say nothing about answer quality.
INFRA_FAULTS: frozenset[str] = frozenset({
    "timeout", "connection", "unavailable_503", "server_error", "rate_limited", "truncated_stream", "auth",
    "bad_response", "recording_missing", "recording_stale", "recording_params",
})

#: Suggested process exit codes: 75 is sysexits' EX_TEMPFAIL ("try again later"), which CI can retry on.
EXIT_CODES: dict[str, int] = {"pass": 0, "gate_failure": 1, "infrastructure_failure": 75}

_FAULT_WORD = re.compile(r"\b(" + "|".join(sorted(INFRA_FAULTS | {"client_error"})) + r")\b")
_PYTEST_TIMEOUT = re.compile(r"Timeout \(>[\d.]+s\) from pytest-timeout")


def _faults_in(text: str) -> set[str]:
    return set(_FAULT_WORD.findall(text or ""))


def _gate_is_infra(gate: Mapping[str, Any], suite_faults: set[str]) -> bool:
    """A non-passing gate that only reflects endpoints not answering."""
    if gate.get("verdict") == "pass":
        return True
    if str(gate.get("gate", "")).startswith("availability"):
        named = _faults_in(str(gate.get("message", "")))
        return named <= INFRA_FAULTS if named else not (suite_faults - INFRA_FAULTS)
    # Too few samples / an error computing the statistic, in a suite whose endpoints were faulting.
    return gate.get("verdict") in ("insufficient", "error") and bool(suite_faults) and suite_faults <= INFRA_FAULTS


def _row_is_infra(row: Mapping[str, Any], suite_faults: set[str]) -> bool:
    props = [p for p in row.get("props") or () if isinstance(p, Mapping)]
    faults = {str(p["fault"]) for p in props if p.get("kind") == "response" and p.get("fault")}
    if faults:
        return faults <= INFRA_FAULTS
    gates = [p for p in props if p.get("kind") == "gate"]
    if gates:
        return all(_gate_is_infra(g, suite_faults) for g in gates)
    message = str(row.get("message") or "")
    if not props and _PYTEST_TIMEOUT.search(message):
        return True  # the test's fixture waited past pytest-timeout for the endpoints
    named = _faults_in(message)
    return bool(named) and named <= INFRA_FAULTS


def _suite_faults(rows: Iterable[Mapping[str, Any]]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = defaultdict(set)
    for r in rows:
        for p in r.get("props") or ():
            # ``type(p) is dict`` first: the ABC check costs more than the rest of this line, on every prop
            if (type(p) is dict or isinstance(p, Mapping)) and p.get("kind") == "response" and p.get("fault"):
                out[str(p.get("suite") or r.get("suite"))].add(str(p["fault"]))
    return out


def failure_breakdown(rows: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, int]]:
    """Per suite: how many failed tests were ``infrastructure`` vs ``regression`` — worth storing in
    ``summary.json`` (``suites.<name>.failures``) so :func:`classify_exit` can decide from the summary alone."""
    faults = _suite_faults(rows)
    out: dict[str, Counter[str]] = defaultdict(Counter)
    for r in rows:
        if r.get("outcome") == "failed":
            suite = str(r.get("suite"))
            out[suite]["infrastructure" if _row_is_infra(r, faults.get(suite, set())) else "regression"] += 1
    return {k: {"infrastructure": v["infrastructure"], "regression": v["regression"]} for k, v in sorted(out.items())}


def preflight_failed(summary: Mapping[str, Any]) -> list[str]:
    """Endpoints whose preflight failed (``unchecked`` is not a failure: the server has no /v1/models)."""
    return sorted(name for name, p in (summary.get("preflight") or {}).items()
                  if isinstance(p, Mapping) and p.get("ok") is False and p.get("status") != "unchecked")


def _summary_only(suites: Mapping[str, Any]) -> Outcome:
    """Best effort without rows: a suite's failures are infrastructure when it stored a breakdown saying so, or
    when its only non-passing gates are infrastructure-like and every fault it saw is an infrastructure fault."""
    for s in suites.values():
        if not (s.get("tests") or {}).get("failed"):
            continue
        breakdown = s.get("failures")
        if isinstance(breakdown, Mapping):
            if breakdown.get("regression"):
                return "gate_failure"
            continue
        faults = {k.split(":", 1)[-1] for k in (s.get("faults") or {})}
        if not faults or not faults <= INFRA_FAULTS:
            return "gate_failure"
        if not all(_gate_is_infra(g, faults) for g in s.get("gates") or ()):
            return "gate_failure"
    return "infrastructure_failure"


def classify_exit(summary: Mapping[str, Any], rows: Sequence[Mapping[str, Any]] | None = None, *,
                  breakdown: Mapping[str, Mapping[str, int]] | None = None) -> Outcome:
    """``"pass"``, ``"gate_failure"`` or ``"infrastructure_failure"`` for a run (see the module docstring).

    ``rows`` (``results.jsonl``) makes the decision exact, per failed test; without them the summary's
    ``failures`` breakdown (:func:`failure_breakdown`) is used, or a per-suite approximation. ``breakdown``:
    :func:`failure_breakdown` of ``rows`` when the caller has computed it already (it walks every prop).
    """
    if not summary.get("suites") and summary.get("exitstatus") is None:
        return "infrastructure_failure"  # an empty or gutted summary.json: nothing in it says the run passed
    if preflight_failed(summary):
        return "infrastructure_failure"
    status = summary.get("exitstatus")
    suites = summary.get("suites") or {}
    failed = sum(int((s.get("tests") or {}).get("failed", 0)) for s in suites.values())
    if status not in (None, 0, 1):
        return "infrastructure_failure"  # interrupted, internal error, usage error, nothing collected
    if rows is not None:
        failed_rows = [r for r in rows if r.get("outcome") == "failed"]
        if not failed_rows:
            return "gate_failure" if status == 1 else "pass"
        if breakdown is None:
            breakdown = failure_breakdown(rows)  # all rows: a suite's faults are seen on its passing tests too
        regressions = sum(v["regression"] for v in breakdown.values())
        return "gate_failure" if regressions else "infrastructure_failure"
    if not failed:
        return "gate_failure" if status == 1 else "pass"
    return _summary_only(suites)
