"""Plugin options and bad input, without any server: every problem is one message, never a traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.plugin.conftest import make_suite_repo

CONFIG_ERROR, INFRASTRUCTURE = 78, 75

ENDPOINTS = """
defaults: {baseline: old, candidate: new}
endpoints:
  old: {base_url: "http://127.0.0.1:9/v1", model: m-old}
  new: {base_url: "http://127.0.0.1:9/v1", model: m-new}
  other: {base_url: "http://127.0.0.1:9/v1", model: m-other}
"""
OFFLINE = ("--no-preflight", "--no-local-start", "--collect-only", "-q")


def _no_traceback(result: pytest.RunResult) -> None:
    assert "Traceback" not in result.stdout.str() + result.stderr.str()


@pytest.fixture
def repo(pytester: pytest.Pytester) -> Path:
    return make_suite_repo(pytester.path, ENDPOINTS)


def test_defaults_come_from_endpoints_yaml(pytester: pytest.Pytester, repo: Path) -> None:
    result = pytester.runpytest_subprocess("suites/demo", *OFFLINE)
    result.stdout.fnmatch_lines(["*baseline old vs candidate new*", "*answered?alpha?*", "*4 tests collected*"])


def test_precedence_cli_over_env_over_ini(pytester: pytest.Pytester, repo: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    (repo / "pyproject.toml").write_text((repo / "pyproject.toml").read_text() + 'conformance_candidate = "other"\n')
    result = pytester.runpytest_subprocess("suites/demo", *OFFLINE)
    result.stdout.fnmatch_lines(["*baseline old vs candidate other*"])  # ini beats endpoints.yaml
    monkeypatch.setenv("CONFORMANCE_CANDIDATE", "new")
    result = pytester.runpytest_subprocess("suites/demo", *OFFLINE)
    result.stdout.fnmatch_lines(["*baseline old vs candidate new*"])  # env beats ini
    result = pytester.runpytest_subprocess("suites/demo", "--candidate", "other", "--baseline", "new", *OFFLINE)
    result.stdout.fnmatch_lines(["*baseline new vs candidate other*"])  # command line beats env


def test_unknown_baseline_name(pytester: pytest.Pytester, repo: Path) -> None:
    result = pytester.runpytest_subprocess("suites/demo", "--baseline", "nope", *OFFLINE)
    assert result.ret == CONFIG_ERROR
    result.stdout.fnmatch_lines(["*unknown baseline endpoint 'nope' in *endpoints.yaml; known endpoints: new, old, "
                                 "other*"])
    _no_traceback(result)


def test_malformed_endpoints_yaml(pytester: pytest.Pytester, repo: Path) -> None:
    (repo / "endpoints.yaml").write_text("endpoints:\n  old: {base_url: 'ftp://x', model: m}\n  new: [\n")
    result = pytester.runpytest_subprocess("suites/demo", *OFFLINE)
    assert result.ret == CONFIG_ERROR
    result.stdout.fnmatch_lines(["*endpoints.yaml:*: YAML syntax error*"])
    (repo / "endpoints.yaml").write_text("endpoints:\n  old: {base_url: 'ftp://x', model: m, api_key: sk-123}\n")
    result = pytester.runpytest_subprocess("suites/demo", *OFFLINE)
    result.stdout.fnmatch_lines(
        ["*endpoints.yaml:2: endpoints.old: unknown key `api_key` (did you mean `api_key_env`?)*"])
    _no_traceback(result)


def test_missing_endpoints_file(pytester: pytest.Pytester, repo: Path) -> None:
    result = pytester.runpytest_subprocess("suites/demo", "--endpoints", "elsewhere.yaml", *OFFLINE)
    assert result.ret == CONFIG_ERROR
    result.stdout.fnmatch_lines(["*endpoints file not found: *elsewhere.yaml*"])


def test_malformed_golden_names_file_and_line(pytester: pytest.Pytester, repo: Path) -> None:
    golden = repo / "goldens" / "demo" / "smoke.yaml"
    golden.write_text(golden.read_text().replace("  - id: beta\n", "  - id: beta\n    lable: x\n"))
    result = pytester.runpytest_subprocess("suites/demo", *OFFLINE)
    assert result.ret == CONFIG_ERROR
    result.stdout.fnmatch_lines(
        ["*goldens/demo/smoke.yaml:10: cases.1: unknown key `lable` (did you mean `expect.label`?)*"])
    _no_traceback(result)


def test_unreachable_endpoint_stops_at_preflight_as_infrastructure_with_a_run_folder(
        pytester: pytest.Pytester, repo: Path) -> None:
    (repo / "endpoints.yaml").write_text(ENDPOINTS.replace("m-old}", "m-old, max_retries: 0}")
                                         .replace("m-new}", "m-new, max_retries: 0}"))
    result = pytester.runpytest_subprocess("suites/demo", "--no-local-start", "-q")
    assert result.ret == INFRASTRUCTURE
    result.stdout.fnmatch_lines(["*infrastructure: endpoint 'old': cannot reach http://127.0.0.1:9/v1*",
                                 "*outcome: infrastructure (exit code 75)*"])
    summary = json.loads((repo / "reports" / "latest" / "summary.json").read_text())
    assert summary["outcome"] == "infrastructure" and summary["stopped"]["outcome"] == "infrastructure"
    assert (repo / "reports" / "latest" / "report.html").is_file()
    _no_traceback(result)


def test_tags_become_marks(pytester: pytest.Pytester, repo: Path) -> None:
    golden = repo / "goldens" / "demo" / "smoke.yaml"
    golden.write_text(golden.read_text().replace("  - id: beta\n", "  - id: beta\n    tags: [en]\n"))
    result = pytester.runpytest_subprocess("suites/demo", "-m", "en", *OFFLINE)
    result.stdout.fnmatch_lines(["*answered?beta?*", "*1/4 tests collected (3 deselected)*"])


def test_plugin_is_inert_outside_suites(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_plain="def test_ok():\n    assert True\n")
    result = pytester.runpytest_subprocess("-p", "no:locust")
    result.assert_outcomes(passed=1)
    assert "conformance:" not in result.stdout.str()
