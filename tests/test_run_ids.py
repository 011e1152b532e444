"""Run ids name a folder directly under reports/: `--conformance-run-id`, `--resume` and `conformance report RUN`
refuse anything that could name another folder (or plant `latest` elsewhere), with the allowed pattern."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conformance.cli import main
from conformance.errors import ConfigError
from conformance.runstore import new_run_id
from conformance.settings import RUN_ID_PATTERN, build_settings, check_run_id
from conformance.testing.faultserver import FaultServer
from tests.conftest import write_repo
from tests.plugin.conftest import make_suite_repo, two_endpoints

BAD_IDS = ["../x", "/abs", "/tmp/x", ".", "..", "", "a/b", "a\\b", "x/../..", "a\x00b", "a\nb", "tab\there",
           "latest", "-rf", ".hidden", "x" * 129, "ü"]
GOOD_IDS = ["r1", "20261123-142501-a3f9", "nightly_2026.11.23", "PR-1234", "a..b", "x" * 128]


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_repo(tmp_path_factory.mktemp("runids")).root


@pytest.mark.parametrize("option", ["run_id", "resume"])
@pytest.mark.parametrize("bad", BAD_IDS, ids=repr)
def test_bad_run_ids_are_a_config_error_naming_option_and_pattern(root: Path, option: str, bad: str) -> None:
    with pytest.raises(ConfigError) as info:
        build_settings(root, {option: bad}, {}, {})
    flag = "--resume" if option == "resume" else "--conformance-run-id"
    assert str(info.value).startswith(f"{flag} {bad!r} is not a valid run id")
    assert RUN_ID_PATTERN in str(info.value)


@pytest.mark.parametrize("good", GOOD_IDS, ids=repr)
def test_ordinary_run_ids_are_accepted(root: Path, good: str) -> None:
    s, _ = build_settings(root, {"run_id": good}, {}, {})
    assert s.run_id == good


def test_generated_run_ids_are_accepted(root: Path) -> None:
    generated = new_run_id()  # here, not in the parametrization: xdist workers must collect the same ids
    s, _ = build_settings(root, {"resume": generated}, {}, {})
    assert s.run_id == generated and s.resume


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=12))
def test_every_accepted_id_names_a_folder_directly_under_reports(value: str) -> None:
    try:
        check_run_id(value)
    except ConfigError:
        return
    reports = Path("/srv/repo/reports")
    target = reports / value
    assert target.parent == reports and target.name == value and value not in (".", "..", "latest")
    assert value.isprintable() and "/" not in value and "\\" not in value


def test_pytest_refuses_a_run_id_outside_reports_before_writing_anything(pytester: pytest.Pytester) -> None:
    with FaultServer(models=["m"]) as old, FaultServer(models=["m"]) as new:
        make_suite_repo(pytester.path, two_endpoints(old, new))
        for flag in ("--conformance-run-id", "--resume"):
            result = pytester.runpytest_subprocess("suites/demo", flag, "../escaped")
            assert result.ret == 78  # config_error, before any request
            result.stdout.fnmatch_lines([f"*{flag} '../escaped' is not a valid run id*"])
        chats = [r for r in (*old.requests, *new.requests) if r.path.endswith("/chat/completions")]
    assert not (pytester.path / "escaped").exists() and not chats


def _run_folder(path: Path) -> Path:
    path.mkdir(parents=True)
    (path / "summary.json").write_text(json.dumps({"run_id": path.name, "exitstatus": 0, "suites": {}}))
    return path


def test_report_command_refuses_run_ids_outside_reports(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    root = write_repo(tmp_path / "repo").root
    outside = _run_folder(root / "x")  # reports/../x
    _run_folder(root / "reports" / "r1")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # where `../x` names nothing: only reports/../x would
    for args in (["../x"], ["r1", "--compare", "../x"], ["/abs"], ["a/b"], [""]):
        assert main(["--root", str(root), "report", *args]) == 2
        err = capsys.readouterr().err
        assert "is not a valid run id" in err and RUN_ID_PATTERN in err, err
    assert not (outside / "report.html").exists()
    assert main(["--root", str(root), "report", "r1"]) == 0  # an id under reports/
    assert (root / "reports" / "r1" / "report.html").is_file()
    assert main(["--root", str(root), "report", str(outside)]) == 0  # a folder named explicitly is used as is
    assert (outside / "report.html").is_file()
