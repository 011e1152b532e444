"""Run a load test against one endpoint: Locust in a subprocess, bounded, then statistics from its raw records.

Why a subprocess: Locust monkey-patches the interpreter with gevent on import, which must never happen inside
the pytest process — this module does not import locust. The child runs in its own session (process group), so
the overall deadline can stop it *and every worker it forked*: SIGTERM (Locust stops users and writes its CSV and
HTML report), then SIGKILL after a grace period. It never outlives this process, however this one ends
(:mod:`conformance.load.lifetime`), and writes no secret (:mod:`conformance.load.scrub`: the secrets go to it in
its environment, never on its command line; its files are scrubbed again once it has ended).

Bounds: each request is limited to the endpoint's ``timeout_s`` (inside the locust process), each stage to its
``duration_s`` (the shape), the drain after the last stage to ``--stop-timeout`` (≥ the longest request), and the
whole run to ``deadline_s``. A target must be given explicitly: there is no default host.

Side by side: run the baseline and the candidate one after the other with the same ``seed`` — the same prompt
order and, in open-loop mode, the same arrival schedule — then gate them with :func:`compare_load`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import json
import math
import os
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from conformance.endpoints.config import EndpointConfig
from conformance.errors import ConformanceError
from conformance.gates import GateResult
from conformance.goldens.model import Case
from conformance.load.compare import compare_load
from conformance.load.lifetime import parent_env, signals_unwind
from conformance.load.plan import PLAN_ENV, LoadPlan, OpenLoop, PlanError, PlanRequest, Stage, build_body, chat_url
from conformance.load.quality import QualityConfig, StageQuality, assess_run, quality_gates, sample_by_stage
from conformance.load.scrub import scrub_folder, secrets_env
from conformance.load.stats import LoadResult, all_stage_stats, read_records
from conformance.load.vllm_metrics import metrics_by_stage
from conformance.redact import Redactor

if TYPE_CHECKING:
    from conformance.evaluate import SuiteEvaluation
    from conformance.response import Response
    from conformance.suite import Suite
    from conformance.suitedata import SuiteData

LOCUSTFILE = Path(__file__).with_name("locustfile.py")
#: Keys of a suite's ``load:`` section.
LOAD_KEYS = frozenset({"stages", "gates", "slo", "seed", "open_loop", "max_tokens", "ignore_eos", "processes",
                       "deadline_s", "quality"})
#: Time Locust needs to import, start and write its reports, on top of the stages and the drain.
STARTUP_SLACK_S = 30.0
KILL_GRACE_S = 5.0


class LoadError(ConformanceError):
    """Locust could not run at all (bad arguments, the locustfile failed to import): no request was sent."""


@dataclass(frozen=True)
class LoadProgress:
    """What a progress callback sees, about twice a second: the run's totals, and the current stage's figures from
    the records written so far (``stage`` is 0-based; ``users``/``rate_rps`` are the stage's targets;
    ``rps`` counts the stage's finished requests over the time since its first one started)."""

    label: str
    elapsed_s: float
    stage: int | None
    requests: int
    failures: int
    stages: int = 0
    users: int | None = None
    rate_rps: float | None = None
    stage_requests: int = 0
    stage_failures: int = 0
    rps: float | None = None
    ttft_p50_ms: float | None = None


def load_plan(cases: Sequence[Case], endpoint: EndpointConfig, stages: Sequence[Mapping[str, Any] | Stage],
              raw_dir: Path, *, seed: int = 0, open_loop: Mapping[str, Any] | OpenLoop | None = None,
              max_tokens: int | None = None, ignore_eos: bool = False, workers: int = 1,
              pause_after_failure_s: float = 0.1) -> LoadPlan:
    """The plan for one endpoint (validated; raises :class:`PlanError`). It carries no secret."""
    url = chat_url(endpoint.base_url)
    if not cases:
        raise PlanError("no cases to replay under load")
    parsed = tuple(s if isinstance(s, Stage) else Stage.from_dict(s, i) for i, s in enumerate(stages))
    if not parsed:
        raise PlanError("load.stages is empty: give at least one {users, spawn_rate, duration_s}")
    ol = open_loop if isinstance(open_loop, OpenLoop) or open_loop is None else OpenLoop.from_dict(open_loop)
    if ol is not None and any(s.rate_rps is None for s in parsed):
        raise PlanError("open-loop mode needs rate_rps on every stage")
    requests = tuple(PlanRequest(c.id, build_body(c.request(), endpoint.model, max_tokens=max_tokens,
                                                  ignore_eos=ignore_eos, extra_body=endpoint.extra_body))
                     for c in cases)
    return LoadPlan(label=endpoint.name, url=url, requests=requests, stages=parsed, raw_dir=str(raw_dir), seed=seed,
                    api_key_env=endpoint.api_key_env, open_loop=ol, timeout_s=endpoint.timeout_s,
                    connect_timeout_s=endpoint.connect_timeout_s, pause_after_failure_s=pause_after_failure_s,
                    workers=max(1, workers), metrics_url=endpoint.metrics_url)


def locust_command(plan: LoadPlan, out_dir: Path, *, stop_timeout_s: float, processes: int = 1,
                   locust_args: Sequence[str] = (), python: str = sys.executable) -> list[str]:
    parts = urlsplit(plan.url)
    cmd = [python, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "--only-summary",
           "--host", f"{parts.scheme}://{parts.netloc}", "--csv", str(out_dir / "locust"),
           "--html", str(out_dir / "locust.html"), "--stop-timeout", str(math.ceil(stop_timeout_s))]
    if processes != 1:
        cmd += ["--processes", str(processes)]
    return cmd + list(locust_args)


def run_load(suite_cases: Sequence[Case], endpoint_cfg: EndpointConfig, stages: Sequence[Mapping[str, Any] | Stage],
             out_dir: Path, *, seed: int = 0, open_loop: Mapping[str, Any] | OpenLoop | None = None,
             max_tokens: int | None = None, ignore_eos: bool = False, slo: Mapping[str, float] | None = None,
             processes: int = 1, locust_args: Sequence[str] = (), deadline_s: float | None = None,
             stop_timeout_s: float | None = None, pause_after_failure_s: float = 0.1,
             kill_grace_s: float = KILL_GRACE_S, progress: Callable[[LoadProgress], None] | None = None,
             secrets: Sequence[str | None] = ()) -> LoadResult:
    """Run the stages against ``endpoint_cfg`` and return per-stage statistics (see module doc).

    ``out_dir`` receives ``plan.json``, ``raw/records-<pid>.jsonl`` (one line per request, with its text),
    ``raw/metrics.jsonl`` (when ``metrics_url`` is set), ``locust*.csv``, ``locust.html``, ``locust.log`` and
    ``load_result.json``. ``processes`` is Locust's ``--processes``; ``locust_args`` are passed through (e.g.
    ``["--master", "--expect-workers", "4"]``; workers elsewhere need the same plan file in $CONFORMANCE_LOAD_PLAN).
    ``secrets``: besides the endpoint's own key, values no file of the run may contain (other endpoints' keys).
    Raises :class:`PlanError` for an unusable configuration and ConfigError for a missing API key.
    """
    if endpoint_cfg.api_key_env:
        endpoint_cfg.api_key()  # fail here, with the variable's name, rather than inside the subprocess
    out_dir = Path(out_dir).resolve()  # the child runs in out_dir: every path it gets must be absolute
    raw_dir = out_dir / "raw"
    workers = _workers(processes, locust_args, open_loop is not None)
    plan = load_plan(suite_cases, endpoint_cfg, stages, raw_dir, seed=seed, open_loop=open_loop,
                     max_tokens=max_tokens, ignore_eos=ignore_eos, workers=workers,
                     pause_after_failure_s=pause_after_failure_s)
    raw_dir.mkdir(parents=True, exist_ok=True)
    for stale in [*raw_dir.glob("records-*.jsonl"), raw_dir / "metrics.jsonl"]:
        stale.unlink(missing_ok=True)  # ours, from an earlier run into the same folder
    plan_path = plan.write(out_dir / "plan.json")
    stop_timeout = stop_timeout_s if stop_timeout_s is not None else plan.timeout_s + 1
    # every drop in users waits (up to --stop-timeout) for the requests of the users it stops, like the end does
    drops = sum(b.users < a.users for a, b in itertools.pairwise(plan.stages))
    deadline = deadline_s if deadline_s is not None else (
        plan.total_s + stop_timeout * (1 + drops) + STARTUP_SLACK_S)
    cmd = locust_command(plan, out_dir, stop_timeout_s=stop_timeout, processes=processes, locust_args=locust_args)
    redact = Redactor(s for s in (endpoint_cfg.secret(), *secrets) if s)
    env = {**os.environ, PLAN_ENV: str(plan_path), "PYTHONUNBUFFERED": "1", **secrets_env(redact.secrets),
           **parent_env()}
    log_path = out_dir / "locust.log"
    started = time.monotonic()
    with signals_unwind(), open(log_path, "wb") as log:  # SIGTERM/SIGHUP: stop the group, then end as asked
        try:
            proc = subprocess.Popen(cmd, cwd=out_dir, env=env, stdout=log, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, start_new_session=True)
            killed = _wait(proc, started + deadline, kill_grace_s, _Tail(plan, raw_dir, started, progress))
        finally:
            scrub_folder(out_dir, redact)  # the backstop: whatever Locust wrote that it did not redact itself
    elapsed = time.monotonic() - started
    records, bad = read_records(raw_dir)
    if not records and not killed and proc.returncode not in (0, 1):
        raise LoadError(f"locust exited with code {proc.returncode} before sending any request "
                        f"(see {log_path}):\n{_tail(log_path, 1500)}")
    server = metrics_by_stage(raw_dir / "metrics.jsonl", len(plan.stages)) if plan.metrics_url else None
    result = LoadResult(
        label=plan.label, out_dir=out_dir, stages=all_stage_stats(plan.stages, records, cut_short=bool(killed),
                                                                  slo=slo, server=server),
        seed=seed, open_loop=plan.open_loop is not None, returncode=proc.returncode, killed=killed,
        elapsed_s=round(elapsed, 3), records=len(records), bad_lines=bad, pid=proc.pid, log_tail=_tail(log_path),
    )
    (out_dir / "load_result.json").write_text(json.dumps(result.to_dict(), ensure_ascii=False, indent=1))
    return result


def _workers(processes: int, locust_args: Sequence[str], open_loop: bool) -> int:
    """How many processes share an open-loop schedule: ``--processes N`` or ``--expect-workers N``."""
    args = list(locust_args)
    if "--expect-workers" in args[:-1]:
        return max(1, int(args[args.index("--expect-workers") + 1]))
    if processes < 1 and open_loop:
        raise PlanError("open-loop mode needs an explicit process count (processes=N, not -1): "
                        "the arrival schedule is split between them")
    return max(1, processes)


def _wait(proc: subprocess.Popen[bytes], deadline: float, grace: float, tail: _Tail) -> str | None:
    """Wait for the child; at the deadline (or on Ctrl-C) stop its whole process group. Returns the signal used."""
    try:
        while proc.poll() is None:
            if time.monotonic() >= deadline:
                return _stop_group(proc, grace)
            tail.poll()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=0.5)
        tail.poll()
        return None
    except BaseException:
        _stop_group(proc, grace)
        raise


