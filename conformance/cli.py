"""``conformance`` command line: lint | preflight | record | load | report | runs | view | new-system | codeowners |
local | parse-tool-calls (``runs`` and ``view`` live in :mod:`conformance.runs_cli`).

Every command prints one actionable message for bad input (``ConformanceError``) and exits non-zero; tracebacks are
for bugs only. Exit codes: 0 ok, 1 problems found (lint errors, failed recordings, preflight failures), 2 usage or
configuration error.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from conformance.errors import ConformanceError

if TYPE_CHECKING:
    from conformance.endpoints.base import Endpoint
    from conformance.endpoints.config import EndpointConfig, EndpointsFile
    from conformance.load.runner import SuiteLoad
    from conformance.response import Response
    from conformance.settings import Settings
    from conformance.suite import Suite


def _root(args: argparse.Namespace) -> Path:
    from conformance.suite import find_root

    return find_root(Path(args.root) if getattr(args, "root", None) else Path.cwd())


def cmd_lint(args: argparse.Namespace) -> int:
    from conformance.goldens.lint import lint_paths

    root = _root(args)
    paths = [Path(p) for p in args.paths] or [p for p in (root / "goldens", root / "suites") if p.exists()]
    report = lint_paths(paths, root)
    for e in report.errors:
        print(f"{_rel(e.location)}: {e.message}")
    for w in report.warnings:
        print(f"{_rel(w.location)}: warning: {w.message}")
    print(report.summary())
    return 1 if report.errors else 0


def _rel(location: str) -> str:
    """Paths relative to the current folder, like a compiler prints them (clickable in editors and CI logs)."""
    path, sep, line = location.rpartition(":") if location.rpartition(":")[2].isdigit() else (location, "", "")
    with contextlib.suppress(ValueError):  # another drive on Windows
        path = os.path.relpath(path)
    return f"{path}{sep}{line}"


def _settings(args: argparse.Namespace) -> tuple[Settings, EndpointsFile]:
    from conformance.settings import build_settings

    # `record --endpoint X` needs no baseline/candidate defaults: X stands in for both roles
    only = getattr(args, "endpoint", None) if args.func is cmd_record else None
    cli = {"endpoints": args.endpoints, "baseline": getattr(args, "baseline", None) or only,
           "candidate": getattr(args, "candidate", None) or only}
    return build_settings(_root(args), cli, os.environ, {})


def cmd_preflight(args: argparse.Namespace) -> int:
    """Embedded servers it had to start are stopped again before it returns (also on errors and Ctrl-C): a check
    must not leave llama.cpp processes holding ports and memory. `conformance local up` keeps them running."""
    from conformance.endpoints.preflight import check_all
    from conformance.local.servers import ensure_up, stop
    from conformance.redact import Redactor

    settings, endpoints = _settings(args)
    names = args.endpoint or [n for n in (settings.baseline, settings.candidate) if not n.startswith("recorded")]
    cfgs = [endpoints.get(n) for n in names]
    started: list[str] = []
    try:
        for cfg in [] if args.no_local_start else [c for c in cfgs if c.local]:
            started += ensure_up([cfg])  # one at a time: a failure on the second still stops the first
        bad = 0
        for r in check_all(cfgs, Redactor(endpoints.secrets())):
            mark = "ok" if r.ok else r.status
            detail = r.message or f"serves {r.model!r} (server: {r.server or 'unknown'})"
            print(f"{r.endpoint}: {mark}: {detail}")
            bad += not r.ok
    finally:
        for name in started:
            stop(name)
            print(f"{name}: stopped again (started for this check; `conformance local up` keeps it running)")
    return 1 if bad else 0


def cmd_record(args: argparse.Namespace) -> int:
    from conformance.record import record_system

    settings, endpoints = _settings(args)
    name = args.endpoint or settings.baseline
    failed = 0
    for system in args.system:
        failed += record_system(settings.root, endpoints, system, name, start_local=not args.no_local_start,
                                progress=not args.quiet)
    return 1 if failed else 0


def cmd_load(args: argparse.Namespace) -> int:
    """Standalone load stages: the suite's `load:` section against baseline then candidate, with progress."""
    from conformance.endpoints.config import RECORDED
    from conformance.load.runner import run_suite_load
    from conformance.local.servers import ensure_up
    from conformance.progress import LoadLines
    from conformance.runstore import new_run_id
    from conformance.suite import load_suite

    settings, endpoints = _settings(args)
    suite = load_suite(settings.root / "suites" / args.system, settings.root)
    base = None if settings.baseline.startswith(RECORDED) else endpoints.get(settings.baseline)
    cand = endpoints.get(settings.candidate)
    if not args.no_local_start:
        ensure_up([c for c in (base, cand) if c is not None and c.local])
    out = Path(args.out) if args.out else settings.reports_dir / f"{new_run_id()}-load-{args.system}"
    lines = LoadLines(lambda line: print(f"  {line}", file=sys.stderr, flush=True),
                      redraw=sys.stderr if sys.stderr.isatty() else None)
    try:
        run = run_suite_load(suite, base, cand, out, progress=None if args.quiet else lines,
                             locust_args=args.locust_args)
    finally:
        lines.close()
    run = _quality_at_rest(run, suite, settings, endpoints, out)
    run.write_tables(out)
    for line in run.lines():
        print(line)
    print(f"load results: {out}")
    return 0 if all(g.passed for g in run.gates) else 1


