"""The endpoints the benchmarks talk to: a FaultServer in its own process, and nginx serving a canned SSE answer.

Why a separate process for the FaultServer: in the benchmark process it would share the GIL with the client being
measured, so every client microsecond would also slow the server and the measured ratio would mix the two. In its
own process (one core of the two) it behaves like a real server on the loopback.

Why nginx as well: the FaultServer is Python, so a Python client at 64 concurrency may be measuring the *server's*
ceiling. nginx answering a static file is fast enough that the client is the bottleneck — the figure issue 7
quotes (450–500 req/s) is of that kind.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
MODEL = "bench-model"


@dataclass(frozen=True)
class Target:
    """A running endpoint: ``base_url`` ends in ``/v1``; ``kind`` names it in results."""

    kind: str
    base_url: str
    port: int
    pid: int

    @property
    def url(self) -> str:
        return self.base_url + "/chat/completions"


def _delta_args(ttft_ms: float, itl_ms: float, tokens: int) -> list[str]:
    return ["--ttft-ms", str(ttft_ms), "--itl-ms", str(itl_ms), "--tokens", str(tokens)]


@contextlib.contextmanager
def fault_server(ttft_ms: float = 0.0, itl_ms: float = 0.0, tokens: int = 16, *,
                 nagle: bool = False) -> Iterator[Target]:
    """A FaultServer (``record=False``) answering every chat request with ``tokens`` content chunks.

    ``nagle=True`` turns TCP_NODELAY back *off* on every accepted socket: the FaultServer as it was before commit
    3cf330d, kept so the before/after figure of that fix stays reproducible (see :func:`nodelay_state`).
    """
    cmd = [sys.executable, "-m", "bench.servers", *_delta_args(ttft_ms, itl_ms, tokens)]
    if nagle:
        cmd.append("--nagle")
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line.startswith("port "):
            raise RuntimeError(f"bench.servers did not start: {line!r}")
        port = int(line.split()[1])
        kind = f"faultserver(ttft={ttft_ms:g}ms, itl={itl_ms:g}ms x {tokens}{', Nagle on' if nagle else ''})"
        yield Target(kind, f"http://127.0.0.1:{port}/v1", port, proc.pid)
    finally:
        _stop(proc)


def _stop(proc: subprocess.Popen[str] | subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    for stream in (proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()


def canned_sse(target: Target, body: dict[str, object]) -> bytes:
    """The exact SSE body ``target`` answers to ``body`` (de-chunked): what nginx then serves verbatim."""
    conn = http.client.HTTPConnection("127.0.0.1", target.port, timeout=10)
    try:
        conn.request("POST", "/v1/chat/completions", json.dumps(body), {"Content-Type": "application/json"})
        resp = conn.getresponse()
        data = resp.read()
        if resp.status != 200:
            raise RuntimeError(f"canned answer: HTTP {resp.status}")
        return data
    finally:
        conn.close()


NGINX_CONF = """\
worker_processes 1;
daemon off;
error_log {dir}/error.log warn;
pid {dir}/nginx.pid;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {dir}/tmp/body;
    proxy_temp_path {dir}/tmp/proxy;
    fastcgi_temp_path {dir}/tmp/fastcgi;
    uwsgi_temp_path {dir}/tmp/uwsgi;
    scgi_temp_path {dir}/tmp/scgi;
    keepalive_requests 1000000;
    keepalive_timeout 120s;
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        root {dir}/www;
        location /v1/ {{
            # the static module refuses POST with 405; error_page turns that into a GET of the same file
            default_type text/event-stream;
            error_page 405 =200 $uri;
        }}
    }}
}}
"""


def nginx_available() -> bool:
    return shutil.which("nginx") is not None


@contextlib.contextmanager
def nginx_server(sse: bytes) -> Iterator[Target]:
    """nginx (one worker) answering every POST /v1/chat/completions with ``sse`` as text/event-stream."""
    from conformance.testing import unused_port

    exe = shutil.which("nginx")
    if exe is None:
        raise RuntimeError("nginx is not installed (apt-get install -y nginx)")
    tmp = Path(tempfile.mkdtemp(prefix="bench-nginx-"))
    try:
        os.chmod(tmp, 0o755)  # nginx workers run as `nobody` when started by root
        (tmp / "www" / "v1").mkdir(parents=True)
        (tmp / "tmp").mkdir()
        (tmp / "www" / "v1" / "chat").mkdir()
        (tmp / "www" / "v1" / "chat" / "completions").write_bytes(sse)
        for p in tmp.rglob("*"):
            os.chmod(p, 0o755 if p.is_dir() else 0o644)
        port = unused_port()
        conf = tmp / "nginx.conf"
        conf.write_text(NGINX_CONF.format(dir=tmp, port=port))
        proc = subprocess.Popen([exe, "-c", str(conf), "-p", str(tmp)], stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            _wait_listening(port, proc)
            yield Target("nginx(static SSE)", f"http://127.0.0.1:{port}/v1", port, proc.pid)
        finally:
            _stop(proc)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _wait_listening(port: int, proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
            raise RuntimeError(f"nginx exited with {proc.returncode}: {err[-500:]}")
        with contextlib.suppress(OSError):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            conn.request("POST", "/v1/chat/completions", "{}", {"Content-Type": "application/json"})
            status = conn.getresponse().status
            conn.close()
            if status == 200:
                return
            raise RuntimeError(f"nginx answers HTTP {status} to POST /v1/chat/completions")
        time.sleep(0.05)
    raise RuntimeError("nginx did not start listening")


def nodelay_state() -> dict[str, int]:
    """TCP_NODELAY (1/0) on a socket accepted by the FaultServer as shipped, and by a plain asyncio.start_server.

    asyncio turns Nagle off on every TCP transport — but only when ``sock.proto == IPPROTO_TCP``; a listening
    socket created as ``socket.socket(AF_INET, SOCK_STREAM)`` (proto 0), as ``FaultServer.start()`` does, hands
    out sockets asyncio does not recognise. Before commit 3cf330d they kept Nagle, and a response written in two
    pieces (the SSE body, then the chunked terminator; or the role chunk, then the first token) waited for the
    client's delayed ACK: ~40 ms on Linux. The FaultServer now sets TCP_NODELAY itself in ``_handle``.
    """
    import asyncio

    from conformance.testing import FaultServer

    seen: dict[str, int] = {}

    class Probe(FaultServer):
        async def _serve_one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
            seen.setdefault("faultserver", _nodelay(writer))
            return await super()._serve_one(reader, writer)

    with Probe() as srv, socket.create_connection(("127.0.0.1", srv.port), timeout=5) as c:
        c.sendall(b"GET /v1/models HTTP/1.1\r\nHost: x\r\n\r\n")
        c.recv(65536)

    async def plain() -> None:
        async def handle(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            seen["asyncio_start_server"] = _nodelay(writer)
            writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        _, w = await asyncio.open_connection("127.0.0.1", port)
        await asyncio.sleep(0.05)
        w.close()
        server.close()
        await server.wait_closed()

    asyncio.run(plain())
    return seen


def _nodelay(writer: Any) -> int:
    sock = writer.get_extra_info("socket")
    return int(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)) if sock is not None else -1


def _nagle_server() -> type:
    """FaultServer with TCP_NODELAY switched off again on each accepted socket: the behaviour before 3cf330d."""
    import asyncio

    from conformance.testing import FaultServer

    class NagleFaultServer(FaultServer):
        async def _serve_one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
            sock = writer.get_extra_info("socket")  # after FaultServer._handle set TCP_NODELAY
            if sock is not None:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 0)
            return await super()._serve_one(reader, writer)

    return NagleFaultServer


def _serve(argv: list[str] | None = None) -> None:
    """``python -m bench.servers``: run a FaultServer until SIGTERM; print ``port N`` once it listens."""
    import logging

    from conformance.testing import Behaviour, FaultServer

    # a load driver that stops mid-answer makes asyncio log "socket.send() raised exception." — expected here
    logging.getLogger("asyncio").setLevel(logging.ERROR)
    p = argparse.ArgumentParser()
    p.add_argument("--ttft-ms", type=float, default=0.0)
    p.add_argument("--itl-ms", type=float, default=0.0)
    p.add_argument("--tokens", type=int, default=16)
    p.add_argument("--nagle", action="store_true", help="TCP_NODELAY off on accepted sockets (before 3cf330d)")
    args = p.parse_args(argv)
    deltas = [f"tok{i} " for i in range(args.tokens)]
    behaviour = Behaviour(deltas=deltas, ttft_ms=args.ttft_ms, itl_ms=args.itl_ms)
    cls = _nagle_server() if args.nagle else FaultServer
    srv = cls(behaviour, models=(MODEL,), record=False).start()
    stop = False

    def on_term(*_: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    print(f"port {srv.port}", flush=True)
    while not stop:
        time.sleep(0.1)
    srv.stop()


if __name__ == "__main__":
    _serve()
