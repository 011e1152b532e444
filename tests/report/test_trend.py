from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from conformance.gates import GateResult
from conformance.report.trend import (
    GateMove,
    compare_runs,
    previous_run_dir,
    previous_summary,
    read_summary,
    trend_lines,
)


def summary(*gates: GateResult, run_id: str = "r") -> dict[str, Any]:
    suites: dict[str, Any] = {}
    for g in gates:
        suites.setdefault(g.suite, {"tests": {}, "gates": [], "faults": {}})["gates"].append(
            {"kind": "gate", **g.to_dict()})
    return {"run_id": run_id, "suites": suites}


def drift(value: float, verdict: str = "pass") -> GateResult:
    return GateResult("legal", "terms.drift_rate", value, 0.001, "<=", 300, verdict)  # type: ignore[arg-type]


def agreement(value: float, verdict: str = "pass", suite: str = "sentiment") -> GateResult:
    return GateResult(suite, "classification.agreement", value, 0.95, ">=", 200, verdict)  # type: ignore[arg-type]


def by_name(moves: list[GateMove]) -> dict[str, GateMove]:
    return {f"{m.suite}.{m.gate}": m for m in moves}


def test_new_removed_moved_unchanged() -> None:
    prev = summary(drift(0.0005), agreement(0.97), GateResult("kb_qa", "text.similarity", 0.9, 0.8, ">=", 50, "pass"))
    cur = summary(drift(0.0012, "fail"), agreement(0.97), GateResult("legal", "latency.p99_ms", 900.0, 2500.0,
                                                                     "<=", 200, "pass"))
    m = by_name(compare_runs(cur, prev))
    assert m["legal.terms.drift_rate"].change == "moved" and m["legal.terms.drift_rate"].direction == "worse"
    assert m["legal.terms.drift_rate"].verdict_changed
    assert m["sentiment.classification.agreement"].change == "unchanged"
    assert m["legal.latency.p99_ms"].change == "new" and m["legal.latency.p99_ms"].direction is None
    assert m["kb_qa.text.similarity"].change == "removed"
    assert list(m) == sorted(m)


def test_direction_follows_the_operator() -> None:
    lower_better = by_name(compare_runs(summary(drift(0.0002)), summary(drift(0.0008))))
    assert lower_better["legal.terms.drift_rate"].direction == "better"
    higher_better = by_name(compare_runs(summary(agreement(0.99)), summary(agreement(0.96))))
    assert higher_better["sentiment.classification.agreement"].direction == "better"
    slid = by_name(compare_runs(summary(agreement(0.955)), summary(agreement(0.99))))
    assert slid["sentiment.classification.agreement"].direction == "worse"  # still passing, but sliding
    assert not slid["sentiment.classification.agreement"].verdict_changed


def test_insufficient_to_pass_is_better_even_without_statistics() -> None:
    prev = summary(GateResult("s", "g", None, 0.9, ">=", 3, "insufficient"))
    cur = summary(GateResult("s", "g", 0.5, 0.9, ">=", 300, "fail"))
    assert compare_runs(cur, prev)[0].direction == "worse"
    assert compare_runs(prev, cur)[0].direction == "better"


def test_without_a_previous_run_every_gate_is_new() -> None:
    moves = compare_runs(summary(drift(0.0), agreement(1.0)), None)
    assert {m.change for m in moves} == {"new"}


def test_trend_lines_show_only_changes_by_default() -> None:
    moves = compare_runs(summary(drift(0.0012, "fail"), agreement(0.97)), summary(drift(0.0005), agreement(0.97)))
    lines = trend_lines(moves, "20261122-000000-aaaa")
    assert lines[0].startswith("gate trend since run 20261122-000000-aaaa: 2 gates, 1 moved (1 worse, 1 verdict")
    assert len(lines) == 2 and "legal.terms.drift_rate 0.0005 → 0.0012 (pass → fail" in lines[1]
    assert lines[1].lstrip().startswith("▼") and lines[1].endswith("worse")
    assert len(trend_lines(moves, all_gates=True)) == 3


GATE = st.builds(
    GateResult, suite=st.sampled_from(["a", "b"]), gate=st.sampled_from(["x", "y", "z"]),
    statistic=st.none() | st.floats(0, 1), threshold=st.floats(0, 1), op=st.sampled_from([">=", "<=", "=="]),
    n=st.integers(0, 500), verdict=st.sampled_from(["pass", "fail", "insufficient", "error"]))


@given(st.lists(GATE, max_size=6), st.lists(GATE, max_size=6))
def test_comparing_backwards_mirrors_every_move(cur_gates: list[GateResult], prev_gates: list[GateResult]) -> None:
    cur, prev = summary(*cur_gates), summary(*prev_gates)
    fwd, back = by_name(compare_runs(cur, prev)), by_name(compare_runs(prev, cur))
    keys = {f"{g.suite}.{g.gate}" for g in (*cur_gates, *prev_gates)}
    assert set(fwd) == set(back) == keys
    mirror = {"new": "removed", "removed": "new", "moved": "moved", "unchanged": "unchanged"}
    flip = {"better": "worse", "worse": "better", "same": "same", None: None}
    for k, m in fwd.items():
        assert back[k].change == mirror[m.change]
        if m.op == back[k].op:
            assert back[k].direction == flip[m.direction]
        assert m.line()


def test_previous_summary_skips_the_current_run(tmp_path: Path) -> None:
    for rid in ("20261120-000000-aaaa", "20261121-000000-bbbb", "20261122-000000-cccc"):
        (tmp_path / rid).mkdir()
        (tmp_path / rid / "summary.json").write_text(json.dumps({"run_id": rid, "suites": {}}))
    os.symlink("20261121-000000-bbbb", tmp_path / "latest")
    assert previous_summary(tmp_path, "20261122-000000-cccc") == {"run_id": "20261121-000000-bbbb", "suites": {}}
    os.replace(tmp_path / "latest", tmp_path / "old-link")
    os.symlink("20261122-000000-cccc", tmp_path / "latest")  # latest already moved to the current run
    assert previous_summary(tmp_path, "20261122-000000-cccc")["run_id"] == "20261121-000000-bbbb"
    # latest is trusted whatever its name (run ids may be custom); without it, only older folders count
    assert previous_summary(tmp_path, "20261120-000000-aaaa")["run_id"] == "20261122-000000-cccc"
    (tmp_path / "latest").unlink()
    assert previous_summary(tmp_path, "20261120-000000-aaaa") is None
    assert previous_run_dir(tmp_path, "20261123-000000-dddd") == tmp_path / "20261122-000000-cccc"
    assert previous_run_dir(tmp_path / "nope", "x") is None
    assert read_summary(tmp_path / "20261120-000000-aaaa")["run_id"] == "20261120-000000-aaaa"
