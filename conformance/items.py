"""The pytest items a suite folder becomes: one per (case, applicable check), one for the gates, one per phase.

A suite is ``suite.yaml`` + goldens; no Python module is needed. :class:`SuiteFile` (collected for every
``suite.yaml`` under the paths pytest is given) asks the registry which checks apply to each case and yields:

- ``<check>[<case id>]`` — the case's result of that check (``answered[deposit-20pct]``, ``terms[deposit-20pct]``);
- ``gates`` — every suite gate over the selected cases;
- ``latency`` / ``load`` — the phases, when suite.yaml declares them and the run asks for them.

Items hold no logic: they read the suite's one evaluation (:class:`conformance.suiterun.SuiteRun`, computed by
whichever item of the suite runs first), attach results to their report for the collector (``user_properties``,
which survive xdist) and turn verdicts into pytest outcomes — ``regression`` fails, ``baseline_fails`` is an xfail,
``insufficient`` a skip (``--strict``: both fail). Each item reports the golden's ``file:line`` as its location.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from conformance.gates import GateResult

if TYPE_CHECKING:
    from conformance.goldens.model import Case
    from conformance.suite import Suite
    from conformance.suiterun import SuiteRun


def _hooks(config: pytest.Config) -> Any:
    from conformance import plugin

    return plugin


class SuiteFile(pytest.File):
    """``suites/<system>/suite.yaml`` as a collector of its items."""

    def collect(self) -> Iterator[pytest.Item]:
        plugin = _hooks(self.config)
        if plugin.stopped(self.config):
            return  # the run stopped before any request (config error, endpoint down): nothing to collect
        from conformance.registry import applicable
        from conformance.suitedata import SuiteData

        suite: Suite = plugin.suite_for(self.config, self.path.parent)
        data = SuiteData(suite)
        marks = plugin.case_marks(self.config, suite)
        for case in suite.cases:
            for spec in applicable(data, case):
                item = CheckItem.from_parent(self, name=f"{spec.name}[{case.id}]", case=case, check=spec.name)
                for mark in marks[case.id]:
                    item.add_marker(mark)
                yield item
        phases: list[str] = ["gates"]
        if suite.gates.get("latency"):
            phases.append("latency")
        if suite.config.get("load"):
            phases.append("load")
        for phase in phases:
            phase_item = PhaseItem.from_parent(self, name=phase, phase=phase)
            phase_item.add_marker(pytest.mark.xdist_group(suite.system))
            phase_item.add_marker(pytest.mark.conformance_suite)
            yield phase_item


class _SuiteItem(pytest.Item):
    @property
    def suite_run(self) -> SuiteRun:
        return _hooks(self.config).suite_run(self)

    def record(self, data: dict[str, Any]) -> None:
        self.user_properties.append(("conformance", data))

    def record_gates(self, gates: list[GateResult]) -> None:
        for g in gates:
            self.record({"kind": "gate", **g.to_dict()})

    def judge_gates(self, gates: list[GateResult]) -> None:
        """The item's outcome from its gates' verdicts (see the module docstring)."""
        __tracebackhide__ = True
        strict = _hooks(self.config).strict(self.config)
        lines = "\n".join("  " + g.line() for g in gates)
        if any(g.blocking(strict) for g in gates):
            pytest.fail("suite gates:\n" + lines, pytrace=False)
        if any(g.verdict == "baseline_fails" for g in gates):
            pytest.xfail("the baseline fails these gates too — the golden or threshold needs attention:\n" + lines)
        if any(g.verdict == "insufficient" for g in gates):
            pytest.skip("insufficient evidence to judge (not a regression; --strict makes it block):\n" + lines)


class CheckItem(_SuiteItem):
    """One case's result of one check."""

    def __init__(self, *, case: Case, check: str, **kw: Any) -> None:
        super().__init__(**kw)
        self.case = case
        self.check = check

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.case.path, max(0, self.case.line - 1), f"{self.check}[{self.case.id}] ({self.case.location})"

    def runtest(self) -> None:
        __tracebackhide__ = True
        from conformance.asserts import assert_check

        run = self.suite_run
        ev = run.evaluation()
        view = ev.view(self.case.id)
        if view is None:
            pytest.skip("case not replayed in this run (deselected)")
        for role, resp in (("baseline", view.baseline), ("candidate", view.candidate)):
            self.record(response_props(role, resp))
        key = (self.case.id, self.check)
        if key in ev.skipped:
            pytest.skip(ev.skipped[key])
        result = ev.results[key]
        self.record({"kind": "check", "suite": self.case.system, "case_id": self.case.id,
                     "location": self.case.location, **result.to_dict()})
        if self.check == "answered" and not view.baseline.ok and view.candidate.ok:
            pytest.skip(f"the baseline did not answer ({view.baseline.describe_failure()}); "
                        "counted by availability.baseline_error_rate, not the candidate's regression")
        assert_check(result)
        if result.details.get("shared_expectation_failures"):
            detail = "".join(f"\n  - {f.message}" for f in result.findings[:5])
            pytest.xfail("not a regression — the baseline fails this expectation too: " + result.explanation
                         + detail)


class PhaseItem(_SuiteItem):
    """The suite gates (``gates``), or a phase the run asked for (``latency``, ``load``)."""

    def __init__(self, *, phase: str, **kw: Any) -> None:
        super().__init__(**kw)
        self.phase = phase

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, 0, f"{self.phase} ({self.path.parent.name})"

    def runtest(self) -> None:
        __tracebackhide__ = True
        plugin = _hooks(self.config)
        run = self.suite_run
        if self.phase == "gates":
            ev = run.evaluation()
            for note in ev.notes:
                self.record({"kind": "note", "suite": run.suite.system, "message": note})
            gates = ev.gates
        elif self.phase == "latency":
            if not plugin.phase_enabled(self.config, "latency"):
                pytest.skip("latency phase not requested: pass --latency (or --conformance-profile nightly)")
            from conformance.checks.latency import latency_gates

            got = run.latency()
            gates = latency_gates(run.suite.system, got["baseline"], got["candidate"], run.suite.gates["latency"])
        else:
            if not plugin.phase_enabled(self.config, "load"):
                pytest.skip("load stages not requested: pass --load")
            gates = run.load(progress=plugin.load_progress(self.config)).gates
        self.record_gates(gates)
        self.judge_gates(gates)


def response_props(role: str, resp: Any) -> dict[str, Any]:
    """What a result row says about an answer — not its text: that is in responses/ once, and the report joins it
    by (endpoint, fingerprint) for the cases it shows (docs/PERFORMANCE.md, F7)."""
    return {"kind": "response", "role": role, "suite": resp.system, "case_id": resp.case_id,
            "endpoint": resp.endpoint, "fingerprint": resp.fingerprint, "fault": resp.fault, "error": resp.error,
            "ttft_ms": resp.ttft_ms, "e2e_ms": resp.e2e_ms, "finish_reason": resp.finish_reason,
            "attempts": len(resp.attempts), "infrastructure": resp.infrastructure_fault}
