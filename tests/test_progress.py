"""Load progress as lines a Locust user reads: per stage, users · req/s · failures · TTFT p50."""

from __future__ import annotations

import io

from conformance.load.runner import LoadProgress
from conformance.progress import EVERY_S, LoadLines, load_line


def _p(label: str, stage: int | None, elapsed: float, n: int = 10, failed: int = 0, **kw: object) -> LoadProgress:
    fields: dict[str, object] = {"stages": 3, "users": 4 * ((stage or 0) + 1), "stage_requests": n,
                                 "stage_failures": failed, "rps": n / max(elapsed, 1.0), "ttft_p50_ms": 212.4} | kw
    return LoadProgress(label, elapsed, stage, n + 5, failed, **fields)  # type: ignore[arg-type]


def test_a_stage_line_names_users_rate_failures_and_ttft() -> None:
    assert load_line(_p("local-candidate", 1, 20.0, n=212, failed=3)) == (
        "local-candidate stage 2/3: 8 users · 10.6 req/s · 3 failed of 212 (1.4%) · TTFT p50 212 ms · 20s")
    assert load_line(_p("c", 0, 1.0, users=1, rps=None, ttft_p50_ms=None, n=0)) == (
        "c stage 1/3: 1 user · – req/s · 0 failed of 0 · TTFT p50 – · 1s")
    assert load_line(_p("c", 0, 3.0, rate_rps=2.5)) == (
        "c stage 1/3: 2.5 req/s offered, 4 users · 3.3 req/s · 0 failed of 10 (0.0%) · TTFT p50 212 ms · 3s")
    assert load_line(LoadProgress("c", 0.5, None, 0, 0)) == "c: starting (0 requests) · 0s"


def test_lines_at_each_stage_change_and_every_5_seconds_in_a_log() -> None:
    got: list[str] = []
    lines = LoadLines(got.append)
    ticks = [("old", 0, 0.5), ("old", 0, 1.0), ("old", 0, 0.5 + EVERY_S), ("old", 0, 6.0), ("old", 1, 6.5),
             ("new", 0, 0.5), ("new", 0, 1.0)]
    for label, stage, t in ticks:
        lines(_p(label, stage, t))
    lines.close()
    assert [ln.split(":")[0] + f" @{ln.rsplit('· ', 1)[1]}" for ln in got] == [
        "old stage 1/3 @0s", "old stage 1/3 @6s", "old stage 2/3 @6s", "new stage 1/3 @0s"]


def test_a_terminal_gets_one_live_line_per_stage() -> None:
    term = io.StringIO()
    lines = LoadLines(lambda line: None, redraw=term)
    for label, stage, t, n in [("old", 0, 1.0, 3), ("old", 0, 2.0, 7), ("old", 1, 3.0, 2), ("old", 1, 4.0, 9),
                               ("new", 0, 1.0, 4)]:
        lines(_p(label, stage, t, n=n))
    lines.close()
    out = term.getvalue()
    assert out.endswith("\n") and "LoadProgress(" not in out
    # what the terminal shows: per line, what the last carriage return + erase left
    screen = [row.rsplit("\r\x1b[K", 1)[-1] for row in out.split("\n")[:-1]]
    assert [s.split(" · ")[2] for s in screen] == ["0 failed of 7 (0.0%)", "0 failed of 9 (0.0%)",
                                                   "0 failed of 4 (0.0%)"]
    assert [s.split(":")[0] for s in screen] == ["old stage 1/3", "old stage 2/3", "new stage 1/3"]
    lines.close()
    assert term.getvalue() == out  # closing twice adds nothing
