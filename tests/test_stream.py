"""conformance.stream: what a streamed answer is, decided once for the SDK client and the Locust driver."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conformance.endpoints.config import EndpointConfig
from conformance.endpoints.openai import OpenAIEndpoint
from conformance.goldens.model import Case
from conformance.load.sse import StreamTrace
from conformance.response import Fault
from conformance.stream import ToolCalls, output_tokens, stream_fault
from conformance.testing.faultserver import Behaviour, FaultServer, ToolCallScript

NAME = "create_ticket"


def test_a_name_repeated_in_every_delta_is_set_once() -> None:
    """Finding 5 of the verdict-trust issue: llama-cpp-python repeats the name in every delta, and both readers
    concatenated it (names of 480–1,296 characters came out)."""
    calls = ToolCalls()
    for piece in ('{"cat', 'egory": ', '"退款"}'):
        calls.add(0, "call_0", NAME, piece)
    (call,) = calls.calls()
    assert call["function"] == {"name": NAME, "arguments": '{"category": "退款"}'} and call["id"] == "call_0"
    assert calls.defects == []


def test_a_later_different_name_is_a_defect_not_glued_on() -> None:
    calls = ToolCalls()
    calls.add(0, None, "a", "{}")
    calls.add(0, None, "b", "")
    assert calls.calls()[0]["function"]["name"] == "a" and "renamed 'a' to 'b'" in calls.defects[0]


@given(st.lists(st.tuples(st.integers(0, 3), st.text(max_size=5)), max_size=30))
def test_arguments_are_appended_per_index_and_names_never_grow(pieces: list[tuple[int, str]]) -> None:
    calls = ToolCalls()
    for idx, piece in pieces:
        calls.add(idx, None, f"fn{idx}", piece)
    for call in calls.calls():
        idx = int(call["function"]["name"].removeprefix("fn"))
        assert call["function"]["arguments"] == "".join(p for i, p in pieces if i == idx)


def test_stream_faults_and_token_counts() -> None:
    assert stream_fault(error="boom") == (Fault.SERVER_ERROR, "error event in stream: boom")
    assert stream_fault(saw_choice=False)[0] == Fault.BAD_RESPONSE  # type: ignore[index]
    assert stream_fault(finish_reason=None, n_events=3)[0] == Fault.TRUNCATED_STREAM  # type: ignore[index]
    assert stream_fault(finish_reason="length") is None
    assert output_tokens({"completion_tokens": 7}, 3) == (7, "usage")
    assert output_tokens({"completion_tokens": True}, 3) == (3, "chunks")


def _repeating_server() -> FaultServer:
    call = ToolCallScript(NAME, {"category": "退款", "priority": "high"}, chunk_chars=4, repeat_name=True)
    return FaultServer(Behaviour(text="", tool_calls=[call]), models=["m"])


def test_the_sdk_client_reads_a_repeated_name_once() -> None:
    import asyncio

    case = Case(system="s", set_name="x", id="c", messages=({"role": "user", "content": "退款"},),
                params={"max_tokens": 32})
    with _repeating_server() as srv:
        async def ask() -> object:
            async with OpenAIEndpoint(EndpointConfig(name="e", base_url=srv.base_url, model="m")) as ep:
                return await ep.complete(case)

        resp = asyncio.run(ask())
    (call,) = resp.tool_calls  # type: ignore[attr-defined]
    assert call["function"]["name"] == NAME
    assert json.loads(call["function"]["arguments"]) == {"category": "退款", "priority": "high"}


@pytest.mark.parametrize("templates", [True, False])
def test_the_locust_driver_reads_a_repeated_name_once(templates: bool) -> None:
    import urllib.request

    with _repeating_server() as srv:
        body = json.dumps({"model": "m", "stream": True, "messages": [{"role": "user", "content": "x"}]}).encode()
        req = urllib.request.Request(srv.base_url + "/chat/completions", data=body,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as fh:
            raw = fh.read()
    trace = StreamTrace(0.0, templates=templates)
    trace.feed(raw, 0.1)
    trace.flush(0.2)
    (call,) = trace.record()["tool_calls"]
    assert call["function"]["name"] == NAME and trace.fault() == (None, None)
