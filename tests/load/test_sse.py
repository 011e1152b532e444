"""The SSE timing parser the locustfile feeds: what counts as a token, what ends a stream, how faults read — and
that its fast path (templates, one decode per socket read) reads every stream exactly as a plain ``json.loads`` of
every event would, however the body is cut into reads."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

import conformance.load.sse as sse
from conformance.load.sse import StreamTrace
from conformance.load.sse_shapes import READ_KEYS, ShapeTable, learn_shape
from conformance.load.stats import RECORD_KEYS, expand_record
from conformance.response import classify_status
from tests.load.sse_reference import ReferenceTrace

ENVELOPE = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1700000000, "model": "m"}


def event(delta: dict[str, Any] | None = None, finish: str | None = None, **extra: Any) -> str:
    choices = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}]
    return "data: " + json.dumps({"object": "chat.completion.chunk", "choices": choices, **extra}) + "\n"


def feed(trace: StreamTrace, events: list[tuple[float, str]]) -> StreamTrace:
    """Feed (time s, event text) pairs the way a socket delivers them: each event and its blank line in one read."""
    for t, text in events:
        trace.feed((text + "\n").encode(), t)
    trace.flush(events[-1][0] if events else trace.t0)
    return trace


def timings(trace: StreamTrace) -> dict[str, Any]:
    return expand_record(trace.record())


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
    rec = timings(trace)
    assert rec["ttfc_ms"] == pytest.approx(10.0, abs=1e-3)  # the role chunk is a chunk, not a token
    assert rec["ttft_ms"] == pytest.approx(50.0, abs=1e-3)
    assert rec["e2el_ms"] == pytest.approx((end - t0) * 1000, abs=1e-3)  # not the finish, usage or [DONE] events
    assert rec["text"] == "".join(deltas)
    assert trace.n_out == ((3 * len(deltas), "usage") if usage else (len(deltas), "chunks"))
    assert trace.fault() == (None, None) and trace.done
    assert len(rec["itl_ms"]) == len(deltas) - 1 and rec["tokens_source"] == ("usage" if usage else "chunks")
    assert all(g == pytest.approx(gap * 1000, abs=2e-3) for g in rec["itl_ms"])


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
    ([], "bad_response"),  # nothing at all: not an answer (the SDK client says the same: conformance.stream)
    (['data: {"choices": [], "usage": {"completion_tokens": 0}}\n'], "bad_response"),
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


# ------------------------------------------------------------------------------------------ raw records


def test_the_raw_record_keeps_times_as_us_and_read_records_derives_the_rest() -> None:
    trace = feed(StreamTrace(10.0), [(10.0105, event({"role": "assistant", "content": ""})),
                                     (10.020, event({"content": "a"})), (10.0215, event({"content": "b"})),
                                     (10.025, event({"content": "c"})), (10.026, event({}, "stop"))])
    raw = {"seq": 1, "case_id": "c", "stage": 0, "worker": 9, "t_start_us": 1_700_000_000_123_456,
           "t_mono_us": 10_000_000, "t_offset_us": 2_500_000, "queue_us": 1500, "elapsed_us": 26_250,
           "status": 200, "fault": None, "error": None, **trace.record()}
    assert raw["ttfc_us"] == 10500 and raw["tok_us"] == [20000, 21500, 25000]
    rec = expand_record(json.loads(json.dumps(raw)))
    assert tuple(rec) == RECORD_KEYS  # the keys, in their order, of every record
    assert (rec["t_start"], rec["t_mono"], rec["t_offset_s"], rec["queue_ms"], rec["elapsed_ms"]) == (
        1_700_000_000.123456, 10.0, 2.5, 1.5, 26.25)
    assert (rec["ttfc_ms"], rec["ttft_ms"], rec["e2el_ms"], rec["tpot_ms"]) == (10.5, 20.0, 25.0, 2.5)
    assert (rec["n_out"], rec["tokens_source"], rec["n_token_events"], rec["n_events"]) == (3, "chunks", 3, 5)
    assert rec["itl_ms"] == [1.5, 3.5] and rec["text"] == "abc" and rec["finish_reason"] == "stop"
    assert expand_record(rec) is rec  # an expanded (or older) record passes through


def test_a_stream_shaped_like_vllm_is_parsed_in_full_only_the_first_time(
        monkeypatch: pytest.MonkeyPatch) -> None:
    parsed: list[str] = []
    real = sse._decode

    def counting(data: str) -> Any:
        parsed.append(data)
        return real(data)

    monkeypatch.setattr(sse, "_decode", counting)
    shapes = ShapeTable()
    events = [{"role": "assistant", "content": ""}, *({"content": f"tok{i} "} for i in range(16)),
              ("finish", "stop"), ("usage", 16), "[DONE]"]
    first = StreamTrace(0.0, shapes=shapes)
    first.feed(serialise(events, ENVELOPE, compact=True), 0.001)
    first.flush(0.002)
    assert first.fault() == (None, None) and "".join(first.content).startswith("tok0 tok1 ")
    # role, first token, finish: each parsed, then its shape proven by a probe; usage parsed; the rest: the template
    assert len(parsed) == 2 * 3 + 1
    parsed.clear()
    second = StreamTrace(0.0, shapes=shapes)  # the next answer: another id, another time, the same shapes
    second.feed(serialise(events, {**ENVELOPE, "id": "chatcmpl-2", "created": 1700000007}, compact=True), 0.001)
    second.flush(0.002)
    assert second.record() == first.record() | {"ttfc_us": second.ttfc_us, "tok_us": second.token_us}
    assert len(parsed) == 1  # only the usage event (its figures matter: parsed every time)


# ------------------------------------------------------------------------------------------ fast path ≡ json

TEXT = st.text(st.characters(codec="utf-8"), max_size=8) | st.sampled_from(['"', "\\", "\\u0041", "é", "😀", "\x01"])


@st.composite
def stream_events(draw: st.DrawFn) -> list[Any]:
    """The events of one stream: dict deltas, and tuples or strings for the rest (see :func:`serialise`)."""
    one = st.one_of(
        TEXT.map(lambda t: {"content": t}), TEXT.map(lambda t: {"reasoning_content": t}),
        TEXT.map(lambda t: {"reasoning": t}), st.just({"role": "assistant", "content": ""}),
        st.builds(lambda i, name, args: {"tool_calls": [{"index": i, "id": f"call_{i}", "function": {
            "name": name, "arguments": args}}]}, st.integers(0, 1), TEXT, TEXT),
        st.tuples(st.just("finish"), st.sampled_from(["stop", "length", "tool_calls"])),
        st.tuples(st.just("usage"), st.integers(0, 50)),
        st.tuples(st.just("error"), TEXT), st.tuples(st.just("raw_control_char"), TEXT),
        st.tuples(st.just("duplicate_content"), TEXT, TEXT), st.tuples(st.just("multiline"), TEXT),
        st.tuples(st.just("invalid_utf8"), TEXT),
        st.sampled_from(["[DONE]", "{not json", "[1, 2]", ": keep-alive", "event: x", "data:no-space"]),
    )
    tokens = draw(st.lists(TEXT.map(lambda t: {"content": t}), max_size=6))  # runs of plain tokens, as usual
    return draw(st.permutations([*draw(st.lists(one, max_size=12)), *tokens]))


def serialise(events: list[Any], envelope: dict[str, Any], *, compact: bool = False, ascii_only: bool = True,
              crlf: bool = False, nonce: bool = False) -> bytes:
    """An SSE body as a server would send it: one ``data:`` line per event, a blank line after each."""
    nl = "\r\n" if crlf else "\n"
    seps = (",", ":") if compact else (", ", ": ")
    out: list[bytes] = []

    def dumps(obj: Any) -> str:
        return json.dumps(obj, separators=seps, ensure_ascii=ascii_only)

    def chunk(delta: Any = None, finish: str | None = None, **extra: Any) -> dict[str, Any]:
        choices = [] if delta is None else [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]
        nonce_field = {"obfuscation": str(len(out)), "n": len(out)} if nonce else {}
        return {**envelope, "choices": choices, **nonce_field, **extra}

    for i, ev in enumerate(events):
        kind = ev[0] if isinstance(ev, tuple) else None
        if isinstance(ev, dict):
            data = dumps(chunk(ev))
        elif kind == "finish":
            data = dumps(chunk({}, ev[1]))
        elif kind == "usage":
            n = ev[1]
            details = {"prompt_tokens_details": {"cached_tokens": n % 2}} if n % 3 == 0 else {}
            data = dumps(chunk(None, usage={"prompt_tokens": n % 7, "completion_tokens": n, "total_tokens": n + 9,
                                            **details}))
        elif kind == "error":
            data = dumps({"error": {"message": ev[1]}})
        elif kind == "raw_control_char":  # invalid JSON: a control character inside the string
            data = dumps(chunk({"content": ev[1] + "\x01"})).replace("\\u0001", "\x01")
        elif kind == "duplicate_content":  # the last one wins
            data = dumps(chunk({"content": ev[1]})).replace('"content"', f'"content"{seps[1]}{dumps(ev[2])}'
                                                            f'{seps[0]}"content"', 1)
        elif kind == "multiline":
            out.append("".join(f"data: {line}{nl}" for line in json.dumps(chunk({"content": ev[1]}),
                                                                            indent=1).splitlines()).encode())
            out.append(nl.encode())
            continue
        elif kind == "invalid_utf8":
            out.append(f"data: {dumps(chunk({'content': ev[1] + '@'}))}".replace("@", "\udcff").encode(
                "utf-8", "surrogateescape") + (nl + nl).encode())
            continue
        elif isinstance(ev, str) and ev.startswith((":", "event:", "data:")):
            out.append(f"{ev}{nl}{nl if i % 2 else ''}".encode())
            continue
        else:
            data = ev
        out.append(f"data: {data}{nl}{nl}".encode())
    return b"".join(out)


ENVELOPES = st.fixed_dictionaries({}, optional={
    "id": TEXT, "object": st.sampled_from(["chat.completion.chunk", "chat.completion.chunk", "error"]),
    "created": st.integers(-(2**40), 2**40), "model": TEXT, "system_fingerprint": TEXT | st.none(),
    "temperature": st.floats(0, 2), "stream": st.booleans(), "reasoning": TEXT})  # the last: not the delta's


@st.composite
def bodies(draw: st.DrawFn) -> tuple[bytes, list[int]]:
    """A body and where the socket reads cut it (anywhere: inside a line, a CRLF, a UTF-8 character)."""
    body = serialise(draw(stream_events()), draw(ENVELOPES), compact=draw(st.booleans()),
                     ascii_only=draw(st.booleans()), crlf=draw(st.booleans()), nonce=draw(st.booleans()))
    if draw(st.booleans()):  # the connection dropped somewhere
        body = body[:draw(st.integers(0, len(body)))]
    cuts = sorted(draw(st.lists(st.integers(0, len(body)), max_size=12)))
    return body, cuts


def read(body: bytes, cuts: list[int], *, templates: bool = True,
         shapes: ShapeTable | None = None) -> tuple[StreamTrace, float]:
    """Feed ``body`` in the reads ``cuts`` makes, read i at 100 s + i ms; returns the trace and the end time."""
    trace = StreamTrace(100.0, templates=templates, shapes=shapes or ShapeTable())
    bounds = [0, *cuts, len(body)]
    for i, (a, b) in enumerate(itertools.pairwise(bounds)):
        trace.feed(body[a:b], 100.0 + (i + 1) / 1000)
    end = 100.0 + (len(bounds) + 1) / 1000
    trace.flush(end)
    return trace, end


def read_by_lines(body: bytes, cuts: list[int], end: float) -> ReferenceTrace:
    """The reference, line by line: each line at the time of the read that brought its newline."""
    ref = ReferenceTrace(100.0)
    bounds = [0, *cuts, len(body)]
    start = 0
    while (nl := body.find(b"\n", start)) >= 0:
        read_no = next(i for i, (a, b) in enumerate(itertools.pairwise(bounds)) if a <= nl < b)
        ref.feed_line(body[start:nl + 1], 100.0 + (read_no + 1) / 1000)
        start = nl + 1
    if start < len(body):
        ref.feed_line(body[start:], end)
    ref.flush(end)
    return ref


# Three answers in a row through one shape table: what the first teaches must read the next ones right too.
ANSWERS = st.lists(bodies(), min_size=3, max_size=3)


@given(ANSWERS)
@example([(serialise([{"content": "a"}, {"content": 'b"'}, {"content": "c\\"}, ("finish", "stop")], ENVELOPE),
           [40, 41, 180])] * 3)
def test_the_fast_path_reads_every_stream_as_a_full_json_parse_does(answers: list[tuple[bytes, list[int]]]) -> None:
    shapes = ShapeTable()
    for body, cuts in answers:
        fast, _ = read(body, cuts, shapes=shapes)
        full, _ = read(body, cuts, templates=False)
        assert fast.record() == full.record()
        assert (fast.fault(), fast.done, fast.n_events) == (full.fault(), full.done, full.n_events)


@given(ANSWERS)
def test_any_chunking_reads_as_the_line_by_line_json_reference(answers: list[tuple[bytes, list[int]]]) -> None:
    shapes = ShapeTable()
    for body, cuts in answers:
        trace, end = read(body, cuts, shapes=shapes)
        reference = read_by_lines(body, cuts, end)
        ref = reference.record()
        rec = expand_record(trace.record())
        assert {k: rec[k] for k in ref} == ref
        assert (trace.fault(), trace.done) == (reference.fault(), reference.done)


@given(text=TEXT.filter(bool), key=st.sampled_from(["content", "reasoning_content", "reasoning"]),
       envelope=ENVELOPES, other=ENVELOPES, compact=st.booleans(), ascii_only=st.booleans())
def test_a_shape_is_learnt_only_when_the_substitution_proof_holds(
        text: str, key: str, envelope: dict[str, Any], other: dict[str, Any], compact: bool, ascii_only: bool) -> None:
    seps = (",", ":") if compact else (", ", ": ")

    def payload(env: dict[str, Any], text: str) -> str:
        return json.dumps({**env, "choices": [{"index": 0, "delta": {key: text}, "finish_reason": None}]},
                          separators=seps, ensure_ascii=ascii_only)

    data = payload(envelope, text)
    shape = learn_shape(data, json.loads(data), key, None, json.loads)
    if "\x00" in data or "\\u0000" in data or ("reasoning" in envelope and key == "reasoning"):
        assert shape is None  # the probe's mark could come from elsewhere; a top-level field named like the text
        return
    assert shape is not None and shape.match(data) is not None
    # another answer: other envelope values, another text — recognised exactly when json.loads agrees
    again = payload(other, "x" + text)
    hit = shape.match(again)
    if hit is not None:
        expected = json.loads(again)
        assert hit[0] == "x" + text == expected["choices"][0]["delta"][key]
        assert {k: v for k, v in expected.items() if k in READ_KEYS} == {
            k: v for k, v in json.loads(data).items() if k in READ_KEYS} | {"choices": expected["choices"]}
    # the same field written twice (json.loads keeps the last), or a top-level id twice: the proof fails
    for name in (key, "id") if "id" in envelope else (key,):
        twice = data.replace(f'"{name}"', f'"{name}"{seps[1]}"first"{seps[0]}"{name}"', 1)
        assert learn_shape(twice, json.loads(twice), key, None, json.loads) is None
