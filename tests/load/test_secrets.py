"""No key in anything a load run leaves behind, even when the endpoint echoes keys everywhere: in answers (text,
reasoning, tool-call arguments), error bodies and response headers. Through `conformance load` and pytest `--load`;
every file of the output folder, and the captured output, are searched for every key."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from conformance.cli import main
from conformance.load import runner
from conformance.load.scrub import SECRETS_ENV, RedactingStream, scrub_folder
from conformance.redact import MASK, Redactor
from conformance.testing.faultserver import Behaviour, FaultServer, ToolCallScript
from tests.plugin.conftest import make_suite_repo

#: The baseline's and the candidate's keys: no `sk-` or `Bearer` shape, so only the exact values can catch them.
KEYS = {"CONF_TEST_OLD_KEY": "cfk-old-9Zq7Lw2Rt5Xv8Yp3", "CONF_TEST_NEW_KEY": "cfk-new-4Hb6Jm1Nc0Qd7Wr2"}
SUITE = """system: demo
load:
  max_tokens: 8
  stages: [{users: 2, spawn_rate: 2, duration_s: 1}]
  quality: {sample: 2}
"""

def echo_keys(body: dict[str, Any], n: int) -> Behaviour:
    """Every way an endpoint can hand a key back: each endpoint echoes both keys (a shared gateway)."""
    both = " / ".join(KEYS.values())
    headers = {"x-echo-key": both}
    kind = n % 5
    if kind == 0:  # streamed across small chunks: only the assembled answer holds a whole key
        return Behaviour(text=f"your keys are {both}", chunk_chars=5, reasoning=[f"I saw {both}"], headers=headers)
    if kind == 1:
        return Behaviour(status=401, error_message=f"invalid api key {both}", headers=headers)
    if kind == 2:
        return Behaviour(status=500, error_message=f"upstream said: {both}", headers=headers)
    if kind == 3:  # a proxy page, its header naming the key: the fault message quotes the content type
        return Behaviour(content_type=f"text/html; key={KEYS['CONF_TEST_NEW_KEY']}", body=f"<p>{both}</p>",
                         headers=headers)
    return Behaviour(tool_calls=[ToolCallScript("lookup", {"token": both})], headers=headers)


def _endpoints(old: FaultServer, new: FaultServer) -> str:
    return ("defaults: {baseline: old, candidate: new}\nendpoints:\n"
            f"  old: {{base_url: '{old.base_url}', model: m, api_key_env: CONF_TEST_OLD_KEY, max_retries: 0}}\n"
            f"  new: {{base_url: '{new.base_url}', model: m, api_key_env: CONF_TEST_NEW_KEY, max_retries: 0}}\n")


def _leaks(folder: Path, *texts: str) -> list[str]:
    """Where any key appears: files under ``folder`` (bytes), then the given texts."""
    found = [f"{p}: {name}" for p in sorted(folder.rglob("*")) if p.is_file()
             for name, key in KEYS.items() if key.encode() in p.read_bytes()]
    return found + [f"output: {name}" for t in texts for name, key in KEYS.items() if key in t]


@pytest.fixture
def keys(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in KEYS.items():
        monkeypatch.setenv(name, value)


@pytest.mark.usefixtures("keys")
@pytest.mark.parametrize("backstop", [True, False], ids=["with-backstop", "locust-alone"])
def test_conformance_load_writes_no_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str], backstop: bool) -> None:
    """``locust-alone``: the runner's scrub after the run is switched off, so the Locust process' own redaction is
    what keeps its files clean."""
    if not backstop:
        monkeypatch.setattr(runner, "scrub_folder", lambda folder, redact: [])
    launched: list[tuple[list[str], dict[str, str]]] = []
    real_popen = subprocess.Popen

    def popen(args: list[str], **kw: Any) -> Any:
        launched.append((list(args), dict(kw["env"])))
        return real_popen(args, **kw)

    monkeypatch.setattr(runner.subprocess, "Popen", popen)
    out = tmp_path / "out"
    with FaultServer(echo_keys, models=["m"]) as old, FaultServer(echo_keys, models=["m"]) as new:
        (tmp_path / "repo").mkdir()
        make_suite_repo(tmp_path / "repo", _endpoints(old, new))
        (tmp_path / "repo" / "suites" / "demo" / "suite.yaml").write_text(SUITE)
        monkeypatch.chdir(tmp_path / "repo")
        main(["load", "--system", "demo", "--out", str(out), "--no-local-start"])
        echoed = sum(r.path.endswith("/chat/completions") for r in (*old.requests, *new.requests))
    captured = capsys.readouterr()
    assert echoed >= 10 and len(launched) == 2  # both runs happened, and the keys were echoed many times
    assert _leaks(out, captured.out, captured.err) == []
    for role in ("baseline", "candidate"):
        records = "".join(p.read_text() for p in (out / role / "raw").glob("records-*.jsonl"))
        assert MASK in records  # the echoes were there, and redacted
        assert MASK in (out / role / "locust_failures.csv").read_text()
    for args, env in launched:  # the secrets travel in the environment, never on the command line (`ps`)
        assert not any(key in arg for arg in args for key in KEYS.values())
        assert set(json.loads(env[SECRETS_ENV])) == set(KEYS.values())


@pytest.mark.usefixtures("keys")
def test_pytest_load_writes_no_key(pytester: pytest.Pytester) -> None:
    with FaultServer(echo_keys, models=["m"]) as old, FaultServer(echo_keys, models=["m"]) as new:
        make_suite_repo(pytester.path, _endpoints(old, new))
        (pytester.path / "suites" / "demo" / "suite.yaml").write_text(SUITE)
        result = pytester.runpytest_subprocess("suites/demo", "--load", "-k", "load", "-p", "no:cacheprovider")
    output = "\n".join(result.outlines + result.errlines)
    load_dirs = [d for d in (pytester.path / "reports").glob("*/load/demo") if "latest" not in d.parts]
    assert len(load_dirs) == 1 and "conformance load" in output, output
    assert _leaks(pytester.path / "reports", output) == []
    assert MASK in "".join(p.read_text() for p in load_dirs[0].glob("*/raw/records-*.jsonl"))


def test_the_backstop_scrubs_whatever_was_written_unredacted(tmp_path: Path) -> None:
    key = KEYS["CONF_TEST_OLD_KEY"]
    (tmp_path / "raw").mkdir()
    (tmp_path / "locust.html").write_text(f"<td>{key}</td>\n" * 3)
    (tmp_path / "raw" / "records-1.jsonl").write_bytes(b'{"text": "\xff\xfe"}\n' + f'{{"e": "{key}"}}\n'.encode())
    (tmp_path / "clean.csv").write_text("nothing here\n")
    before = (tmp_path / "clean.csv").stat().st_mtime_ns
    rewritten = scrub_folder(tmp_path, Redactor([key]))
    assert sorted(p.name for p in rewritten) == ["locust.html", "records-1.jsonl"]
    assert _leaks(tmp_path) == [] and (tmp_path / "clean.csv").stat().st_mtime_ns == before
    assert (tmp_path / "raw" / "records-1.jsonl").read_bytes().startswith(b'{"text": "\xff\xfe"}\n')  # bytes kept


def test_redacting_stream_masks_each_write() -> None:
    class Sink:
        def __init__(self) -> None:
            self.parts: list[str] = []

        def write(self, text: str) -> int:
            self.parts.append(text)
            return len(text)

    sink = Sink()
    stream = RedactingStream(sink, Redactor([KEYS["CONF_TEST_NEW_KEY"]]))  # type: ignore[arg-type]
    assert stream.write(f"failed: {KEYS['CONF_TEST_NEW_KEY']}\n") == len(f"failed: {KEYS['CONF_TEST_NEW_KEY']}\n")
    stream.writelines(["Authorization: Bearer abcdefgh12345\n"])
    assert sink.parts == [f"failed: {MASK}\n", f"Authorization: Bearer {MASK}\n"]
