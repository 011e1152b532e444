"""Locust entry point: replay a suite's golden requests as streaming chat completions and time every SSE event.

Run by :mod:`conformance.load.runner` in its own process (``python -m locust -f <this file> --headless …``) with
the plan's path in ``$CONFORMANCE_LOAD_PLAN``; never imported by the pytest process (Locust monkey-patches the
interpreter with gevent). The API key is read here, from the environment variable the plan *names*.

Per request it fires Locust request events of type ``SSE`` named ``ttft``, ``tpot`` and ``e2el`` (Locust's own
``POST`` row only measures time to the response headers), and appends one raw JSONL record to
``<raw_dir>/records-<pid>.jsonl`` — the runner computes every statistic from those records, not from Locust's.

Against a fast endpoint this process is CPU-bound, and whatever it spends per request lowers the load it can
offer (docs/PERFORMANCE.md, F5). So it does only what the live figures need — the SSE events parsed as they
arrive (:class:`~conformance.load.sse.StreamTrace`), the fault class, the three request events — and writes
records raw (times as whole µs, nothing derived); :func:`conformance.load.stats.read_records` turns them into the
records every consumer reads (seconds, ms, ``ttft_ms``, ``itl_ms``…) afterwards.
Records are queued and written every ``FLUSH_S`` (see :class:`_Records`): a process killed with SIGKILL loses at
most that much, as it could always lose its last, half-written line.

Before anything else it binds itself to the runner (:mod:`conformance.load.lifetime`: it stops when the runner's
process is gone) and makes sure no secret is written (:mod:`conformance.load.scrub`): stdout and stderr (Locust's
log, its tables, tracebacks) are redacted, and so are failure messages and every batch of records.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import sys
import time
from collections.abc import Callable
from typing import IO, Any
from urllib.parse import urlsplit

import gevent
from geventhttpclient.response import HTTPConnectionClosed
from locust import FastHttpUser, constant, events, task

from conformance.checks.latency import tpot_ms
from conformance.load.lifetime import bind_to_parent
from conformance.load.plan import PLAN_ENV, LoadPlan, PlanRequest, prompt_order, stage_at
from conformance.load.scrub import RedactingStream, locust_redactor
from conformance.load.shapes import ArrivalClock, shape_for
from conformance.load.sse import StreamTrace
from conformance.response import classify_status

bind_to_parent(os.environ)
if PLAN_ENV not in os.environ:
    raise SystemExit(f"{PLAN_ENV} is not set: run load tests through `conformance load` or conformance.load.runner")
PLAN = LoadPlan.read(os.environ[PLAN_ENV])
#: Every secret this process could write: the key it sends, and those the runner named (see conformance.load.scrub).
REDACT = locust_redactor(os.environ, PLAN.api_key_env)
sys.stdout = RedactingStream(sys.stdout, REDACT)  # before Locust sets up logging
sys.stderr = RedactingStream(sys.stderr, REDACT)
ORDER = prompt_order(len(PLAN.requests), PLAN.seed)
#: Request bodies, serialised once. ASCII-escaped: the byte length can never disagree with the text.
BODIES = [json.dumps(r.body) for r in PLAN.requests]
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
#: Bytes asked of one socket read (a read returns whatever has arrived, so this only caps it).
RECV_SIZE = 65536
#: How often queued records reach the file (the runner's progress line reads them twice a second), and how many
#: are encoded between two yields to the users (~0.3 ms of work).
FLUSH_S = 0.2
SLICE = 16
_encode = json.JSONEncoder(ensure_ascii=False, check_circular=False).encode  # records are trees


class LoadFault(Exception):
    """What Locust's failure table shows for a failed request: its fault class (and HTTP status)."""


class _Deadline(Exception):
    """Raised by gevent.Timeout when one request exceeds ``timeout_s`` end to end."""


class _State:
    """Per-process state: when this process' test started, the next closed-loop sequence number and the open-loop
    arrival clock."""

    t_start: float = 0.0
    wall_start: float = 0.0
    seq: int = 0
    clock: ArrivalClock | None = None


#: One finished request, as :meth:`ChatUser.send` leaves it: (seq, case_id, stage, queue_ms, wall clock at the
#: start, monotonic start, monotonic end, trace, HTTP status, fault, error).
_Done = tuple[int, str, int, float, float, float, float, StreamTrace, int | None, str | None, str | None]


