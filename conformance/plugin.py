"""The pytest plugin (entry point ``pytest11: conformance``): options, run plan, items, fixtures, summary.

Thin on purpose: it declares options, resolves settings once, prepares the run (preflight) on the controller and
hands the plan to xdist workers, turns every ``suite.yaml`` into items (:mod:`conformance.items`), and aggregates
results on the controller. Everything else is a call into plain modules. It stays inert unless the run touches a
suite folder (one holding ``suite.yaml``), so installing the harness never changes an unrelated pytest run.

A run that cannot start — a suite.yaml or golden that does not validate, an unknown endpoint, a model that is not
served, an endpoint that does not answer — stops before any request with one line, and still writes its run folder
(summary.json with the outcome ``config_error`` or ``infrastructure``, and report.html), exiting with that outcome's
code (docs/VERDICTS.md).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from conformance.errors import ConformanceError
from conformance.goldens.model import Case
from conformance.progress import load_progress, replay_progress
from conformance.report.collect import ResultCollector
from conformance.suite import Suite, discover_suites, find_root, load_suite

if TYPE_CHECKING:
    from conformance.evaluate import SuiteEvaluation
    from conformance.response import Response
    from conformance.run import RunPlan
    from conformance.runstore import RunStore
    from conformance.suitedata import CaseView
    from conformance.suiterun import SuiteRun

PLAN = pytest.StashKey["RunPlan"]()
SUITES = pytest.StashKey[dict[Path, Suite]]()
RUNS = pytest.StashKey[dict[Path, "SuiteRun"]]()
STORE = pytest.StashKey["RunStore"]()
COLLECTOR = pytest.StashKey[ResultCollector]()
ENDPOINTS = pytest.StashKey[Any]()
STOPPED = pytest.StashKey[list[str]]()  # [outcome, message] of a run that stopped before any request

__all__ = ["case_marks", "load_progress", "phase_enabled", "stopped", "strict", "suite_for", "suite_run"]


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
                    help="skip GET /v1/models and the one-token probe before the run")
    group.addoption("--no-local-start", dest="conformance_no_local_start", action="store_true",
                    help="do not start embedded llama.cpp servers on demand")
    group.addoption("--latency", dest="conformance_latency", action="store_true",
                    help="run each suite's latency phase (gates.latency: samples, concurrency, budgets)")
    group.addoption("--load", dest="conformance_load", action="store_true",
                    help="run each suite's Locust load stages (suite.yaml `load:`; takes minutes)")
    group.addoption("--conformance-profile", dest="conformance_profile", choices=["pr", "nightly", "cutover"],
                    help="pr: correctness checks only (fast); nightly: also the latency phase; cutover: nightly "
                         "and strict (insufficient evidence and baseline_fails block)")
    group.addoption("--conformance-strict", dest="conformance_strict", action="store_true",
                    help="insufficient evidence and baseline_fails verdicts block (also pytest's --strict)")
    for key, help_ in (("endpoints", "endpoints file"), ("baseline", "baseline endpoint"),
                       ("candidate", "candidate endpoint"), ("reports", "reports folder")):
        parser.addini(f"conformance_{key}", help_, default="")
    parser.addini("conformance_strict", "insufficient evidence and baseline_fails block", type="bool", default=False)


def _touches_suites(config: pytest.Config) -> list[Path]:
    return discover_suites([Path(a.split("::")[0]) for a in config.args])


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "conformance_suite: a test generated from a conformance suite")
    config.stash[SUITES] = {}
    config.stash[RUNS] = {}
    config.stash[COLLECTOR] = ResultCollector()
    workerinput = getattr(config, "workerinput", None)
    if workerinput and "conformance_plan" in workerinput:
        from conformance.run import RunPlan

        config.stash[PLAN] = RunPlan.from_dict(workerinput["conformance_plan"])
        config.stash[ENDPOINTS] = _settings(config)[1]
    elif workerinput and "conformance_stopped" in workerinput:
        config.stash[STOPPED] = list(workerinput["conformance_stopped"])
    config.pluginmanager.register(_Reporter(config), "conformance-reporter")
    if config.pluginmanager.hasplugin("xdist"):
        config.pluginmanager.register(_XdistHooks(config), "conformance-xdist")
        if workerinput is None and config.getoption("dist", "no") not in ("no", "loadgroup", "each") \
                and _touches_suites(config):
            # Every item of a suite must run on one worker, or each worker would replay the suite's cases itself.
            config.option.dist = "loadgroup"


class _XdistHooks:
    """Hand the controller's run plan to every worker (workers never preflight or start servers)."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        if PLAN in self.config.stash:
            node.workerinput["conformance_plan"] = self.config.stash[PLAN].to_dict()
        if STOPPED in self.config.stash:
            stop: list[str] = self.config.stash[STOPPED]
            node.workerinput["conformance_stopped"] = list(stop)


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
    suite_dirs = _touches_suites(config)
    if not suite_dirs:
        return
    from conformance.run import prepare, stop_outcome

    try:
        suites = [suite_for(config, d) for d in suite_dirs]
        settings, endpoints = _settings(config)
        config.stash[ENDPOINTS] = endpoints
        plan = prepare(settings, endpoints, suites)
    except ConformanceError as exc:
        outcome = stop_outcome(exc)
        config.stash[STOPPED] = [outcome, str(exc)]
        _write_line(config, f"conformance: {outcome}: {exc}", red=True)
        _stopped_plan(config, exc)
        return
    config.stash[PLAN] = plan
    if not config.option.collectonly:
        plan.run_dir.mkdir(parents=True, exist_ok=True)
    _write_line(config, f"conformance: run {plan.run_id}: baseline {plan.baseline_label} vs candidate "
                        f"{plan.candidate} → {plan.run_dir}")
    for note in plan.notes:
        _write_line(config, f"conformance: {note}")


