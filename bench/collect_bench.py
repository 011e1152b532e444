"""``conformance lint`` and pytest collection of a generated suite of N cases (goal: each ≤ 5 s at 10,000 cases).

The repository is generated in a temporary folder: ``endpoints.yaml`` (two loopback endpoints that are never
contacted), ``pyproject.toml`` (``-p no:locust``, as in this repository), ``suites/bench/`` with only a suite.yaml
(the plugin makes the items from the registry: ``answered`` and ``terms`` per case and one gates item, so N cases
make 2N + 1 test items, as the legal suite's shape did before suites stopped needing Python), and ``goldens/bench/``
with N cases in files of 1,000 — each with a system prompt from the
set's defaults, a CJK prompt, tags and term expectations, like the shipped golden sets.

Both commands run as subprocesses in that folder, exactly as a user would type them, so interpreter start-up and
imports are part of the figure. Large golden files that passed schema validation are remembered in the cache
folder (``conformance/goldens/validcache.py``), so each repeat gets a fresh ``$CONFORMANCE_CACHE``: lint runs
*cold* (nothing remembered), then collection runs *warm* (after that lint, as when a user lints then runs pytest),
and collection runs once more *cold* in another fresh cache. The goal is judged on the cold figures for lint and
on the warm one for collection; the cold collection is reported next to it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import Result, loadavg, median

ENDPOINTS = """\
defaults: {baseline: bench-baseline, candidate: bench-candidate}
endpoints:
  bench-baseline: {base_url: "http://127.0.0.1:9/v1", model: bench-old}
  bench-candidate: {base_url: "http://127.0.0.1:9/v1", model: bench-new}
"""
PYPROJECT = """\
[tool.pytest.ini_options]
addopts = "-p no:locust"
"""
SUITE = """\
system: bench
goldens: goldens/bench
gates:
  availability: {max_error_rate: 0.0}
"""
TAGS = ("deposit", "penalty", "liability", "arbitration", "termination")


def golden_file(index: int, start: int, count: int) -> str:
    lines = [f"set: bench-{index:03d}", 'owner: "@bench"', "defaults:",
             "  system: 你是法务文书助手，只输出条款正文，不要解释。",
             "  params: {temperature: 0, max_tokens: 128, seed: 42}", "  tags: [bench]", "cases:"]
    for i in range(start, start + count):
        lines += [f"  - id: case-{i:06d}",
                  f"    prompt: 起草买卖合同的定金条款，定金为合同总价的{i % 30 + 1}%。（第{i}号）",
                  f"    tags: [{TAGS[i % len(TAGS)]}]",
                  "    expect:",
                  "      terms: {required: [定金], forbidden: [订金]}"]
    return "\n".join(lines) + "\n"


def make_repo(root: Path, n_cases: int, per_file: int = 1000) -> Path:
    (root / "suites" / "bench").mkdir(parents=True)
    (root / "goldens" / "bench").mkdir(parents=True)
    (root / "endpoints.yaml").write_text(ENDPOINTS, encoding="utf-8")
    (root / "pyproject.toml").write_text(PYPROJECT, encoding="utf-8")
    (root / "suites" / "bench" / "suite.yaml").write_text(SUITE, encoding="utf-8")
    for k, start in enumerate(range(0, n_cases, per_file)):
        text = golden_file(k, start, min(per_file, n_cases - start))
        (root / "goldens" / "bench" / f"set-{k:03d}.yaml").write_text(text, encoding="utf-8")
    return root


def _timed(cmd: list[str], cwd: Path, expect: str, env: dict[str, str] | None = None) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=600, env=env)
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0 or expect not in proc.stdout:
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode} without {expect!r}:\n"
                           f"{proc.stdout[-1500:]}\n{proc.stderr[-1500:]}")
    return elapsed


def lint_and_collect(*, n_cases: int, repeats: int, command: str, floor: bool = True) -> list[Result]:
    goal = f"≤ 5 s for {n_cases:,} cases" if n_cases == 10_000 else f"≤ 5 s (goal is for 10,000; here {n_cases:,})"
    lint = Result(name=f"lint[{n_cases} cases]", benchmark="collection", metric="s wall (subprocess)", goal=goal,
                  goal_value=5.0, direction="max", command=command)
    collect = Result(name=f"pytest_collect[{n_cases} cases]", benchmark="collection", metric="s wall (subprocess)",
                     goal=goal, goal_value=5.0, direction="max", command=command)
    items = 2 * n_cases + 1
    tmp = Path(tempfile.mkdtemp(prefix="bench-collect-"))
    cold: list[float] = []
    try:
        repo = make_repo(tmp / "repo", n_cases)
        lint_cmd = [sys.executable, "-m", "conformance.cli", "lint"]
        collect_cmd = [sys.executable, "-m", "pytest", "--collect-only", "-q", "--no-preflight",
                       "--no-local-start", "-p", "no:cacheprovider", "suites/bench"]
        for i in range(repeats):
            lint.loadavg.append(loadavg())
            collect.loadavg.append(loadavg())
            warm_env = {**os.environ, "CONFORMANCE_CACHE": str(tmp / f"cache-{i}")}
            cold_env = {**os.environ, "CONFORMANCE_CACHE": str(tmp / f"cache-{i}-cold")}
            lint.ours_samples.append(round(_timed(lint_cmd, repo, f"{n_cases} cases, 0 errors", warm_env), 3))
            collect.ours_samples.append(round(_timed(collect_cmd, repo, f"{items} tests", warm_env), 3))
            cold.append(round(_timed(collect_cmd, repo, f"{items} tests", cold_env), 3))
        lint.extra = {"cases": n_cases, "files": -(-n_cases // 1000), "argv": "conformance lint",
                      "validation_cache": "cold (fresh $CONFORMANCE_CACHE)"}
        collect.extra = {"cases": n_cases, "items": items,
                         "argv": "pytest --collect-only -q --no-preflight --no-local-start -p no:cacheprovider "
                                 "suites/bench",
                         "validation_cache": "warm (after lint)", "cold": {"samples": cold, "median": median(cold)}}
        lint.extra["python_startup_s"] = collect.extra["python_startup_s"] = _startup()
        if floor:
            collect.extra["pytest_floor_s"] = _pytest_floor(repo)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return [lint.judge(), collect.judge()]


def _pytest_floor(repo: Path) -> float:
    """Seconds for the same pytest command on one trivial test file: pytest and its plugins (hypothesis's
    imports hypothesis for its terminal summary), the conformance plugin staying inert — the floor under
    the collection figure."""
    (repo / "floor").mkdir(exist_ok=True)
    (repo / "floor" / "test_floor.py").write_text("def test_floor() -> None:\n    pass\n", encoding="utf-8")
    cmd = [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", "floor"]
    return round(min(_timed(cmd, repo, "1 test") for _ in range(2)), 3)


def _startup() -> float:
    """Seconds for ``python -c pass``: the floor under any command-line figure on this machine right now."""
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    return round(time.perf_counter() - t0, 3)
