"""One suite's evaluation: every (case, check) computed once, and the suite gates from those same results.

Why "once": the per-case items, the suite gates, the report and quality under load all read the same
:class:`SuiteEvaluation`. Before, each per-case check ran again inside the gates test (and a third time for quality
under load), and nothing guaranteed the gates saw the results the cases showed.

Which answers are compared: a case whose *baseline* did not answer (a stale recording, a timeout) has nothing to
compare against, and a case whose *candidate* failed for an infrastructure reason (timeout, 503, connection) says
nothing about the model — both are left out of the quality checks (``skipped``, with the reason) and counted by the
availability gates instead, so an outage reads as an outage, never as "the candidate regressed". A candidate that
answered with a non-infrastructure fault (it refused the request: ``client_error``; a runaway answer:
``response_too_large``) stays in: its answer enters the checks as unusable, because consumers would break on it.

Pure: responses and the suite's data in, results out.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from conformance.checks.result import CheckResult
from conformance.gates import GateResult, error
from conformance.registry import CHECKS, CheckSpec, applicable
from conformance.response import Response
from conformance.suitedata import CaseView, SuiteData

__all__ = ["CaseView", "SuiteData", "SuiteEvaluation", "evaluate", "not_comparable", "views_from"]

Key = tuple[str, str]  # (case id, check name)


def not_comparable(view: CaseView) -> str | None:
    """Why this case's answers cannot be compared (see the module docstring), or None."""
    if not view.baseline.ok:
        return f"not compared: the baseline did not answer ({view.baseline.fault})"
    if view.candidate.infrastructure_fault:
        return f"not compared: the candidate did not answer ({view.candidate.fault}) — see availability"
    return None


@dataclass
class SuiteEvaluation:
    """Per-case results and suite gates of one suite in one run.

    ``results[(case_id, check)]``: the check's result; ``skipped[(case_id, check)]``: why it was not computed.
    ``checks[case_id]``: the checks that apply to the case, in registry order — the items the plugin makes.
    """

    data: SuiteData
    views: list[CaseView]
    checks: dict[str, list[str]] = field(default_factory=dict)
    results: dict[Key, CheckResult] = field(default_factory=dict)
    skipped: dict[Key, str] = field(default_factory=dict)
    gates: list[GateResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    calls: int = 0  # per-case check computations (a test counts them: once per applicable (case, check))

    def view(self, case_id: str) -> CaseView | None:
        return next((v for v in self.views if v.case.id == case_id), None)

    def results_of(self, check: str) -> dict[str, CheckResult]:
        """``{case_id: result}`` of one check, in case order."""
        return {cid: r for (cid, name), r in self.results.items() if name == check}


def evaluate(data: SuiteData, views: Sequence[CaseView], *,
             checks: Sequence[CheckSpec] = CHECKS) -> SuiteEvaluation:
    """Compute every applicable (case, check) once, then each check's gates from exactly those results."""
    ev = SuiteEvaluation(data, list(views))
    specs = {c.name: c for c in checks}
    for v in views:
        names = [c.name for c in applicable(data, v.case) if c.name in specs]
        ev.checks[v.case.id] = names
        reason = not_comparable(v)
        for name in names:
            spec = specs[name]
            key = (v.case.id, spec.name)
            if reason is not None and spec.name != "answered":
                ev.skipped[key] = reason
                continue
            ev.results[key] = spec.run(data, v)
            ev.calls += 1
    comparable = [v for v in views if not_comparable(v) is None]
    for spec in checks:
        results = ev.results_of(spec.name)
        if spec.name != "answered" and not any(spec.name in ev.checks[v.case.id] for v in views):
            continue  # no case this check applies to: no gate to judge
        try:
            ev.gates += spec.gates(data, results, views if spec.name == "answered" else comparable)
        except (ValueError, KeyError, TypeError) as exc:  # a bug or bad data: say so, never a silent pass
            ev.gates.append(error(data.system, f"{spec.gate_key}.error", f"{type(exc).__name__}: {exc}"))
    return ev


def views_from(cases: Sequence[object], passes: Mapping[str, Mapping[str, Response]],
               view: Callable[..., CaseView] = CaseView) -> list[CaseView]:
    """CaseViews from the replay's answers: ``passes[name][case_id]`` for ``baseline``, ``candidate`` and the
    optional ``baseline_repeat``, ``candidate_repeat``, ``baseline_perturbed``, ``candidate_perturbed``."""
    extra = ("baseline_repeat", "candidate_repeat", "baseline_perturbed", "candidate_perturbed")
    out = []
    for case in cases:
        cid = case.id  # type: ignore[attr-defined]
        out.append(view(case, passes["baseline"][cid], passes["candidate"][cid],
                        *((passes.get(k) or {}).get(cid) for k in extra)))
    return out
