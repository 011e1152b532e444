"""A planted API key never reaches any artifact of a run: responses, recordings, summary, results, JUnit, output."""

from __future__ import annotations

import pytest

from conformance.cli import main as cli
from conformance.testing.faultserver import Behaviour, FaultServer
from tests.plugin.conftest import make_suite_repo, two_endpoints

KEY = "sk-live-PLANTED-7f3a9c2e11d04b6a"


def test_planted_key_is_redacted_everywhere(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLANTED_KEY", KEY)

    def leaky(req: dict, n: int) -> Behaviour:  # type: ignore[type-arg]
        if "colour" in req["messages"][-1]["content"]:  # a gateway error that echoes the credential
            return Behaviour(status=500, error_message=f"invalid upstream credential {KEY}")
        return Behaviour(text=f"debug: Authorization: Bearer {KEY}")  # a model/gateway echoing it in the answer

    with FaultServer(leaky, models=["m"]) as old, FaultServer(leaky, models=["m"]) as new:
        root = make_suite_repo(pytester.path, two_endpoints(old, new, api_key_env="PLANTED_KEY", max_retries="0"))
        cli(["--root", str(root), "record", "--system", "demo", "--endpoint", "old", "--quiet"])
        result = pytester.runpytest_subprocess("suites/demo", "--junitxml=reports/junit.xml", "-rA")
        assert all(r.headers.get("authorization") == f"Bearer {KEY}" for r in new.requests)  # it was really used
    assert result.ret == 75  # both endpoints' 500s are reported (an infrastructure outcome)...
    result.stdout.fnmatch_lines(["*server_error*invalid upstream credential ***REDACTED****"])  # ...redacted
    output = result.stdout.str() + result.stderr.str()
    assert KEY not in output
    files = [p for p in root.rglob("*") if p.is_file() and p.suffix in (".jsonl", ".json", ".xml", ".csv", ".txt",
                                                                           ".html", ".log")]
    assert any(p.name == "junit.xml" for p in files) and any(p.parent.name == "recordings" for p in files)
    leaked = [str(p) for p in files if KEY in p.read_text(encoding="utf-8", errors="replace")]
    assert leaked == []