def _stop_group(proc: subprocess.Popen[bytes], grace: float) -> str:
    """SIGTERM the group (Locust stops its users and writes its reports), SIGKILL it after ``grace`` seconds."""
    used = "SIGTERM"
    _signal_group(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        used = "SIGKILL"
    _signal_group(proc.pid, signal.SIGKILL)  # also reaps forked workers that outlived the parent
    proc.wait()
    return used


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, sig)


def _tail(path: Path, limit: int = 4000) -> str:
    try:
        return path.read_bytes()[-limit:].decode("utf-8", errors="replace")
    except OSError:
        return ""


class _StageTally:
    """The progress figures of one stage, from its raw records (times in µs, as the locustfile writes them)."""

    def __init__(self) -> None:
        self.requests = self.failures = 0
        self.first_start_us: int | None = None
        self.last_end_us = 0
        self.ttft_ms: list[float] = []

    def add(self, rec: Mapping[str, Any]) -> None:
        self.requests += 1
        self.failures += rec.get("fault") is not None
        start, took = rec.get("t_offset_us"), rec.get("elapsed_us")
        if isinstance(start, int) and isinstance(took, int):
            self.first_start_us = start if self.first_start_us is None else min(self.first_start_us, start)
            self.last_end_us = max(self.last_end_us, start + took)
        tok = rec.get("tok_us")
        if rec.get("fault") is None and isinstance(tok, list) and tok and isinstance(tok[0], int | float):
            self.ttft_ms.append(tok[0] / 1000)

    def rps(self) -> float | None:
        span = self.last_end_us - (self.first_start_us or 0)
        return self.requests / (span / 1e6) if self.first_start_us is not None and span > 0 else None


