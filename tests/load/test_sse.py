"""The SSE timing parser the locustfile feeds: what counts as a token, what ends a stream, how faults read."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conformance.endpoints.base import classify_status
from conformance.load.sse import StreamTrace


def event(delta: dict[str, Any] | None = None, finish: str | None = None, **extra: Any) -> str:
    choices = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}]
    return "data: " + json.dumps({"object": "chat.completion.chunk", "choices": choices, **extra}) + "\n"


def feed(trace: StreamTrace, events: list[tuple[float, str]]) -> StreamTrace:
    """Feed (time s, event text) pairs the way a socket delivers them: the data line, then the blank line."""
    for t, text in events:
        for line in text.splitlines(keepends=True):
            trace.feed_line(line.encode(), t)
        trace.feed_line(b"\n", t)
    trace.flush(events[-1][0] if events else trace.t0)
    return trace


@given(deltas=st.lists(st.text(min_size=1, max_size=6), min_size=1, max_size=30),
       gap=st.floats(0.001, 0.5), usage=st.booleans())
def test_timings_text_and_token_count_of_a_plain_stream(deltas: list[str], gap: float, usage: bool) -> None:
    t0 = 100.0
    events = [(t0 + 0.01, event({"role": "assistant", "content": ""}))]
    events += [(t0 + 0.05 + i * gap, event({"content": d})) for i, d in enumerate(deltas)]
    end = events[-1][0]
    events.append((end + 0.001, event({}, "stop")))
    if usage:
        events.append((end + 0.002, event(None, usage={"completion_tokens": 3 * len(deltas)})))
    events.append((end + 0.003, "data: [DONE]\n"))
    trace = feed(StreamTrace(t0), events)
    assert trace.ttfc_ms == pytest.approx(10.0)  # the role chunk is a chunk, not a token
    assert trace.ttft_ms == pytest.approx(50.0)
    assert trace.e2el_ms == pytest.approx((end - t0) * 1000)  # not the finish, usage or [DONE] events
    assert "".join(trace.content) == "".join(deltas)
    assert trace.n_out == ((3 * len(deltas), "usage") if usage else (len(deltas), "chunks"))
    assert trace.fault() == (None, None) and trace.done
    rec = trace.record()
    assert len(rec["itl_ms"]) == len(deltas) - 1 and rec["tokens_source"] == ("usage" if usage else "chunks")
    assert all(g == pytest.approx(gap * 1000, abs=1e-2) for g in rec["itl_ms"])


def test_reasoning_and_tool_call_deltas_are_tokens() -> None:
    trace = feed(StreamTrace(0.0), [
        (0.01, event({"role": "assistant"})),
        (0.02, event({"reasoning_content": "think"})),
        (0.03, event({"reasoning": " more"})),
        (0.04, event({"tool_calls": [{"index": 0, "id": "call_1", "function": {"name": "get_weather",
                                                                              "arguments": ""}}]})),
        (0.05, event({"tool_calls": [{"index": 0, "function": {"arguments": '{"city": "Paris"}'}}]})),
        (0.06, event({}, "tool_calls")),
    ])
    assert trace.ttft_ms == pytest.approx(20.0) and trace.e2el_ms == pytest.approx(50.0)
    assert trace.n_out == (4, "chunks")
    assert trace.record()["tool_calls"] == [{"id": "call_1", "type": "function", "function": {
        "name": "get_weather", "arguments": '{"city": "Paris"}'}}]
    assert trace.record()["reasoning"] == "think more"


def test_data_lines_of_one_event_are_joined_and_comments_ignored() -> None:
    trace = StreamTrace(0.0)
    payload = json.dumps({"choices": [{"delta": {"content": "hi"}, "finish_reason": "stop"}]}, indent=1)
    for line in [": keep-alive\n", *(f"data: {x}\n" for x in payload.splitlines()), "\n"]:
        trace.feed_line(line, 0.5)
    assert trace.n_events == 1 and "".join(trace.content) == "hi" and trace.fault() == (None, None)


@pytest.mark.parametrize(("events", "fault"), [
    ([event({"content": "a"})], "truncated_stream"),  # cut before finish_reason
    ([event({"content": "a"}), 'data: {"error": {"message": "engine died"}}\n'], "server_error"),
    ([event({"content": "a"}), "data: {not json\n", event({}, "stop")], "bad_response"),
    ([], "truncated_stream"),
])
def test_fault_of_a_stream_read_to_its_end(events: list[str], fault: str) -> None:
    trace = feed(StreamTrace(0.0), [(0.01 * (i + 1), e) for i, e in enumerate(events)])
    assert trace.fault()[0] == fault


def test_finish_reason_length_is_an_answer_not_a_fault() -> None:
    trace = feed(StreamTrace(0.0), [(0.01, event({"content": "a"})), (0.02, event({}, "length"))])
    assert trace.fault() == (None, None) and trace.finish_reason == "length"


@pytest.mark.parametrize(("status", "fault"), [(429, "rate_limited"), (503, "unavailable_503"), (401, "auth"),
                                             (403, "auth"), (500, "server_error"), (504, "server_error"),
                                             (400, "client_error"), (404, "client_error")])
def test_status_classes(status: int, fault: str) -> None:
    assert classify_status(status) == fault