def _stopped_plan(config: pytest.Config, exc: ConformanceError) -> None:
    """A plan for a run that stopped before any request, so its folder (summary.json, report.html) is still
    written — unless the settings themselves could not be read (then there is no reports folder to write to)."""
    from conformance.run import RunPlan

    try:
        settings, _ = _settings(config)
    except ConformanceError:
        return
    from conformance.runstore import new_run_id

    run_id = settings.run_id or new_run_id()
    config.stash[PLAN] = RunPlan(run_id, settings.reports_dir / run_id, settings.baseline,
                                 settings.baseline_recorded, settings.candidate, notes=[str(exc)])


def _write_line(config: pytest.Config, line: str, red: bool = False) -> None:
    tr = config.pluginmanager.get_plugin("terminalreporter")
    if tr is not None:
        tr.write_line(line, red=red)


def stopped(config: pytest.Config) -> bool:
    """Whether the run stopped before any request (its suites then collect no items)."""
    return STOPPED in config.stash


def suite_for(config: pytest.Config, suite_dir: Path) -> Suite:
    """The suite in ``suite_dir`` (loaded and validated once per process)."""
    cache = config.stash[SUITES]
    key = suite_dir.resolve()
    if key not in cache:
        cache[key] = load_suite(key, find_root(config.rootpath))
    return cache[key]


def strict(config: pytest.Config) -> bool:
    """``--conformance-strict``, pytest's own ``--strict``, the ``cutover`` profile or ``conformance_strict``."""
    return bool(config.option.conformance_strict or config.getoption("strict", False)
                or config.option.conformance_profile == "cutover" or config.getini("conformance_strict"))


def phase_enabled(config: pytest.Config, phase: str) -> bool:
    opt = config.option
    if phase == "latency":
        return bool(opt.conformance_latency or opt.conformance_profile in ("nightly", "cutover"))
    return bool(opt.conformance_load) and opt.conformance_profile != "pr"


