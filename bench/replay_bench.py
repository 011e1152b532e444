"""Replay (the product path: OpenAIEndpoint + replay + RunStore) against a raw ``openai`` SDK streaming loop.

Both sides stream the same requests from the same endpoint and read every chunk; the reference does nothing else,
ours also times each chunk, builds a :class:`Response`, retries, and appends + fsyncs every answer to the run
folder. The difference is the harness's overhead.

- **sequential**: one request at a time (``max_concurrency=1``), the raw call and ``replay`` of the same case
  interleaved request by request; reported: the median per-request ms of each, and their ratio.
- **throughput**: 64 in flight (``max_concurrency=64`` vs an ``asyncio.Semaphore(64)``); requests / wall time.

Both also run a third side, replay with RunStore's per-answer ``fsync`` switched off (:mod:`bench.prototypes`),
to show how much of the gap that one call explains.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import openai

from bench.common import Result, bench_cases, loadavg, median
from bench.prototypes import runstore_without_fsync
from bench.servers import MODEL, Target
from conformance.endpoints.config import EndpointConfig
from conformance.endpoints.openai import OpenAIEndpoint
from conformance.goldens.model import Case
from conformance.replay import replay
from conformance.runstore import RunStore

WARMUP = 20


def _cfg(target: Target, concurrency: int) -> EndpointConfig:
    return EndpointConfig(name="bench", base_url=target.base_url, model=MODEL, max_concurrency=concurrency,
                          timeout_s=60, max_retries=0)


def _kwargs(case: Case) -> dict[str, Any]:
    return {"model": MODEL, **case.request(), "stream": True, "stream_options": {"include_usage": True}}


async def _raw_one(client: openai.AsyncOpenAI, case: Case) -> int:
    stream = await client.chat.completions.create(**_kwargs(case))
    n = 0
    async for _chunk in stream:
        n += 1
    return n


def _client(target: Target) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=target.base_url, api_key="none", max_retries=0, timeout=60)


async def paired_sequential(target: Target, cases: Sequence[Case], run_dir: Path) -> dict[str, list[float]]:
    """Per-request seconds, request by request in turn: raw SDK call, replay (as shipped), replay without fsync.

    Interleaving each request (the order rotates) means a burst of outside load hits all three alike. ``ours`` is
    one ``replay([endpoint], [case], store)`` call — the whole product path for one answer, run-cache write and
    fsync included.
    """
    client = _client(target)
    ep = OpenAIEndpoint(_cfg(target, 1))
    store = RunStore(run_dir / "shipped")
    store_nf = RunStore(run_dir / "nofsync")
    out: dict[str, list[float]] = {"raw": [], "ours": [], "ours_nofsync": []}
    cpu: dict[str, list[float]] = {k: [] for k in out}

    async def ours(case: Case, st: RunStore) -> None:
        got = await replay([ep], [case], st)
        _assert_ok(got.values(), 1)

    try:
        for c in cases[:WARMUP]:
            await _raw_one(client, c)
            await ours(_renamed(c, "warm"), store)
        for i, case in enumerate(cases):
            sides = ["raw", "ours", "ours_nofsync"]
            for side in sides[i % 3:] + sides[: i % 3]:
                c0, t0 = time.process_time(), time.perf_counter()
                if side == "raw":
                    await _raw_one(client, case)
                elif side == "ours":
                    await ours(case, store)
                else:
                    with runstore_without_fsync():
                        await ours(case, store_nf)
                out[side].append(time.perf_counter() - t0)
                cpu[side].append(time.process_time() - c0)
        return {**out, **{f"cpu_{k}": v for k, v in cpu.items()}}
    finally:
        store.close()
        store_nf.close()
        await ep.aclose()
        await client.close()


def _renamed(case: Case, prefix: str) -> Case:
    msgs = tuple({**m, "content": f"{prefix} {m['content']}"} for m in case.messages)
    return Case(system=case.system, set_name=case.set_name, id=f"{prefix}-{case.id}", messages=msgs,
                params=case.params)


def _assert_ok(responses: Any, n: int) -> None:
    responses = list(responses)
    bad = [r for r in responses if not r.ok]
    if len(responses) != n or bad:
        raise RuntimeError(f"replay answered {len(responses)}/{n}, {len(bad)} failed: "
                           f"{bad[0].describe_failure() if bad else ''}")


async def raw_concurrent(target: Target, cases: Sequence[Case], concurrency: int) -> tuple[float, float]:
    """(requests per second, client CPU ms per request) of a plain SDK loop with ``concurrency`` in flight."""
    client = _client(target)
    slots = asyncio.Semaphore(concurrency)

    async def one(c: Case) -> None:
        async with slots:
            await _raw_one(client, c)

    try:
        await asyncio.gather(*(one(c) for c in cases[:concurrency]))  # open the connections
        c0, t0 = time.process_time(), time.perf_counter()
        await asyncio.gather(*(one(c) for c in cases))
        return len(cases) / (time.perf_counter() - t0), (time.process_time() - c0) * 1000 / len(cases)
    finally:
        await client.close()


async def ours_concurrent(target: Target, cases: Sequence[Case], concurrency: int,
                          run_dir: Path) -> tuple[float, float]:
    """(requests per second, client CPU ms per request) through replay with ``max_concurrency=concurrency``."""
    ep = OpenAIEndpoint(_cfg(target, concurrency))
    store = RunStore(run_dir)
    try:
        warm = RunStore(run_dir / "warmup")
        await replay([ep], [_renamed(c, "warm") for c in cases[:concurrency]], warm)
        warm.close()
        c0, t0 = time.process_time(), time.perf_counter()
        got = await replay([ep], cases, store)
        elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
        _assert_ok(got.values(), len(cases))
        return len(cases) / elapsed, cpu * 1000 / len(cases)
    finally:
        store.close()
        await ep.aclose()


def _tmp() -> Path:
    return Path(tempfile.mkdtemp(prefix="bench-run-"))


def overhead(target: Target, *, n: int, repeats: int, command: str, label: str) -> Result:
    """Sequential per-request time, ours / raw; goal ≤ 1.05× (median over repeats of the per-repeat medians)."""
    cases = bench_cases(n)
    res = Result(name=f"replay_overhead[{label}]", benchmark="replay_overhead", metric="ms/request (median)",
                 goal="≤ 1.05× raw openai SDK", goal_value=1.05, direction="max", command=command,
                 reference_label="raw AsyncOpenAI streaming call, sequential")
    mean_ratio: list[float] = []
    nofsync_ms: list[float] = []
    nofsync_ratio: list[float] = []
    cpu: dict[str, list[float]] = {"raw": [], "ours": [], "ours_nofsync": []}
    for _ in range(repeats):
        res.loadavg.append(loadavg())
        run_dir = _tmp()
        try:
            got = asyncio.run(paired_sequential(target, cases, run_dir))
        finally:
            shutil.rmtree(run_dir, ignore_errors=True)
        ours_ms, raw_ms, nf_ms = (_median_ms(got[k]) for k in ("ours", "raw", "ours_nofsync"))
        res.ours_samples.append(ours_ms)
        res.reference_samples.append(raw_ms)
        res.ratio_samples.append(round(ours_ms / raw_ms, 4))
        mean_ratio.append(round(sum(got["ours"]) / sum(got["raw"]), 4))
        nofsync_ms.append(nf_ms)
        nofsync_ratio.append(round(nf_ms / raw_ms, 4))
        for k in cpu:
            cpu[k].append(_median_ms(got[f"cpu_{k}"]))
    cpu_med = {k: median(v) for k, v in cpu.items()}
    res.extra = {"endpoint": target.kind, "requests_per_repeat": n, "mean_ratio_samples": mean_ratio,
                 "mean_ratio": median(mean_ratio), "prototype_no_fsync": {
                     "ms_samples": nofsync_ms, "ratio_samples": nofsync_ratio, "ratio": median(nofsync_ratio)},
                 # client CPU per request (process_time): far less sensitive to other tenants than wall time
                 "cpu_ms_samples": cpu, "cpu_ms": cpu_med,
                 "cpu_ratio": round(cpu_med["ours"] / cpu_med["raw"], 4) if cpu_med["raw"] else None,
                 "cpu_ratio_no_fsync": round(cpu_med["ours_nofsync"] / cpu_med["raw"], 4) if cpu_med["raw"] else None}
    return res.judge()


def _median_ms(values: list[float]) -> float:
    m = median(values)
    assert m is not None
    return round(m * 1000, 4)


def throughput(target: Target, *, n: int, repeats: int, concurrency: int, command: str, label: str) -> Result:
    """Requests/s at ``concurrency``, ours / raw; goal ≥ 0.9× (median over repeats). Each repeat runs the raw
    loop, replay as shipped and replay without fsync (prototype) one after the other, in a rotating order."""
    cases = bench_cases(n)
    res = Result(name=f"replay_throughput[{label}]", benchmark="replay_throughput",
                 metric=f"req/s at {concurrency} in flight", goal="≥ 0.9× raw openai SDK", goal_value=0.9,
                 direction="min", command=command, reference_label=f"raw AsyncOpenAI, Semaphore({concurrency})")
    nofsync: list[float] = []
    nofsync_ratio: list[float] = []
    cpu: dict[str, list[float]] = {"raw": [], "ours": [], "ours_nofsync": []}
    for i in range(repeats):
        res.loadavg.append(loadavg())
        run_dir = _tmp()
        try:
            sides = ["raw", "ours", "ours_nofsync"]
            got: dict[str, tuple[float, float]] = {}
            for side in sides[i % 3:] + sides[: i % 3]:
                if side == "raw":
                    got[side] = asyncio.run(raw_concurrent(target, cases, concurrency))
                elif side == "ours":
                    got[side] = asyncio.run(ours_concurrent(target, cases, concurrency, run_dir / side))
                else:
                    with runstore_without_fsync():
                        got[side] = asyncio.run(ours_concurrent(target, cases, concurrency, run_dir / side))
        finally:
            shutil.rmtree(run_dir, ignore_errors=True)
        res.ours_samples.append(round(got["ours"][0], 2))
        res.reference_samples.append(round(got["raw"][0], 2))
        res.ratio_samples.append(round(got["ours"][0] / got["raw"][0], 4))
        nofsync.append(round(got["ours_nofsync"][0], 2))
        nofsync_ratio.append(round(got["ours_nofsync"][0] / got["raw"][0], 4))
        for k in cpu:
            cpu[k].append(round(got[k][1], 4))
    cpu_med = {k: median(v) for k, v in cpu.items()}
    res.extra = {"endpoint": target.kind, "requests_per_repeat": n, "concurrency": concurrency,
                 "prototype_no_fsync": {"rps_samples": nofsync, "ratio_samples": nofsync_ratio,
                                        "ratio": median(nofsync_ratio)},
                 "cpu_ms_per_request_samples": cpu, "cpu_ms_per_request": cpu_med}
    return res.judge()
