"""Replay cases against endpoints with bounded concurrency, through the run cache.

Baseline and candidate are replayed *together* (one event loop, both endpoints' slots busy at once), interleaved in
the same case order, so machine drift hits both equally and a suite takes as long as its slower endpoint.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

from conformance.endpoints.base import Endpoint
from conformance.goldens.model import Case
from conformance.response import Response
from conformance.runstore import RunStore

Progress = Callable[[Response], None]


async def replay(
    endpoints: Sequence[Endpoint],
    cases: Sequence[Case],
    store: RunStore,
    *,
    repeats: int = 1,
    progress: Progress | None = None,
) -> dict[tuple[str, str, int], Response]:
    """Answer every (endpoint, case, repeat) not already in ``store``; return all of them keyed
    ``(endpoint, case_id, repeat)``.

    Concurrency per endpoint is bounded by the endpoint itself (its ``max_concurrency`` slots); here we only
    create the tasks, in interleaved order.
    """
    return await replay_items(endpoints, [(c, r) for r in range(repeats) for c in cases], store, progress=progress)


async def replay_items(
    endpoints: Sequence[Endpoint],
    items: Sequence[tuple[Case, int]],
    store: RunStore,
    *,
    progress: Progress | None = None,
) -> dict[tuple[str, str, int], Response]:
    """Like :func:`replay` for an explicit schedule of (case, repeat) — e.g. the latency phase's round-robin."""
    out: dict[tuple[str, str, int], Response] = {}

    async def one(ep: Endpoint, case: Case, rep: int) -> None:
        cached = store.get(ep.name, case.fingerprint, rep)
        if cached is None:
            cached = await ep.complete(case, rep)
            store.put(cached)
        out[(ep.name, case.id, rep)] = cached
        if progress:
            progress(cached)

    await asyncio.gather(*(one(ep, c, r) for c, r in items for ep in endpoints))
    return out


def replay_sync(
    endpoints: Sequence[Endpoint],
    cases: Sequence[Case],
    store: RunStore,
    *,
    repeats: int = 1,
    progress: Progress | None = None,
) -> dict[tuple[str, str, int], Response]:
    """:func:`replay` from synchronous code (pytest fixtures, the CLI); closes the endpoints afterwards."""

    async def run() -> dict[tuple[str, str, int], Response]:
        try:
            return await replay(endpoints, cases, store, repeats=repeats, progress=progress)
        finally:
            for ep in endpoints:
                await ep.aclose()

    return asyncio.run(run())


#: Latency-phase repeats start here, so they never reuse the correctness phase's answers (measured at another
#: concurrency) from the run cache.
LATENCY_REPEAT_BASE = 1000


def latency_phase(
    endpoints: Sequence[Endpoint], cases: Sequence[Case], store: RunStore, *, samples: int, seed: int = 0,
) -> dict[str, list[Response]]:
    """The latency phase: ``samples`` requests per endpoint in the same seeded round-robin order for both,
    interleaved so machine drift hits both equally. Returns responses per endpoint name, in schedule order."""
    from conformance.checks.latency import latency_schedule

    seen: dict[str, int] = {}
    items = []
    for case in latency_schedule(list(cases), samples, seed):
        items.append((case, LATENCY_REPEAT_BASE + seen.get(case.id, 0)))
        seen[case.id] = seen.get(case.id, 0) + 1

    async def run() -> dict[tuple[str, str, int], Response]:
        try:
            return await replay_items(endpoints, items, store)
        finally:
            for ep in endpoints:
                await ep.aclose()

    got = asyncio.run(run())
    return {ep.name: [got[(ep.name, c.id, r)] for c, r in items] for ep in endpoints}
