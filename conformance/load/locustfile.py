"""Locust entry point: replay a suite's golden requests as streaming chat completions and time every SSE event.

Run by :mod:`conformance.load.runner` in its own process (``python -m locust -f <this file> --headless …``) with
the plan's path in ``$CONFORMANCE_LOAD_PLAN``; never imported by the pytest process (Locust monkey-patches the
interpreter with gevent). The API key is read here, from the environment variable the plan *names*.

Per request it fires Locust request events of type ``SSE`` named ``ttft``, ``tpot`` and ``e2el`` (Locust's own
``POST`` row only measures time to the response headers), and appends one raw JSONL record to
``<raw_dir>/records-<pid>.jsonl`` — the runner computes every statistic from those records, not from Locust's.
"""

from __future__ import annotations

import json
import os
import time
from typing import IO, Any
from urllib.parse import urlsplit

import gevent
from locust import FastHttpUser, constant, events, task

from conformance.endpoints.base import classify_status
from conformance.load.plan import PLAN_ENV, LoadPlan, PlanRequest, prompt_order, stage_at
from conformance.load.shapes import ArrivalClock, shape_for
from conformance.load.sse import StreamTrace

if PLAN_ENV not in os.environ:
    raise SystemExit(f"{PLAN_ENV} is not set: run load tests through `conformance load` or conformance.load.runner")
PLAN = LoadPlan.read(os.environ[PLAN_ENV])
ORDER = prompt_order(len(PLAN.requests), PLAN.seed)
PlanShape = shape_for(PLAN)  # the only shape class in this namespace: Locust picks it up


def _headers() -> dict[str, str]:
    headers = {"Content-Type": "application/json", "Accept": "text/event-stream", "Accept-Encoding": "identity",
               **PLAN.headers}
    if PLAN.api_key_env:
        key = os.environ.get(PLAN.api_key_env)
        if not key:
            raise SystemExit(f"environment variable {PLAN.api_key_env} (api_key_env of {PLAN.label}) is not set")
        headers["Authorization"] = f"Bearer {key}"
    return headers


HEADERS = _headers()


class LoadFault(Exception):
    """What Locust's failure table shows for a failed request: its fault class (and HTTP status)."""


class _Deadline(Exception):
    """Raised by gevent.Timeout when one request exceeds ``timeout_s`` end to end."""


class _State:
    """Per-process state: when this process' test started, the next closed-loop sequence number, the open-loop
    arrival clock and the raw record file (opened lazily, after any fork)."""

    t_start: float = 0.0
    wall_start: float = 0.0
    seq: int = 0
    clock: ArrivalClock | None = None
    out: IO[str] | None = None

    def write(self, record: dict[str, Any]) -> None:
        if self.out is None:
            os.makedirs(PLAN.raw_dir, exist_ok=True)
            self.out = open(os.path.join(PLAN.raw_dir, f"records-{os.getpid()}.jsonl"), "a", encoding="utf-8")  # noqa: SIM115
        self.out.write(json.dumps(record, ensure_ascii=False) + "\n")
        self.out.flush()


STATE = _State()


@events.test_start.add_listener
def _on_test_start(environment: Any, **_: Any) -> None:
    STATE.t_start, STATE.wall_start = time.monotonic(), time.time()
    if PLAN.open_loop is not None:
        index = getattr(environment.runner, "worker_index", 0)
        STATE.clock = ArrivalClock(PLAN, max(0, int(index)))


@events.quitting.add_listener
def _on_quitting(**_: Any) -> None:
    if STATE.out is not None:
        STATE.out.close()
        STATE.out = None


def _transport_fault(exc: BaseException, mid_stream: bool) -> tuple[str, str]:
    text = f"{type(exc).__name__}: {exc}"[:300]
    if isinstance(exc, TimeoutError) or "timeout" in type(exc).__name__.lower():
        return "timeout", text
    return ("truncated_stream", f"stream broken after partial answer ({text})") if mid_stream else ("connection", text)


