"""The pytest plugin (entry point ``pytest11: conformance``): options, run plan, fixtures, parametrization, summary.

Thin on purpose — everything it does is a call into plain modules. It stays inert unless the run touches a suite
folder (one holding ``suite.yaml``), so installing the harness never changes an unrelated pytest run.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from conformance.errors import ConformanceError
from conformance.goldens.model import Case
from conformance.progress import load_progress, replay_progress
from conformance.report.collect import ResultCollector
from conformance.suite import Suite, discover_suites, find_root, load_suite

if TYPE_CHECKING:  # the heavy imports (openai, rapidfuzz) wait until a suite is actually run
    from conformance.endpoints.base import Response
    from conformance.run import RunPlan
    from conformance.runstore import RunStore

PLAN = pytest.StashKey["RunPlan"]()
SUITES = pytest.StashKey[dict[Path, Suite]]()
COLLECTOR = pytest.StashKey[ResultCollector]()
ENDPOINTS = pytest.StashKey[Any]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("conformance", "LLM migration conformance")
    group.addoption("--baseline", dest="conformance_baseline", metavar="NAME",
                    help="baseline endpoint from endpoints.yaml, or `recorded[:NAME]` to replay recordings")
    group.addoption("--candidate", dest="conformance_candidate", metavar="NAME", help="candidate endpoint name")
    group.addoption("--endpoints", dest="conformance_endpoints", metavar="PATH", help="endpoints file")
    group.addoption("--conformance-reports", dest="conformance_reports", metavar="DIR",
                    help="where run folders go (default: reports/)")
    group.addoption("--conformance-run-id", dest="conformance_run_id", metavar="ID", help="name the run folder")
    group.addoption("--resume", dest="conformance_resume", metavar="RUN_ID",
                    help="continue an interrupted run: reuse every response it already received")
    group.addoption("--no-preflight", dest="conformance_no_preflight", action="store_true",
                    help="skip GET /v1/models before the run")
    group.addoption("--no-local-start", dest="conformance_no_local_start", action="store_true",
                    help="do not start embedded llama.cpp servers on demand")
    group.addoption("--latency", dest="conformance_latency", action="store_true",
                    help="run each suite's latency phase (gates.latency: samples, concurrency, budgets)")
    group.addoption("--load", dest="conformance_load", action="store_true",
                    help="run each suite's Locust load stages (suite.yaml `load:`; takes minutes)")
    group.addoption("--conformance-profile", dest="conformance_profile", choices=["pr", "nightly"],
                    help="pr: correctness checks only (fast); nightly: also the latency phase")
    for key, help_ in (("endpoints", "endpoints file"), ("baseline", "baseline endpoint"),
                       ("candidate", "candidate endpoint"), ("reports", "reports folder")):
        parser.addini(f"conformance_{key}", help_, default="")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "conformance_suite: a test generated from a conformance suite")
    config.stash[SUITES] = {}
    config.stash[COLLECTOR] = ResultCollector()
    workerinput = getattr(config, "workerinput", None)
    if workerinput and "conformance_plan" in workerinput:
        from conformance.run import RunPlan

        config.stash[PLAN] = RunPlan.from_dict(workerinput["conformance_plan"])
        config.stash[ENDPOINTS] = _settings(config)[1]
    config.pluginmanager.register(_Reporter(config), "conformance-reporter")
    if config.pluginmanager.hasplugin("xdist"):
        config.pluginmanager.register(_XdistHooks(config), "conformance-xdist")


class _XdistHooks:
    """Hand the controller's run plan to every worker (workers never preflight or start servers)."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        if PLAN in self.config.stash:
            node.workerinput["conformance_plan"] = self.config.stash[PLAN].to_dict()