def case_marks(config: pytest.Config, suite: Suite) -> dict[str, list[pytest.MarkDecorator]]:
    """Per case: the suite's xdist group, the conformance marker, and its golden tags as marks (so
    ``pytest suites/legal -m en`` selects the English cases). Each distinct tag is registered once."""
    import gc

    if not gc.get_freeze_count():
        # Once per process: the loaded suites and everything imported so far live as long as the session, yet
        # CPython's collector would re-scan them at every full pass while pytest builds an item per case
        # (docs/PERFORMANCE.md, F6). Frozen, they are skipped; objects made later are collected as usual.
        gc.freeze()
    base = [pytest.mark.xdist_group(suite.system), pytest.mark.conformance_suite]
    tags = dict.fromkeys(t for c in suite.cases for t in c.tags)
    registered = set(config.getini("markers"))
    for tag in tags:
        if (line := f"{tag}: golden tag (conformance)") not in registered:
            config.addinivalue_line("markers", line)
    tag_marks = {t: getattr(pytest.mark, t) for t in tags}
    return {c.id: [*base, *(tag_marks[t] for t in c.tags)] for c in suite.cases}


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if file_path.name == "suite.yaml" and not stopped(parent.config):
        from conformance.items import SuiteFile

        return SuiteFile.from_parent(parent, path=file_path)
    return None


def _require_plan(config: pytest.Config) -> RunPlan:
    if PLAN not in config.stash:
        pytest.fail("conformance: no run plan — run the suite through its folder (e.g. `pytest suites/legal`)",
                    pytrace=False)
    return config.stash[PLAN]


def _store(config: pytest.Config) -> RunStore:
    if STORE not in config.stash:
        from conformance.redact import Redactor
        from conformance.runstore import RunStore

        plan = _require_plan(config)
        worker = getattr(config, "workerinput", {}).get("workerid", "main")
        store = RunStore(plan.run_dir, writer=worker, redactor=Redactor(config.stash[ENDPOINTS].secrets()))
        config.stash[STORE] = store
        config.add_cleanup(store.close)
    return config.stash[STORE]


def suite_run(node: pytest.Item) -> SuiteRun:
    """The :class:`~conformance.suiterun.SuiteRun` of ``node``'s suite, created once per process; the cases it
    replays are the selected items' cases (``-k``, ``--lf``)."""
    from conformance.suiterun import SuiteRun

    config = node.config
    suite_dir = Path(str(node.path)).parent.resolve()
    runs = config.stash[RUNS]
    if suite_dir not in runs:
        suite = suite_for(config, suite_dir)
        selected = {item.case.id for item in node.session.items
                    if Path(str(item.path)).parent.resolve() == suite_dir and hasattr(item, "case")}
        selected |= {item.callspec.params["case"].id for item in node.session.items
                     if hasattr(item, "callspec") and isinstance(item.callspec.params.get("case"), Case)
                     and Path(str(item.path)).parent.resolve() == suite_dir}
        runs[suite_dir] = SuiteRun(suite, _require_plan(config), config.stash[ENDPOINTS], _store(config),
                                   selected=selected or None,
                                   progress=lambda label, total: replay_progress(config, label, total))
    return runs[suite_dir]


# --- fixtures for a team's own test module next to suite.yaml -----------------------------------------------


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """A test function in a suite folder that takes ``case`` runs once per golden case (ids = case ids)."""
    if "case" not in metafunc.fixturenames:
        return
    suite_dir = Path(str(metafunc.definition.path)).parent
    try:
        suite = suite_for(metafunc.config, suite_dir)
    except ConformanceError as exc:
        pytest.fail(str(exc), pytrace=False)
    marks = case_marks(metafunc.config, suite)
    metafunc.parametrize("case", [pytest.param(c, id=c.id, marks=marks[c.id]) for c in suite.cases])


@pytest.fixture(scope="module")
def suite(request: pytest.FixtureRequest) -> Suite:
    """The suite of the requesting test module (its folder's ``suite.yaml``), e.g. ``suite.gates["terms"]``."""
    return suite_for(request.config, Path(str(request.path)).parent)


@pytest.fixture(scope="module")
def suite_evaluation(request: pytest.FixtureRequest) -> SuiteEvaluation:
    """This run's evaluation of the module's suite — the same results the generated items read, computed once.

    Example::

        def test_no_case_lost_every_term(suite_evaluation):
            terms = suite_evaluation.results_of("terms")
            assert not any(r.details["expectation_failures"] > 2 for r in terms.values())
    """
    return suite_run(request.node).evaluation()