def _quality_at_rest(run: SuiteLoad, suite: Suite, settings: Settings, endpoints: EndpointsFile,
                     out: Path) -> SuiteLoad:
    """Quality under load needs the sampled cases' at-rest answers: ask them after the stages (only those cases,
    both endpoints, through a run cache in ``out/at-rest``; a recorded baseline answers from its recordings)."""
    from conformance.endpoints.base import make_endpoint
    from conformance.endpoints.recorded import RecordedEndpoint
    from conformance.evaluate import SuiteData
    from conformance.load.runner import add_quality
    from conformance.redact import Redactor
    from conformance.replay import replay_sync
    from conformance.runstore import RunStore

    def ask(wanted: set[str]) -> dict[str, dict[str, Response]]:
        redactor = Redactor(endpoints.secrets())
        if settings.baseline_recorded:
            source = settings.recorded_source(endpoints)
            base_ep: Endpoint = RecordedEndpoint(suite.recordings_path(source), f"recorded:{source}")
        else:
            base_ep = make_endpoint(endpoints.get(settings.baseline), redactor)
        cand_ep = make_endpoint(endpoints.get(settings.candidate), redactor)
        cases = [c for c in suite.cases if c.id in wanted]
        store = RunStore(out / "at-rest", redactor=redactor)
        try:
            got = replay_sync([base_ep, cand_ep], cases, store)
        finally:
            store.close()
        return {role: {c.id: got[(ep.name, c.id, 0)] for c in cases}
                for role, ep in (("baseline", base_ep), ("candidate", cand_ep))}

    return add_quality(run, SuiteData(suite), ask)


def cmd_report(args: argparse.Namespace) -> int:
    """(Re)write report.html + results.parquet/csv for a run, with the gate trend against a previous run."""
    from conformance.report.trend import previous_run_dir
    from conformance.report.write import finish_run
    from conformance.settings import check_run_id

    root = _root(args)
    reports = root / "reports"

    def run_path(ref: str, what: str) -> Path:
        """A folder named on the command line as it is; anything else is a run id under reports/, checked first
        (``../x`` must not reach outside it)."""
        p = Path(ref)
        if not (ref and p.is_dir()):  # Path("") is "."
            p = reports / (ref if ref == "latest" else check_run_id(ref, what))
        if not (p / "summary.json").is_file():
            raise ConformanceError(f"no run folder with a summary.json at {p}")
        return p.resolve()

    run = run_path(args.run if args.run is not None else "latest", "RUN")
    if args.compare is not None:
        previous: Path | None = run_path(args.compare, "--compare")
    else:
        previous = previous_run_dir(reports, run.name)
    lines, _, code = finish_run(run, previous, strict=True if args.strict else None)
    for line in lines:
        print(line)
    return code if args.exit_code else 0


def cmd_new_system(args: argparse.Namespace) -> int:
    from conformance.scaffold import new_system

    for path in new_system(_root(args), args.name, args.owner, args.description):
        print(f"created {_rel(str(path))}")
    print(f"next: edit the cases, run `conformance lint`, then `pytest suites/{args.name}`")
    return 0


