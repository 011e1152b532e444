"""Corrupt, cut-short or empty summaries: a bad *previous* run means "no trend" and one warning line, never a crash
or a missing report; a bad *current* one is one clear error; ``{}`` is not a pass; summary.json is written atomically.
"""

from __future__ import annotations

import json
import resource
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from conformance.cli import main
from conformance.errors import ConformanceError
from conformance.report.outcome import classify_run
from conformance.report.trend import previous_summary, read_summary
from conformance.report.write import finish_run
from conformance.testing.faultserver import FaultServer
from tests.plugin.conftest import make_suite_repo, two_endpoints
from tests.report.runfolder import build_run

GOOD = json.dumps({"run_id": "p", "exitstatus": 0, "suites": {"legal": {"gates": []}}}, indent=2)
BAD = {
    "invalid-json": b"{not json",
    "cut-short": GOOD.encode()[: len(GOOD) // 2],
    "empty-file": b"",
    "a-list": b"[1, 2, 3]",
    "a-number": b"3",
    "not-utf8": b'{"run_id": "\xff\xfe"}',
    "gates-not-a-list": b'{"run_id": "p", "suites": {"legal": {"gates": {"a": 1}}, "x": [1]}}',
}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_run(tmp_path_factory.mktemp("bad") / "run")


@pytest.fixture
def run(built: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(built, tmp_path / "run"))


def _previous(tmp_path: Path, content: bytes) -> Path:
    prev = tmp_path / "20261101-000000-0000"
    prev.mkdir()
    (prev / "summary.json").write_bytes(content)
    return prev


@pytest.mark.parametrize("content", BAD.values(), ids=BAD.keys())
def test_a_bad_previous_run_means_no_trend_and_a_warning(run: Path, tmp_path: Path, content: bytes) -> None:
    prev = _previous(tmp_path, content)
    (run / "report.html").unlink(missing_ok=True)
    lines, outcome, code = finish_run(run, prev)
    assert (run / "report.html").is_file() and (outcome, code) == ("regression", 1)
    if content.startswith(b'{"run_id": "p", "suites"'):  # an object with junk inside: a trend of what is usable
        assert lines[0].startswith("gate trend since run p:")
        return
    assert lines[0].startswith("gate trend: skipped, the previous run is unusable: ") and str(prev) in lines[0]
    assert lines[1:] == ["outcome: regression (exit code 1)", f"report: {run / 'report.html'}"]
    assert previous_summary(tmp_path, "20261201-000000-0000") is None


@pytest.mark.parametrize("content", [BAD["cut-short"], BAD["a-list"], BAD["not-utf8"]], ids=["cut", "list", "utf8"])
def test_report_compare_with_a_bad_run_warns_and_writes(run: Path, tmp_path: Path, content: bytes,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    prev = _previous(tmp_path, content)
    assert main(["report", str(run), "--compare", str(prev)]) == 0
    out = capsys.readouterr().out
    assert "gate trend: skipped, the previous run is unusable" in out and f"report: {run / 'report.html'}" in out


@pytest.mark.parametrize("content", [BAD["cut-short"], BAD["a-list"], BAD["not-utf8"]], ids=["cut", "list", "utf8"])
def test_a_bad_current_summary_is_one_error_naming_the_file(tmp_path: Path, content: bytes,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    bad = _previous(tmp_path, content)
    with pytest.raises(ConformanceError, match=r"summary\.json: the run summary"):
        read_summary(bad)
    assert main(["report", str(bad)]) == 2
    assert f"{bad / 'summary.json'}: the run summary" in capsys.readouterr().err


@pytest.mark.parametrize("summary", [{}, {"run_id": "x"}, {"suites": {}}, {"run_id": "x", "outcome": "pass"}])
def test_an_empty_summary_is_not_a_pass(summary: dict[str, object]) -> None:
    assert classify_run(summary) == "infrastructure"
    assert classify_run(summary, []) == "infrastructure"


def test_report_of_an_empty_summary_does_not_exit_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    empty = _previous(tmp_path, b"{}")
    assert main(["report", str(empty), "--exit-code"]) == 75
    assert "outcome: infrastructure (exit code 75)" in capsys.readouterr().out


def test_the_next_run_reports_despite_a_corrupt_previous_one(pytester: pytest.Pytester) -> None:
    with FaultServer(models=["m"]) as old, FaultServer(models=["m"]) as new:
        make_suite_repo(pytester.path, two_endpoints(old, new))
        assert pytester.runpytest_subprocess("suites/demo", "--conformance-run-id", "r1").ret == 0
        (pytester.path / "reports" / "r1" / "summary.json").write_bytes(BAD["cut-short"])
        result = pytester.runpytest_subprocess("suites/demo", "--conformance-run-id", "r2")
    assert result.ret == 0
    result.stdout.fnmatch_lines(["*gate trend: skipped, the previous run is unusable: *r1*summary.json*",
                                 "*outcome: pass*"])
    assert (pytester.path / "reports" / "r2" / "report.html").is_file()
    assert read_summary(pytester.path / "reports" / "latest")["run_id"] == "r2"


_WRITE_SUMMARY = """
import sys
from pathlib import Path
from types import SimpleNamespace
from conformance.report.collect import ResultCollector
row = {"nodeid": "t.py::t[c]", "suite": "legal", "outcome": "passed", "when": "call", "duration_s": 0.0,
       "message": "", "props": []}
collector = ResultCollector()
collector.rows = [row]
plan = SimpleNamespace(run_id="r", run_dir=Path(sys.argv[1]), baseline_label="b", candidate="c",
                       preflight={"x" * 50: {"ok": True, "message": "y" * 5000}}, notes=[])
try:
    collector.write(plan, 0)
except OSError as exc:
    print("write failed:", exc.errno)
"""


def test_summary_json_is_replaced_whole_or_not_at_all(tmp_path: Path) -> None:
    """A write that fails half-way (here: the file-size limit, as a full disk would) used to leave summary.json
    cut short; now the previous summary stays, whole, and no temporary file is left behind."""
    run_dir = tmp_path / "r"
    run_dir.mkdir()
    (run_dir / "summary.json").write_text(GOOD, encoding="utf-8")
    limit = 2000  # above results.jsonl (one short row), below the new summary (~5 kB)

    def small_files() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a failed write() (EFBIG) instead of a killed process
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    proc = subprocess.run([sys.executable, "-c", _WRITE_SUMMARY, str(run_dir)], capture_output=True, text=True,
                          timeout=120, preexec_fn=small_files)
    assert "write failed: 27" in proc.stdout, proc.stdout + proc.stderr  # EFBIG
    assert (run_dir / "summary.json").read_text(encoding="utf-8") == GOOD
    assert sorted(p.name for p in run_dir.iterdir()) == ["results.jsonl", "summary.json"]
