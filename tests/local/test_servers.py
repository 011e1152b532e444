"""The embedded servers' lifecycle, engine-neutral, with a tiny stand-in server instead of llama.cpp or vLLM: bounded
start with the log's tail on failure, parallel launch, no server left behind when one of several fails, and `stop`
ending the whole process group (vLLM's engine core is a child of its API server)."""

from __future__ import annotations

import os
import re
import sys
import time
from pathlib import Path

import pytest

from conformance.endpoints.config import EndpointConfig
from conformance.errors import ConfigError, EndpointError
from conformance.local import servers
from conformance.testing.faultserver import unused_port

# Answers GET /v1/models; with a second argument it first starts a child (like vLLM's engine core) and writes its pid.
STAND_IN = """\
import http.server, subprocess, sys
port = int(sys.argv[1])
if len(sys.argv) > 2:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    open(sys.argv[2], "w").write(str(child.pid))
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200 if self.path == "/v1/models" else 404)
        self.send_header("content-length", "2")
        self.end_headers()
        self.wfile.write(b"{}")
    def log_message(self, *args):
        pass
http.server.HTTPServer(("127.0.0.1", port), Handler).serve_forever()
"""


@pytest.fixture(autouse=True)
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CONFORMANCE_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _ep(name: str, port: int, engine: str = "llama.cpp") -> EndpointConfig:
    return EndpointConfig(name=name, base_url=f"http://127.0.0.1:{port}/v1", model=name,
                          local={"engine": engine, "quant": "Q4_1"})


def _gone(pid: int) -> bool:
    """No such process, or only its zombie (killed, not yet reaped by init)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return True
    return state in ("Z", "X")


def _wait_gone(pid: int, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if _gone(pid):
            return True
        time.sleep(0.05)
    return False


@pytest.fixture
def launches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, list[str]]:
    """Replace what would be run per endpoint name: by default the stand-in server on the endpoint's port."""
    script = tmp_path / "stand_in.py"
    script.write_text(STAND_IN)
    commands: dict[str, list[str]] = {}

    def spec(ep: EndpointConfig) -> servers.Launch:
        port = str(servers._port(ep))
        cmd = commands.get(ep.name, [sys.executable, str(script), port])
        return servers.Launch(cmd, "model-file", servers.engine(ep), 20.0, {"STAND_IN_MARK": ep.name})

    monkeypatch.setattr(servers, "launch_spec", spec)
    commands["_script"] = [str(script)]
    return commands


def test_start_waits_until_models_answers_and_stop_ends_the_whole_group(
    launches: dict[str, list[str]], tmp_path: Path
) -> None:
    ep = _ep("a", unused_port())
    pid_file = tmp_path / "child.pid"
    launches["a"] = [sys.executable, launches["_script"][0], str(servers._port(ep)), str(pid_file)]
    assert servers.ensure_up([ep]) == ["a"]
    assert servers.serving(ep) and "serving a at" in servers.status(ep)
    child = int(pid_file.read_text())
    assert not _gone(child)
    assert servers.ensure_up([ep]) == []  # already serving: nothing started
    assert servers.stop("a") is True
    assert _wait_gone(child), "the server's child outlived `stop`"
    assert not servers.serving(ep) and servers.status(ep) == "a: stopped"
    assert servers.stop("a") is False


def test_environment_reaches_the_server_and_its_log_gets_a_header(launches: dict[str, list[str]]) -> None:
    ep = _ep("env", unused_port(), engine="vllm")
    launches["env"] = [sys.executable, "-c", "import os, sys; print('mark=' + os.environ['STAND_IN_MARK']); "
                       "sys.exit(3)"]
    with pytest.raises(EndpointError) as info:
        servers.ensure_up([ep])
    message = str(info.value)
    assert "vllm server exited with 3" in message and "mark=env" in message and "starting vllm for env" in message


def test_a_failed_start_stops_the_servers_launched_with_it(launches: dict[str, list[str]]) -> None:
    good, bad = _ep("good", unused_port()), _ep("zbad", unused_port())
    launches["zbad"] = [sys.executable, "-c", "import sys; print('boom: no model'); sys.exit(1)"]
    with pytest.raises(EndpointError) as info:
        servers.ensure_up([bad, good])
    assert "boom: no model" in str(info.value)
    assert not servers.serving(good) and servers.status(good) == "good: stopped"


def test_a_server_that_never_answers_is_abandoned_within_its_bound(
    launches: dict[str, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    ep = _ep("mute", unused_port())
    launches["mute"] = [sys.executable, "-c", "import time; print('loading weights'); time.sleep(600)"]
    real = servers.launch_spec
    monkeypatch.setattr(servers, "launch_spec", lambda e: servers.Launch(real(e).cmd, "m", "llama.cpp", 1.5))
    t0 = time.monotonic()
    with pytest.raises(EndpointError) as info:
        servers.ensure_up([ep])
    assert time.monotonic() - t0 < 15
    assert "did not answer on port" in str(info.value) and "within 2s" in str(info.value)
    assert "loading weights" in str(info.value)
    assert servers._read_state("mute") is None


def test_unknown_engine_and_non_loopback_urls_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="unknown local engine 'tgi'"):
        servers.launch_spec(EndpointConfig(name="x", base_url="http://127.0.0.1:1/v1", model="m",
                                           local={"engine": "tgi", "quant": "Q4_1"}))
    with pytest.raises(ConfigError, match=re.escape("must use http://127.0.0.1:PORT/v1")):
        servers.launch_spec(EndpointConfig(name="x", base_url="http://10.0.0.1:8000/v1", model="m",
                                           local={"quant": "Q4_1"}))


def test_old_state_files_without_an_engine_still_load(cache: Path) -> None:
    (cache / "servers").mkdir(parents=True)
    (cache / "servers" / "old.json").write_text(
        '{"name": "old", "pid": 999999, "port": 1, "model_file": "m", "log": "l"}')
    state = servers._read_state("old")
    assert state is not None and state.engine == "llama.cpp"
    assert os.getpid() != state.pid and servers.stop("old") is False