class _Records:
    """This process' raw records, ``records-<pid>.jsonl`` (opened after any fork).

    Why queued: against a fast endpoint the process is CPU-bound, and building, encoding and writing a record
    costs less done for many requests in a row than once between every two requests (the code stays in the CPU's
    caches; one write instead of hundreds). The queue is written every ``FLUSH_S`` and when Locust quits; the
    periodic writer yields to the users every ``SLICE`` records, so that no token waits long to be timestamped.
    The request events are not queued: Locust's own figures stay live.
    """

    def __init__(self) -> None:
        self.queue: list[_Done] = []
        self.out: IO[str] | None = None
        self.pid = 0
        self.busy = False  # the periodic writer is between two slices of a batch

    def add(self, done: _Done) -> None:
        self.queue.append(done)
        if self.out is None:
            self.pid = os.getpid()
            os.makedirs(PLAN.raw_dir, exist_ok=True)
            self.out = open(os.path.join(PLAN.raw_dir, f"records-{self.pid}.jsonl"), "a",  # noqa: SIM115
                            encoding="utf-8")
            gevent.spawn(self._write_every, self.out)

    def write(self, *, cede: bool = False) -> None:
        """Write the queue; ``cede``: let other greenlets run between slices."""
        batch, self.queue = self.queue, []
        lines = []
        for i, (seq, case_id, stage, queue_ms, wall, t0, t_end, trace, status, fault, error) in enumerate(batch, 1):
            record = {  # times as whole µs: read_records makes them s and ms (stats.expand_record)
                "seq": seq, "case_id": case_id, "stage": stage, "worker": self.pid, "t_start_us": round(wall * 1e6),
                "t_mono_us": round(t0 * 1e6), "t_offset_us": round((t0 - STATE.t_start) * 1e6),
                "queue_us": round(queue_ms * 1000), "elapsed_us": round((t_end - t0) * 1e6), "status": status,
                "fault": fault, "error": error,
            }
            record.update(trace.record())
            lines.append(_encode(record))
            if cede and i % SLICE == 0:
                gevent.sleep(0)
        if lines and self.out is not None:
            self.out.write(REDACT("\n".join(lines) + "\n"))  # answers and error bodies may echo the key
            self.out.flush()

    def close(self) -> None:
        while self.busy:  # a periodic batch is half encoded: let it reach the file first
            gevent.sleep(0.001)
        self.write()
        if self.out is not None:
            self.out.close()
            self.out = None

    def _write_every(self, out: IO[str]) -> None:
        while self.out is out:
            self.busy = True
            try:
                self.write(cede=True)
            except Exception:  # never let one bad batch stop the records that follow
                logging.exception("writing load records")
            finally:
                self.busy = False
            gevent.sleep(FLUSH_S)


def _fire(fire: Callable[..., None], trace: StreamTrace, stage: int, status: int | None, fault: str | None,
          elapsed_ms: float) -> None:
    """The request's ``ttft``, ``tpot`` (answers only) and ``e2el`` (every request: failures with their class)."""
    context = {"stage": stage}
    n_out = trace.n_out[0]
    ttft, e2el = trace.ttft_ms, trace.e2el_ms
    if fault is None and ttft is not None:
        fire(request_type="SSE", name="ttft", response_time=ttft, response_length=n_out, exception=None,
             context=context)
        tpot = tpot_ms(ttft, e2el, n_out)
        if tpot is not None:
            fire(request_type="SSE", name="tpot", response_time=tpot, response_length=n_out, exception=None,
                 context=context)
    label = fault if status in (None, 200) else f"{fault} (HTTP {status})"
    fire(request_type="SSE", name="e2el", response_time=e2el or elapsed_ms, response_length=n_out,
         exception=LoadFault(label) if fault else None, context=context)


STATE = _State()
RECORDS = _Records()