@pytest.fixture
def case_view(case: Case, suite_evaluation: SuiteEvaluation) -> CaseView:
    """Everything about ``case`` in this run: ``case_view.baseline``, ``.candidate`` and their second passes."""
    view = suite_evaluation.view(case.id)
    if view is None:
        pytest.skip(f"case {case.id} was not replayed in this run")
    return view


@pytest.fixture
def baseline(case_view: CaseView) -> Response:
    """The baseline's (or its recording's) answer to ``case``."""
    return case_view.baseline


@pytest.fixture
def candidate(case_view: CaseView) -> Response:
    """The candidate's answer to ``case``."""
    return case_view.candidate


@pytest.fixture
def conformance_record(request: pytest.FixtureRequest) -> Any:
    """Attach check and gate results to the current test, for the report (works under xdist).

    Example::

        def test_terms_ok(case, case_view, conformance_record):
            result = my_check(case_view.baseline.text, case_view.candidate.text)
            conformance_record.verify(case, result)
    """
    from conformance.report.collect import Recorder

    return Recorder(request.node)


# --- reporting ----------------------------------------------------------------------------------------------


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Redact secrets from what a test report carries (user properties → JUnit XML and results, failure text) —
    a backstop: answers are already redacted where they enter the harness."""
    report = yield
    if report.skipped and isinstance(report.longrepr, tuple) and hasattr(item, "case"):
        path, line, _ = item.reportinfo()  # a skipped case points at its golden, not at pytest's internals
        report.longrepr = (str(path), (line or 0) + 1, report.longrepr[2])
    if ENDPOINTS in item.config.stash:
        from conformance.redact import Redactor

        redact = Redactor(item.config.stash[ENDPOINTS].secrets())
        report.user_properties = [(k, redact.deep(v)) for k, v in report.user_properties]
        if report.longrepr is not None and not isinstance(report.longrepr, tuple):
            text = str(report.longrepr)
            if redact(text) != text:
                report.longrepr = redact(text)
        report.sections = [(title, redact(text)) for title, text in report.sections]
    return report


class _Reporter:
    """Controller-side aggregation: per-test results (worker reports included) → run folder + terminal."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.report_lines: list[str] = []
        self.exit_code: int | None = None

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.config.stash[COLLECTOR].add(report)

    def _active(self) -> bool:
        """Controller of a real run (not a worker, not --collect-only) with a run plan."""
        cfg = self.config
        return not hasattr(cfg, "workerinput") and PLAN in cfg.stash and not cfg.option.collectonly

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        stop = self.config.stash.get(STOPPED, None)
        if stop is not None and not hasattr(self.config, "workerinput"):
            from conformance.report.outcome import exit_code

            session.exitstatus = exit_code(stop[0], strict(self.config))  # also without a run folder
        if not self._active():
            return
        from conformance.report.trend import previous_run_dir
        from conformance.report.write import finish_run

        plan = self.config.stash[PLAN]
        previous = previous_run_dir(plan.run_dir.parent, plan.run_id)  # before write() moves reports/latest
        self.config.stash[COLLECTOR].write(plan, int(session.exitstatus), strict=strict(self.config), stopped=stop)
        try:
            self.report_lines, _, self.exit_code = finish_run(plan.run_dir, previous, strict=strict(self.config))
        except Exception as exc:  # a bug in the report must never hide the results already written
            self.report_lines = [f"conformance: report.html not written: {exc!r}"]
        if self.exit_code is not None and int(session.exitstatus) not in (2, 3):
            # an interrupted run (Ctrl-C, SIGTERM) or a pytest internal error keeps pytest's own exit code;
            # its summary.json still says "infrastructure"
            session.exitstatus = self.exit_code

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self._active():
            for line in self.config.stash[COLLECTOR].summary_lines(self.config.stash[PLAN],
                                                                   strict=strict(self.config),
                                                                   stopped=self.config.stash.get(STOPPED, None)):
                terminalreporter.write_line(line)
            for line in self.report_lines:
                terminalreporter.write_line(line)


def pytest_unconfigure(config: pytest.Config) -> None:
    if not hasattr(config, "workerinput") and PLAN in config.stash:
        from conformance.run import teardown

        teardown(config.stash[PLAN])
