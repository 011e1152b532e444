"""``conformance runs`` and ``conformance view``: find a run folder and look at its report.

Why: ``reports/`` fills up with folders named by run id, and the question after a night of runs is "which ones
failed, and show me that one" — what inspect's log viewer and promptfoo's ``view`` answer. ``runs`` lists the run
folders newest first with the outcome their ``summary.json`` records (a folder without a readable summary — a run
killed before the end, a ``conformance load`` folder, a hand-made folder — is listed as such, never a crash);
``view`` serves one run folder and prints its URL.

Why serve instead of opening the file: the report links nothing outside its folder, but the folder's other files
(``responses/*.jsonl``, ``results.csv``, ``locust.html``) are what a reviewer opens next, and a harness run on a
remote machine is reached through ``ssh -L`` to a port, not a path. The server binds 127.0.0.1 only and serves
only that run folder: the answers in it are untrusted and may be confidential. It stops on Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import os
import time
import webbrowser
from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from conformance.errors import ConformanceError

#: Served with every response: nothing the folder holds may run script or be sniffed into another type.
SECURITY_HEADERS = {"Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src data:",
                    "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer", "Cache-Control": "no-store"}


@dataclass(frozen=True)
class RunEntry:
    """One folder under ``reports/``: its summary when readable, else what is wrong (``problem``)."""

    path: Path
    modified: float
    summary: Mapping[str, Any] | None = None
    problem: str | None = None
    latest: bool = False

    @property
    def outcome(self) -> str:
        if self.summary is None:
            if self.problem and self.problem.startswith("unreadable"):
                return "unreadable"
            return "load run" if (self.path / "stages.txt").is_file() else "no summary"
        recorded = self.summary.get("outcome")
        if isinstance(recorded, str):
            return recorded
        try:  # a summary written before it recorded its outcome
            from conformance.report.outcome import classify_run

            return str(classify_run(self.summary))
        except Exception:  # an odd summary is listed, not a crash
            return "unknown"

    def line(self) -> str:
        """``2026-11-23 14:31  20261123-142501-a3f9  regression  old → new  legal, sentiment  3 failed of 41``."""
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(self.modified))
        head = f"{when}  {self.path.name}  {self.outcome}"
        mark = "  (latest)" if self.latest else ""
        if self.summary is None:
            why = self.problem or "no summary.json"
            return f"{head}  ({why}{'; see stages.txt' if self.outcome == 'load run' else ''}){mark}"
        s = self.summary
        raw = s.get("suites")
        suites: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
        tests = [t for v in suites.values() if isinstance(v, Mapping) and isinstance(t := v.get("tests"), Mapping)]
        total = sum(n for t in tests for n in t.values() if isinstance(n, int))
        failed = sum(n for t in tests if isinstance(n := t.get("failed", 0), int))
        parts = [head, f"{s.get('baseline')} → {s.get('candidate')}", ", ".join(map(str, suites)) or "no suites",
                 f"{failed} failed of {total}"]
        return "  ".join(parts) + mark


def read_entry(folder: Path, latest: Path | None = None) -> RunEntry:
    summary_path = folder / "summary.json"
    modified = (summary_path if summary_path.is_file() else folder).stat().st_mtime
    is_latest = latest is not None and folder.resolve() == latest
    if not summary_path.is_file():
        return RunEntry(folder, modified, problem="no summary.json", latest=is_latest)
    try:
        data = json.loads(summary_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        return RunEntry(folder, modified, problem=f"unreadable summary.json: {exc}", latest=is_latest)
    if not isinstance(data, dict):
        return RunEntry(folder, modified, problem="unreadable summary.json: not a JSON object", latest=is_latest)
    return RunEntry(folder, modified, summary=data, latest=is_latest)


def list_runs(reports: Path) -> list[RunEntry]:
    """Every run folder (not the ``latest`` link, not hidden folders), newest first: by when its summary was
    written (the folder's own time when it has none), then by name."""
    if not reports.is_dir():
        return []
    link = reports / "latest"
    latest = link.resolve() if link.is_symlink() and link.exists() else None
    entries = [read_entry(d, latest) for d in reports.iterdir()
               if d.is_dir() and not d.is_symlink() and not d.name.startswith(".")]
    return sorted(entries, key=lambda e: (e.modified, e.path.name), reverse=True)


def resolve_run(reports: Path, ref: str | None) -> Path:
    """A run folder from an id, a path or ``latest`` (the default: the ``latest`` link, else the newest run)."""
    if ref:
        for candidate in (Path(ref), reports / ref):
            if candidate.is_dir():
                return candidate.resolve()
        raise ConformanceError(f"no run folder {ref!r} (neither a folder nor a run id under {reports}); "
                               "`conformance runs` lists them")
    link = reports / "latest"
    if link.is_dir():
        return link.resolve()
    runs = list_runs(reports)
    if not runs:
        raise ConformanceError(f"no runs under {reports} yet: run `pytest suites/<system>` first")
    return runs[0].path.resolve()


class _Handler(SimpleHTTPRequestHandler):
    """Files of one folder, read-only, typed so that a browser shows JSON Lines and CSV as text."""

    extensions_map = {**SimpleHTTPRequestHandler.extensions_map,  # noqa: RUF012 — the stdlib's instance attribute
                      ".jsonl": "text/plain; charset=utf-8", ".json": "application/json; charset=utf-8",
                      ".csv": "text/plain; charset=utf-8", ".txt": "text/plain; charset=utf-8",
                      ".log": "text/plain; charset=utf-8", ".html": "text/html; charset=utf-8"}

    def end_headers(self) -> None:
        for name, value in SECURITY_HEADERS.items():
            self.send_header(name, value)
        super().end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass  # one line per request would bury the URL and the Ctrl-C hint


def serve(folder: Path, port: int = 0) -> ThreadingHTTPServer:
    """A server for ``folder`` on 127.0.0.1 (``port`` 0: a free one); call ``serve_forever()`` on it."""
    return ThreadingHTTPServer(("127.0.0.1", port), partial(_Handler, directory=str(folder)))


def open_browser(url: str) -> str:
    """Open ``url`` in the user's browser when one is available; say what happened."""
    try:
        browser = webbrowser.get()
    except webbrowser.Error:
        return "no browser found here: open the URL yourself (from another machine: ssh -L PORT:127.0.0.1:PORT)"
    return "opened in your browser" if browser.open(url) else "could not open a browser: open the URL yourself"


def _reports(args: argparse.Namespace) -> Path:
    """Where the runs are, as the plugin writes them (``$CONFORMANCE_REPORTS`` or ``reports/`` under the root)."""
    from conformance.settings import reports_dir
    from conformance.suite import find_root

    return reports_dir(find_root(Path(args.root) if args.root else Path.cwd()), {}, os.environ, {})


def cmd_runs(args: argparse.Namespace) -> int:
    reports = _reports(args)
    runs = list_runs(reports)
    if not runs:
        print(f"no runs under {reports}")
        return 0
    for entry in runs[: args.limit] if args.limit else runs:
        print(entry.line())
    if args.limit and len(runs) > args.limit:
        print(f"… {len(runs) - args.limit} older (--limit 0 lists all)")
    return 0


def cmd_view(args: argparse.Namespace) -> int:
    run = resolve_run(_reports(args), args.run)
    page = "report.html"
    if not (run / page).is_file():
        if (run / "summary.json").is_file():
            from conformance.report.write import write_report

            write_report(run)
            print(f"wrote {run / page}", flush=True)
        else:
            page = ""  # nothing to render: the folder's listing
    server = serve(run, args.port)
    url = f"http://127.0.0.1:{server.server_address[1]}/{page}"
    try:
        print(f"serving {run} at {url} — Ctrl-C to stop", flush=True)
        if args.open:
            print(open_browser(url), flush=True)
        server.serve_forever()
    except KeyboardInterrupt:
        print("stopped", flush=True)
    finally:
        server.server_close()
    return 0


def add_commands(sub: Any) -> None:
    """Register ``runs`` and ``view`` on the CLI's subparsers."""
    runs = sub.add_parser("runs", help="list the run folders under reports/, newest first, with their outcome")
    runs.add_argument("--limit", type=int, default=20, help="show at most N runs (0: all; default 20)")
    runs.set_defaults(func=cmd_runs)

    view = sub.add_parser("view", help="serve a run folder's report on 127.0.0.1 (Ctrl-C stops)")
    view.add_argument("run", nargs="?", help="run id or folder (default: reports/latest)")
    view.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: a free one)")
    view.add_argument("--open", action="store_true", help="also open it in a browser when one is available")
    view.set_defaults(func=cmd_view)


__all__ = ["RunEntry", "add_commands", "list_runs", "open_browser", "resolve_run", "serve"]