class _Tail:
    """Counts records as they are appended, for the progress callback (reads only the new bytes)."""

    def __init__(self, plan: LoadPlan, raw_dir: Path, started: float,
                 progress: Callable[[LoadProgress], None] | None) -> None:
        self.plan, self.raw_dir, self.started, self.progress = plan, raw_dir, started, progress
        self.offsets: dict[Path, int] = {}
        self.requests = self.failures = 0
        self.stage: int | None = None
        self.tallies: dict[int, _StageTally] = {}

    def poll(self) -> None:
        if self.progress is None:
            return
        for path in sorted(self.raw_dir.glob("records-*.jsonl")):
            with open(path, "rb") as fh:
                fh.seek(self.offsets.get(path, 0))
                data = fh.read()
            complete = data[: data.rfind(b"\n") + 1]
            self.offsets[path] = self.offsets.get(path, 0) + len(complete)
            for line in complete.splitlines():
                try:
                    rec = json.loads(line)
                except ValueError:
                    continue
                self.requests += 1
                self.failures += rec.get("fault") is not None
                stage = rec.get("stage")
                if isinstance(stage, int):  # the latest stage any worker has reached (files are read in turn)
                    self.stage = stage if self.stage is None else max(self.stage, stage)
                    self.tallies.setdefault(stage, _StageTally()).add(rec)
        stages = self.plan.stages
        now = stages[self.stage] if self.stage is not None and 0 <= self.stage < len(stages) else None
        tally = self.tallies.get(self.stage) if self.stage is not None else None
        self.progress(LoadProgress(
            self.plan.label, round(time.monotonic() - self.started, 1), self.stage, self.requests, self.failures,
            stages=len(stages), users=now.users if now else None, rate_rps=now.rate_rps if now else None,
            stage_requests=tally.requests if tally else 0, stage_failures=tally.failures if tally else 0,
            rps=tally.rps() if tally else None,
            ttft_p50_ms=statistics.median(tally.ttft_ms) if tally and tally.ttft_ms else None))


