"""`conformance preflight` stops the embedded servers it started — and only those — whatever happens."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from conformance.cli import main
from conformance.endpoints.config import EndpointConfig, EndpointsFile
from conformance.errors import EndpointError
from tests.conftest import PYPROJECT
from tests.support.live import LIVE_YAML

LOCAL_YAML = """\
defaults: {baseline: old, candidate: new}
endpoints:
  old: {base_url: "http://127.0.0.1:9/v1", model: m-old, local: {quant: Q4_1}}
  new: {base_url: "http://127.0.0.1:9/v1", model: m-new, local: {quant: Q4_0}}
"""


def _repo(root: Path, endpoints: str) -> Path:
    (root / "pyproject.toml").write_text(PYPROJECT)
    (root / "endpoints.yaml").write_text(endpoints)
    return root


class FakeServers:
    """Stands in for conformance.local.servers: which servers were started, which stopped."""

    def __init__(self, running: Sequence[str] = (), broken: str | None = None) -> None:
        self.running, self.broken = set(running), broken
        self.started: list[str] = []
        self.stopped: list[str] = []

    def ensure_up(self, eps: list[EndpointConfig]) -> list[str]:
        new = []
        for ep in eps:
            if ep.name == self.broken:
                raise EndpointError(ep.name, "llama.cpp server exited with 1")
            if ep.name not in self.running:
                self.running.add(ep.name)
                new.append(ep.name)
        self.started += new
        return new

    def stop(self, name: str, grace_s: float = 5.0) -> bool:
        self.stopped.append(name)
        self.running.discard(name)
        return True


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeServers:
    servers = FakeServers(running=["old"])
    monkeypatch.setattr("conformance.local.servers.ensure_up", servers.ensure_up)
    monkeypatch.setattr("conformance.local.servers.stop", servers.stop)

    def check_all(cfgs: list[EndpointConfig], redactor: Any) -> list[SimpleNamespace]:
        return [SimpleNamespace(endpoint=c.name, ok=True, status="ok", message="", model=c.model, server="llama.cpp")
                for c in cfgs]

    monkeypatch.setattr("conformance.endpoints.preflight.check_all", check_all)
    return servers


def test_stops_what_it_started_and_leaves_what_was_running(tmp_path: Path, fake: FakeServers,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--root", str(_repo(tmp_path, LOCAL_YAML)), "preflight"]) == 0
    assert fake.started == ["new"] and fake.stopped == ["new"] and fake.running == {"old"}
    out = capsys.readouterr().out
    assert "old: ok: serves 'm-old'" in out and "new: ok: serves 'm-new'" in out
    assert "new: stopped again" in out and "old: stopped" not in out


def test_stops_what_it_started_when_a_later_start_fails(tmp_path: Path, fake: FakeServers,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    fake.running, fake.broken = set(), "new"
    assert main(["--root", str(_repo(tmp_path, LOCAL_YAML)), "preflight"]) == 2
    assert fake.started == ["old"] and fake.stopped == ["old"] and not fake.running
    assert "llama.cpp server exited with 1" in capsys.readouterr().err


def test_stops_what_it_started_on_ctrl_c(tmp_path: Path, fake: FakeServers, monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(cfgs: list[EndpointConfig], redactor: Any) -> list[Any]:
        raise KeyboardInterrupt

    monkeypatch.setattr("conformance.endpoints.preflight.check_all", interrupted)
    assert main(["--root", str(_repo(tmp_path, LOCAL_YAML)), "preflight"]) == 130
    assert fake.stopped == ["new"] and fake.running == {"old"}


def test_no_local_start_starts_and_stops_nothing(tmp_path: Path, fake: FakeServers) -> None:
    assert main(["--root", str(_repo(tmp_path, LOCAL_YAML)), "preflight", "--no-local-start"]) == 0
    assert fake.started == [] and fake.stopped == []


@pytest.mark.live
def test_a_real_embedded_server_is_not_left_running(tmp_path: Path, live_servers: EndpointsFile,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """test-old-model (8453) is down before; preflight starts it, checks it, and it is down again after —
    while test-baseline, which the session started, keeps serving."""
    from conformance.local.servers import serving, stop

    old, base = live_servers.get("test-old-model"), live_servers.get("test-baseline")
    stop(old.name)  # a leftover of another test that started it
    assert not serving(old) and serving(base)
    root = _repo(tmp_path, LIVE_YAML)
    assert main(["--root", str(root), "preflight", "test-old-model", "test-baseline"]) == 0
    out = capsys.readouterr().out
    assert "test-old-model: ok: serves 'smollm2-135m-instruct-q4_1'" in out
    assert "test-old-model: stopped again" in out and "test-baseline: stopped" not in out
    assert not serving(old) and serving(base)
