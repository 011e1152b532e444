"""Replay cases against endpoints with bounded concurrency, through the run cache.

Baseline and candidate are replayed *together* (one event loop, both endpoints' slots busy at once), interleaved in
the same case order, so machine drift hits both equally and a suite takes as long as its slower endpoint.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

from conformance.endpoints.base import Endpoint, Response
from conformance.goldens.model import Case
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
    """Answer every (endpoint, case, repeat) not already in ``store``; return all of them keyed like the store.

    Concurrency per endpoint is bounded by the endpoint itself (its ``max_concurrency`` slots); here we only
    create the tasks, in interleaved order.
    """
    out: dict[tuple[str, str, int], Response] = {}

    async def one(ep: Endpoint, case: Case, rep: int) -> None:
        cached = store.get(ep.name, case.fingerprint, rep)
        if cached is None:
            cached = await ep.complete(case, rep)
            store.put(cached)
        out[(ep.name, case.id, rep)] = cached
        if progress:
            progress(cached)

    tasks = [one(ep, c, r) for r in range(repeats) for c in cases for ep in endpoints]
    await asyncio.gather(*tasks)
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
