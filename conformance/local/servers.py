"""Start, stop and inspect the embedded llama.cpp servers (``conformance local up|down|status``).

Each server is ``python -m llama_cpp.server`` bound to 127.0.0.1 in its own process session, so that stopping
pytest with Ctrl-C does not kill it half-way and so `down` can terminate the whole group. A small JSON state file
per endpoint (pid, port, model file) lets a later command find what an earlier one started.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from conformance.endpoints.config import EndpointConfig
from conformance.errors import ConfigError, EndpointError
from conformance.local.models import cache_dir, model_path

# Servers started by this process, kept so they can be reaped (a Popen must not be dropped while running).
_CHILDREN: dict[str, subprocess.Popen[bytes]] = {}


@dataclass(frozen=True)
class ServerState:
    name: str
    pid: int
    port: int
    model_file: str
    log: str


def _state_file(name: str) -> Path:
    d = cache_dir() / "servers"
    d.mkdir(parents=True, exist_ok=True)
    return d / f"{name}.json"


def _read_state(name: str) -> ServerState | None:
    try:
        return ServerState(**json.loads(_state_file(name).read_text()))
    except (FileNotFoundError, ValueError, TypeError):
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def serving(ep: EndpointConfig, timeout: float = 1.0) -> bool:
    """True when ``GET {base_url}/models`` answers 200 (whoever started the server)."""
    try:
        with urllib.request.urlopen(ep.base_url.rstrip("/") + "/models", timeout=timeout) as resp:
            return bool(resp.status == 200)
    except (urllib.error.URLError, OSError, ValueError):
        return False


def _port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _port(ep: EndpointConfig) -> int:
    parts = urlsplit(ep.base_url)
    if not ep.is_loopback or parts.port is None:
        raise ConfigError(f"local endpoint {ep.name!r} must use http://127.0.0.1:PORT/v1, not {ep.base_url}")
    return parts.port


def start(ep: EndpointConfig, wait_s: float = 90.0) -> ServerState:
    """Start the server for a ``local:`` endpoint and wait until /v1/models answers."""
    if not ep.local:
        raise ConfigError(f"endpoint {ep.name!r} has no `local:` section; it is not an embedded server")
    port = _port(ep)
    gguf = model_path(ep.local["quant"])
    log = _state_file(ep.name).with_suffix(".log")
    threads = ep.local.get("n_threads") or max(1, (os.cpu_count() or 2) // 2)
    cmd = [
        sys.executable, "-m", "llama_cpp.server",
        "--model", str(gguf), "--model_alias", ep.model,
        "--host", "127.0.0.1", "--port", str(port),
        "--n_ctx", str(ep.local.get("n_ctx", 2048)), "--n_threads", str(threads),
        # SmolLM2 speaks ChatML; this format also renders the request's `tools` into the prompt and parses calls
        # back (the GGUF's own template silently drops `tools`)
        "--chat_format", ep.local.get("chat_format", "chatml-function-calling"),
        "--verbose", "False",
        # llama-cpp-python's default cuts an in-flight stream short whenever a new request arrives; a shared
        # endpoint must queue requests instead (two xdist workers, or a run next to `conformance record`).
        "--interrupt_requests", "False",
    ]
    key = ep.secret()
    if key:
        cmd += ["--api_key", key]
    with open(log, "ab") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
    _CHILDREN[ep.name] = proc
    state = ServerState(ep.name, proc.pid, port, str(gguf), str(log))
    _state_file(ep.name).write_text(json.dumps(state.__dict__))
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            _CHILDREN.pop(ep.name, None)
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-8:])
            raise EndpointError(ep.name, f"llama.cpp server exited with {proc.returncode}; log {log}:\n{tail}")
        if serving(ep, timeout=0.5):
            return state
        time.sleep(0.2)
    stop(ep.name)
    raise EndpointError(ep.name, f"llama.cpp server did not answer on port {port} within {wait_s:.0f}s; see {log}")


def stop(name: str, grace_s: float = 5.0) -> bool:
    """Stop a server started by :func:`start` (SIGTERM, then SIGKILL). Returns whether one was running."""
    state = _read_state(name)
    _state_file(name).unlink(missing_ok=True)
    child = _CHILDREN.pop(name, None)
    if state is None or not _alive(state.pid):
        if child is not None:
            child.wait()
        return False
    with contextlib.suppress(ProcessLookupError):
        os.killpg(state.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline and _alive(state.pid):
        if child is not None:
            child.poll()
        else:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(state.pid, os.WNOHANG)
        time.sleep(0.05)
    if _alive(state.pid):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(state.pid, signal.SIGKILL)
    if child is not None:
        child.wait()
    return True


def _wait_serving(ep: EndpointConfig, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if serving(ep, timeout=2.0):
            return True
        time.sleep(0.5)
    return False


def status(ep: EndpointConfig) -> str:
    """One line: serving / started-but-not-answering / stopped."""
    state = _read_state(ep.name)
    up = serving(ep)
    if up:
        who = f"pid {state.pid}" if state and _alive(state.pid) else "not started by us"
        return f"{ep.name}: serving {ep.model} at {ep.base_url} ({who})"
    if state and _alive(state.pid):
        return f"{ep.name}: process {state.pid} running but not answering; log {state.log}"
    return f"{ep.name}: stopped"


def ensure_up(endpoints: list[EndpointConfig]) -> list[str]:
    """Start every ``local:`` endpoint that is not already serving; return the names started.

    A per-endpoint file lock makes concurrent callers (xdist workers, two terminals) start each server once.
    """
    started = []
    for ep in endpoints:
        if not ep.local or serving(ep):
            continue
        if _port_open(_port(ep)):
            # something listens but does not answer quickly: usually our server busy with a long generation
            # (llama-cpp-python answers one request at a time) — wait for it rather than start a second one
            if _wait_serving(ep, 60.0):
                continue
            raise EndpointError(ep.name, f"port {_port(ep)} is taken by a process that does not answer "
                                         f"{ep.base_url}/models; stop it (`conformance local down`) or change the port")
        with open(_state_file(ep.name).with_suffix(".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not serving(ep):
                start(ep)
                started.append(ep.name)
    return started
