"""The reference Locust driver: a plain FastHttpUser that POSTs the same streaming request and only reads the body.

It reads the SSE stream line by line exactly as ``conformance/load/locustfile.py`` does, but parses nothing, times
nothing and writes nothing — so the req/s difference between the two is the cost of our TTFT/TPOT instrumentation
(event parsing, per-request JSONL records, the extra Locust request events). Run only by ``bench/load_bench.py``
(``python -m locust -f bench/plain_locustfile.py``), with the body in ``$BENCH_BODY``.
"""

from __future__ import annotations

import os

from locust import FastHttpUser, constant, task

BODY = os.environ.get("BENCH_BODY", "{}")
PATH = os.environ.get("BENCH_PATH", "/v1/chat/completions")
HEADERS = {"Content-Type": "application/json", "Accept": "text/event-stream", "Accept-Encoding": "identity"}


class PlainUser(FastHttpUser):
    wait_time = constant(0)

    @task
    def chat(self) -> None:
        with self.client.request("POST", PATH, name="chat/completions (headers)", data=BODY, headers=HEADERS,
                                 stream=True, catch_response=True) as resp:
            raw = resp._response
            try:
                while raw.readline(b"\n"):
                    pass
            finally:
                raw.release()
            resp.success()
