"""Start, stop and inspect the embedded servers (``conformance local up|down|status``).

Two engines, one lifecycle. ``local: {engine: llama.cpp}`` (the default) is ``python -m llama_cpp.server``;
``local: {engine: vllm}`` is a real vLLM OpenAI server (:mod:`conformance.local.vllm` says what to run). Each server
is bound to 127.0.0.1 in its own process session, so that stopping pytest with Ctrl-C does not kill it half-way and
so `down` can terminate the whole group (vLLM's engine core and worker are children of its API server). Its output
goes to a log file whose tail is shown when it fails to start. A small JSON state file per endpoint (pid, port,
model, engine) lets a later command find what an earlier one started.

:func:`ensure_up` launches every server it needs before waiting for any (two vLLM servers start in about the time
of one), and stops what it launched if one of them fails, so a failed start leaves no 4 GB process behind.
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
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO
from urllib.parse import urlsplit

from conformance.endpoints.config import EndpointConfig
from conformance.errors import ConfigError, EndpointError
from conformance.local.models import cache_dir, model_path

LLAMA_CPP = "llama.cpp"
VLLM = "vllm"
#: How long a start may take unless ``local.startup_timeout_s`` says otherwise.
STARTUP_S = {LLAMA_CPP: 90.0, VLLM: 600.0}
#: How long a server gets to exit after SIGTERM before its group is killed (vLLM shuts its engine down first).
STOP_GRACE_S = {LLAMA_CPP: 5.0, VLLM: 20.0}

# Servers started by this process, kept so they can be reaped (a Popen must not be dropped while running).
_CHILDREN: dict[str, subprocess.Popen[bytes]] = {}


@dataclass(frozen=True)
class ServerState:
    name: str
    pid: int
    port: int
    model_file: str
    log: str
    engine: str = LLAMA_CPP


@dataclass(frozen=True)
class Launch:
    """What to run for one endpoint: argv, extra environment, what it serves and how long it may take to start."""

    cmd: list[str]
    model_file: str
    engine: str
    wait_s: float
    env: dict[str, str] = field(default_factory=dict)


def engine(ep: EndpointConfig) -> str:
    return str((ep.local or {}).get("engine", LLAMA_CPP))


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


def _group_alive(pgid: int) -> bool:
    """Whether any process of the session/group ``pgid`` is left (the leader may be gone before its children)."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def serving(ep: EndpointConfig, timeout: float = 1.0) -> bool:
    """True when ``GET {base_url}/models`` answers 200 (whoever started the server)."""
    req = urllib.request.Request(ep.base_url.rstrip("/") + "/models")
    key = ep.secret()
    if key:
        req.add_header("Authorization", f"Bearer {key}")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
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


def _wait_s(ep: EndpointConfig, kind: str) -> float:
    return float((ep.local or {}).get("startup_timeout_s") or STARTUP_S[kind])


def _llama_cpp_launch(ep: EndpointConfig, port: int) -> Launch:
    assert ep.local is not None
    gguf = model_path(ep.local["quant"])
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
    return Launch(cmd, str(gguf), LLAMA_CPP, _wait_s(ep, LLAMA_CPP))


def _vllm_launch(ep: EndpointConfig, port: int) -> Launch:
    from conformance.local import vllm

    assert ep.local is not None
    python = vllm.interpreter()
    model_dir = vllm.hf_model_dir(ep.local["quant"], python)
    return Launch(vllm.command(model_dir, ep.model, port, ep.local, python), str(model_dir), VLLM,
                  _wait_s(ep, VLLM), vllm.environment(ep.local, ep.secret()))


def launch_spec(ep: EndpointConfig) -> Launch:
    """What :func:`start` runs for ``ep`` (makes the model file first: a re-quantization, a vLLM conversion)."""
    if not ep.local:
        raise ConfigError(f"endpoint {ep.name!r} has no `local:` section; it is not an embedded server")
    kind = engine(ep)
    if kind not in STARTUP_S:
        raise ConfigError(f"endpoint {ep.name!r}: unknown local engine {kind!r} (known: {', '.join(STARTUP_S)})")
    return _vllm_launch(ep, _port(ep)) if kind == VLLM else _llama_cpp_launch(ep, _port(ep))


def _spawn(ep: EndpointConfig, spec: Launch) -> ServerState:
    log = _state_file(ep.name).with_suffix(".log")
    with open(log, "ab") as out:
        out.write(f"\n--- {time.strftime('%Y-%m-%d %H:%M:%S')} starting {spec.engine} for {ep.name}\n".encode())
        out.flush()
        proc = subprocess.Popen(spec.cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True, env={**os.environ, **spec.env} if spec.env else None)
    _CHILDREN[ep.name] = proc
    state = ServerState(ep.name, proc.pid, _port(ep), spec.model_file, str(log), spec.engine)
    _state_file(ep.name).write_text(json.dumps(state.__dict__))
    return state


