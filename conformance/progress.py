"""Progress lines on the real terminal while a long phase runs (replay, load stages).

pytest captures output during fixtures; a replay against a slow endpoint or a minute of load stages would look like
a hang. These callbacks write through the terminal reporter with capture suspended, at most every 5 s, and stay
silent on xdist workers (whose output nobody sees).

Load stages read like Locust's own console: per stage, the users, requests per second, failures and TTFT p50
(:func:`load_line`, from :class:`~conformance.load.runner.LoadProgress`). ``conformance load`` on a terminal
redraws the current stage's line in place and keeps it when the next stage starts (:class:`LoadLines` with
``redraw``); in a CI log or under pytest a stage's line is written every 5 s and with its final figures when the
next stage begins.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
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


def load_line(p: Any) -> str:
    """``local-candidate stage 2/3: 16 users · 12.4 req/s · 3 failed of 212 (1.4%) · TTFT p50 210 ms · 45s``."""
    if p.stage is None:
        return f"{p.label}: starting ({p.requests} requests) · {p.elapsed_s:.0f}s"
    of = f"/{p.stages}" if p.stages else ""
    users = f"{p.users} user{'s' * (p.users != 1)}" if p.users is not None else "? users"
    if p.rate_rps:
        users = f"{p.rate_rps:g} req/s offered, {users}"
    rate = f"{p.rps:.1f} req/s" if p.rps is not None else "– req/s"
    share = f" ({p.stage_failures / p.stage_requests:.1%})" if p.stage_requests else ""
    ttft = f"TTFT p50 {p.ttft_p50_ms:,.0f} ms" if p.ttft_p50_ms is not None else "TTFT p50 –"
    return (f"{p.label} stage {p.stage + 1}{of}: {users} · {rate} · {p.stage_failures} failed of "
            f"{p.stage_requests}{share} · {ttft} · {p.elapsed_s:.0f}s")


class LoadLines:
    """A load progress callback: one :func:`load_line` per stage of each run.

    With ``redraw`` (a terminal), every update redraws the current stage's line in place and a new stage starts a
    new row. Without it (a log), ``write`` gets a stage's line every :data:`EVERY_S` seconds and, when the next
    stage (or run) begins, the stage's final figures. Call :meth:`close` at the end: it finishes the last row, or
    writes the last stage's final line."""

    def __init__(self, write: Callable[[str], None], redraw: TextIO | None = None) -> None:
        self.write, self.redraw = write, redraw
        self.shown: tuple[str, int | None] | None = None
        self.at = 0.0
        self.pending: str | None = None  # a log's newest line not written yet
        self.open = False  # a terminal row is being redrawn

    def __call__(self, p: Any) -> None:
        key, line = (p.label, p.stage), load_line(p)
        changed = key != self.shown
        if self.redraw is not None:
            new_row = self.open and changed and self.shown is not None and self.shown[1] is not None
            self.redraw.write(("\n" if new_row else "\r\x1b[K") + line)
            self.redraw.flush()
            self.open = True
        else:
            if changed:
                self._flush()
                self.at = p.elapsed_s
            if p.elapsed_s - self.at >= EVERY_S:
                self.write(line)
                self.at, self.pending = p.elapsed_s, None
            elif p.stage is not None:
                self.pending = line
        self.shown = key

    def _flush(self) -> None:
        if self.pending is not None:
            self.write(self.pending)
            self.pending = None

    def close(self) -> None:
        self._flush()
        if self.redraw is not None and self.open:
            self.redraw.write("\n")
            self.redraw.flush()
            self.open = False


def load_progress(config: pytest.Config) -> Callable[[Any], None]:
    """Under pytest: ``conformance load: <load_line>`` every 5 s within a stage and each stage's final figures when
    the next one begins (the last stage's are in the stage table printed after the run)."""
    write = _writer(config)
    if write is None:
        return lambda p: None
    return LoadLines(lambda line: write(f"conformance load: {line}"))
