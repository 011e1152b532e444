"""The benchmark runner (bench/run.py): its quick mode end to end, and the pieces whose mistakes would skew figures.

No timing is asserted — the benchmark's figures depend on the machine; what must hold everywhere is that every
benchmark runs, reports a well-formed figure with its goal, command and load average, and that the verdict logic
and the generated inputs are right.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bench.collect_bench import golden_file
from bench.common import Result, percentile
from bench.report_bench import make_rows
from bench.run import BENCHMARKS
from conformance.goldens.loader import load_set
from conformance.report.frame import results_frame

ROOT = Path(__file__).resolve().parents[2]
VERDICTS = {"met", "missed", "info", "skipped"}


@pytest.fixture(scope="module")
def quick(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, str]:
    out = tmp_path_factory.mktemp("bench")
    proc = subprocess.run([sys.executable, "bench/run.py", "--quick", "--out", str(out / "r.json"), "--markdown",
                           str(out / "r.md")], cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return json.loads((out / "r.json").read_text(encoding="utf-8")), (out / "r.md").read_text(encoding="utf-8")


def test_quick_run_covers_every_benchmark(quick: tuple[dict, str]) -> None:
    data, _ = quick
    assert data["quick"] is True
    assert data["benchmarks"] == list(BENCHMARKS)
    assert isinstance(data["machine"]["nproc"], int) and data["machine"]["nproc"] >= 1
    assert len(data["loadavg_start"]) == len(data["loadavg_end"]) == 3
    seen = {r["benchmark"] for r in data["results"]}
    assert seen == {"nodelay", "replay_overhead", "replay_throughput", "locust_driver", "ttft_error", "collection",
                    "report"}


def test_quick_run_figures_are_well_formed(quick: tuple[dict, str]) -> None:
    data, _ = quick
    for r in data["results"]:
        assert r["verdict"] in VERDICTS, (r["name"], r["verdict"], r["notes"])
        assert r["command"].startswith("python bench/run.py --quick --only ")
        assert r["goal"] and r["name"]
        if r["verdict"] == "skipped":
            assert r["notes"]
            continue
        assert r["loadavg"] and all(len(la) == 3 for la in r["loadavg"])
        assert isinstance(r["ours"], int | float) and math.isfinite(r["ours"]) and r["ours"] >= 0
        if r["reference_label"]:
            assert r["reference"] > 0 and r["ratio"] > 0
        if r["goal_value"] is not None:
            value = r["ratio"] if r["reference_label"] else r["ours"]
            met = value <= r["goal_value"] if r["direction"] == "max" else value >= r["goal_value"]
            assert r["verdict"] == ("met" if met else "missed"), r["name"]


def test_quick_run_writes_one_table_per_benchmark(quick: tuple[dict, str]) -> None:
    data, md = quick
    for bench in {r["benchmark"] for r in data["results"]}:
        assert f"#### {bench}\n" in md
    assert md.count("| figure | goal |") == len({r["benchmark"] for r in data["results"]})
    assert all(f"| {r['name']} |" in md for r in data["results"])


@pytest.mark.parametrize(("direction", "samples", "goal", "verdict"), [
    ("max", [1.02, 1.10, 1.04], 1.05, "met"),      # median 1.04
    ("max", [1.06, 1.10, 1.04], 1.05, "missed"),   # median 1.06
    ("min", [0.95, 0.80, 0.91], 0.9, "met"),       # median 0.91
    ("min", [0.85, 0.80, 0.91], 0.9, "missed"),    # median 0.85
])
def test_verdict_uses_the_median_ratio(direction: str, samples: list[float], goal: float, verdict: str) -> None:
    r = Result(name="x", benchmark="x", metric="", goal="", command="", reference_label="ref", goal_value=goal,
               direction=direction, ratio_samples=samples, ours_samples=[1, 2, 3], reference_samples=[1, 1, 1])
    assert r.judge().verdict == verdict
    assert r.ours == 2 and r.reference == 1


def test_absolute_goal_compares_ours_and_skipped_stays_skipped() -> None:
    assert Result(name="x", benchmark="x", metric="s", goal="", command="", goal_value=5.0,
                  ours_samples=[4.0, 6.0, 5.5]).judge().verdict == "missed"
    assert Result(name="x", benchmark="x", metric="", goal="", command="", verdict="skipped").judge().verdict \
        == "skipped"


@given(st.lists(st.floats(min_value=-1e6, max_value=1e6), min_size=1, max_size=50),
       st.floats(min_value=0, max_value=100))
def test_percentile_lies_within_the_data(values: list[float], q: float) -> None:
    p = percentile(values, q)
    assert p is not None and min(values) <= p <= max(values)
    assert percentile(values, 0) == min(values) and percentile(values, 100) == max(values)


def test_generated_goldens_are_valid_sets(tmp_path: Path) -> None:
    path = tmp_path / "bench" / "set-000.yaml"
    path.parent.mkdir()
    path.write_text(golden_file(0, 5, 7), encoding="utf-8")
    gset = load_set(path)
    assert [c.id for c in gset.cases] == [f"case-{i:06d}" for i in range(5, 12)]
    assert all(c.messages[0]["role"] == "system" and c.expect.terms_forbidden == ("订金",) for c in gset.cases)


def test_generated_results_have_the_collector_shape() -> None:
    rows = make_rows(102)
    assert len(rows) == 102
    frame = results_frame(rows)
    kinds = frame["kind"].value_counts().to_dict()
    assert kinds == {"response": 200, "check": 100, "gate": 2}
    assert (frame.loc[frame["kind"] == "check", "passed"] == False).sum() == 2  # noqa: E712 - rows 0 and 25
