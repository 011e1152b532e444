"""One suite in one run: replay its selected cases, evaluate once, and run the latency and load phases on demand.

The orchestration the pytest items (and a team's own test module) read from, kept out of the plugin so the plugin
stays a thin adapter and this is testable without pytest. A :class:`SuiteRun` is created lazily by the first item
of its suite that needs it and cached for the session: the replay happens once, every (case, check) is computed
once (:func:`conformance.evaluate.evaluate`), and every item, gate and report row reads that one evaluation.

Retirement mid-run: a live baseline whose answers to a suite are *all* ``unavailable_503`` has been retired since
preflight (or a gateway still lists it but no longer serves it). When recordings of the suite exist, the baseline
answers are replaced by the recordings' and the run says so; without recordings, the 503s stay — the availability
gate reports them and the run outcome is ``infrastructure``, never a regression.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

from conformance.evaluate import SuiteEvaluation, evaluate, views_from
from conformance.response import Fault, Response
from conformance.suite import Suite
from conformance.suitedata import SuiteData

if TYPE_CHECKING:
    from conformance.endpoints.base import Endpoint
    from conformance.endpoints.config import EndpointsFile
    from conformance.run import RunPlan
    from conformance.runstore import RunStore

Progress = Callable[[str, int], Callable[[Response], None] | None]


@dataclass
class SuiteRun:
    """The replay, evaluation and phases of one suite (see the module docstring)."""

    suite: Suite
    plan: RunPlan
    endpoints: EndpointsFile
    store: RunStore
    selected: Collection[str] | None = None
    progress: Progress | None = None
    notes: list[str] = field(default_factory=list)
    _evaluation: SuiteEvaluation | None = None
    _answers: dict[str, dict[str, Response]] | None = None

    @cached_property
    def data(self) -> SuiteData:
        return SuiteData(self.suite)

    @property
    def cases(self) -> list[Any]:
        cases = self.suite.cases
        if self.selected is None:
            return cases
        picked = [c for c in cases if c.id in self.selected]
        return picked or cases

    def _endpoint(self, role: str, **kw: Any) -> Endpoint:
        from conformance.run import make_endpoint

        return make_endpoint(self.plan, self.endpoints, role, self.suite, **kw)

    def _tick(self, label: str, total: int) -> Callable[[Response], None] | None:
        return self.progress(label, total) if self.progress else None

    def answers(self) -> dict[str, dict[str, Response]]:
        """``{pass name: {case_id: Response}}`` for ``baseline``, ``candidate`` and, when configured, the noise
        floor's second passes and the perturbed prompts — each asked once per run (through the run cache)."""
        if self._answers is not None:
            return self._answers
        from conformance.replay import replay_sync

        cases = self.cases
        repeats = int((self.suite.config.get("noise_floor") or {}).get("repeats", 1))
        base, cand = self._endpoint("baseline"), self._endpoint("candidate")
        got = replay_sync([base, cand], cases, self.store, repeats=repeats,
                          progress=self._tick(f"replaying {self.suite.system}", 2 * repeats * len(cases)))
        out: dict[str, dict[str, Response]] = {}
        for role, ep in (("baseline", base), ("candidate", cand)):
            out[role] = {cid: r for (name, cid, rep), r in got.items() if name == ep.name and rep == 0}
            if repeats > 1:
                out[f"{role}_repeat"] = {cid: r for (name, cid, rep), r in got.items() if name == ep.name and rep == 1}
        self._fall_back_if_retired(out, cases, repeats)
        pert = self.suite.config.get("perturbation")
        if pert is not None:
            from conformance.checks.perturb import perturbed_case

            variants = [perturbed_case(c, int(pert.get("seed", 0))) for c in cases]
            base, cand = self._endpoint("baseline"), self._endpoint("candidate")
            got = replay_sync([base, cand], variants, self.store,
                              progress=self._tick(f"perturbed {self.suite.system}", 2 * len(variants)))
            for role, ep in (("baseline", base), ("candidate", cand)):
                out[f"{role}_perturbed"] = {cid: r for (name, cid, _), r in got.items() if name == ep.name}
        self._answers = out
        return out

    def _fall_back_if_retired(self, out: dict[str, dict[str, Response]], cases: list[Any], repeats: int) -> None:
        if self.plan.baseline_recorded:
            return
        answers = list(out["baseline"].values())
        if not answers or any(r.fault != Fault.UNAVAILABLE_503 for r in answers):
            return
        path = self.suite.recordings_path(self.plan.baseline)
        if not path.is_file():
            self.notes.append(f"baseline {self.plan.baseline!r} answered 503 to every case of {self.suite.system}: "
                              f"it looks retired, and there are no recordings at {path} to fall back to")
            return
        from conformance.endpoints.recorded import RecordedEndpoint
        from conformance.replay import replay_sync

        recorded = RecordedEndpoint(path, f"recorded:{self.plan.baseline}")
        got = replay_sync([recorded], cases, self.store, repeats=repeats)
        out["baseline"] = {cid: r for (_, cid, rep), r in got.items() if rep == 0}
        if repeats > 1:
            out["baseline_repeat"] = {cid: r for (_, cid, rep), r in got.items() if rep == 1}
        self.notes.append(f"baseline {self.plan.baseline!r} answered 503 to every case of {self.suite.system}: "
                          f"retired since preflight — compared with its recordings ({path.name}) instead")

    def evaluation(self) -> SuiteEvaluation:
        """Every applicable (case, check) and the suite gates, computed once."""
        if self._evaluation is None:
            self._evaluation = evaluate(self.data, views_from(self.cases, self.answers()))
            self._evaluation.notes = self.notes
        return self._evaluation

    def latency(self) -> dict[str, list[Response]]:
        """The latency phase: ``gates.latency.samples`` requests per endpoint at ``gates.latency.concurrency``,
        the same seeded order for both, separate from the correctness replay."""
        from conformance.replay import latency_phase

        cfg = self.suite.gates.get("latency") or {}
        conc = int(cfg.get("concurrency", 1))
        base = self._endpoint("baseline", concurrency=conc)
        cand = self._endpoint("candidate", concurrency=conc)
        got = latency_phase([base, cand], self.suite.cases, self.store, samples=int(cfg.get("samples", 200)),
                            seed=int(cfg.get("seed", 0)))
        return {"baseline": got[base.name], "candidate": got[cand.name]}

    def load(self, progress: Callable[..., None] | None = None) -> Any:
        """Locust load stages against baseline then candidate (in a subprocess), then quality under load: a
        sample of each stage's answers through the same per-case checks, next to this run's at-rest verdicts."""
        from conformance.load.runner import add_quality, run_suite_load
        from conformance.run import live_config

        evaluation = self.evaluation()  # at-rest answers and verdicts first: the yardstick for quality
        out = self.plan.run_dir / "load" / self.suite.system
        candidate = self.endpoints.get(self.plan.candidate)
        run = run_suite_load(self.suite, live_config(self.plan, self.endpoints, "baseline"), candidate, out,
                             progress=progress)
        run = add_quality(run, self.data, self.answers(), at_rest=evaluation)
        run.write_tables(out)
        return run