class ChatUser(FastHttpUser):
    """Sends the plan's requests in its seeded order; in open-loop mode, at the times of the arrival schedule."""

    host = "{0.scheme}://{0.netloc}".format(urlsplit(PLAN.url))
    network_timeout = PLAN.timeout_s
    connection_timeout = PLAN.connect_timeout_s
    wait_time = constant(0)

    @task
    def chat(self) -> None:
        now = time.monotonic()
        if PLAN.open_loop is not None:
            slot = STATE.clock.take() if STATE.clock is not None else None
            if slot is None:  # this process' share of the schedule is done: idle until the shape stops us
                gevent.sleep(0.5)
                return
            seq, due, stage = slot
            delay = STATE.t_start + due - now
            if delay > 0:
                gevent.sleep(delay)
            queue_ms = max(0.0, (time.monotonic() - STATE.t_start - due) * 1000)
        else:
            stage_or_none = stage_at(PLAN.stages, now - STATE.t_start)
            if stage_or_none is None:  # the last stage is over: no new request, wait to be stopped
                gevent.sleep(0.2)
                return
            seq, stage, queue_ms = STATE.seq, stage_or_none, 0.0
            STATE.seq += 1
        request = PLAN.requests[ORDER[seq % len(ORDER)]]
        fault = self.send(seq, request, stage, queue_ms)
        if fault is not None and PLAN.open_loop is None and PLAN.pause_after_failure_s > 0:
            gevent.sleep(PLAN.pause_after_failure_s)  # a dead server must not turn the loop into a busy spin

    def send(self, seq: int, request: PlanRequest, stage: int, queue_ms: float) -> str | None:
        body = json.dumps(request.body)  # ASCII-escaped: the byte length can never disagree with the text
        wall, t0 = time.time(), time.monotonic()
        trace = StreamTrace(t0)
        status: int | None = None
        fault: str | None = None
        error: str | None = None
        try:
            with gevent.Timeout(PLAN.timeout_s, _Deadline()), self.client.request(
                    "POST", PLAN.url, name="chat/completions (headers)", data=body, headers=HEADERS, stream=True,
                    catch_response=True) as resp:
                status = int(resp.status_code) or None
                fault, error = _head_fault(resp, status)
                if fault is not None:
                    resp.failure(f"{fault}: {error}")
                else:
                    resp.success()
                    raw = resp._response
                    try:
                        while line := raw.readline(b"\n"):
                            trace.feed_line(line, time.monotonic())
                    finally:
                        raw.release()  # closes the socket unless the body was read to its end
                    trace.flush(time.monotonic())
                    fault, error = trace.fault()
        except _Deadline:
            fault, error = "timeout", f"no complete answer within timeout_s={PLAN.timeout_s:g}"
        except gevent.GreenletExit:  # the run is being stopped under this request: keep it visible, then go
            self._record(seq, request, stage, queue_ms, wall, t0, trace, status, "cancelled",
                         "stopped by the end of the run (deadline or forced stop) before it finished")
            raise
        except Exception as exc:  # transport errors while reading the body (reset, read timeout, parse error)
            fault, error = _transport_fault(exc, status is not None)  # after a status line: the answer had begun
        self._record(seq, request, stage, queue_ms, wall, t0, trace, status, fault, error)
        return fault

    def _record(self, seq: int, request: PlanRequest, stage: int, queue_ms: float, wall: float, t0: float,
                trace: StreamTrace, status: int | None, fault: str | None, error: str | None) -> None:
        elapsed_ms = (time.monotonic() - t0) * 1000
        record = {
            "seq": seq, "case_id": request.case_id, "stage": stage, "worker": os.getpid(),
            "t_start": round(wall, 6), "t_mono": round(t0, 6), "t_offset_s": round(t0 - STATE.t_start, 6),
            "queue_ms": round(queue_ms, 3), "elapsed_ms": round(elapsed_ms, 3), "status": status, "fault": fault,
            "error": error, **trace.record(),
        }
        STATE.write(record)
        self._fire(record, elapsed_ms)

    def _fire(self, rec: dict[str, Any], elapsed_ms: float) -> None:
        fire = self.environment.events.request.fire
        n_out = int(rec["n_out"] or 0)
        for name in ("ttft", "tpot"):
            if rec[f"{name}_ms"] is not None and rec["fault"] is None:
                fire(request_type="SSE", name=name, response_time=rec[f"{name}_ms"], response_length=n_out,
                     exception=None, context={"stage": rec["stage"]})
        label = rec["fault"] if rec["status"] in (None, 200) else f"{rec['fault']} (HTTP {rec['status']})"
        fire(request_type="SSE", name="e2el", response_time=rec["e2el_ms"] or elapsed_ms, response_length=n_out,
             exception=LoadFault(label) if rec["fault"] else None, context={"stage": rec["stage"]})


def _head_fault(resp: Any, status: int | None) -> tuple[str | None, str | None]:
    """Fault visible before the body: no connection, an HTTP error status, or not an event stream."""
    if status is None:
        err = getattr(resp, "error", None)
        return _transport_fault(err, False) if err is not None else ("connection", "no response")
    if status >= 400:
        try:
            detail = (resp.text or "")[:300]
        except Exception as exc:  # the error body itself may be cut
            detail = f"{type(exc).__name__}: {exc}"[:300]
        return classify_status(status), f"HTTP {status}: {detail}"
    ctype = resp.headers.get("content-type", "") if resp.headers is not None else ""
    if "text/event-stream" not in ctype:
        return "bad_response", f"expected a text/event-stream, got content-type {ctype!r}"
    return None, None
