"""Per-stage statistics from raw records, the load gates, and sampling answers produced under load."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from conformance.load.compare import compare_load
from conformance.load.plan import Stage
from conformance.load.stats import LoadResult, all_stage_stats, read_records, stage_stats

STAGES = (Stage(2, 10.0), Stage(4, 10.0))


def record(seq: int, stage: int, *, ttft: float = 50.0, e2el: float = 250.0, n_out: int = 21, fault: str | None = None,
           finish: str = "stop", text: str = "answer", source: str = "usage") -> dict[str, Any]:
    ok = fault is None
    return {"seq": seq, "case_id": f"c{seq % 3}", "stage": stage, "worker": 1, "t_start": 1000.0 + seq,
            "t_offset_s": stage * 10.0 + seq % 10 + 0.1, "elapsed_ms": e2el, "queue_ms": 0.0,
            "status": 200 if ok else 503,
            "fault": fault, "ttfc_ms": ttft if ok else None, "ttft_ms": ttft if ok else None,
            "e2el_ms": e2el if ok else None, "n_out": n_out if ok else 0, "tokens_source": source if ok else "chunks",
            "finish_reason": finish if ok else None, "text": text if ok else ""}


def result(label: str, stages_records: list[list[dict[str, Any]]], *, killed: str | None = None,
           slo: dict[str, float] | None = None) -> LoadResult:
    records = [r for rs in stages_records for r in rs]
    return LoadResult(label=label, out_dir=Path("."), stages=all_stage_stats(STAGES, records, slo=slo), seed=0,
                      open_loop=False, returncode=0, killed=killed, elapsed_s=20.0, records=len(records))


def test_stage_stats_from_records() -> None:
    recs = [record(i, 0, ttft=40 + i, e2el=240 + 2 * i) for i in range(30)]
    recs += [record(100, 0, fault="rate_limited"), record(101, 0, fault="unavailable_503"),
             record(102, 0, finish="length"), record(103, 1)]
    s = stage_stats(0, STAGES[0], recs, slo={"ttft_ms": 60.0})
    assert (s.requests, s.ok, s.failures, s.finish_length) == (33, 31, {"rate_limited": 1, "unavailable_503": 1}, 1)
    assert s.error_rate == pytest.approx(2 / 33) and s.rps == pytest.approx(3.3)
    assert s.output_tok_s == pytest.approx(31 * 21 / 10.0) and s.tokens_source == "usage"
    assert s.ttft.n == 31 and s.ttft.p99 == pytest.approx(np.percentile([40 + i for i in range(30)] + [50], 99))
    assert s.tpot.p50 == pytest.approx(np.percentile([(200 + i) / 20 for i in range(30)] + [10.0], 50))
    # TTFT 40…60 ms (21) and the length-cut answer (50 ms) met the SLO; the two failures count against it
    assert s.slo_good == 22 and s.slo_attainment == pytest.approx(22 / 33)
    assert s.goodput_rps == pytest.approx(2.2)
    assert "rate_limited×1" in s.line() and "(n=31)" in s.line()


def test_a_run_cut_short_is_rated_on_what_ran() -> None:
    recs = [record(i, 0) for i in range(10)] + [record(10, 1)]
    recs[-1]["t_offset_s"] = 13.0
    full, cut = all_stage_stats(STAGES, recs), all_stage_stats(STAGES, recs, cut_short=True)
    assert full[1].duration_s == 10.0 and cut[1].duration_s == pytest.approx(3.25)
    assert cut[0].duration_s == 10.0


def test_reading_records_skips_a_line_cut_by_a_kill(tmp_path: Path) -> None:
    (tmp_path / "records-1.jsonl").write_text(json.dumps(record(0, 0)) + "\n" + '{"seq": 1, "sta')
    (tmp_path / "records-2.jsonl").write_text(json.dumps(record(2, 1)) + "\n")
    records, bad = read_records(tmp_path)
    assert [r["seq"] for r in records] == [0, 2] and bad == 1


def test_reading_records_derives_the_timings_of_raw_traces(tmp_path: Path) -> None:
    raw = {"seq": 3, "case_id": "c0", "stage": 0, "worker": 7, "t_start_us": 1003_000_000, "t_mono_us": 5_000_000,
           "t_offset_us": 100_000, "queue_us": 0, "elapsed_us": 4500, "status": 200, "fault": None, "error": None,
           "ttfc_us": 1000, "tok_us": [2000, 2500, 4000], "n_events": 5, "finish_reason": "stop", "usage": None,
           "text": "abc", "reasoning": None, "tool_calls": []}
    (tmp_path / "records-7.jsonl").write_text(json.dumps(raw) + "\n" + json.dumps(record(4, 0)) + "\n")
    (new, old), bad = read_records(tmp_path)
    assert bad == 0 and not [k for k in new if k.endswith("_us")]
    assert (new["t_start"], new["t_offset_s"], new["elapsed_ms"]) == (1003.0, 0.1, 4.5)
    assert (new["ttfc_ms"], new["ttft_ms"], new["e2el_ms"], new["tpot_ms"], new["itl_ms"]) == (
        1.0, 2.0, 4.0, 1.0, [0.5, 1.5])
    assert (new["n_out"], new["tokens_source"], new["n_token_events"], new["text"]) == (3, "chunks", 3, "abc")
    assert old == record(4, 0)  # a record written before traces were kept raw reads as it was
    assert stage_stats(0, STAGES[0], [new]).ttft.p50 == 2.0


# ------------------------------------------------------------------------------------------------ gates


def test_relative_and_absolute_load_gates_per_stage() -> None:
    base = result("base", [[record(i, 0) for i in range(40)], [record(i, 1) for i in range(80)]])
    cand = result("cand", [[record(i, 0, ttft=80) for i in range(38)] + [record(90, 0, fault="server_error")] * 2,
                           [record(i, 1, ttft=400, e2el=900) for i in range(30)]])
    cfg = {"max_error_rate": 0.01, "min_throughput_ratio": 0.9, "max_ttft_p50_ratio": 1.5, "p99_ms": 2000,
           "ttft_p95_ms": 500}
    gates = {g.gate: g for g in compare_load(base, cand, cfg, suite="legal")}
    assert gates["load.stage1.error_rate"].verdict == "regression"  # 2/40: even the CI's lower end is > 1%
    assert "server_error×2" in gates["load.stage1.error_rate"].message
    assert gates["load.stage1.error_rate"].faults == {"candidate": {"server_error": 2}, "baseline": {}}
    assert gates["load.stage2.error_rate"].verdict == "insufficient"  # 0/30 cannot show ≤ 1%
    assert gates["load.stage1.throughput_ratio"].statistic == pytest.approx(38 / 40)
    assert gates["load.stage1.throughput_ratio"].verdict == "insufficient"  # 0.95: its interval reaches below 0.9
    assert gates["load.stage2.throughput_ratio"].verdict == "regression"
    assert gates["load.stage1.ttft_p50_ratio"].verdict == "regression"  # 80 vs 50 ms
    assert gates["load.stage2.ttft_p50_ratio"].statistic == pytest.approx(8.0)
    assert gates["load.stage1.p99_ms"].verdict == "insufficient"  # 38 answers < 100
    assert "insufficient samples (n=38" in gates["load.stage1.p99_ms"].message
    assert gates["load.stage1.ttft_p95_ms"].verdict == "pass" and gates["load.stage2.ttft_p95_ms"].verdict == "pass"
    assert all(g.suite == "legal" for g in gates.values())


def test_slo_attainment_and_capacity_under_slo() -> None:
    slo = {"ttft_ms": 100.0}
    base = result("base", [[record(i, 0) for i in range(20)], [record(i, 1) for i in range(40)]])
    cand = result("cand", [[record(i, 0) for i in range(20)],
                           [record(i, 1, ttft=50 if i < 10 else 300) for i in range(40)]])
    gates = {g.gate: g for g in compare_load(base, cand, {"min_slo_attainment": 0.9, "min_capacity_ratio": 0.8,
                                                           "slo": slo})}
    assert gates["load.stage1.slo_attainment"].verdict == "insufficient"  # 20/20 only shows ≥ 0.84
    assert gates["load.stage2.slo_attainment"].statistic == pytest.approx(0.25)
    cap = gates["load.capacity_ratio"]
    assert cap.statistic == pytest.approx(2.0 / 4.0) and cap.verdict == "regression"  # best goodput 2 vs 4 req/s


def test_a_stage_without_one_answer_fails_even_without_gates() -> None:
    """Built in and always on: a load run with no gates used to pass at 100% failed requests."""
    base = result("base", [[record(i, 0) for i in range(5)], [record(9, 1, fault="server_error")]])
    cand = result("cand", [[record(i, 0, fault="connection") for i in range(6)], []])
    for cfg in (None, {}, {"p99_ms": 5000}):
        gates = {g.gate: g for g in compare_load(base, cand, cfg, suite="legal")}
        first, second = gates["load.stage1.answered"], gates["load.stage2.answered"]
        assert (first.verdict, first.statistic, first.n) == ("regression", 0.0, 6)
        assert first.message == "0/6 answered: connection×6" and first.line().startswith("✗ legal.load.stage1")
        assert second.verdict == "regression" and second.message == "no request was sent in this stage"
        assert gates["load.stage1.baseline_answered"].verdict == "pass"
        assert gates["load.stage2.baseline_answered"].verdict == "error"  # nothing to compare the candidate with
    ok = result("ok", [[record(0, 0)], [record(1, 1), record(2, 1, fault="timeout")]])
    assert [g.verdict for g in compare_load(None, ok, None)] == ["pass", "pass"]  # recorded baseline: no baseline gate


def test_misconfigured_load_gates_are_errors() -> None:
    a = result("a", [[record(0, 0)], [record(1, 1)]])
    gates = compare_load(a, a, {"max_errors": 0.1, "min_capacity_ratio": 0.9})
    assert [g.verdict for g in gates if "answered" not in g.gate] == ["error", "error"]
    fewer = LoadResult(label="b", out_dir=Path("."), stages=a.stages[:1], seed=0, open_loop=False, returncode=0,
                       killed=None, elapsed_s=1.0, records=1)
    (g,) = compare_load(a, fewer, {"max_error_rate": 0.1})
    assert g.verdict == "error" and "not comparable" in g.message


def test_a_deadline_cut_is_noted_on_every_gate() -> None:
    base = result("base", [[record(i, 0) for i in range(5)], [record(i, 1) for i in range(5)]])
    cand = result("cand", [[record(i, 0) for i in range(5)], []], killed="SIGTERM")
    gates = compare_load(base, cand, {"max_error_rate": 0.0})
    assert all("cand stopped at its deadline" in g.message for g in gates)
    assert gates[1].verdict == "insufficient"  # nothing measured in stage 2


def test_throughput_is_judged_from_its_interval_over_the_stage_seconds() -> None:
    """An identical candidate on a noisy machine must not fail on one throughput figure: every second of the stage
    is a sample, and the ratio's bootstrap interval decides."""
    import dataclasses

    from conformance.load.compare import _throughput

    base = result("base", [[record(i, 0) for i in range(40)], []]).stages[0]
    steady = [84.0] * 10
    same = dataclasses.replace(base, tok_windows=tuple(steady))
    half = dataclasses.replace(base, output_tok_s=base.output_tok_s / 2, tok_windows=tuple(w / 2 for w in steady))
    noisy = dataclasses.replace(base, tok_windows=(168.0, 0.0) * 5)  # the same tokens, in bursts
    base = dataclasses.replace(base, tok_windows=tuple(steady))
    assert _throughput("s", "t", base, same, 0.9).verdict == "pass"
    assert _throughput("s", "t", base, half, 0.9).verdict == "regression"
    assert _throughput("s", "t", base, noisy, 0.9).verdict == "insufficient"
    short = dataclasses.replace(same, tok_windows=(84.0, 84.0))
    g = _throughput("s", "t", base, short, 0.9)
    assert g.verdict == "insufficient" and "too short for a throughput interval" in g.message