@dataclass(frozen=True)
class SuiteLoad:
    """Both load runs of one suite and their gates; ``baseline`` is None when only recordings remain of it.

    ``quality`` holds the per-stage quality-under-load results once :func:`add_quality` has checked the sampled
    answers (it needs the replay's answers, which only the caller has)."""

    baseline: LoadResult | None
    candidate: LoadResult
    gates: list[GateResult]
    quality: tuple[StageQuality, ...] = ()

    def lines(self) -> list[str]:
        """Each run's header and stage lines, each stage followed by its quality line, then the gates."""
        out: list[str] = []
        for role, run in (("baseline", self.baseline), ("candidate", self.candidate)):
            if run is None:
                continue
            head, *stages = run.lines()
            quality = {q.index: q for q in self.quality if q.role == role}
            out.append(head)
            for i, line in enumerate(stages):
                out.append(line)
                if i in quality:
                    out.append(f"    {quality[i].line()}")
        return out + [g.line() for g in self.gates]

    def write_tables(self, out_dir: Path) -> None:
        """``stages.txt`` (:meth:`lines`) and ``quality.json`` (every sampled verdict) into ``out_dir``."""
        (out_dir / "stages.txt").write_text("\n".join(self.lines()) + "\n", encoding="utf-8")
        quality = {"stages": [q.to_dict() for q in self.quality]}
        (out_dir / "quality.json").write_text(json.dumps(quality, ensure_ascii=False, indent=1), encoding="utf-8")


