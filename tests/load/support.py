"""Helpers for the load tests: a /metrics page shaped like vLLM's, and a tiny HTTP server that serves it."""

from __future__ import annotations

import contextlib
import http.server
import threading
from collections.abc import Iterator

BOUNDS = ("0.001", "0.005", "0.01", "0.02", "0.04", "0.06", "0.08", "0.1", "0.25", "0.5", "+Inf")


def vllm_text(*, running: float = 3, waiting: float = 1, kv: float = 0.42, preempt: float = 0,
              ttft: tuple[int, ...] = (0, 0, 2, 5, 9, 10, 10, 10, 10, 10, 10), old: bool = False,
              engines: int = 1) -> str:
    """A /metrics page shaped like vLLM's (one label set per engine)."""
    kv_name = "vllm:gpu_cache_usage_perc" if old else "vllm:kv_cache_usage_perc"
    lines = ["# HELP vllm:num_requests_running Number of requests in model execution batches.",
             "# TYPE vllm:num_requests_running gauge"]
    for e in range(engines):
        lab = f'engine="{e}",model_name="meta-llama/Llama-3.1-8B-Instruct"'
        lines += [f"vllm:num_requests_running{{{lab}}} {running}", f"vllm:num_requests_waiting{{{lab}}} {waiting}",
                  f"{kv_name}{{{lab}}} {kv}", f"vllm:num_preemptions_total{{{lab}}} {preempt}",
                  "# TYPE vllm:time_to_first_token_seconds histogram"]
        lines += [f'vllm:time_to_first_token_seconds_bucket{{{lab},le="{b}"}} {c}.0'
                  for b, c in zip(BOUNDS, ttft, strict=True)]
        lines += [f"vllm:time_to_first_token_seconds_count{{{lab}}} {ttft[-1]}.0",
                  f"vllm:time_to_first_token_seconds_sum{{{lab}}} 0.31"]
    lines.append("python_gc_objects_collected_total{generation=\"0\"} 1234.0")
    return "\n".join(lines) + "\n"


@contextlib.contextmanager
def serve_text(body: str) -> Iterator[str]:
    """Serve ``body`` as text/plain on 127.0.0.1 for the duration of the block; yields the /metrics URL."""
    data = body.encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/metrics"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