def _settings(config: pytest.Config) -> Any:
    from conformance.settings import build_settings

    opt = config.option
    cli = {
        "endpoints": opt.conformance_endpoints, "baseline": opt.conformance_baseline,
        "candidate": opt.conformance_candidate, "reports": opt.conformance_reports,
        "run_id": opt.conformance_run_id, "resume": opt.conformance_resume,
        "no_preflight": opt.conformance_no_preflight, "no_local_start": opt.conformance_no_local_start,
    }
    ini = {k: config.getini(f"conformance_{k}") for k in ("endpoints", "baseline", "candidate", "reports")}
    return build_settings(find_root(config.rootpath), cli, os.environ, ini)


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    config = session.config
    if hasattr(config, "workerinput"):
        return
    suite_dirs = discover_suites([Path(a.split("::")[0]) for a in config.args])
    if not suite_dirs:
        return
    from conformance.run import prepare

    try:
        suites = [_suite(config, d) for d in suite_dirs]
        settings, endpoints = _settings(config)
        plan = prepare(settings, endpoints, suites)
    except ConformanceError as exc:
        raise pytest.UsageError(f"conformance: {exc}") from None
    config.stash[PLAN] = plan
    config.stash[ENDPOINTS] = endpoints
    if not config.option.collectonly:
        plan.run_dir.mkdir(parents=True, exist_ok=True)
    tr = config.pluginmanager.get_plugin("terminalreporter")
    if tr is not None:
        tr.write_line(f"conformance: run {plan.run_id}: baseline {plan.baseline_label} vs candidate "
                      f"{plan.candidate} → {plan.run_dir}")
        for note in plan.notes:
            tr.write_line(f"conformance: {note}")


def _suite(config: pytest.Config, suite_dir: Path) -> Suite:
    cache = config.stash[SUITES]
    key = suite_dir.resolve()
    if key not in cache:
        cache[key] = load_suite(key, find_root(config.rootpath))
    return cache[key]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "case" not in metafunc.fixturenames:
        return
    suite_dir = Path(str(metafunc.definition.path)).parent
    try:
        suite = _suite(metafunc.config, suite_dir)
    except ConformanceError as exc:
        pytest.fail(str(exc), pytrace=False)
    import gc

    if not gc.get_freeze_count():
        # Once per process: the loaded suites and everything imported so far live as long as the session, yet
        # CPython's collector would re-scan them at every full pass while pytest builds an item per case, and again
        # at exit — 1.6 s of CPU at 10,000 cases (docs/PERFORMANCE.md, F6). Frozen, they are skipped; objects made
        # later are collected as usual.
        gc.freeze()
    marks = [pytest.mark.xdist_group(suite.system), pytest.mark.conformance_suite]
    # golden tags become marks, so `pytest suites/legal -m en` selects the English cases. Each distinct tag is
    # registered once (not once per case and test function: 40,000 marker lines for 6 tags at 10,000 cases) and
    # its mark built once; a line already registered (by an earlier test function) is not added again.
    tags = dict.fromkeys(t for c in suite.cases for t in c.tags)
    registered = set(metafunc.config.getini("markers"))
    for tag in tags:
        if (line := f"{tag}: golden tag (conformance)") not in registered:
            metafunc.config.addinivalue_line("markers", line)
    tag_marks = {t: getattr(pytest.mark, t) for t in tags}
    params = [pytest.param(c, id=c.id, marks=[*marks, *(tag_marks[t] for t in c.tags)]) for c in suite.cases]
    metafunc.parametrize("case", params)


def _require_plan(config: pytest.Config) -> RunPlan:
    if PLAN not in config.stash:
        pytest.fail("conformance: no run plan — run the suite through its folder (e.g. `pytest suites/legal`)",
                    pytrace=False)
    return config.stash[PLAN]


@pytest.fixture(scope="session")
def conformance_store(pytestconfig: pytest.Config) -> Iterator[RunStore]:
    """The run's response cache (``reports/<run-id>/responses``), shared by every test of the run."""
    from conformance.redact import Redactor
    from conformance.runstore import RunStore

    plan = _require_plan(pytestconfig)
    worker = getattr(pytestconfig, "workerinput", {}).get("workerid", "main")
    store = RunStore(plan.run_dir, writer=worker, redactor=Redactor(pytestconfig.stash[ENDPOINTS].secrets()))
    yield store
    store.close()


@pytest.fixture(scope="module")
def suite(request: pytest.FixtureRequest) -> Suite:
    """The suite of the requesting test module (its folder's ``suite.yaml``), e.g. ``suite.gates["terms"]``."""
    return _suite(request.config, Path(str(request.path)).parent)