@events.test_start.add_listener
def _on_test_start(environment: Any, **_: Any) -> None:
    # Everything allocated so far (Locust, gevent, the plan) lives as long as the process: out of the collector's
    # way, so that its full collections — frequent at thousands of requests a second — cost nothing for it.
    gc.collect()
    gc.freeze()
    STATE.t_start, STATE.wall_start = time.monotonic(), time.time()
    if PLAN.open_loop is not None:
        index = getattr(environment.runner, "worker_index", 0)
        STATE.clock = ArrivalClock(PLAN, max(0, int(index)))


@events.quitting.add_listener
def _on_quitting(**_: Any) -> None:
    RECORDS.close()


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

    def on_start(self) -> None:
        # One timer per user, restarted for each request (cheaper than a new one each time); it throws a new
        # _Deadline into this user's greenlet when a request exceeds timeout_s end to end.
        self._deadline = gevent.Timeout(PLAN.timeout_s, _Deadline)

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
        index = ORDER[seq % len(ORDER)]
        fault = self.send(seq, PLAN.requests[index], stage, queue_ms, BODIES[index])
        if fault is not None and PLAN.open_loop is None and PLAN.pause_after_failure_s > 0:
            gevent.sleep(PLAN.pause_after_failure_s)  # a dead server must not turn the loop into a busy spin

    def send(self, seq: int, request: PlanRequest, stage: int, queue_ms: float, body: str) -> str | None:
        wall, t0 = time.time(), time.monotonic()
        trace = StreamTrace(t0)
        status: int | None = None
        fault: str | None = None
        error: str | None = None
        deadline = self._deadline
        deadline.start()
        try:
            with self.client.request("POST", PLAN.url, name="chat/completions (headers)", data=body, headers=HEADERS,
                                     stream=True, catch_response=True) as resp:
                status = int(resp.status_code) or None
                fault, error = _head_fault(resp, status)
                if fault is not None:
                    resp.failure(REDACT(f"{fault}: {error}"))  # an error body may echo the key
                else:
                    resp.success()
                    raw = resp._response
                    try:
                        _read_body(raw, trace)
                    finally:
                        raw.release()  # closes the socket unless the body was read to its end
                    trace.flush(time.monotonic())
                    fault, error = trace.fault()
        except _Deadline:
            fault, error = "timeout", f"no complete answer within timeout_s={PLAN.timeout_s:g}"
        except gevent.GreenletExit:  # the run is being stopped under this request: keep it visible, then go
            fault, error = "cancelled", "stopped by the end of the run (deadline or forced stop) before it finished"
            self._done((seq, request.case_id, stage, queue_ms, wall, t0, time.monotonic(), trace, status, fault,
                        error))
            raise
        except Exception as exc:  # transport errors while reading the body (reset, read timeout, parse error)
            fault, error = _transport_fault(exc, status is not None)  # after a status line: the answer had begun
        finally:
            deadline.cancel()
        self._done((seq, request.case_id, stage, queue_ms, wall, t0, time.monotonic(), trace, status, fault, error))
        return fault

    def _done(self, done: _Done) -> None:
        _, _, stage, _, _, t0, t_end, trace, status, fault, _ = done
        _fire(self.environment.events.request.fire, trace, stage, status, fault, (t_end - t0) * 1000)
        RECORDS.add(done)


def _read_body(raw: Any, trace: StreamTrace) -> None:
    """Feed the body to ``trace`` one socket read at a time, each stamped when it was read.

    Why not ``readline``: forty calls per answer of twenty events cost more than the events' parsing. This is
    ``readline``'s own loop (geventhttpclient's ``HTTPSocketResponse``: its body buffer, socket and parser) without
    the line search; should those internals change, it falls back to ``readline``.
    """
    buf = getattr(raw, "_body_buffer", None)
    if not isinstance(buf, bytearray) or not hasattr(raw, "_sock") or not hasattr(raw, "message_complete"):
        while line := raw.readline(b"\n"):
            trace.feed(line, time.monotonic())
        return
    size = max(RECV_SIZE, int(getattr(raw, "block_size", 0)))
    while True:
        if buf:
            data = bytes(buf)
            del buf[:]
            trace.feed(data, time.monotonic())
        if raw.message_complete:
            return
        sock = raw._sock
        if sock is None:
            raise HTTPConnectionClosed("connection closed.")
        try:
            raw.feed(sock.recv(size))  # b"" (closed): the parser completes the body or raises
        except BaseException:
            raw.release()
            raise


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
