"""``python bench/run.py``: every performance figure of issue 7, side by side, in one run (docs/PERFORMANCE.md).

    python bench/run.py                       # everything (~15 min on 2 cores)
    python bench/run.py --quick               # tiny sizes, one repeat: checks the machinery (~20 s), not a figure
    python bench/run.py --only ttft --only collection --out results.json --markdown tables.md

Each benchmark prints a table row per figure as soon as it is done; ``--out`` writes every sample, the load
average at each repeat, the machine and the package versions as JSON; ``--markdown`` writes the tables that
docs/PERFORMANCE.md quotes. A benchmark that fails is reported with verdict ``error`` and the others still run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `python bench/run.py` puts bench/ on the path, not the repository
    sys.path.insert(0, str(ROOT))

from bench.common import Result, loadavg  # noqa: E402

BENCHMARKS = ("nodelay", "replay_overhead", "replay_throughput", "locust", "ttft", "collection", "report")
PACKAGES = ("openai", "httpx2", "locust", "geventhttpclient", "pandas", "pyarrow", "PyYAML", "jsonschema",
            "pytest")


@dataclass(frozen=True)
class Sizes:
    """How much work each benchmark does; ``--quick`` shrinks everything to check the machinery only."""

    repeats: int = 5
    heavy_repeats: int = 3
    overhead_n: int = 300
    overhead_delayed_n: int = 120
    throughput_n: int = 1000
    concurrency: int = 64
    locust_users: int = 32
    locust_s: float = 10.0
    ttft_n: int = 300
    ttft_locust_s: float = 15.0
    collection_cases: int = 10_000
    report_results: int = 100_000
    nginx: bool = True
    delayed_locust: bool = True
    floor: bool = True  # also time pytest on one trivial file (the floor under the collection figure)


QUICK = Sizes(repeats=1, heavy_repeats=1, overhead_n=15, overhead_delayed_n=5, throughput_n=64, concurrency=16,
              locust_users=4,
              locust_s=1.0, ttft_n=15, ttft_locust_s=0.0, collection_cases=200, report_results=1000, nginx=False,
              delayed_locust=False, floor=False)
#: The injected delays of "an endpoint with delays": first token after 20 ms, then 16 tokens 2 ms apart.
DELAYED = {"ttft_ms": 20.0, "itl_ms": 2.0, "tokens": 16}


def _rerun(name: str, quick: bool) -> str:
    return f"python bench/run.py{' --quick' if quick else ''} --only {name}"


def bench_nodelay(s: Sizes, cmd: str) -> list[Result]:
    """Does the FaultServer turn Nagle off, and what did it cost a sequential client when it did not?"""
    import asyncio
    import statistics

    from bench.replay_bench import _client, _raw_one
    from bench.servers import fault_server, nodelay_state

    state = nodelay_state()
    n = 10 if s.repeats == 1 else 40
    medians: dict[str, float] = {}
    for nagle in (True, False):
        with fault_server(nagle=nagle) as target:

            async def loop(target: Any = target) -> list[float]:
                client = _client(target)
                out = []
                for c in bench_cases_(n + 3):
                    t0 = time.perf_counter()
                    await _raw_one(client, c)
                    out.append(time.perf_counter() - t0)
                await client.close()
                return out[3:]

            medians["nagle" if nagle else "shipped"] = round(statistics.median(asyncio.run(loop())) * 1000, 3)
    res = Result(name="faultserver_tcp_nodelay", benchmark="nodelay",
                 metric="ms/request, raw SDK, instant endpoint, sequential", goal="diagnostic (no goal)",
                 command=cmd, ours=medians["nagle"], reference=medians["shipped"],
                 reference_label="FaultServer as shipped (TCP_NODELAY since 3cf330d)", loadavg=[loadavg()],
                 notes="ours = FaultServer with Nagle on, i.e. as it was before 3cf330d",
                 extra={"tcp_nodelay_on_accepted_socket": state, "requests": n})
    return [res.judge()]


def bench_cases_(n: int) -> Any:
    from bench.common import bench_cases

    return bench_cases(n)


def bench_replay_overhead(s: Sizes, cmd: str) -> list[Result]:
    from bench.replay_bench import overhead
    from bench.servers import fault_server

    out = []
    with fault_server() as target:
        out.append(overhead(target, n=s.overhead_n, repeats=s.repeats, command=cmd, label="instant"))
    with fault_server(**DELAYED) as target:  # type: ignore[arg-type]
        out.append(overhead(target, n=s.overhead_delayed_n, repeats=s.heavy_repeats, command=cmd,
                            label="ttft 20 ms + 16 × 2 ms"))
    return out


def bench_replay_throughput(s: Sizes, cmd: str) -> list[Result]:
    from bench.replay_bench import throughput
    from bench.servers import MODEL, canned_sse, fault_server, nginx_available, nginx_server
    from conformance.load.plan import build_body

    out = []
    with fault_server() as target:
        out.append(throughput(target, n=s.throughput_n, repeats=s.heavy_repeats, concurrency=s.concurrency,
                              command=cmd, label="faultserver instant"))
        sse = canned_sse(target, build_body(bench_cases_(1)[0].request(), MODEL))
    if s.nginx and nginx_available():
        with nginx_server(sse) as target:
            out.append(throughput(target, n=s.throughput_n, repeats=s.heavy_repeats, concurrency=s.concurrency,
                                  command=cmd, label="nginx static SSE"))
    elif s.nginx:
        from bench.common import skipped

        out.append(skipped("replay_throughput[nginx static SSE]", "replay_throughput", "≥ 0.9× raw openai SDK",
                           cmd, "nginx is not installed (apt-get install -y nginx)"))
    return out


def bench_locust(s: Sizes, cmd: str) -> list[Result]:
    from bench.load_bench import locust_vs_plain
    from bench.servers import MODEL, canned_sse, fault_server, nginx_available, nginx_server
    from conformance.load.plan import build_body

    out: list[Result] = []
    if s.nginx and nginx_available():
        with fault_server() as target:
            sse = canned_sse(target, build_body(bench_cases_(1)[0].request(), MODEL))
        with nginx_server(sse) as target:
            out += locust_vs_plain(target, users=s.locust_users, duration_s=s.locust_s, repeats=s.heavy_repeats,
                                   command=cmd)
    else:
        with fault_server() as target:
            out += locust_vs_plain(target, users=s.locust_users, duration_s=s.locust_s, repeats=s.heavy_repeats,
                                   command=cmd)
    if s.delayed_locust:
        with fault_server(**DELAYED) as target:  # type: ignore[arg-type]
            out += locust_vs_plain(target, users=s.locust_users, duration_s=s.locust_s,
                                   repeats=max(1, s.heavy_repeats - 1), command=cmd)
    return out


def bench_ttft(s: Sizes, cmd: str) -> list[Result]:
    from bench.ttft_bench import ttft_error

    return ttft_error(n=s.ttft_n, repeats=s.heavy_repeats, locust_s=s.ttft_locust_s, command=cmd, **DELAYED)


def bench_collection(s: Sizes, cmd: str) -> list[Result]:
    from bench.collect_bench import lint_and_collect

    return lint_and_collect(n_cases=s.collection_cases, repeats=s.heavy_repeats, command=cmd, floor=s.floor)


def bench_report(s: Sizes, cmd: str) -> list[Result]:
    from bench.report_bench import report_generation

    return report_generation(n_results=s.report_results, repeats=s.heavy_repeats, command=cmd)


RUNNERS: dict[str, Callable[[Sizes, str], list[Result]]] = {
    "nodelay": bench_nodelay, "replay_overhead": bench_replay_overhead, "replay_throughput": bench_replay_throughput,
    "locust": bench_locust, "ttft": bench_ttft, "collection": bench_collection, "report": bench_report,
}


def machine() -> dict[str, Any]:
    cpu = ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            cpu = next((ln.split(":", 1)[1].strip() for ln in fh if ln.startswith("model name")), "")
    except OSError:
        pass
    versions = {}
    for pkg in PACKAGES:
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            versions[pkg] = None
    tools = {}
    for tool, flag in (("nginx", "-v"), ("wrk", "-v")):
        exe = shutil.which(tool)
        if exe:
            p = subprocess.run([exe, flag], capture_output=True, text=True, check=False)
            tools[tool] = (p.stdout + p.stderr).strip().splitlines()[0] if (p.stdout + p.stderr).strip() else exe
        else:
            tools[tool] = None
    return {"nproc": os.cpu_count(), "cpus_usable": len(os.sched_getaffinity(0)), "cpu": cpu,
            "python": platform.python_version(), "platform": platform.platform(), "packages": versions,
            "tools": tools}


def _fmt(x: float | None) -> str:
    if x is None:
        return "–"
    return f"{x:,.3f}" if abs(x) < 100 else f"{x:,.1f}"


def row(r: Result) -> str:
    load = ", ".join(f"{la[0]:g}" for la in r.loadavg) or "–"
    ratio = "–" if r.ratio is None else f"{r.ratio:.3f}×"
    return f"| {r.name} | {r.goal} | {_fmt(r.ours)} | {_fmt(r.reference)} | {ratio} | **{r.verdict}** | {load} |"


HEADER = ("| figure | goal | ours (median) | reference (median) | ratio | verdict | load avg 1 min per repeat |\n"
          "|---|---|---|---|---|---|---|")


def markdown(results: Sequence[Result], meta: dict[str, Any]) -> str:
    m = meta["machine"]
    lines = [f"Run {meta['date']} · `{meta['invocation']}` · {m['nproc']} CPUs ({m['cpu']}) · load average at "
             f"start {meta['loadavg_start']} / end {meta['loadavg_end']} · {meta['elapsed_s']:.0f} s", ""]
    for bench in dict.fromkeys(r.benchmark for r in results):
        group = [r for r in results if r.benchmark == bench]
        lines += [f"#### {bench}", "", f"Command: `{group[0].command}`", "", HEADER, *(row(r) for r in group), ""]
        for r in group:
            if r.notes:
                lines.append(f"- {r.name}: {r.notes}")
        lines.append("")
    return "\n".join(lines)


def run(names: Sequence[str], sizes: Sizes, quick: bool) -> list[Result]:
    results: list[Result] = []
    print(HEADER, flush=True)
    for name in names:
        cmd = _rerun(name, quick)
        t0 = time.monotonic()
        try:
            got = RUNNERS[name](sizes, cmd)
        except Exception as exc:  # one broken benchmark must not hide the others' figures
            tb = traceback.format_exc(limit=4)
            got = [Result(name=name, benchmark=name, metric="", goal="", command=cmd, verdict="error",
                          notes=f"{type(exc).__name__}: {exc}"[:500], extra={"traceback": tb[-3000:]},
                          loadavg=[loadavg()])]
        for r in got:
            r.extra.setdefault("benchmark_s", round(time.monotonic() - t0, 1))
            print(row(r), flush=True)
        results += got
    return results


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python bench/run.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="tiny sizes, one repeat (checks the machinery only)")
    p.add_argument("--only", action="append", choices=BENCHMARKS, metavar="NAME",
                   help=f"run only this benchmark (repeatable): {', '.join(BENCHMARKS)}")
    p.add_argument("--out", type=Path, help="write every figure, sample and load average as JSON")
    p.add_argument("--markdown", type=Path, help="write the result tables as Markdown")
    p.add_argument("--repeats", type=int, help="override the number of repeats of every benchmark")
    args = p.parse_args(argv)
    sizes = QUICK if args.quick else Sizes()
    if args.repeats:
        sizes = Sizes(**{**sizes.__dict__, "repeats": args.repeats, "heavy_repeats": args.repeats})
    names = [n for n in BENCHMARKS if n in (args.only or BENCHMARKS)]
    start, t0 = loadavg(), time.monotonic()
    meta: dict[str, Any] = {"date": datetime.now(UTC).isoformat(timespec="seconds"), "quick": args.quick,
                            "invocation": "python bench/run.py " + " ".join(sys.argv[1:] if argv is None else argv),
                            "benchmarks": names, "sizes": sizes.__dict__, "machine": machine(),
                            "loadavg_start": start}
    results = run(names, sizes, args.quick)
    meta.update(loadavg_end=loadavg(), elapsed_s=round(time.monotonic() - t0, 1))
    if args.out:
        args.out.write_text(json.dumps({**meta, "results": [r.to_dict() for r in results]}, ensure_ascii=False,
                                       indent=1, default=str), encoding="utf-8")
    if args.markdown:
        args.markdown.write_text(markdown(results, meta), encoding="utf-8")
    print(f"\n{len(results)} figures in {meta['elapsed_s']:.0f} s; load average {start} → {meta['loadavg_end']}")
    return 1 if any(r.verdict == "error" for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
