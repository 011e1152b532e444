"""Progress lines on the real terminal while a long phase runs (replay, load stages).

pytest captures output during fixtures; a replay against a slow endpoint or a minute of load stages would look like
a hang. These callbacks write through the terminal reporter with capture suspended, at most every 5 s, and stay
silent on xdist workers (whose output nobody sees).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from conformance.response import Response

EVERY_S = 5.0


def _writer(config: pytest.Config) -> Callable[[str], None] | None:
    tr = config.pluginmanager.get_plugin("terminalreporter")
    capman = config.pluginmanager.get_plugin("capturemanager")
    if tr is None or capman is None or hasattr(config, "workerinput"):
        return None

    def write(line: str) -> None:
        with capman.global_and_fixture_disabled():
            tr.write_line(line)

    return write


def replay_progress(config: pytest.Config, label: str, total: int) -> Callable[[Response], None]:
    """``conformance: replaying legal: 12/96 answers, 0 failed`` — every 5 s and at the end."""
    write = _writer(config)
    state = {"done": 0, "failed": 0, "last": time.monotonic()}

    def tick(resp: Response) -> None:
        state["done"] += 1
        state["failed"] += 0 if resp.ok else 1
        now = time.monotonic()
        if write is not None and (now - state["last"] >= EVERY_S or state["done"] == total):
            state["last"] = now
            write(f"conformance: {label}: {state['done']}/{total} answers, {state['failed']} failed")

    return tick


def load_progress(config: pytest.Config) -> Callable[[Any], None]:
    """One line per stage change of each load run, and every 5 s within a stage."""
    write = _writer(config)
    shown: dict[str, tuple[int | None, float]] = {}

    def tick(p: Any) -> None:
        stage, at = shown.get(p.label, (None, -EVERY_S))
        if write is None or (p.stage == stage and p.elapsed_s - at < EVERY_S):
            return
        shown[p.label] = (p.stage, p.elapsed_s)
        write(f"conformance load: {p.label} stage {p.stage} {p.elapsed_s:.0f}s: {p.requests} requests, "
              f"{p.failures} failed")

    return tick