@pytest.fixture(scope="module")
def suite_responses(request: pytest.FixtureRequest, suite: Suite, conformance_store: RunStore) -> dict[str, Any]:
    """Baseline and candidate responses for every selected case of this suite, replayed concurrently once.

    ``suite_responses["baseline"][case_id]`` → :class:`~conformance.endpoints.base.Response`.
    """
    from conformance.replay import replay_sync
    from conformance.run import make_endpoint

    plan = _require_plan(request.config)
    endpoints = request.config.stash[ENDPOINTS]
    selected = {item.callspec.params["case"].id for item in request.session.items
                if hasattr(item, "callspec") and isinstance(item.callspec.params.get("case"), Case)
                and Path(str(item.path)).parent.resolve() == suite.dir}
    cases = [c for c in suite.cases if c.id in selected] or suite.cases
    base = make_endpoint(plan, endpoints, "baseline", suite)
    cand = make_endpoint(plan, endpoints, "candidate", suite)
    # noise floor: a second pass of each endpoint against itself (suite.yaml `noise_floor: {repeats: 2}`)
    repeats = int((suite.config.get("noise_floor") or {}).get("repeats", 1))
    got = replay_sync([base, cand], cases, conformance_store, repeats=repeats,
                      progress=replay_progress(request.config, f"replaying {suite.system}", 2 * repeats * len(cases)))
    out: dict[str, Any] = {"cases": cases}
    for role, ep in (("baseline", base), ("candidate", cand)):
        out[role] = {cid: r for (name, cid, rep), r in got.items() if name == ep.name and rep == 0}
        out[f"{role}_repeat"] = {cid: r for (name, cid, rep), r in got.items() if name == ep.name and rep == 1}
    # prompt-perturbation robustness (opt-in: suite.yaml `perturbation: {seed: N}`; it doubles the calls)
    pert = suite.config.get("perturbation")
    if pert is not None:
        from conformance.checks.perturb import perturbed_case

        variants = [perturbed_case(c, int(pert.get("seed", 0))) for c in cases]
        base = make_endpoint(plan, endpoints, "baseline", suite)
        cand = make_endpoint(plan, endpoints, "candidate", suite)
        got = replay_sync([base, cand], variants, conformance_store,
                          progress=replay_progress(request.config, f"perturbed {suite.system}", 2 * len(variants)))
        for role, ep in (("baseline", base), ("candidate", cand)):
            out[f"{role}_perturbed"] = {cid: r for (name, cid, _), r in got.items() if name == ep.name}
    return out


def _phase_enabled(config: pytest.Config, phase: str) -> bool:
    opt = config.option
    if phase == "latency":
        return bool(opt.conformance_latency or opt.conformance_profile == "nightly")
    return bool(opt.conformance_load) and opt.conformance_profile != "pr"


@pytest.fixture(scope="module")
def latency_responses(request: pytest.FixtureRequest, suite: Suite, conformance_store: RunStore
                      ) -> dict[str, list[Response]]:
    """The latency phase: ``gates.latency.samples`` requests per endpoint at ``gates.latency.concurrency``, same
    seeded order for both, separate from the correctness replay. ``{"baseline": [...], "candidate": [...]}``."""
    from conformance.replay import latency_phase
    from conformance.run import make_endpoint

    cfg = suite.gates.get("latency")
    if not cfg:
        pytest.skip("suite.yaml declares no latency gates")
    if not _phase_enabled(request.config, "latency"):
        pytest.skip("latency phase not requested: pass --latency (or --conformance-profile nightly)")
    plan, endpoints = _require_plan(request.config), request.config.stash[ENDPOINTS]
    conc = int(cfg.get("concurrency", 1))
    base = make_endpoint(plan, endpoints, "baseline", suite, concurrency=conc)
    cand = make_endpoint(plan, endpoints, "candidate", suite, concurrency=conc)
    got = latency_phase([base, cand], suite.cases, conformance_store, samples=int(cfg.get("samples", 200)),
                        seed=int(cfg.get("seed", 0)))
    return {"baseline": got[base.name], "candidate": got[cand.name]}


@pytest.fixture(scope="module")
def load_run(request: pytest.FixtureRequest, suite: Suite) -> Any:
    """Locust load stages against baseline then candidate (``--load``), in a subprocess; see conformance.load.
    A sample of each stage's answers then goes through the replay's per-case checks (quality under load)."""
    if not suite.config.get("load"):
        pytest.skip("suite.yaml declares no load stages")
    if not _phase_enabled(request.config, "load"):
        pytest.skip("load stages not requested: pass --load")
    from conformance.load.runner import add_quality, run_suite_load
    from conformance.run import live_config

    rest = request.getfixturevalue("suite_responses")  # at-rest answers first: the yardstick for quality
    plan, endpoints = _require_plan(request.config), request.config.stash[ENDPOINTS]
    progress = load_progress(request.config)
    out = plan.run_dir / "load" / suite.system
    candidate = endpoints.get(plan.candidate)
    run = run_suite_load(suite, live_config(plan, endpoints, "baseline"), candidate, out, progress=progress)
    run = add_quality(run, request.getfixturevalue("suite_data"), rest)
    run.write_tables(out)
    return run


