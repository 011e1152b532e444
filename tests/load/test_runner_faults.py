"""Load runs that go wrong: a server dying mid-stage fails a gate by fault class, and the deadline always holds."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conformance.endpoints.config import EndpointConfig
from conformance.goldens.model import Case, GoldenSet
from conformance.load.plan import OpenLoop, PlanError, Stage, arrival_schedule
from conformance.load.runner import LoadProgress, _stop_group, compare_load, run_load, run_suite_load
from conformance.load.stats import read_records
from conformance.suite import Suite
from conformance.testing import Behaviour, FaultServer

CASES = [Case(system="legal", set_name="s", id=f"case-{i}", messages=({"role": "user", "content": f"q{i}"},),
              params={"temperature": 0, "max_tokens": 16}) for i in range(2)]


def group_alive(pgid: int) -> bool:
    """Whether any process of group ``pgid`` still runs (zombies waiting for a reaper do not count)."""
    proc = Path("/proc")
    if not proc.is_dir():  # not Linux: signal 0 cannot tell a zombie from a live process
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return False
        return True
    for stat in proc.glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False


def suite_with(load: dict[str, object]) -> Suite:
    golden = GoldenSet(system="legal", name="s", owner="@t", path=Path("s.yaml"), cases=tuple(CASES))
    return Suite(system="legal", dir=Path("."), root=Path("."), config={"system": "legal", "load": load},
                 sets=(golden,))


def test_a_server_killed_mid_stage_fails_that_stage_by_fault_class(tmp_path: Path) -> None:
    suite = suite_with({"stages": [{"users": 2, "duration_s": 2}, {"users": 2, "duration_s": 2}], "seed": 1,
                        "gates": {"max_error_rate": 0.0, "min_throughput_ratio": 0.9}})
    srv = FaultServer(Behaviour(text="abcdefgh" * 4, chunk_chars=4, ttft_ms=10, itl_ms=10)).start()
    killed_at: list[float] = []

    def kill_in_stage_two(p: LoadProgress) -> None:
        if p.stage == 1 and not killed_at and p.requests > 0:
            srv.stop()
            killed_at.append(p.elapsed_s)

    try:
        cfg = EndpointConfig(name="dying", base_url=srv.base_url, model="m", timeout_s=3)
        started = time.monotonic()
        # the retired baseline has only recordings left: the candidate is load-tested alone
        run = run_suite_load(suite, None, cfg, tmp_path, progress=kill_in_stage_two)
        assert time.monotonic() - started < 15
    finally:
        srv.stop()
    res = run.candidate
    assert killed_at and res.killed is None and run.baseline is None
    s1, s2 = res.stages
    assert s1.failures == {} and s1.ok > 0
    assert s2.ok < s2.requests and set(s2.failures) <= {"connection", "truncated_stream"}
    gates = {g.gate: g for g in run.gates}
    assert gates["load.stage1.error_rate"].verdict == "pass"
    failed = gates["load.stage2.error_rate"]
    assert failed.verdict == "regression" and "connection×" in failed.message and failed.suite == "legal"
    # … whose failures are all infrastructure faults: the run outcome says "infrastructure", not "regression"
    from conformance.report.outcome import gate_outcome

    assert gate_outcome(failed.to_dict()) == "infrastructure"
    assert gates["load.stage1.throughput_ratio"].verdict == "insufficient"  # nothing live to compare with
    assert any(line.startswith("✗ legal.load.stage2.error_rate") for line in run.lines())


def test_suite_load_config_is_checked_before_anything_runs(tmp_path: Path) -> None:
    cfg = EndpointConfig(name="x", base_url="http://127.0.0.1:9/v1", model="m")
    with pytest.raises(PlanError, match="unknown key"):
        run_suite_load(suite_with({"stages": [{"users": 1, "duration_s": 1}], "users": 4}), None, cfg, tmp_path)
    with pytest.raises(PlanError, match="stages"):
        run_suite_load(suite_with({"gates": {"max_error_rate": 0}}), None, cfg, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_the_deadline_stops_a_hung_run_and_its_process_group(tmp_path: Path) -> None:
    with FaultServer(Behaviour(hang=True)) as srv:
        cfg = EndpointConfig(name="hung", base_url=srv.base_url, model="m", timeout_s=60)
        started = time.monotonic()
        res = run_load(CASES, cfg, [{"users": 2, "duration_s": 60}], tmp_path, deadline_s=2.5, kill_grace_s=1.0)
        took = time.monotonic() - started
    assert 2.5 <= took < 2.5 + 1.0 + 2.0
    assert res.killed in ("SIGTERM", "SIGKILL") and res.pid is not None and not group_alive(res.pid)
    assert res.records == 0 and "stopped by" in res.lines()[0]
    gate, answered, baseline_answered = compare_load(res, res, {"max_error_rate": 0.0})
    assert gate.verdict == "insufficient" and "stopped at its deadline" in gate.message
    assert (answered.verdict, baseline_answered.verdict) == ("regression", "error")  # not one request answered


def test_a_child_ignoring_sigterm_is_killed_with_its_group() -> None:
    code = ("import signal, subprocess, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
            "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); print('up', flush=True); "
            "time.sleep(60)")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, start_new_session=True)
    assert proc.stdout is not None and proc.stdout.readline() == b"up\n"
    started = time.monotonic()
    assert _stop_group(proc, 0.3) == "SIGKILL"
    assert time.monotonic() - started < 3 and proc.returncode == -9
    for _ in range(50):  # SIGKILL is delivered to the grandchild asynchronously
        if not group_alive(proc.pid):
            break
        time.sleep(0.02)
    assert not group_alive(proc.pid)
    proc.stdout.close()


def test_worker_processes_split_one_open_loop_schedule(tmp_path: Path) -> None:
    stages = [{"users": 4, "duration_s": 2, "rate_rps": 10}]
    with FaultServer(Behaviour(text="abcd", ttft_ms=5)) as srv:
        cfg = EndpointConfig(name="open", base_url=srv.base_url, model="m", timeout_s=3)
        res = run_load(CASES, cfg, stages, tmp_path, seed=3, open_loop={"arrival": "poisson"}, processes=2)
    expected = arrival_schedule([Stage(4, 2, rate_rps=10)], OpenLoop(), 3)
    records, _ = read_records(res.raw_dir)
    seqs = [r["seq"] for r in records]
    assert len(set(seqs)) == len(seqs) and set(seqs) <= set(range(len(expected)))  # split, never repeated
    assert len({r["worker"] for r in records}) == 2
    assert len(records) >= 0.8 * len(expected)  # a worker starting late may miss the last arrivals
    assert all(r["queue_ms"] >= 0 for r in records) and res.stages[0].requests == len(records)