def run_suite_load(suite: Suite, baseline: EndpointConfig | None, candidate: EndpointConfig, out_dir: Path, *,
                   progress: Callable[[LoadProgress], None] | None = None,
                   locust_args: Sequence[str] = ()) -> SuiteLoad:
    """Run a suite's ``load:`` section (stages, gates, slo, seed, open_loop, max_tokens, ignore_eos, processes,
    deadline_s) against the baseline, then the candidate — same seed, same prompt order, same schedule — into
    ``out_dir/baseline`` and ``out_dir/candidate``, and gate them. ``baseline=None`` runs the candidate alone."""
    cfg = dict(suite.config.get("load") or {})
    unknown = set(cfg) - LOAD_KEYS
    if unknown:
        raise PlanError(f"suite {suite.system}: unknown key(s) under load: {sorted(unknown)}; "
                        f"known: {sorted(LOAD_KEYS)}")
    if not cfg.get("stages"):
        raise PlanError(f"suite {suite.system}: load.stages is missing — load targets and stages must be explicit")
    try:  # before any request: a typo here must not cost a load run
        QualityConfig.from_dict(cfg.get("quality"), where=f"suite {suite.system}: load.quality")
    except ValueError as exc:
        raise PlanError(str(exc)) from None
    gates_cfg = dict(cfg.get("gates") or {})
    slo = cfg.get("slo") or gates_cfg.get("slo")
    common: dict[str, Any] = {
        "seed": int(cfg.get("seed", 0)), "open_loop": cfg.get("open_loop"), "max_tokens": cfg.get("max_tokens"),
        "ignore_eos": bool(cfg.get("ignore_eos", False)), "slo": slo, "processes": int(cfg.get("processes", 1)),
        "deadline_s": cfg.get("deadline_s"), "locust_args": locust_args, "progress": progress,
    }
    common["secrets"] = [c.secret() for c in (baseline, candidate) if c is not None]  # either may be echoed
    base = run_load(suite.cases, baseline, cfg["stages"], out_dir / "baseline", **common) if baseline else None
    cand = run_load(suite.cases, candidate, cfg["stages"], out_dir / "candidate", **common)
    return SuiteLoad(base, cand, compare_load(base, cand, gates_cfg, suite=suite.system, slo=slo))


def add_quality(run: SuiteLoad, data: SuiteData,
                rest: Mapping[str, Mapping[str, Response]] | Callable[[set[str]], Mapping[str, Mapping[str, Response]]],
                *, at_rest: SuiteEvaluation | None = None) -> SuiteLoad:
    """Quality under load (:mod:`conformance.load.quality`): sample each stage's answers of both runs, check them
    against the replay's at-rest answers and add the per-stage results and the ``quality_drop`` gates (when
    ``load.quality.max_drop`` is set).

    ``rest`` is ``{"baseline": {case_id: Response}, "candidate": {…}}`` — or, for a caller that has no replay
    (``conformance load``), a function that is given the sampled case ids and asks them at rest. ``at_rest``: the
    replay's evaluation, whose candidate verdicts are reused (never computed a second time)."""
    cfg_all = dict(data.config.get("load") or {})
    cfg = QualityConfig.from_dict(cfg_all.get("quality"))
    if cfg.sample == 0:
        return run
    runs = [(role, r) for role, r in (("baseline", run.baseline), ("candidate", run.candidate)) if r is not None]
    records = {role: read_records(r.raw_dir)[0] for role, r in runs}
    if callable(rest):
        wanted = {str(rec["case_id"]) for recs in records.values()
                  for sampled in sample_by_stage(recs, cfg.sample, cfg.seed).values() for rec in sampled}
        rest = rest(wanted) if wanted else {}
    max_tokens = cfg_all.get("max_tokens")
    opts: dict[str, Any] = {"load_max_tokens": max_tokens, "ignore_eos": bool(cfg_all.get("ignore_eos", False)),
                            "at_rest": at_rest}
    per_role = {role: assess_run(data, role, r.label, records[role], len(r.stages), rest, cfg, **opts)
                for role, r in runs}
    gates = quality_gates(data.suite.system, per_role["candidate"], per_role.get("baseline"), cfg,
                          load_max_tokens=max_tokens)
    quality = tuple(q for qs in per_role.values() for q in qs)
    return dataclasses.replace(run, quality=quality, gates=[*run.gates, *gates])


__all__ = ["LoadError", "LoadProgress", "LoadResult", "SuiteLoad", "add_quality", "compare_load", "load_plan",
           "run_load", "run_suite_load"]