def cmd_codeowners(args: argparse.Namespace) -> int:
    from conformance.scaffold import codeowners_for, codeowners_stale, recorded_default_owner, write_codeowners

    root = _root(args)
    path = Path(args.path) if args.path else None
    if args.check:
        stale = codeowners_stale(root, path, default_owner=args.default_owner)
        print("CODEOWNERS is out of date: run `conformance codeowners --write`" if stale else "CODEOWNERS is current")
        return 1 if stale else 0
    if args.write:
        written = write_codeowners(root, path, default_owner=args.default_owner)
        print(f"wrote {written} (lines outside the generated block kept)")
        if not recorded_default_owner(written.read_text(encoding="utf-8")):
            print("note: the harness, .github/ and endpoints.yaml have no owner: add --default-owner @team")
        return 0
    print(codeowners_for(root, path, default_owner=args.default_owner), end="")
    return 0


def cmd_local(args: argparse.Namespace) -> int:
    from conformance.local import servers

    _, endpoints = _settings(args)
    chosen = local_selection(endpoints, args.action, args.names, args.engine)
    if not chosen:
        print(f"no embedded endpoints{f' of engine {args.engine}' if args.engine else ''} in {endpoints.path}")
        return 0
    if args.action == "up":
        pending = [ep for ep in chosen if not servers.serving(ep)]
        if any(servers.engine(ep) == servers.VLLM for ep in pending):
            print("starting vLLM takes about 2 minutes per server (in parallel) …", file=sys.stderr)
        started = set(servers.ensure_up(pending))
        for ep in chosen:
            print(f"{ep.name}: {'started' if ep.name in started else 'already serving'} {ep.model} at {ep.base_url}")
    elif args.action == "down":
        for ep in chosen:
            print(f"{ep.name}: {'stopped' if servers.stop(ep.name) else 'was not started by conformance'}")
    else:
        for ep in chosen:
            print(servers.status(ep))
    return 0


