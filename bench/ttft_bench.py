"""TTFT measurement error: what our clients report minus the delay the FaultServer injected before the first token.

``error = measured ttft_ms − ttft_ms injected``. It includes sending the request, the server parsing it, the
server's own timer overshoot and loopback transport — so a **floor** is measured alongside, interleaved request by
request: a raw socket that sends the same bytes and timestamps the first recv() holding the first token. ``ours −
floor`` is what the harness itself adds.

Measured for the product client (``OpenAIEndpoint.complete``), for the Locust driver's records (``run_load``, one
user) and, to show the Nagle effect, for the product client against the FaultServer with TCP_NODELAY off (as it
was before commit 3cf330d). A last
diagnostic pass splits the product client's TTFT at the transport: SDK work before the request is handed to the
connection, wire + server, and SDK parsing after the first token's bytes arrive.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx2
import openai

from bench.common import Result, bench_cases, loadavg, percentile
from bench.servers import MODEL, Target, fault_server
from conformance.endpoints.config import EndpointConfig
from conformance.endpoints.openai import OpenAIEndpoint
from conformance.load.plan import build_body
from conformance.load.runner import run_load
from conformance.load.stats import read_records

FIRST_TOKEN = b'"content": "tok0 "'


class FloorClient:
    """Keep-alive raw socket: request bytes out, time to the first recv() that contains the first token."""

    def __init__(self, target: Target) -> None:
        self.sock = socket.create_connection(("127.0.0.1", target.port), timeout=10)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        body = json.dumps(build_body(bench_cases(1)[0].request(), MODEL)).encode()
        self.request = (b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                        b"Accept: text/event-stream\r\nContent-Length: %d\r\n\r\n%b" % (len(body), body))

    def ttft_ms(self) -> float:
        buf = b""
        t0 = time.monotonic()
        self.sock.sendall(self.request)
        first: float | None = None
        while not buf.endswith(b"0\r\n\r\n"):
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("server closed the connection")
            buf += data
            if first is None and FIRST_TOKEN in buf:
                first = time.monotonic()
        assert first is not None
        return (first - t0) * 1000

    def close(self) -> None:
        self.sock.close()


async def _product(target: Target, n: int, floor: FloorClient | None) -> tuple[list[float], list[float], list[float]]:
    """(ttft_ms, floor ttft_ms, tpot_ms) of ``n`` sequential requests, interleaved with the floor client."""
    cfg = EndpointConfig(name="bench", base_url=target.base_url, model=MODEL, max_concurrency=1, timeout_s=30,
                         max_retries=0)
    cases = bench_cases(n + 10)
    ours: list[float] = []
    floors: list[float] = []
    tpot: list[float] = []
    async with OpenAIEndpoint(cfg) as ep:
        for i, case in enumerate(cases):
            if floor is not None:
                f = floor.ttft_ms()
            resp = await ep.complete(case)
            if not resp.ok or resp.ttft_ms is None or resp.e2e_ms is None:
                raise RuntimeError(f"ttft request failed: {resp.describe_failure()}")
            if i < 10:
                continue  # warm-up: connection set-up, first-call imports
            ours.append(resp.ttft_ms)
            if floor is not None:
                floors.append(f)
            tokens = resp.n_chunks - 3  # role, finish and usage chunks carry no token
            if tokens > 1:
                tpot.append((resp.e2e_ms - resp.ttft_ms) / (tokens - 1))
    return ours, floors, tpot


class _Marks(dict[str, float]):
    """Monotonic timestamps of one request, filled in by the timing transport and the wrapped attempt."""


def _timing_transport(marks: _Marks) -> httpx2.AsyncBaseTransport:
    """An httpx transport that notes when the SDK hands the request over, and when the first token's bytes
    come back — so ``ttft_ms`` can be split into SDK-before-send / wire+server / SDK-after-receive."""

    class Stream(httpx2.AsyncByteStream):
        def __init__(self, inner: Any) -> None:
            self.inner = inner

        async def __aiter__(self) -> AsyncIterator[bytes]:
            async for chunk in self.inner:
                if "bytes" not in marks and FIRST_TOKEN in chunk:
                    marks["bytes"] = time.monotonic()
                yield chunk

        async def aclose(self) -> None:
            await self.inner.aclose()

    class Transport(httpx2.AsyncBaseTransport):
        def __init__(self) -> None:
            self.inner = httpx2.AsyncHTTPTransport()

        async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
            marks["send"] = time.monotonic()
            resp = await self.inner.handle_async_request(request)
            return httpx2.Response(resp.status_code, headers=resp.headers, stream=Stream(resp.stream),
                                   extensions=resp.extensions, request=request)

        async def aclose(self) -> None:
            await self.inner.aclose()

    return Transport()


async def _breakdown(target: Target, n: int) -> dict[str, dict[str, float | int | None]]:
    """Where the product client's TTFT goes (diagnostic: reaches into OpenAIEndpoint's client and attempt)."""
    cfg = EndpointConfig(name="bench", base_url=target.base_url, model=MODEL, max_concurrency=1, timeout_s=30,
                         max_retries=0)
    marks = _Marks()
    rows: dict[str, list[float]] = {"t0_to_send": [], "send_to_token_bytes": [], "token_bytes_to_ttft": []}
    async with OpenAIEndpoint(cfg) as ep:
        await ep._client.close()
        ep._client = openai.AsyncOpenAI(base_url=target.base_url, api_key="none", max_retries=0,
                                        http_client=httpx2.AsyncClient(transport=_timing_transport(marks)))
        attempt = ep._attempt

        async def timed_attempt(case: Any, resp: Any, t0: float) -> None:
            marks.clear()
            marks["t0"] = t0
            await attempt(case, resp, t0)

        ep._attempt = timed_attempt  # type: ignore[method-assign]
        for i, case in enumerate(bench_cases(n + 10)):
            resp = await ep.complete(case)
            if i < 10 or resp.ttft_ms is None or "bytes" not in marks:
                continue
            rows["t0_to_send"].append((marks["send"] - marks["t0"]) * 1000)
            rows["send_to_token_bytes"].append((marks["bytes"] - marks["send"]) * 1000)
            rows["token_bytes_to_ttft"].append(resp.ttft_ms - (marks["bytes"] - marks["t0"]) * 1000)
    return {k: _stats(v) for k, v in rows.items()}


def _locust(target: Target, seconds: float) -> list[float]:
    out = Path(tempfile.mkdtemp(prefix="bench-ttft-locust-"))
    try:
        cfg = EndpointConfig(name="bench", base_url=target.base_url, model=MODEL, timeout_s=30)
        run_load(bench_cases(16), cfg, [{"users": 1, "spawn_rate": 1, "duration_s": seconds}], out,
                 stop_timeout_s=5)
        records, _ = read_records(out / "raw")
        return [float(r["ttft_ms"]) for r in sorted(records, key=lambda r: r["seq"])[5:]
                if r.get("fault") is None and r.get("ttft_ms") is not None]
    finally:
        shutil.rmtree(out, ignore_errors=True)


def _stats(errors: list[float]) -> dict[str, float | int | None]:
    return {"n": len(errors), "p50": _r(percentile(errors, 50)), "p90": _r(percentile(errors, 90)),
            "p99": _r(percentile(errors, 99)), "max": _r(max(errors) if errors else None)}


def _r(x: float | None) -> float | None:
    return None if x is None else round(x, 3)


def ttft_error(*, n: int, repeats: int, locust_s: float, ttft_ms: float, itl_ms: float, tokens: int,
               command: str) -> list[Result]:
    """p99 of (measured − injected) TTFT; goal ≤ 2 ms. One Result per client, plus the Nagle 'before' figure."""
    goal = f"p99(ttft measured − {ttft_ms:g} ms injected) ≤ 2 ms"
    product = Result(name="ttft_error[OpenAIEndpoint]", benchmark="ttft_error", metric="ms, p99 over requests",
                     goal=goal, goal_value=2.0, direction="max", command=command)
    locust = Result(name="ttft_error[locust records]", benchmark="ttft_error", metric="ms, p99 over requests",
                    goal=goal, goal_value=2.0, direction="max", command=command)
    nagle = Result(name="ttft_error[OpenAIEndpoint, FaultServer with Nagle on]", benchmark="ttft_error",
                   metric="ms, p99 over requests", goal=goal, goal_value=2.0, direction="max", command=command,
                   notes="TCP_NODELAY off on the server's sockets, as before commit 3cf330d (the 'before' figure)")
    detail: dict[str, list[dict[str, float | int | None]]] = {"product": [], "floor": [], "harness_minus_floor": [],
                                                              "locust": [], "nagle": [], "tpot_error": []}
    with fault_server(ttft_ms, itl_ms, tokens) as target:
        for _ in range(repeats):
            product.loadavg.append(loadavg())
            floor = FloorClient(target)
            try:
                ours, floors, tpot = asyncio.run(_product(target, n, floor))
            finally:
                floor.close()
            err = [x - ttft_ms for x in ours]
            detail["product"].append(_stats(err))
            detail["floor"].append(_stats([x - ttft_ms for x in floors]))
            detail["harness_minus_floor"].append(_stats([a - b for a, b in zip(ours, floors, strict=True)]))
            detail["tpot_error"].append(_stats([x - itl_ms for x in tpot]))
            product.ours_samples.append(_r(percentile(err, 99)) or 0.0)
            if locust_s > 0:
                locust.loadavg.append(loadavg())
                lerr = [x - ttft_ms for x in _locust(target, locust_s)]
                detail["locust"].append(_stats(lerr))
                locust.ours_samples.append(_r(percentile(lerr, 99)) or 0.0)
    with fault_server(ttft_ms, itl_ms, tokens, nagle=True) as target:
        nagle.loadavg.append(loadavg())
        ours, _, _ = asyncio.run(_product(target, max(10, n // 4), None))
        serr = [x - ttft_ms for x in ours]
        detail["nagle"].append(_stats(serr))
        nagle.ours_samples.append(_r(percentile(serr, 99)) or 0.0)
    with fault_server(ttft_ms, itl_ms, tokens) as target:
        breakdown = asyncio.run(_breakdown(target, max(10, n // 2)))
    shared = {"injected": {"ttft_ms": ttft_ms, "itl_ms": itl_ms, "tokens": tokens}, "requests_per_repeat": n}
    product.extra = {**shared, "product": detail["product"], "floor": detail["floor"],
                     "harness_minus_floor": detail["harness_minus_floor"], "tpot_error": detail["tpot_error"],
                     "breakdown_ms": breakdown}
    locust.extra = {**shared, "locust": detail["locust"], "users": 1, "duration_s": locust_s}
    nagle.extra = {**shared, "nagle": detail["nagle"]}
    out = [product.judge(), nagle.judge()]
    if locust.ours_samples:
        out.insert(1, locust.judge())
    return out
