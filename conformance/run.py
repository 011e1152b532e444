"""Prepare a run: pick endpoints, start embedded servers, preflight, fall back to recordings.

Everything here happens once per run, before any test: a wrong model name or a retired baseline becomes one clear
message instead of hundreds of failing tests. The resulting :class:`RunPlan` is plain data so the pytest controller
can hand it to xdist workers unchanged.
"""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from conformance.endpoints.base import Endpoint
from conformance.endpoints.base import make_endpoint as build_endpoint
from conformance.endpoints.config import EndpointConfig, EndpointsFile
from conformance.endpoints.preflight import PreflightResult, check_all
from conformance.endpoints.recorded import RecordedEndpoint
from conformance.errors import ConfigError, ConformanceError, EndpointError, RecordingError, RetiredEndpoint
from conformance.redact import Redactor
from conformance.runstore import new_run_id
from conformance.settings import Settings
from conformance.suite import Suite


@dataclass
class RunPlan:
    run_id: str
    run_dir: Path
    baseline: str  # endpoint name; when baseline_recorded, the endpoint whose recordings are replayed
    baseline_recorded: bool
    candidate: str
    notes: list[str] = field(default_factory=list)
    preflight: dict[str, dict[str, Any]] = field(default_factory=dict)
    started_local: list[str] = field(default_factory=list)

    @property
    def baseline_label(self) -> str:
        return f"recorded:{self.baseline}" if self.baseline_recorded else self.baseline

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["run_dir"] = str(self.run_dir)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunPlan:
        return cls(**{**d, "run_dir": Path(d["run_dir"])})


def record_instructions(suites: list[Suite], endpoint: str) -> str:
    systems = " ".join(f"--system {s.system}" for s in suites) or "--system SYSTEM"
    return (f"record the baseline while it still answers: `conformance record {systems} --endpoint {endpoint}`, "
            "commit goldens/<system>/recordings/, then run with `--baseline recorded`")


def missing_recordings(suites: list[Suite], endpoint: str) -> list[Path]:
    return [s.recordings_path(endpoint) for s in suites if not s.recordings_path(endpoint).is_file()]


def prepare(settings: Settings, endpoints: EndpointsFile, suites: list[Suite]) -> RunPlan:
    """Resolve the run; raise one :class:`ConformanceError` describing what to fix."""
    from conformance.local.servers import ensure_up

    run_id = settings.run_id or new_run_id()
    run_dir = settings.reports_dir / run_id
    if settings.resume and not run_dir.is_dir():
        raise ConfigError(f"cannot resume run {run_id!r}: {run_dir} does not exist")
    recorded = settings.baseline_recorded
    baseline = settings.recorded_source(endpoints) if recorded else settings.baseline
    plan = RunPlan(run_id, run_dir, baseline, recorded, settings.candidate)
    live: list[EndpointConfig] = [endpoints.get(settings.candidate, "candidate")]
    if not recorded:
        live.insert(0, endpoints.get(baseline, "baseline"))
    if settings.start_local:
        plan.started_local = ensure_up([c for c in live if c.local])
        if plan.started_local:
            plan.notes.append("started embedded llama.cpp servers: " + ", ".join(plan.started_local))
    try:
        _check(settings, endpoints, suites, plan, live)
    except BaseException:
        teardown(plan)  # a run that stops here must not leave the servers it started running
        raise
    return plan


def _check(settings: Settings, endpoints: EndpointsFile, suites: list[Suite], plan: RunPlan,
           live: list[EndpointConfig]) -> None:
    if settings.preflight:
        results = check_all(live, Redactor(endpoints.secrets()))
        plan.preflight = {r.endpoint: asdict(r) for r in results}
        for r in results:
            _apply_preflight(r, plan, suites)
    if plan.baseline_recorded:
        missing = missing_recordings(suites, plan.baseline)
        if missing:
            raise RecordingError(
                "--baseline recorded, but there are no recordings at " + ", ".join(str(m) for m in missing)
                + "; " + record_instructions(suites, plan.baseline))
        plan.notes.append(f"baseline replayed from recordings of {plan.baseline!r}")


def _apply_preflight(r: PreflightResult, plan: RunPlan, suites: list[Suite]) -> None:
    if r.status == "unchecked":
        plan.notes.append(f"{r.endpoint}: {r.message}")
        return
    if r.ok:
        return
    is_baseline = r.endpoint == plan.baseline and not plan.baseline_recorded
    if is_baseline and r.status == "retired":
        if not missing_recordings(suites, plan.baseline):
            plan.baseline_recorded = True
            plan.notes.append(f"baseline {r.endpoint!r} is retired ({r.message}); "
                              "falling back to its recordings")
            return
        raise RetiredEndpoint(r.endpoint, f"{r.message}, and no recordings exist for "
                              + ", ".join(s.system for s in suites) + ". " + record_instructions(suites, r.endpoint)
                              + " (if the old endpoint is gone for good, restore recordings from a previous run's"
                                " artifacts)")
    raise EndpointError(r.endpoint, r.message, outcome=r.outcome)


def stop_outcome(exc: ConformanceError) -> str:
    """The outcome of a run that stops on ``exc`` before any request: ``config_error`` or ``infrastructure``."""
    return getattr(exc, "outcome", "config_error")


def make_endpoint(plan: RunPlan, endpoints: EndpointsFile, role: str, suite: Suite,
                  concurrency: int | None = None) -> Endpoint:
    """A fresh endpoint object for one replay (clients are bound to the event loop that uses them);
    ``concurrency`` overrides the endpoint's ``max_concurrency`` (the latency phase declares its own)."""
    redactor = Redactor(endpoints.secrets())
    if role == "baseline" and plan.baseline_recorded:
        return RecordedEndpoint(suite.recordings_path(plan.baseline), plan.baseline_label)
    cfg = live_config(plan, endpoints, role)
    assert cfg is not None
    if concurrency:
        cfg = dataclasses.replace(cfg, max_concurrency=concurrency)
    return build_endpoint(cfg, redactor)


def live_config(plan: RunPlan, endpoints: EndpointsFile, role: str) -> EndpointConfig | None:
    """The live endpoint behind a role; None for a baseline replayed from recordings."""
    if role == "baseline":
        return None if plan.baseline_recorded else endpoints.get(plan.baseline)
    return endpoints.get(plan.candidate)


def teardown(plan: RunPlan) -> None:
    """Stop the embedded servers this run started (and only those)."""
    from conformance.local.servers import stop

    for name in plan.started_local:
        stop(name)
