"""FaultServer, driven by what a client really sees: the openai SDK, or urllib/http.client for raw bytes."""

from __future__ import annotations

import http.client
import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import openai
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from openai import OpenAI
from openai.types.chat import ChatCompletionMessageFunctionToolCall

from conformance.testing import Behaviour, FaultServer, ToolCallScript, unused_port

MESSAGES: list[Any] = [{"role": "user", "content": "Say hello."}]


def client(srv: FaultServer, timeout: float = 5.0) -> OpenAI:
    return OpenAI(base_url=srv.base_url, api_key="x", max_retries=0, timeout=timeout)


def post(srv: FaultServer, body: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
    """POST /v1/chat/completions with urllib; returns status, lower-cased headers and the raw body."""
    req = urllib.request.Request(srv.base_url + "/chat/completions", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read()
    except urllib.error.HTTPError as err:
        with err:
            return err.code, {k.lower(): v for k, v in err.headers.items()}, err.read()


def sse_data(raw: bytes) -> list[str]:
    """The `data:` payloads of an SSE body, in order (every event here is a single data line)."""
    events = [e for e in raw.decode().split("\n\n") if e]
    assert all(e.startswith("data: ") for e in events), events
    return [e.removeprefix("data: ") for e in events]


def stream_body(**extra: Any) -> dict[str, Any]:
    return {"model": "m", "messages": MESSAGES, "stream": True, **extra}


@pytest.fixture
def srv() -> Iterator[FaultServer]:
    with FaultServer() as server:
        yield server


# --- lifecycle ----------------------------------------------------------------------------------------------


def test_start_and_stop_are_fast_and_leave_nothing_behind() -> None:
    threads = threading.active_count()
    started = time.perf_counter()
    with FaultServer() as server:
        assert time.perf_counter() - started < 0.2
        assert server.base_url == f"http://127.0.0.1:{server.port}/v1"
        assert threading.active_count() == threads + 1
        with client(server) as c:
            c.models.list()
        stopping = time.perf_counter()
    assert time.perf_counter() - stopping < 0.2
    assert threading.active_count() == threads
    with pytest.raises(urllib.error.URLError), urllib.request.urlopen(server.base_url + "/models", timeout=2):
        pass


def test_stop_is_prompt_while_a_client_hangs_and_the_client_sees_the_drop() -> None:
    errors: list[BaseException] = []
    server = FaultServer(Behaviour(hang=True)).start()

    def call() -> None:
        with client(server, timeout=10) as c:
            try:
                c.chat.completions.create(model="m", messages=MESSAGES)
            except openai.APIError as exc:
                errors.append(exc)

    caller = threading.Thread(target=call)
    caller.start()
    deadline = time.monotonic() + 5
    while not server.requests and time.monotonic() < deadline:
        time.sleep(0.005)
    assert server.requests, "the hanging request never arrived"
    started = time.perf_counter()
    server.stop()
    assert time.perf_counter() - started < 0.2
    caller.join(5)
    assert not caller.is_alive()
    assert len(errors) == 1 and isinstance(errors[0], openai.APIConnectionError)


def test_a_held_answer_waits_for_its_event_and_a_stop_releases_it() -> None:
    released = threading.Event()
    got: list[tuple[int, dict[str, str], bytes]] = []
    with FaultServer(Behaviour(text="late", hold=released)) as server:
        caller = threading.Thread(target=lambda: got.append(post(server, {"model": "m", "messages": MESSAGES})))
        caller.start()
        deadline = time.monotonic() + 5
        while not server.requests and time.monotonic() < deadline:
            time.sleep(0.005)
        assert server.requests and caller.is_alive() and not got  # arrived, and held: not a byte answered
        released.set()
        caller.join(5)
        assert not caller.is_alive() and got[0][0] == 200 and b"late" in got[0][2]
    never = threading.Event()
    server = FaultServer(Behaviour(hold=never)).start()
    dropped: list[BaseException] = []

    def call() -> None:
        try:
            post(server, {"model": "m", "messages": MESSAGES})
        except OSError as exc:  # the connection closed without an answer
            dropped.append(exc)

    caller = threading.Thread(target=call)
    caller.start()
    deadline = time.monotonic() + 5
    while not server.requests and time.monotonic() < deadline:
        time.sleep(0.005)
    started = time.perf_counter()
    server.stop()  # a hold never released does not keep the server up
    assert time.perf_counter() - started < 1.0
    caller.join(5)
    assert not caller.is_alive() and len(dropped) == 1


# --- /v1/models ---------------------------------------------------------------------------------------------


def test_models_lists_the_configured_ids() -> None:
    ids = ["baseline-7b", "candidate-int4"]
    with FaultServer(models=ids, owned_by="team") as server, client(server) as c:
        models = c.models.list()
    assert [m.id for m in models.data] == ["baseline-7b", "candidate-int4"]
    assert {m.owned_by for m in models.data} == {"team"}
    assert server.requests[0].method == "GET" and server.requests[0].path == "/v1/models"


def test_models_can_answer_a_scripted_fault() -> None:
    fault = Behaviour(status=503, retry_after="30")
    with FaultServer(models_behaviour=fault) as server, client(server) as c, pytest.raises(
            openai.InternalServerError) as info:
        c.models.list()
    assert info.value.status_code == 503
    assert info.value.response.headers["retry-after"] == "30"


# --- the happy path -----------------------------------------------------------------------------------------


def test_stream_has_openai_chunk_shape_usage_and_done(srv: FaultServer) -> None:
    srv.set_behaviour(Behaviour(text="Hello, world!", chunk_chars=5))
    status, headers, raw = post(srv, stream_body(stream_options={"include_usage": True}))
    assert status == 200 and headers["content-type"] == "text/event-stream"
    data = sse_data(raw)
    assert data[-1] == "[DONE]"
    chunks = [json.loads(d) for d in data[:-1]]
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"}
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert [c["choices"][0]["delta"]["content"] for c in chunks[1:4]] == ["Hello", ", wor", "ld!"]
    assert chunks[4]["choices"][0]["finish_reason"] == "stop" and chunks[4]["choices"][0]["delta"] == {}
    assert chunks[5]["choices"] == [] and chunks[5]["usage"]["completion_tokens"] == 3
    assert len(chunks) == 6


def test_stream_without_include_usage_has_no_usage_chunk(srv: FaultServer) -> None:
    _, _, raw = post(srv, stream_body())
    chunks = [json.loads(d) for d in sse_data(raw)[:-1]]
    assert all("usage" not in c for c in chunks)
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"


def test_non_stream_is_a_chat_completion(srv: FaultServer) -> None:
    srv.set_behaviour(Behaviour(text="Bonjour", usage={"prompt_tokens": 7, "completion_tokens": 2,
                                                       "total_tokens": 9}, model="served-name"))
    with client(srv) as c:
        done = c.chat.completions.create(model="asked-name", messages=MESSAGES)
    assert done.object == "chat.completion" and done.model == "served-name"
    assert done.choices[0].message.content == "Bonjour" and done.choices[0].finish_reason == "stop"
    assert done.usage is not None and (done.usage.prompt_tokens, done.usage.total_tokens) == (7, 9)


def test_explicit_deltas_reasoning_and_streamed_tool_calls_reassemble(srv: FaultServer) -> None:
    args = {"city": "Paris", "unit": "celsius"}
    srv.set_behaviour(Behaviour(deltas=["正在", "查询"], reasoning=["think ", "hard"], model="served",
                                tool_calls=[ToolCallScript("get_weather", args, id="call_w", chunk_chars=4)]))
    with client(srv) as c:
        chunks = list(c.chat.completions.create(model="m", messages=MESSAGES, stream=True))
    deltas = [ch.choices[0].delta for ch in chunks]
    extra = [getattr(d, "model_extra", None) or {} for d in deltas]
    assert "".join(e.get("reasoning_content", "") for e in extra) == "think hard"
    assert [d.content for d in deltas if d.content] == ["正在", "查询"]
    pieces = [tc for d in deltas for tc in (d.tool_calls or [])]
    assert pieces[0].id == "call_w" and pieces[0].function is not None
    assert pieces[0].function.name == "get_weather"
    assert len(pieces) > 3  # arguments really arrive in pieces
    assert json.loads("".join(p.function.arguments or "" for p in pieces if p.function)) == args
    assert chunks[-1].choices[0].finish_reason == "tool_calls"
    assert {ch.model for ch in chunks} == {"served"}
    with client(srv) as c:
        message = c.chat.completions.create(model="m", messages=MESSAGES).choices[0].message
    assert message.tool_calls is not None
    call = message.tool_calls[0]
    assert isinstance(call, ChatCompletionMessageFunctionToolCall)
    assert json.loads(call.function.arguments) == args
    assert (message.model_extra or {})["reasoning_content"] == "think hard"


@settings(max_examples=25, deadline=None)
@given(text=st.text(max_size=60), chunk_chars=st.integers(1, 12))
def test_any_text_survives_the_stream_round_trip(text: str, chunk_chars: int) -> None:
    with FaultServer(Behaviour(text=text, chunk_chars=chunk_chars)) as server, client(server) as c:
        chunks = list(c.chat.completions.create(model="m", messages=MESSAGES, stream=True))
    pieces = [ch.choices[0].delta.content for ch in chunks[1:-1]]
    assert "".join(p or "" for p in pieces) == text
    assert all(0 < len(p or "") <= chunk_chars for p in pieces)


# --- timing -------------------------------------------------------------------------------------------------


def test_ttft_and_itl_are_injected_after_the_role_chunk(srv: FaultServer) -> None:
    srv.set_behaviour(Behaviour(deltas=["a", "b", "c"], ttft_ms=150, itl_ms=40))
    with client(srv) as c:
        started = time.perf_counter()
        arrivals = [(time.perf_counter() - started, ch) for ch in
                    c.chat.completions.create(model="m", messages=MESSAGES, stream=True)]
    first_token = next(t for t, ch in arrivals if ch.choices and ch.choices[0].delta.content)
    # Times since the request started are lower bounds the client's own jitter cannot break.
    assert first_token >= 0.15
    assert arrivals[-1][0] >= 0.15 + 2 * 0.04
    assert first_token - arrivals[0][0] >= 0.075  # the role chunk came before the TTFT delay, not after it


def test_headers_delay_slows_the_first_byte(srv: FaultServer) -> None:
    srv.set_behaviour(Behaviour(headers_delay_ms=150))
    with client(srv) as c:
        started = time.perf_counter()
        with c.chat.completions.with_streaming_response.create(model="m", messages=MESSAGES) as resp:
            assert time.perf_counter() - started >= 0.15
            assert resp.status_code == 200


def test_non_stream_waits_for_the_whole_generation(srv: FaultServer) -> None:
    srv.set_behaviour(Behaviour(deltas=["a", "b", "c"], ttft_ms=60, itl_ms=30))
    with client(srv) as c:
        started = time.perf_counter()
        c.chat.completions.create(model="m", messages=MESSAGES)
    assert time.perf_counter() - started >= 0.06 + 2 * 0.03


# --- status codes and scripting -----------------------------------------------------------------------------


@pytest.mark.parametrize(("status", "error"), [
    (401, openai.AuthenticationError), (404, openai.NotFoundError), (429, openai.RateLimitError),
    (500, openai.InternalServerError), (502, openai.InternalServerError), (503, openai.InternalServerError),
])
@pytest.mark.parametrize("stream", [False, True])
def test_status_codes_raise_the_sdk_error_with_an_openai_body(status: int, error: type[openai.APIStatusError],
                                                              stream: bool, srv: FaultServer) -> None:
    srv.set_behaviour(Behaviour(status=status, retry_after="2", error_message="nope"))
    with client(srv) as c, pytest.raises(error) as info:
        c.chat.completions.create(model="m", messages=MESSAGES, stream=stream)
    assert info.value.status_code == status
    assert info.value.response.headers["retry-after"] == "2"
    assert isinstance(info.value.body, dict) and info.value.body["message"] == "nope"


def test_a_sequence_is_consumed_then_the_default_answers() -> None:
    script = [Behaviour(status=503, retry_after="1"), Behaviour(status=429)]
    with FaultServer(script, default=Behaviour(text="ok")) as server, client(server) as c:
        outcomes: list[int | str] = []
        for _ in range(4):
            try:
                answer = c.chat.completions.create(model="m", messages=MESSAGES)
                outcomes.append(answer.choices[0].message.content or "")
            except openai.APIStatusError as exc:
                outcomes.append(exc.status_code)
    assert outcomes == [503, 429, "ok", "ok"]


def test_a_callable_sees_the_request_and_its_index() -> None:
    seen: list[tuple[str, int]] = []

    def script(request: dict[str, Any], n: int) -> Behaviour:
        seen.append((request["model"], n))
        return Behaviour(status=503, retry_after="1") if n < 2 else Behaviour(text=f"attempt {n}")

    with FaultServer(script) as server, client(server) as c:
        for _ in range(2):
            with pytest.raises(openai.InternalServerError) as info:
                c.chat.completions.create(model="m", messages=MESSAGES)
            assert info.value.response.headers["retry-after"] == "1"
        answer = c.chat.completions.create(model="m", messages=MESSAGES)
        assert answer.choices[0].message.content == "attempt 2"
    assert seen == [("m", 0), ("m", 1), ("m", 2)]
    last = server.requests[-1]
    assert (last.method, last.path) == ("POST", "/v1/chat/completions")
    assert last.headers["authorization"] == "Bearer x" and last.body["messages"] == MESSAGES


def test_a_raising_script_answers_500_instead_of_hanging() -> None:
    def script(request: dict[str, Any], n: int) -> Behaviour:
        raise KeyError("oops")

    with FaultServer(script) as srv, client(srv) as c, pytest.raises(openai.InternalServerError) as info:
        c.chat.completions.create(model="m", messages=MESSAGES)
    assert "KeyError" in str(info.value)


# --- faults -------------------------------------------------------------------------------------------------


def test_reset_mid_stream_raises_a_transport_error_after_k_chunks(srv: FaultServer) -> None:
    srv.set_behaviour(Behaviour(text="abcdefghijkl", chunk_chars=2, reset_after_chunks=3))
    received: list[Any] = []
    with client(srv) as c, pytest.raises(openai.APIConnectionError) as info:
        for chunk in c.chat.completions.create(model="m", messages=MESSAGES, stream=True):
            received.append(chunk)
    assert len(received) == 3 and received[-1].choices[0].delta.content == "cd"
    assert isinstance(info.value.__cause__, Exception) and "reset" in str(info.value.__cause__).lower()


def test_reset_without_stream_is_a_connection_error(srv: FaultServer) -> None:
    srv.set_behaviour(Behaviour(reset_after_chunks=0))
    with client(srv) as c, pytest.raises(openai.APIConnectionError):
        c.chat.completions.create(model="m", messages=MESSAGES)


@pytest.mark.parametrize(("k", "sent"), [(3, 3), (100, 5)])  # 100: all of the role + 4 content chunks
def test_truncated_stream_ends_cleanly_without_finish_or_done(k: int, sent: int, srv: FaultServer) -> None:
    srv.set_behaviour(Behaviour(text="abcdefgh", chunk_chars=2, truncate_after_chunks=k))
    status, _, raw = post(srv, stream_body(stream_options={"include_usage": True}))
    data = sse_data(raw)
    assert status == 200 and len(data) == sent and "[DONE]" not in data
    assert all(json.loads(d)["choices"][0]["finish_reason"] is None for d in data)
    with client(srv) as c:
        chunks = list(c.chat.completions.create(model="m", messages=MESSAGES, stream=True))
    assert len(chunks) == sent and chunks[-1].choices[0].finish_reason is None


def test_stall_mid_stream_is_a_read_timeout(srv: FaultServer) -> None:
    srv.set_behaviour(Behaviour(stall_after_chunks=2))
    received: list[Any] = []
    with client(srv, timeout=0.3) as c, pytest.raises(openai.APITimeoutError):
        for chunk in c.chat.completions.create(model="m", messages=MESSAGES, stream=True):
            received.append(chunk)
    assert len(received) == 2


def test_hang_is_a_timeout_before_any_byte() -> None:
    with FaultServer(models_behaviour=Behaviour(hang=True)) as server, client(server, timeout=0.2) as c:
        started = time.perf_counter()
        with pytest.raises(openai.APITimeoutError):
            c.models.list()
    assert time.perf_counter() - started >= 0.2


def test_unused_port_refuses_connections() -> None:
    url = f"http://127.0.0.1:{unused_port()}/v1"
    with OpenAI(base_url=url, api_key="x", max_retries=0) as c, pytest.raises(
            openai.APIConnectionError) as info:
        c.models.list()
    assert "refused" in repr(info.value.__cause__).lower()


@pytest.mark.parametrize("stream", [False, True])
def test_invalid_json_breaks_parsing(stream: bool, srv: FaultServer) -> None:
    srv.set_behaviour(Behaviour(invalid_json=True))
    _, _, raw = post(srv, stream_body(stream=stream))
    payloads = sse_data(raw)[1:2] if stream else [raw.decode()]
    with pytest.raises(ValueError):
        json.loads(payloads[0])
    with client(srv) as c, pytest.raises(ValueError):
        response: Any = c.chat.completions.create(model="m", messages=MESSAGES, stream=stream)
        if stream:
            list(response)


def test_content_type_and_body_overrides(srv: FaultServer) -> None:
    srv.set_behaviour(Behaviour(content_type="text/html", body="<html>Sign in</html>"))
    status, headers, raw = post(srv, stream_body(stream=False))
    assert (status, headers["content-type"], raw) == (200, "text/html", b"<html>Sign in</html>")
    srv.set_behaviour(Behaviour(content_type="application/octet-stream"))
    status, headers, raw = post(srv, stream_body())
    assert headers["content-type"] == "application/octet-stream" and sse_data(raw)[-1] == "[DONE]"


@pytest.mark.parametrize("stream", [False, True])
def test_empty_choices(stream: bool, srv: FaultServer) -> None:
    srv.set_behaviour(Behaviour(empty_choices=True))
    with client(srv) as c:
        answer: Any = c.chat.completions.create(model="m", messages=MESSAGES, stream=stream)
        chunks = list(answer) if stream else [answer]
    assert chunks and all(ch.choices == [] for ch in chunks)


# --- HTTP plumbing and throughput ---------------------------------------------------------------------------


def test_unknown_paths_are_openai_404s_and_connections_are_kept_alive(srv: FaultServer) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=5)
    try:
        conn.request("GET", "/v1/models")
        assert conn.getresponse().read() and conn.sock is not None
        sock = conn.sock
        conn.request("POST", "/v1/embeddings", body=b"{}", headers={"Content-Type": "application/json"})
        missing = conn.getresponse()
        assert missing.status == 404 and "error" in json.loads(missing.read())
        conn.request("POST", "/v1/chat/completions", body=json.dumps(stream_body()).encode())
        assert sse_data(conn.getresponse().read())[-1] == "[DONE]"
        assert conn.sock is sock
    finally:
        conn.close()
    assert [r.path for r in srv.requests] == ["/v1/models", "/v1/embeddings", "/v1/chat/completions"]


def test_sixty_four_concurrent_streams(srv: FaultServer) -> None:
    import asyncio

    async def run() -> list[str]:
        async with openai.AsyncOpenAI(base_url=srv.base_url, api_key="x", max_retries=0) as c:
            async def one() -> str:
                stream = await c.chat.completions.create(model="m", messages=MESSAGES, stream=True)
                return "".join([ch.choices[0].delta.content or "" async for ch in stream])
            return await asyncio.gather(*(one() for _ in range(64)))

    assert asyncio.run(run()) == ["Hello from the fault server."] * 64
    assert len(srv.requests) == 64
