"""`conformance runs` lists run folders newest first with their outcome; `conformance view` serves one on
127.0.0.1 until Ctrl-C."""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import urllib.error
import urllib.request
import webbrowser
from email.message import Message
from pathlib import Path
from typing import Any

import pytest

from conformance.cli import main
from conformance.runs_cli import list_runs, open_browser, resolve_run, serve
from tests.conftest import PYPROJECT
from tests.report.runfolder import build_run

T0 = 1_800_000_000  # fixed times for the folders: the order must not depend on how fast they were written


def _at(path: Path, minutes: int) -> None:
    os.utime(path, (T0 + 60 * minutes, T0 + 60 * minutes))


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """Five runs: two with summaries (one recording its outcome, one older without), a load folder, a folder
    killed before its summary, one whose summary is not JSON; `latest` points at the passing one."""
    (tmp_path / "pyproject.toml").write_text(PYPROJECT)
    reports = tmp_path / "reports"
    failing = build_run(reports / "20261123-120000-abcd")
    _at(failing / "summary.json", 10)
    passing = reports / "20261124-090000-beef"
    passing.mkdir()
    (passing / "summary.json").write_text(json.dumps({
        "run_id": passing.name, "baseline": "local-baseline", "candidate": "local-candidate-q8", "exitstatus": 0,
        "outcome": "pass", "suites": {"legal": {"tests": {"passed": 7, "xfailed": 1}, "gates": []}}}))
    _at(passing / "summary.json", 50)
    load = reports / "20261124-100000-cafe-load-legal"
    load.mkdir()
    (load / "stages.txt").write_text("load local-candidate: …\n")
    _at(load, 40)
    killed = reports / "20261124-110000-dead"
    (killed / "responses").mkdir(parents=True)
    _at(killed, 30)
    broken = reports / "20261122-000000-0bad"
    broken.mkdir()
    (broken / "summary.json").write_text('{"run_id": "cut sho')
    _at(broken / "summary.json", 20)
    (reports / "latest").symlink_to(passing.name)
    (reports / ".latest.123").mkdir()  # a half-made link's temp name: not a run
    return tmp_path


def test_runs_are_listed_newest_first_with_their_outcome(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--root", str(root), "runs"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [ln.split()[2:4] for ln in lines] == [
        ["20261124-090000-beef", "pass"], ["20261124-100000-cafe-load-legal", "load"],
        ["20261124-110000-dead", "no"], ["20261122-000000-0bad", "unreadable"],
        ["20261123-120000-abcd", "regression"]]
    assert lines[0].endswith("local-baseline → local-candidate-q8  legal  0 failed of 8  (latest)")
    assert "(no summary.json; see stages.txt)" in lines[1] and lines[2].endswith("(no summary.json)")
    assert "unreadable summary.json: " in lines[3]
    # a summary without a recorded outcome: decided from the summary (here its failures were regressions)
    assert re.search(r"old-ep → new-ep  legal, sentiment  \d+ failed of \d+$", lines[4])


def test_limit_and_no_runs(root: Path, tmp_path_factory: pytest.TempPathFactory,
                           capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--root", str(root), "runs", "--limit", "2"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 3 and out[-1] == "… 3 older (--limit 0 lists all)"
    empty = tmp_path_factory.mktemp("empty")
    (empty / "pyproject.toml").write_text(PYPROJECT)
    assert main(["--root", str(empty), "runs"]) == 0
    assert capsys.readouterr().out.startswith("no runs under ")
    assert list_runs(empty / "reports") == []


def test_reports_folder_from_the_environment(root: Path, monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    (root / "reports").rename(root / "elsewhere")
    monkeypatch.setenv("CONFORMANCE_REPORTS", "elsewhere")
    assert main(["--root", str(root), "runs"]) == 0
    assert "20261124-090000-beef" in capsys.readouterr().out


def test_which_run_view_serves(root: Path) -> None:
    reports = root / "reports"
    assert resolve_run(reports, None) == (reports / "20261124-090000-beef").resolve()  # latest
    assert resolve_run(reports, "20261123-120000-abcd").name == "20261123-120000-abcd"
    assert resolve_run(reports, str(reports / "20261124-110000-dead")).name == "20261124-110000-dead"
    (reports / "latest").unlink()
    assert resolve_run(reports, None).name == "20261124-090000-beef"  # the newest
    assert main(["--root", str(root), "view", "no-such-run"]) == 2


def _get(url: str) -> tuple[int, Message, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as err:
        with err:
            return err.code, err.headers, b""


def test_the_server_serves_the_run_folder_only_on_loopback(root: Path) -> None:
    run = root / "reports" / "20261123-120000-abcd"
    (root / "secret.txt").write_text("outside the run folder")
    server = serve(run)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        host, port = server.server_address[:2]
        assert host == "127.0.0.1" and port > 0
        status, headers, body = _get(f"http://127.0.0.1:{port}/summary.json")
        assert status == 200 and json.loads(body)["run_id"] == run.name
        assert headers["Content-Security-Policy"].startswith("default-src 'none'")
        assert headers["X-Content-Type-Options"] == "nosniff"
        status, headers, body = _get(f"http://127.0.0.1:{port}/responses/old-ep.main.jsonl")
        assert status == 200 and headers["Content-Type"] == "text/plain; charset=utf-8" and "定金".encode() in body
        for escape in ("/../secret.txt", "/..%2fsecret.txt", "/%2e%2e/secret.txt"):
            status, _, body = _get(f"http://127.0.0.1:{port}{escape}")
            assert status == 404 and b"outside" not in body, escape
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def _lines(proc: subprocess.Popen[str]) -> queue.Queue[str]:
    """The child's stdout lines as they come (a thread reads them: a test waits with a timeout, never hangs)."""
    stdout = proc.stdout
    assert stdout is not None
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        for line in stdout:
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    return lines


def test_view_prints_the_url_serves_the_report_and_stops_on_ctrl_c(root: Path) -> None:
    run = root / "reports" / "20261123-120000-abcd"
    assert not (run / "report.html").exists()
    proc = subprocess.Popen([sys.executable, "-m", "conformance.cli", "--root", str(root), "view", run.name],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out = _lines(proc)
        assert out.get(timeout=60).strip() == f"wrote {run.resolve() / 'report.html'}"  # no report yet: written first
        line = out.get(timeout=60)
        m = re.fullmatch(r"serving (.+) at (http://127\.0\.0\.1:\d+/report\.html) — Ctrl-C to stop\n", line)
        assert m and m.group(1) == str(run.resolve()), line
        status, headers, body = _get(m.group(2))
        assert status == 200 and headers["Content-Type"] == "text/html; charset=utf-8"
        assert f"Conformance run {run.name}".encode() in body
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0, proc.stderr.read() if proc.stderr else ""
        assert out.get(timeout=10).strip() == "stopped"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()


def test_open_uses_a_browser_only_when_there_is_one(monkeypatch: pytest.MonkeyPatch) -> None:
    opened: list[str] = []

    class Browser:
        def open(self, url: str) -> bool:
            opened.append(url)
            return True

    monkeypatch.setattr(webbrowser, "get", lambda *a: Browser())
    assert open_browser("http://127.0.0.1:1/report.html") == "opened in your browser"
    assert opened == ["http://127.0.0.1:1/report.html"]

    def none(*a: Any) -> Any:
        raise webbrowser.Error("could not locate runnable browser")

    monkeypatch.setattr(webbrowser, "get", none)
    assert open_browser("http://127.0.0.1:1/").startswith("no browser found here")
