"""A fault-injecting, OpenAI-compatible HTTP server on 127.0.0.1, for the harness's own tests and benchmarks.

Why hand-rolled HTTP/1.1 on asyncio streams rather than ``http.server`` or a framework: the faults worth
testing live *below* the JSON -- a slow first byte, a TCP reset in the middle of a chunked body, a body that
ends cleanly but without ``[DONE]`` -- and a framework would hide or repair them. One event-loop thread also
keeps the instant path cheap enough to be the "endpoint that answers instantly" when benchmarking clients:
responses are encoded once per behaviour and cached, and one without delays goes out in a single write.

Usage::

    with FaultServer(lambda req, n: Behaviour(status=503, retry_after="1") if n < 2 else Behaviour()) as srv:
        client = OpenAI(base_url=srv.base_url, api_key="x", max_retries=0)

Timing model of a stream: ``headers_delay_ms`` → status line → role chunk → ``ttft_ms`` → first token chunk →
``itl_ms`` between token chunks → finish chunk → usage chunk (if asked) → ``data: [DONE]``. Chunk counts used
by the faults count SSE events on the wire, the role chunk included. Outside SSE (non-stream completions,
errors, /v1/models) the connection faults cut the body in half instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import struct
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, TypeAlias

HOST = "127.0.0.1"
_TERMINATOR = b"0\r\n\r\n"
_GARBAGE = b'{"id": "chatcmpl-garbage", "choices": [<html>upstream hiccup'
_ERROR_KINDS = {400: ("invalid_request_error", None), 401: ("invalid_request_error", "invalid_api_key"),
                404: ("invalid_request_error", "model_not_found"), 429: ("requests", "rate_limit_exceeded")}


@dataclass(frozen=True)
class ToolCallScript:
    """One tool call the fake model makes; ``arguments`` stream in ``chunk_chars`` pieces, as vLLM does
    (``repeat_name``: every piece carries the whole name again, as llama-cpp-python's server does)."""

    name: str
    arguments: str | Mapping[str, Any] = "{}"
    id: str | None = None
    chunk_chars: int = 8
    repeat_name: bool = False

    def arguments_json(self) -> str:
        args = self.arguments
        return args if isinstance(args, str) else json.dumps(args, ensure_ascii=False)


@dataclass(frozen=True)
class Behaviour:
    """How the server answers one request: the payload, its timing and the fault to inject (see module doc).

    ``status`` ≠ 200 answers an OpenAI-style error JSON (``error_message`` overrides its text). ``body`` sends
    those exact bytes instead of the generated body, ``content_type`` overrides the header (e.g. an HTML page
    from a proxy). ``reset_after_chunks`` aborts the TCP connection with RST (SO_LINGER 0) without ending the
    chunked encoding; ``truncate_after_chunks`` ends the HTTP message cleanly with no finish chunk, usage or
    ``[DONE]``; ``stall_after_chunks`` stops sending mid-stream until the server stops (a read timeout);
    ``hang`` never answers at all (a timeout before the first byte). ``hold`` keeps the answer back, before its
    first byte, until the test sets that event (or the server stops): "answers still in flight" that a test can
    count on, whatever the machine's speed — e.g. until an interrupt has been sent to the client.
    """

    text: str = "Hello from the fault server."
    deltas: Sequence[str] | None = None
    chunk_chars: int = 8
    reasoning: Sequence[str] = ()
    tool_calls: Sequence[ToolCallScript] = ()
    finish_reason: str | None = None
    usage: Mapping[str, int] | None = None
    model: str | None = None
    ttft_ms: float = 0.0
    itl_ms: float = 0.0
    headers_delay_ms: float = 0.0
    status: int = 200
    error_message: str | None = None
    retry_after: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    content_type: str | None = None
    body: str | bytes | None = None
    reset_after_chunks: int | None = None
    truncate_after_chunks: int | None = None
    stall_after_chunks: int | None = None
    invalid_json: bool = False
    empty_choices: bool = False
    hang: bool = False
    hold: threading.Event | None = None

    def content_deltas(self) -> list[str]:
        if self.deltas is not None:
            return list(self.deltas)
        step = max(1, self.chunk_chars)
        return [self.text[i : i + step] for i in range(0, len(self.text), step)]

    @property
    def cut_after(self) -> int | None:
        """Where the stream stops early, whichever fault asks for it (at most one should be set)."""
        for k in (self.reset_after_chunks, self.truncate_after_chunks, self.stall_after_chunks):
            if k is not None:
                return max(0, k)
        return None


Script = Behaviour  # the brief's other name for the same thing
BehaviourSpec: TypeAlias = Behaviour | Sequence[Behaviour] | Callable[[dict[str, Any], int], Behaviour] | None


@dataclass(frozen=True)
class RecordedRequest:
    """What the server received; ``body`` is the parsed JSON (None when absent or not JSON)."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any
    raw_body: bytes = b""


@dataclass(frozen=True)
class _Event:
    frame: bytes  # one SSE event, already framed as an HTTP chunk
    kind: str  # role | token | garbage | finish | usage | done


class _Source:
    """Hands out behaviours: a default, a queue consumed one per request, or a callable(request_json, n)."""

    def __init__(self, spec: BehaviourSpec) -> None:
        self.default, self.queue, self.func, self.n = Behaviour(), list[Behaviour](), None, 0
        if isinstance(spec, Behaviour):
            self.default = spec
        elif callable(spec):
            self.func = spec
        elif spec is not None:
            self.queue = list(spec)

    def next(self, request: dict[str, Any]) -> Behaviour:
        n, self.n = self.n, self.n + 1
        if self.func is not None:
            return self.func(request, n)
        return self.queue.pop(0) if self.queue else self.default


#: The (lower-cased) header preflight's one-token probe carries (``conformance.endpoints.preflight``).
PROBE_HEADER = "x-conformance-probe"


def unused_port() -> int:
    """A 127.0.0.1 port nothing listens on (connection-refused tests): the OS picks it, then it is freed."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def _sse(payload: dict[str, Any] | bytes) -> bytes:
    data = payload if isinstance(payload, bytes) else json.dumps(payload, ensure_ascii=False).encode()
    event = b"data: " + data + b"\n\n"
    return b"%x\r\n%b\r\n" % (len(event), event)


def _error_body(status: int, message: str | None) -> bytes:
    fallback = ("server_error" if status >= 500 else "invalid_request_error", None)
    kind, code = _ERROR_KINDS.get(status, fallback)
    text = message or f"{status} {_phrase(status)} (injected by FaultServer)"
    return json.dumps({"error": {"message": text, "type": kind, "param": None, "code": code}}).encode()


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


def _prompt_tokens(body: dict[str, Any]) -> int:
    """A stable, cheap stand-in for a tokenizer: ~4 characters per token."""
    messages = body.get("messages")
    if not isinstance(messages, list):
        return 1
    return sum(len(str(m.get("content") or "")) for m in messages if isinstance(m, dict)) // 4 + 1


class _Completion:
    """Encodes one behaviour's answer, as SSE events or one chat.completion body (cached by FaultServer)."""

    def __init__(self, b: Behaviour, model: str, prompt_tokens: int) -> None:
        self.b, self.model, self.created, self.id = b, model, int(time.time()), f"chatcmpl-fault{id(b):x}"
        self.tool_args = [(tc, tc.arguments_json()) for tc in b.tool_calls]
        self.n_tokens = len(b.reasoning) + len(b.content_deltas()) + sum(
            1 + len(range(0, len(args), max(1, tc.chunk_chars))) for tc, args in self.tool_args)
        self.finish = b.finish_reason or ("tool_calls" if b.tool_calls else "stop")
        self.usage = dict(b.usage) if b.usage is not None else {
            "prompt_tokens": prompt_tokens, "completion_tokens": self.n_tokens,
            "total_tokens": prompt_tokens + self.n_tokens}

    def _chunk(self, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        choices = [] if self.b.empty_choices else [
            {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]
        return {"id": self.id, "object": "chat.completion.chunk", "created": self.created,
                "model": self.model, "choices": choices}

    def events(self, include_usage: bool) -> list[_Event]:
        b = self.b
        # OpenAI and vLLM open with role + empty content: a client must not take it for the first token.
        out = [_Event(_sse(self._chunk({"role": "assistant", "content": ""})), "role")]
        if b.invalid_json:
            out.append(_Event(_sse(_GARBAGE), "garbage"))
        out += [_Event(_sse(self._chunk({"reasoning_content": r})), "token") for r in b.reasoning]
        out += [_Event(_sse(self._chunk({"content": c})), "token") for c in b.content_deltas()]
        for i, (tc, args) in enumerate(self.tool_args):
            head = {"index": i, "id": tc.id or f"call_{i}", "type": "function",
                    "function": {"name": tc.name, "arguments": ""}}
            out.append(_Event(_sse(self._chunk({"tool_calls": [head]})), "token"))
            step = max(1, tc.chunk_chars)
            for j in range(0, len(args), step):
                fn = {"name": tc.name, "arguments": args[j : j + step]} if tc.repeat_name else \
                    {"arguments": args[j : j + step]}
                piece = {"index": i, "function": fn}
                out.append(_Event(_sse(self._chunk({"tool_calls": [piece]})), "token"))
        out.append(_Event(_sse(self._chunk({}, self.finish)), "finish"))
        if include_usage:
            usage = {**self._chunk({}), "choices": [], "usage": self.usage}
            out.append(_Event(_sse(usage), "usage"))
        out.append(_Event(_sse(b"[DONE]"), "done"))
        return out

    def body(self) -> bytes:
        if self.b.invalid_json:
            return _GARBAGE
        b = self.b
        message: dict[str, Any] = {"role": "assistant", "content": "".join(b.content_deltas()) or None}
        if b.reasoning:
            message["reasoning_content"] = "".join(b.reasoning)
        if b.tool_calls:
            message["tool_calls"] = [{"id": tc.id or f"call_{i}", "type": "function",
                                      "function": {"name": tc.name, "arguments": args}}
                                     for i, (tc, args) in enumerate(self.tool_args)]
        choices = [] if b.empty_choices else [
            {"index": 0, "message": message, "logprobs": None, "finish_reason": self.finish}]
        return json.dumps({"id": self.id, "object": "chat.completion", "created": self.created,
                           "model": self.model, "choices": choices, "usage": self.usage},
                          ensure_ascii=False).encode()


class FaultServer:
    """OpenAI-compatible server on 127.0.0.1:<ephemeral> in one background event-loop thread.

    ``behaviour`` scripts POST /v1/chat/completions: one Behaviour (every request), a sequence (one per
    request, then ``default``), or ``callable(request_json, n)`` with n counting chat requests from 0.
    ``models_behaviour`` scripts GET /v1/models the same way; its 200 answer lists ``models``. Preflight's
    one-token probe (header ``X-Conformance-Probe``) is answered by ``probe_behaviour`` when given, else by the
    chat script's default — without advancing the chat counter — and lands in ``probes``, not ``requests``.
    Received requests land in ``requests`` unless ``record=False`` (long benchmarks). Use as a context manager.
    """

    def __init__(self, behaviour: BehaviourSpec = None, *, default: Behaviour | None = None,
                 models: Sequence[str] = ("fault-model",), owned_by: str = "faultserver",
                 models_behaviour: BehaviourSpec = None, probe_behaviour: BehaviourSpec = None,
                 record: bool = True) -> None:
        self.models, self.owned_by, self.record = list(models), owned_by, record
        self.requests: list[RecordedRequest] = []
        self.probes: list[RecordedRequest] = []
        self._probe = _Source(probe_behaviour) if probe_behaviour is not None else None
        self._default = default
        self._models = _Source(models_behaviour)
        self._chat = _Source(None)
        self.set_behaviour(behaviour)
        self._cache: dict[tuple[Any, ...], tuple[Behaviour, _Completion]] = {}
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}/v1"

    def set_behaviour(self, behaviour: BehaviourSpec) -> None:
        """Re-script chat completions (the counter restarts at 0), e.g. to retire an endpoint mid-test."""
        source = _Source(behaviour)
        if self._default is not None and not isinstance(behaviour, Behaviour):
            source.default = self._default
        self._chat = source

    def start(self) -> FaultServer:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:  # bound here so the port is known (and connections queue) before the loop thread runs
            sock.bind((HOST, 0))
            sock.listen(512)
        except OSError:
            sock.close()
            raise
        self.port = int(sock.getsockname()[1])
        ready = threading.Event()
        self._thread = threading.Thread(target=asyncio.run, args=(self._main(sock, ready),),
                                        name=f"FaultServer:{self.port}", daemon=True)
        self._thread.start()
        ready.wait()
        return self

    def stop(self) -> None:
        """Close the listener and every open connection (hung ones included), then join the thread."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        if self._loop is not None and self._stopping is not None:
            self._loop.call_soon_threadsafe(self._stopping.set)
        thread.join()

    def __enter__(self) -> FaultServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def _main(self, sock: socket.socket, ready: threading.Event) -> None:
        self._loop, self._stopping = asyncio.get_running_loop(), asyncio.Event()
        try:
            server = await asyncio.start_server(self._handle, sock=sock)
        finally:
            ready.set()
        await self._stopping.wait()
        server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        sock = writer.get_extra_info("socket")
        if sock is not None:  # no Nagle delay: a small SSE event must leave now, or TTFT measures 40 ms of TCP
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            while await self._serve_one(reader, writer):
                pass
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
            pass  # the client went away or spoke garbage: nothing to answer
        except asyncio.CancelledError:
            pass  # stop(): fall through to closing the connection
        finally:
            self._tasks.discard(task)
            if self._stopping is not None and self._stopping.is_set():
                writer.transport.abort()
            else:
                writer.close()
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(writer.wait_closed(), 1.0)

    async def _serve_one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """Read one request and answer it; True when the connection stays open for the next one."""
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            return False
        lines = head.decode("latin-1").split("\r\n")
        method, path, version = lines[0].split(" ", 2)
        headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:] if ln)}
        raw = await reader.readexactly(int(headers.get("content-length") or 0))
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        probe = PROBE_HEADER in headers
        if self.record:
            (self.probes if probe else self.requests).append(RecordedRequest(method, path, headers, body, raw))
        keep = version == "HTTP/1.1" and headers.get("connection", "").lower() != "close"
        route = path.split("?", 1)[0].removeprefix("/v1")
        chat = body if isinstance(body, dict) else {}
        try:
            if route == "/models" and method == "GET":
                return await self._answer(writer, self._models.next({}), None, keep)
            if route == "/chat/completions" and method == "POST":
                if probe:
                    b = self._probe.next(chat) if self._probe is not None else self._chat.default
                    return await self._answer(writer, b, chat, keep)
                return await self._answer(writer, self._chat.next(chat), chat, keep)
            status, why = (404 if route not in ("/models", "/chat/completions") else 405), "not served"
        except Exception as exc:  # a broken script callable: answer, so the test fails instead of hanging
            status, why = 500, f"script raised {exc!r}"
        await self._send(writer, Behaviour(status=status), _error_body(status, f"{method} {path}: {why}"),
                         "application/json", keep)
        return keep

    def _completion(self, b: Behaviour, model: str, prompt_tokens: int) -> _Completion:
        key = (id(b), model, prompt_tokens)
        hit = self._cache.get(key)
        if hit is not None and hit[0] is b:
            return hit[1]
        if len(self._cache) > 256:
            self._cache.clear()
        done = _Completion(b, model, prompt_tokens)
        self._cache[key] = (b, done)
        return done

    async def _answer(self, writer: asyncio.StreamWriter, b: Behaviour, chat: dict[str, Any] | None,
                      keep: bool) -> bool:
        assert self._stopping is not None
        if b.hang:
            await self._stopping.wait()
            return False
        if b.hold is not None and not await self._held(b.hold):
            return False
        if b.headers_delay_ms:
            await asyncio.sleep(b.headers_delay_ms / 1000)
        ctype = b.content_type or "application/json"
        if b.body is not None:
            payload = b.body.encode() if isinstance(b.body, str) else b.body
        elif b.status != 200:
            payload = _GARBAGE if b.invalid_json else _error_body(b.status, b.error_message)
        elif chat is None:
            data = [{"id": m, "object": "model", "created": 0, "owned_by": self.owned_by}
                    for m in self.models]
            payload = _GARBAGE if b.invalid_json else json.dumps({"object": "list", "data": data}).encode()
        else:
            model = b.model or str(chat.get("model") or self.models[0])
            done = self._completion(b, model, _prompt_tokens(chat))
            if chat.get("stream") is True:
                opts = chat.get("stream_options")
                usage = isinstance(opts, dict) and opts.get("include_usage") is True
                return await self._stream(writer, b, done.events(usage), keep)
            if done.n_tokens and (b.ttft_ms or b.itl_ms):
                await asyncio.sleep((b.ttft_ms + b.itl_ms * (done.n_tokens - 1)) / 1000)
            payload = done.body()
        return await self._send(writer, b, payload, ctype, keep)

    async def _held(self, event: threading.Event) -> bool:
        """Wait until ``event`` (set by another thread) is set: True; or until the server stops: False."""
        assert self._stopping is not None
        while not event.is_set():
            if self._stopping.is_set():
                return False
            await asyncio.sleep(0.005)
        return True

    def _head(self, b: Behaviour, ctype: str, length: int | None, keep: bool) -> bytes:
        lines = [f"HTTP/1.1 {b.status} {_phrase(b.status)}", f"content-type: {ctype}",
                 "transfer-encoding: chunked" if length is None else f"content-length: {length}"]
        if not keep:
            lines.append("connection: close")
        if b.retry_after is not None:
            lines.append(f"retry-after: {b.retry_after}")
        lines += [f"{k}: {v}" for k, v in b.headers.items()]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    async def _send(self, writer: asyncio.StreamWriter, b: Behaviour, payload: bytes, ctype: str,
                    keep: bool) -> bool:
        """A whole-body answer; connection faults cut it in half (truncate: a short but complete message)."""
        if b.cut_after is None:
            writer.write(self._head(b, ctype, len(payload), keep) + payload)
            return keep
        half = payload[: len(payload) // 2]
        if b.truncate_after_chunks is not None:
            writer.write(self._head(b, ctype, len(half), keep) + half)
            return keep
        writer.write(self._head(b, ctype, len(payload), False) + half)
        return await self._fault(writer, b)

    async def _stream(self, writer: asyncio.StreamWriter, b: Behaviour, events: list[_Event],
                      keep: bool) -> bool:
        head = self._head(b, b.content_type or "text/event-stream", None, keep)
        if b.truncate_after_chunks is not None:
            events = [e for e in events if e.kind in ("role", "token", "garbage")]
        if b.cut_after is not None:
            events = events[: b.cut_after]
        if not (b.ttft_ms or b.itl_ms):  # the instant path: one write
            writer.write(b"".join([head, *(e.frame for e in events)]))
        else:
            writer.write(head)
            delay = b.ttft_ms
            for event in events:
                if event.kind == "token":
                    if delay:
                        await writer.drain()
                        await asyncio.sleep(delay / 1000)
                    delay = b.itl_ms
                writer.write(event.frame)
        if b.cut_after is not None and b.truncate_after_chunks is None:
            return await self._fault(writer, b)
        writer.write(_TERMINATOR)
        return keep

    async def _fault(self, writer: asyncio.StreamWriter, b: Behaviour) -> bool:
        """Flush what was written, then reset the connection or stall until stop(); the connection is over."""
        assert self._stopping is not None
        transport = writer.transport
        while transport.get_write_buffer_size() and not transport.is_closing():
            await asyncio.sleep(0.001)
        if b.reset_after_chunks is None:
            await self._stopping.wait()
            return False
        # Let the peer read what was sent before the RST, so the error lands after those chunks.
        await asyncio.sleep(0.02)
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()
        return False