@pytest.fixture(scope="module")
def suite_data(suite: Suite) -> Any:
    """The suite with its glossary, labels and schemas loaded once — what ``conformance.evaluate`` checks take."""
    from conformance.evaluate import SuiteData

    return SuiteData(suite)


@pytest.fixture
def case_view(request: pytest.FixtureRequest, case: Case, baseline: Response, candidate: Response,
              suite_responses: dict[str, Any]) -> Any:
    """Everything about ``case`` in this run: ``case_view.baseline``, ``.candidate`` and their second passes."""
    from conformance.evaluate import CaseView

    def extra(key: str) -> Response | None:
        return (suite_responses.get(key) or {}).get(case.id)

    return CaseView(case, baseline, candidate, extra("baseline_repeat"), extra("candidate_repeat"),
                    extra("baseline_perturbed"), extra("candidate_perturbed"))


def _response(request: pytest.FixtureRequest, role: str, case: Case) -> Response:
    responses = request.getfixturevalue("suite_responses")[role]
    resp: Response = responses[case.id]
    # No text: it is in responses/ once, and the report joins it by fingerprint for the failing cases it shows
    # (repeating it here made results.jsonl 112 MB at 100,000 results; docs/PERFORMANCE.md, F7).
    request.node.user_properties.append(("conformance", {
        "kind": "response", "role": role, "suite": case.system, "case_id": case.id,
        "endpoint": resp.endpoint, "fingerprint": resp.fingerprint, "fault": resp.fault, "error": resp.error,
        "ttft_ms": resp.ttft_ms, "e2e_ms": resp.e2e_ms, "finish_reason": resp.finish_reason,
        "attempts": len(resp.attempts),
    }))
    return resp


@pytest.fixture
def baseline(request: pytest.FixtureRequest, case: Case) -> Response:
    """The baseline's (or its recording's) answer to ``case``."""
    return _response(request, "baseline", case)


@pytest.fixture
def candidate(request: pytest.FixtureRequest, case: Case) -> Response:
    """The candidate's answer to ``case``."""
    return _response(request, "candidate", case)


@pytest.fixture
def conformance_record(request: pytest.FixtureRequest) -> Any:
    """Attach check and gate results to the current test, for the report (works under xdist).

    Example::

        def test_terms(case, baseline, candidate, conformance_record):
            result = term_findings(...)
            conformance_record.check(case, result)
            assert_check(result)
    """
    from conformance.report.collect import Recorder

    return Recorder(request.node)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Redact secrets from what a test report carries (user properties → JUnit XML and results, failure text):
    a gateway or a model may echo a credential back in an error body or an answer."""
    report = yield
    if ENDPOINTS in item.config.stash:
        from conformance.redact import Redactor

        redact = Redactor(item.config.stash[ENDPOINTS].secrets())
        report.user_properties = [(k, redact.deep(v)) for k, v in report.user_properties]
        if isinstance(report.longrepr, str):
            report.longrepr = redact(report.longrepr)
        report.sections = [(title, redact(text)) for title, text in report.sections]
    return report


class _Reporter:
    """Controller-side aggregation: per-test results (worker reports included) → run folder + terminal."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.report_lines: list[str] = []

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.config.stash[COLLECTOR].add(report)

    def _active(self) -> bool:
        """Controller of a real run (not a worker, not --collect-only) with a run plan."""
        cfg = self.config
        return not hasattr(cfg, "workerinput") and PLAN in cfg.stash and not cfg.option.collectonly

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if not self._active():
            return
        from conformance.report.trend import previous_run_dir
        from conformance.report.write import finish_run

        plan = self.config.stash[PLAN]
        previous = previous_run_dir(plan.run_dir.parent, plan.run_id)  # before write() moves reports/latest
        self.config.stash[COLLECTOR].write(plan, int(session.exitstatus))
        try:
            self.report_lines, _, _ = finish_run(plan.run_dir, previous)
        except Exception as exc:  # a bug in the report must never hide the results already written
            self.report_lines = [f"conformance: report.html not written: {exc!r}"]

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self._active():
            for line in self.config.stash[COLLECTOR].summary_lines(self.config.stash[PLAN]):
                terminalreporter.write_line(line)
            for line in self.report_lines:
                terminalreporter.write_line(line)


def pytest_unconfigure(config: pytest.Config) -> None:
    if not hasattr(config, "workerinput") and PLAN in config.stash:
        from conformance.run import teardown

        teardown(config.stash[PLAN])
