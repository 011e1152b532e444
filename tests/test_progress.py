"""Load progress as lines a Locust user reads: per stage, users · req/s · failures · TTFT p50."""

from __future__ import annotations

import io

from conformance.load.runner import LoadProgress
from conformance.progress import LoadLines, load_line


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


def test_a_log_gets_lines_every_5_seconds_and_each_stage_final_figures() -> None:
    got: list[str] = []
    lines = LoadLines(got.append)
    ticks = [("old", None, 0.2, 0), ("old", 0, 1.2, 1), ("old", 0, 2.2, 2), ("old", 0, 6.3, 6), ("old", 0, 7.2, 7),
             ("old", 1, 8.2, 1), ("old", 1, 9.2, 3), ("new", 0, 1.2, 2), ("new", 0, 2.2, 4)]
    for label, stage, t, n in ticks:
        lines(_p(label, stage, t, n=n))
    assert [ln.split(" · ")[0].split(":")[0] + " " + ln.split(" · ")[2] for ln in got] == [
        "old stage 1/3 0 failed of 6 (0.0%)",  # 5 s into the stage
        "old stage 1/3 0 failed of 7 (0.0%)",  # its final figures, when stage 2 begins
        "old stage 2/3 0 failed of 3 (0.0%)",  # when the next run begins
    ]
    lines.close()
    assert got[-1].startswith("new stage 1/3:") and " 0 failed of 4 " in got[-1]  # the last stage, at the end
    lines.close()
    assert len(got) == 4


def test_a_terminal_gets_one_live_line_per_stage() -> None:
    term = io.StringIO()
    lines = LoadLines(lambda line: None, redraw=term)
    for label, stage, t, n in [("old", None, 0.5, 0), ("old", 0, 1.0, 3), ("old", 0, 2.0, 7), ("old", 1, 3.0, 2),
                               ("old", 1, 4.0, 9), ("new", None, 0.5, 0), ("new", 0, 1.0, 4)]:
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