def _log_tail(log: str, lines: int = 12) -> str:
    try:
        text = Path(log).read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


def _wait_ready(ep: EndpointConfig, state: ServerState, wait_s: float) -> None:
    """Poll /v1/models until it answers; raise with the log's tail when the server exits or the time is up."""
    deadline = time.monotonic() + wait_s
    proc = _CHILDREN.get(ep.name)
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            _CHILDREN.pop(ep.name, None)
            stop(ep.name)  # its children (a vLLM engine core) may outlive the API server
            raise EndpointError(ep.name, f"{state.engine} server exited with {proc.returncode}; "
                                         f"log {state.log}:\n{_log_tail(state.log)}")
        if serving(ep, timeout=1.0):
            return
        time.sleep(0.2)
    stop(ep.name)
    raise EndpointError(ep.name, f"{state.engine} server did not answer on port {state.port} within "
                                 f"{wait_s:.0f}s; log {state.log}:\n{_log_tail(state.log)}")


def start(ep: EndpointConfig, wait_s: float | None = None) -> ServerState:
    """Start the server for a ``local:`` endpoint and wait until /v1/models answers."""
    spec = launch_spec(ep)
    state = _spawn(ep, spec)
    _wait_ready(ep, state, spec.wait_s if wait_s is None else wait_s)
    return state


def stop(name: str, grace_s: float | None = None) -> bool:
    """Stop a server started by :func:`start` (SIGTERM to its process group, then SIGKILL). Returns whether one was
    running."""
    state = _read_state(name)
    _state_file(name).unlink(missing_ok=True)
    child = _CHILDREN.pop(name, None)
    if state is None or not _group_alive(state.pid):
        if child is not None:
            child.wait()
        return False
    with contextlib.suppress(ProcessLookupError):
        os.killpg(state.pid, signal.SIGTERM)
    grace = STOP_GRACE_S.get(state.engine, 5.0) if grace_s is None else grace_s
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and _group_alive(state.pid):
        if child is not None:
            child.poll()
        else:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(state.pid, os.WNOHANG)
        time.sleep(0.05)
    if _group_alive(state.pid):
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
    kind = engine(ep)
    if up:
        who = f"pid {state.pid}" if state and _alive(state.pid) else "not started by us"
        return f"{ep.name}: serving {ep.model} at {ep.base_url} ({kind}, {who})"
    if state and _alive(state.pid):
        return f"{ep.name}: {kind} process {state.pid} running but not answering (starting?); log {state.log}"
    return f"{ep.name}: stopped"


@contextlib.contextmanager
def _locked(ep: EndpointConfig) -> Iterator[IO[str]]:
    with open(_state_file(ep.name).with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield lock


def ensure_up(endpoints: list[EndpointConfig]) -> list[str]:
    """Start every ``local:`` endpoint that is not already serving; return the names started.

    A per-endpoint file lock, held from the check until the server answers, makes concurrent callers (xdist
    workers, two terminals) start each server once: a second caller waits on the lock, then finds it serving.
    Every server needed is launched before any is waited for; when one fails, those launched here are stopped.
    """
    todo = sorted((ep for ep in endpoints if ep.local and not serving(ep)), key=lambda e: e.name)
    if not todo:
        return []
    launched: list[tuple[EndpointConfig, ServerState, Launch]] = []
    with contextlib.ExitStack() as locks:
        try:
            needed = []
            for ep in todo:
                locks.enter_context(_locked(ep))
                if serving(ep):
                    continue
                if _port_open(_port(ep)):
                    # something listens but does not answer quickly: usually our server busy with a long
                    # generation (llama-cpp-python answers one request at a time) — wait rather than start another
                    if _wait_serving(ep, 60.0):
                        continue
                    raise EndpointError(ep.name, f"port {_port(ep)} is taken by a process that does not answer "
                                                 f"{ep.base_url}/models; stop it (`conformance local down`) or "
                                                 "change the port")
                needed.append(ep)
            if any(engine(ep) == VLLM for ep in needed):
                from conformance.local.vllm import check_memory

                check_memory([ep.local or {} for ep in needed if engine(ep) == VLLM])
            # model files (a re-quantization, a vLLM conversion) are made by child processes: side by side
            with ThreadPoolExecutor(max_workers=max(1, len(needed))) as pool:
                specs = list(pool.map(launch_spec, needed))
            for ep, spec in zip(needed, specs, strict=True):
                launched.append((ep, _spawn(ep, spec), spec))
            for ep, state, spec in launched:
                _wait_ready(ep, state, spec.wait_s)
        except BaseException:
            for ep, _, _ in launched:
                stop(ep.name)
            raise
    return [ep.name for ep, _, _ in launched]
