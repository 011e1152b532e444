"""The Locust load driver with our TTFT/TPOT instrumentation vs a plain FastHttpUser, and both vs ``wrk``.

Ours is the product path: :func:`conformance.load.runner.run_load` (one Locust process, the shipped locustfile,
raw JSONL records). The reference is ``bench/plain_locustfile.py`` with the same request, the same users and the
same duration. req/s for both is Locust's own figure for the ``chat/completions (headers)`` entry of its
``--json-file`` (same definition on both sides); ``wrk`` (C, one thread, same connection count, a POST Lua
script) shows how far any Python driver is from the endpoint's ceiling.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.common import Result, bench_cases, loadavg, skipped
from bench.servers import MODEL, ROOT, Target
from conformance.endpoints.config import EndpointConfig
from conformance.load.plan import build_body
from conformance.load.runner import run_load

PLAIN = ROOT / "bench" / "plain_locustfile.py"
ROW = "chat/completions (headers)"


def _locust_rps(json_path: Path) -> tuple[float, int, int]:
    """(req/s, requests, failures) of the ``chat/completions (headers)`` entry of Locust's ``--json-file``.

    req/s is Locust's own definition (requests / (last request − start)). Not the ``--csv`` file: it is written
    on a 1 s timer and can miss the last second of the run — or, in a 1 s run, all of it.
    """
    for entry in json.loads(json_path.read_text(encoding="utf-8")):
        if entry.get("name") == ROW:
            span = float(entry["last_request_timestamp"]) - float(entry["start_time"])
            n = int(entry["num_requests"])
            return (n / span if span > 0 else 0.0), n, int(entry["num_failures"])
    raise RuntimeError(f"no {ROW!r} entry in {json_path}")


def ours(target: Target, users: int, duration_s: float, out: Path) -> dict[str, float]:
    cfg = EndpointConfig(name="bench", base_url=target.base_url, model=MODEL, timeout_s=30)
    stages = [{"users": users, "spawn_rate": users, "duration_s": duration_s}]
    res = run_load(bench_cases(64), cfg, stages, out, stop_timeout_s=5,
                   locust_args=["--json-file", str(out / "summary")])
    rps, n, failed = _locust_rps(out / "summary.json")
    st = res.stages[0]
    if failed or st.ok != st.requests:
        raise RuntimeError(f"instrumented locust run had failures: {st.failures} (see {out / 'locust.log'})")
    return {"rps": rps, "requests": n, "records_rps": st.rps}


def plain(target: Target, users: int, duration_s: float, out: Path) -> dict[str, float]:
    out.mkdir(parents=True, exist_ok=True)
    body = json.dumps(build_body(bench_cases(1)[0].request(), MODEL))
    cmd = [sys.executable, "-m", "locust", "-f", str(PLAIN), "--headless", "--only-summary", "-u", str(users),
           "-r", str(users), "-t", f"{duration_s:g}s", "--host", f"http://127.0.0.1:{target.port}",
           "--json-file", str(out / "summary"), "--stop-timeout", "5"]
    env = {**os.environ, "BENCH_BODY": body}
    with open(out / "plain.log", "wb") as log:
        rc = subprocess.run(cmd, cwd=out, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            timeout=duration_s + 60).returncode
    rps, n, failed = _locust_rps(out / "summary.json")
    if rc not in (0, 1) or failed:
        raise RuntimeError(f"plain locust run: exit {rc}, {failed} failures (see {out / 'plain.log'})")
    return {"rps": rps, "requests": n}


LUA = """wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "text/event-stream"
wrk.body = [==[{body}]==]
"""


def wrk(target: Target, connections: int, duration_s: float, out: Path) -> dict[str, float] | None:
    exe = shutil.which("wrk")
    if exe is None:
        return None
    script = out / "post.lua"
    out.mkdir(parents=True, exist_ok=True)
    script.write_text(LUA.format(body=json.dumps(build_body(bench_cases(1)[0].request(), MODEL))))
    cmd = [exe, "-t1", f"-c{connections}", f"-d{max(1, round(duration_s))}s", "-s", str(script), target.url]
    text = subprocess.run(cmd, capture_output=True, text=True, timeout=duration_s + 30).stdout
    m = re.search(r"Requests/sec:\s+([\d.]+)", text)
    if m is None or "Non-2xx" in text or "Socket errors" in text:
        raise RuntimeError(f"wrk failed or saw errors:\n{text}")
    return {"rps": float(m.group(1))}


def locust_vs_plain(target: Target, *, users: int, duration_s: float, repeats: int, command: str) -> list[Result]:
    """Ours / plain req/s (goal ≥ 0.7×), and ours / wrk (recorded, no goal)."""
    res = Result(name=f"locust_driver[{target.kind}]", benchmark="locust_driver",
                 metric=f"req/s, 1 process, {users} users, {duration_s:g}s", goal="≥ 0.7× plain FastHttpUser",
                 goal_value=0.7, direction="min", command=command,
                 reference_label="plain Locust FastHttpUser reading the stream")
    vs_wrk = Result(name=f"locust_vs_wrk[{target.kind}]", benchmark="locust_driver",
                    metric=f"req/s, wrk -t1 -c{users}", goal="recorded (no goal)", command=command,
                    reference_label=f"wrk -t1 -c{users} with a POST Lua script")
    plain_vs_wrk: list[float] = []
    tmp = Path(tempfile.mkdtemp(prefix="bench-locust-"))
    try:
        for i in range(repeats):
            res.loadavg.append(loadavg())
            vs_wrk.loadavg.append(res.loadavg[-1])
            order = ["ours", "plain", "wrk"] if i % 2 == 0 else ["wrk", "plain", "ours"]
            got: dict[str, dict[str, float] | None] = {}
            for side in order:
                out = tmp / f"{side}{i}"
                if side == "ours":
                    got[side] = ours(target, users, duration_s, out)
                elif side == "plain":
                    got[side] = plain(target, users, duration_s, out)
                else:
                    got[side] = wrk(target, users, duration_s, out)
            o, p, w = got["ours"], got["plain"], got["wrk"]
            assert o is not None and p is not None
            res.ours_samples.append(round(o["rps"], 2))
            res.reference_samples.append(round(p["rps"], 2))
            res.ratio_samples.append(round(o["rps"] / p["rps"], 4))
            if w is not None:
                vs_wrk.ours_samples.append(round(o["rps"], 2))
                vs_wrk.reference_samples.append(round(w["rps"], 2))
                vs_wrk.ratio_samples.append(round(o["rps"] / w["rps"], 4))
                plain_vs_wrk.append(round(p["rps"] / w["rps"], 4))
            res.extra.setdefault("records_rps_samples", []).append(round(o["records_rps"], 2))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    res.extra.update({"endpoint": target.kind, "users": users, "duration_s": duration_s})
    out = [res.judge()]
    if vs_wrk.ratio_samples:
        vs_wrk.extra = {"endpoint": target.kind, "plain_over_wrk_samples": plain_vs_wrk}
        out.append(vs_wrk.judge())
    else:
        out.append(skipped(vs_wrk.name, "locust_driver", vs_wrk.goal, command, "wrk is not installed"))
    return out
