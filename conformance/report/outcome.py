"""The run's outcome — one word and one exit code — decided from structured data (docs/VERDICTS.md).

Why one word: a red nightly means very different things to the on-call engineer. "The candidate drifts on legal
terms" blocks the cutover and goes to the model team; "the baseline endpoint timed out" means re-run and says
nothing about the candidate; "the golden's schema fails on the old model too" goes to the golden's owner.

Outcomes, most severe first (a run's outcome is the most severe of its suites'):

``config_error``    the run stopped before any request: a suite.yaml/golden/endpoints.yaml error, an unknown
                    endpoint, a model that is not served, a key variable that is not set
``regression``      evidence that the candidate is worse: a gate judged ``regression``, or a case whose candidate
                    answer breaks an expectation the baseline meets
``infrastructure``  an endpoint did not deliver (timeouts, 503, connection errors, missing recordings) — counted
                    from the fault classes stored with every answer, never by reading messages; or the run did
                    not complete (interrupted, internal error)
``baseline_fails``  a gate the baseline fails alike: the golden or the threshold needs attention
``insufficient``    nothing worse was shown, but some gate lacks the evidence to pass (or nothing was judged)
``pass``            every gate passed

Exit codes (:func:`exit_code`): pass 0, regression 1, infrastructure 75 (sysexits' EX_TEMPFAIL: retry later),
config_error 78 (EX_CONFIG); insufficient and baseline_fails do not block (0) unless the run is strict, then 7 and 6.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

from conformance.response import is_infrastructure

Outcome = Literal["pass", "insufficient", "baseline_fails", "infrastructure", "regression", "config_error"]

#: Most severe last: the run's outcome is the maximum of its suites'.
SEVERITY: tuple[Outcome, ...] = ("pass", "insufficient", "baseline_fails", "infrastructure", "regression",
                                 "config_error")
EXIT_CODES: dict[str, int] = {"pass": 0, "insufficient": 0, "baseline_fails": 0, "infrastructure": 75,
                              "regression": 1, "config_error": 78}
STRICT_EXIT_CODES: dict[str, int] = {**EXIT_CODES, "insufficient": 7, "baseline_fails": 6}
_LEGACY = {"gate_failure": "regression", "infrastructure_failure": "infrastructure"}


def exit_code(outcome: str, strict: bool = False) -> int:
    """The process exit code of an outcome (see the module docstring)."""
    return (STRICT_EXIT_CODES if strict else EXIT_CODES)[_LEGACY.get(outcome, outcome)]


def worst(outcomes: Iterable[str]) -> Outcome:
    """The most severe of ``outcomes`` (``pass`` for none)."""
    got: list[Outcome] = [o for o in (_LEGACY.get(o, o) for o in outcomes) if o in SEVERITY]
    return max(got, key=SEVERITY.index, default="pass")


def gate_outcome(gate: Mapping[str, Any]) -> Outcome:
    """What one gate contributes. A gate on missing answers (availability, a load stage's errors) that failed
    only because answers are missing for infrastructure reasons (timeouts, 503, connection, recordings) is
    ``infrastructure``; a gate that could not be computed (``error``) is ``infrastructure`` too — nothing was
    learnt about the candidate."""
    verdict = str(gate.get("verdict"))
    verdict = "regression" if verdict == "fail" else verdict
    if verdict == "pass":
        return "pass"
    if verdict == "error":
        return "infrastructure"
    name = str(gate.get("gate", ""))
    if gate.get("faults"):  # availability.*, load.stageN.error_rate / answered: answers missing, by role and class
        role = "baseline" if "baseline" in name.rsplit(".", 1)[-1] else "candidate"
        faults = (gate.get("faults") or {}).get(role) or {}
        if faults and all(is_infrastructure(f) for f in faults):
            return "infrastructure"
    if verdict in ("regression", "baseline_fails", "insufficient"):
        return verdict  # type: ignore[return-value]
    return "infrastructure"


def row_outcome(row: Mapping[str, Any]) -> Outcome:
    """What one test row contributes: its gates, or — for a failed per-case item — regression, unless the only
    thing wrong is an answer missing for an infrastructure reason."""
    props = [p for p in row.get("props") or () if isinstance(p, Mapping)]
    gates = [p for p in props if p.get("kind") == "gate"]
    outcome: Outcome = worst(gate_outcome(g) for g in gates)
    if row.get("outcome") != "failed" or gates:
        return outcome
    checks = [p for p in props if p.get("kind") == "check"]
    if checks and all(c.get("check") == "answered" and (c.get("details") or {}).get("infrastructure")
                      for c in checks):
        return "infrastructure"
    if not checks and "Timeout" in str(row.get("message") or "") and "pytest-timeout" in str(row.get("message")):
        return "infrastructure"  # the item waited past pytest-timeout for the endpoints
    return "regression"


def suite_outcomes(rows: Sequence[Mapping[str, Any]]) -> dict[str, Outcome]:
    """Per suite, the most severe outcome of its rows."""
    out: dict[str, list[Outcome]] = defaultdict(list)
    for r in rows:
        out[str(r.get("suite"))].append(row_outcome(r))
    return {suite: worst(v) for suite, v in sorted(out.items())}


def classify_run(summary: Mapping[str, Any], rows: Sequence[Mapping[str, Any]] | None = None) -> Outcome:
    """The run's outcome from its summary (and rows, when at hand). An empty or unreadable summary is never a
    pass: nothing in it was judged."""
    stopped = summary.get("stopped")
    if isinstance(stopped, Mapping) and stopped.get("outcome") in SEVERITY:
        return worst([str(stopped["outcome"])])
    status = summary.get("exitstatus")
    suites = summary.get("suites")
    if not isinstance(suites, Mapping) or status is None:
        return "insufficient" if status in (0, 5) else "infrastructure"
    if rows is not None:
        per_suite = suite_outcomes(rows)
    else:
        per_suite = {k: _suite_without_rows(v) for k, v in suites.items() if isinstance(v, Mapping)}
    outcome = worst(per_suite.values())
    if status not in (0, 1, 5) and outcome != "regression":
        return "infrastructure"  # interrupted, internal error: the run did not complete
    if not per_suite:
        return "insufficient"  # nothing was selected or judged
    return outcome


def _suite_without_rows(suite: Mapping[str, Any]) -> Outcome:
    """A suite's outcome from its summary entry alone: the one it recorded, else its gates' — and a failed test
    that no gate explains counts as a regression (an older summary recorded neither)."""
    if isinstance(suite.get("outcome"), str):
        return worst([str(suite["outcome"])])
    gates = [g for g in suite.get("gates") or () if isinstance(g, Mapping)]
    outcome = worst(gate_outcome(g) for g in gates)
    failed = int((suite.get("tests") or {}).get("failed", 0) or 0)
    return worst([outcome, "regression"]) if failed and outcome in ("pass", "insufficient") else outcome


def fault_counts(rows: Sequence[Mapping[str, Any]]) -> dict[str, Counter[str]]:
    """Per suite: missing answers as ``role:fault`` counts (each answer once)."""
    seen: set[tuple[Any, ...]] = set()
    out: dict[str, Counter[str]] = defaultdict(Counter)
    for r in rows:
        for p in r.get("props") or ():
            if (type(p) is dict or isinstance(p, Mapping)) and p.get("kind") == "response" and p.get("fault"):
                key = (p.get("endpoint"), p.get("fingerprint"), p.get("role"), p.get("case_id"))
                if key not in seen:
                    seen.add(key)
                    out[str(p.get("suite") or r.get("suite"))][f"{p['role']}:{p['fault']}"] += 1
    return out