def local_selection(endpoints: EndpointsFile, action: str, names: list[str],
                    engine: str | None) -> list[EndpointConfig]:
    """The endpoints `conformance local ACTION` acts on.

    Named endpoints must be embedded ones (of ``engine`` when given). Without names, `down`/`status` take every
    embedded endpoint (of that engine); `up` takes the default baseline and candidate — or, with ``--engine``, that
    engine's endpoints serving the default pair's quantizations (`up --engine vllm` = the vLLM twins of
    local-baseline and local-candidate: vllm-baseline and vllm-candidate)."""
    from conformance.local.servers import engine as engine_of

    if names:
        chosen = [endpoints.get(n) for n in names]
        for ep in chosen:
            if not ep.local:
                raise ConformanceError(f"endpoint {ep.name!r} is not an embedded server "
                                       "(no `local:` in endpoints.yaml)")
            if engine and engine_of(ep) != engine:
                raise ConformanceError(f"endpoint {ep.name!r} is a {engine_of(ep)} endpoint, not {engine}")
        return chosen
    local = [e for e in endpoints.endpoints.values() if e.local and (engine is None or engine_of(e) == engine)]
    if action != "up":
        return local
    defaults = [endpoints.endpoints[n] for n in (endpoints.default_baseline, endpoints.default_candidate)
                if n in endpoints.endpoints]
    if engine is None:
        return [e for e in defaults if e.local]
    twins = []
    for quant in dict.fromkeys((e.local or {}).get("quant") for e in defaults if e.local):
        twins += [e for e in local if (e.local or {}).get("quant") == quant][:1]
    return twins


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="conformance", description=__doc__.split("\n\n")[0])
    p.add_argument("--root", help="repository root (default: found from the current folder)")
    sub = p.add_subparsers(dest="command", required=True)

    lint = sub.add_parser("lint", help="validate golden sets, suites and glossaries")
    lint.add_argument("paths", nargs="*", help="files or folders (default: goldens/ and suites/)")
    lint.set_defaults(func=cmd_lint)

    def endpoint_opts(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--endpoints", help="endpoints file (default: endpoints.yaml or $CONFORMANCE_ENDPOINTS)")
        sp.add_argument("--no-local-start", action="store_true", help="do not start embedded servers")

    pre = sub.add_parser("preflight", help="check what each endpoint really serves (GET /v1/models)")
    endpoint_opts(pre)
    pre.add_argument("endpoint", nargs="*", help="endpoint names (default: the default baseline and candidate)")
    pre.add_argument("--baseline")
    pre.add_argument("--candidate")
    pre.set_defaults(func=cmd_preflight)

    rec = sub.add_parser("record", help="record baseline answers before the old endpoint is retired")
    endpoint_opts(rec)
    rec.add_argument("--system", action="append", required=True, help="system (suite) to record; repeatable")
    rec.add_argument("--endpoint", help="endpoint to record (default: the default baseline)")
    rec.add_argument("--quiet", action="store_true", help="no progress bar")
    rec.set_defaults(func=cmd_record)

    load = sub.add_parser("load", help="run a suite's Locust load stages against baseline and candidate")
    endpoint_opts(load)
    load.add_argument("--system", required=True, help="suite to load-test (suites/SYSTEM/suite.yaml `load:`)")
    load.add_argument("--baseline", help="baseline endpoint (`recorded` = candidate only, relative gates n/a)")
    load.add_argument("--candidate")
    load.add_argument("--out", help="output folder (default: reports/<run-id>-load-SYSTEM)")
    load.add_argument("--quiet", action="store_true", help="no progress lines")
    load.add_argument("locust_args", nargs="*", help="extra Locust flags after `--` (e.g. --processes 4)")
    load.set_defaults(func=cmd_load)

    rep = sub.add_parser("report", help="write report.html for a run and show how its gates moved")
    rep.add_argument("run", nargs="?", help="run folder or id (default: reports/latest)")
    rep.add_argument("--compare", metavar="PREVIOUS_RUN", help="run to compare with (default: the run before)")
    rep.add_argument("--exit-code", action="store_true",
                     help="exit with the run's outcome code: 0 pass (and, unless --strict, insufficient / "
                          "baseline_fails), 1 regression, 75 infrastructure, 78 config error (docs/VERDICTS.md)")
    rep.add_argument("--strict", action="store_true",
                     help="insufficient evidence (7) and baseline_fails (6) block, whatever the run was")
    rep.set_defaults(func=cmd_report)

    from conformance.runs_cli import add_commands

    add_commands(sub)  # runs, view

    new = sub.add_parser("new-system", help="scaffold goldens/NAME and suites/NAME from a template")
    new.add_argument("name")
    new.add_argument("--owner", required=True, help="reviewing team, e.g. @legal-ai")
    new.add_argument("--description")
    new.set_defaults(func=cmd_new_system)

    own = sub.add_parser("codeowners", help="CODEOWNERS block from each golden set's owner (hand-written lines kept)")
    own.add_argument("path", nargs="?", help="CODEOWNERS file (default: .github/CODEOWNERS)")
    own.add_argument("--write", action="store_true")
    own.add_argument("--check", action="store_true", help="exit 1 when the file is out of date")
    own.add_argument("--default-owner", help="owner of the harness, .github/ and endpoints.yaml (remembered in the "
                                             "file: later runs need not repeat it)")
    own.set_defaults(func=cmd_codeowners)

    loc = sub.add_parser("local", help="the embedded endpoints on 127.0.0.1 (llama.cpp; vLLM with --engine vllm)")
    # one sub-parser per action, so that `up --engine vllm NAME` parses: argparse cannot fill a `*` positional that
    # follows another positional once an option stands between them
    actions = loc.add_subparsers(dest="action", required=True)
    for action, what, default in (
        ("up", "start", "the default baseline and candidate; with --engine, that engine's endpoints serving the "
                        "same quantizations"),
        ("down", "stop", "every embedded endpoint (of --engine)"),
        ("status", "show", "every embedded endpoint (of --engine)"),
    ):
        act = actions.add_parser(action, help=f"{what} embedded servers")
        endpoint_opts(act)
        act.add_argument("names", nargs="*", help=f"endpoint names (default: {default})")
        act.add_argument("--engine", choices=["llama.cpp", "vllm"],
                         help="only endpoints with `local: {engine: ...}` (vllm needs scripts/setup-vllm.sh)")
        act.set_defaults(func=cmd_local)

    from conformance import toolparse_cli

    toolparse_cli.add_parser(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except ConformanceError as exc:
        print(f"conformance: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("conformance: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
