"""The product path: an OpenAI-compatible endpoint through the official ``openai`` SDK.

Why our own retry loop instead of the SDK's ``max_retries``: every attempt must be *recorded* (a candidate that
needs three tries per answer is not conformant even if the third succeeds), and the fault of each attempt must be
classified the same way for vLLM, llama.cpp and any gateway in front of them.

Timings use the monotonic clock from the moment the request is handed to the HTTP connection: an httpx request
event hook on the SDK's client stamps it, after the SDK has built the request (~1 ms of its own work, more on a
busy machine, that says nothing about the endpoint; docs/PERFORMANCE.md, F4). Client-side waits stay out of them:
the wait for a concurrency slot is ``queue_ms``, and each attempt's ``elapsed_ms`` covers the whole attempt, request
building included.

- ``ttfc_ms``: first streamed chunk of any kind (often a role-only delta);
- ``ttft_ms``: first chunk carrying a token (content, reasoning or a tool-call delta);
- ``e2e_ms``: last token-bearing chunk (not the usage chunk or ``[DONE]``).

The chunks are timestamped as the SDK yields them, so TTFT still includes decoding the first token's event
(~0.3 ms) and the HTTP stack's own latency (~0.8 ms over a raw socket on loopback).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import email.utils
import json
import time
from datetime import UTC, datetime
from typing import Any

import openai

from conformance.endpoints.config import EndpointConfig
from conformance.goldens.model import Case
from conformance.redact import Redactor
from conformance.response import RETRYABLE, Attempt, Response, classify_status, new_response
from conformance.stream import ToolCalls, stream_fault

# Request fields the SDK accepts as keyword arguments; anything else travels in ``extra_body``.
_SDK_FIELDS = frozenset({
    "messages", "tools", "temperature", "top_p", "max_tokens", "seed", "stop", "presence_penalty",
    "frequency_penalty", "response_format", "tool_choice", "parallel_tool_calls",
})


# The send time of the current task's attempt: a one-item list that the attempt creates (holding its ``t0``) and the
# request hook overwrites, so the hook needs no reference to the attempt and a request sent by any other path finds
# no list and stamps nothing. A redirect stamps again: timings run from the request that was answered.
_SENT_AT: contextvars.ContextVar[list[float] | None] = contextvars.ContextVar("conformance_sent_at", default=None)


async def _stamp_send(request: Any) -> None:
    """httpx request event hook: runs once the request is built, just before it goes to the connection pool."""
    box = _SENT_AT.get()
    if box is not None:
        box[0] = time.monotonic()


class _Fault(Exception):
    """Internal: one attempt failed with a classified fault."""

    def __init__(self, fault: str, error: str, status: int | None = None, retry_after: float | None = None):
        super().__init__(error)
        self.fault, self.error, self.status, self.retry_after = fault, error, status, retry_after


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header: delta-seconds or an HTTP date; None when absent or unparsable."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _status_fault(exc: openai.APIStatusError, redact: Redactor) -> _Fault:
    status = exc.status_code
    retry_after = parse_retry_after(exc.response.headers.get("retry-after")) if exc.response else None
    body = exc.message or ""
    return _Fault(classify_status(status), redact(f"HTTP {status}: {body}"[:500]), status, retry_after)


def _transport_fault(exc: BaseException, mid_stream: bool, redact: Redactor) -> _Fault:
    """Exceptions raised by the HTTP layer while reading, which the SDK does not wrap during streaming."""
    name = type(exc).__name__
    text = redact(f"{name}: {exc}"[:500])
    if "Timeout" in name:
        return _Fault("timeout", text)
    if mid_stream:
        return _Fault("truncated_stream", f"stream broken after partial answer ({text})")
    return _Fault("connection", text)


class OpenAIEndpoint:
    """A live endpoint. Use as ``async with OpenAIEndpoint(cfg) as ep: await ep.complete(case)``."""

    def __init__(self, cfg: EndpointConfig, redactor: Redactor | None = None) -> None:
        self.name = cfg.name
        self.cfg = cfg
        self.redact = redactor or Redactor([cfg.secret() or ""])
        timeout = openai.Timeout(cfg.timeout_s, connect=cfg.connect_timeout_s)
        self._client = openai.AsyncOpenAI(
            base_url=cfg.base_url,
            api_key=cfg.api_key(),
            max_retries=0,
            timeout=timeout,
            # The SDK's own default client (its limits, redirects), plus the hook that stamps the send time.
            http_client=openai.DefaultAsyncHttpxClient(timeout=timeout, event_hooks={"request": [_stamp_send]}),
        )
        self._slots = asyncio.Semaphore(cfg.max_concurrency)

    async def __aenter__(self) -> OpenAIEndpoint:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._client.close()

    def _backoff(self, n: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, self.cfg.max_backoff_s)
        return float(min(self.cfg.backoff_s * (2 ** (n - 1)), self.cfg.max_backoff_s))

    async def complete(self, case: Case, repeat: int = 0) -> Response:
        """Answer one case, retrying retryable faults with bounded exponential backoff."""
        resp = new_response(self.name, case, repeat)
        resp.created_at = datetime.now(UTC).isoformat(timespec="seconds")
        q0 = time.monotonic()
        async with self._slots:
            resp.queue_ms = (time.monotonic() - q0) * 1000
            for n in range(1, self.cfg.max_retries + 2):
                fresh = new_response(self.name, case, repeat)
                t0 = time.monotonic()
                try:
                    async with asyncio.timeout(self.cfg.timeout_s):
                        await self._attempt(case, fresh, t0)
                    fault: _Fault | None = None
                except _Fault as f:
                    fault = f
                except TimeoutError:
                    fault = _Fault("timeout", f"no complete answer within timeout_s={self.cfg.timeout_s:g}")
                elapsed = (time.monotonic() - t0) * 1000
                attempt = Attempt(n=n, elapsed_ms=round(elapsed, 3), status=fresh.status)
                resp.attempts.append(attempt)
                if fault is None:
                    _copy_answer(fresh, resp)
                    resp.fault = resp.error = None
                    return resp
                attempt.fault, attempt.error, attempt.retry_after_s = fault.fault, fault.error, fault.retry_after
                attempt.status = fault.status or fresh.status
                resp.fault, resp.error, resp.status = fault.fault, fault.error, attempt.status
                _copy_answer(fresh, resp, partial=True)
                if fault.fault not in RETRYABLE or n > self.cfg.max_retries:
                    return resp
                attempt.backoff_s = self._backoff(n, fault.retry_after)
                await asyncio.sleep(attempt.backoff_s)
        return resp

    def _split_body(self, case: Case) -> tuple[dict[str, Any], dict[str, Any]]:
        body = case.request()
        extra = {k: body.pop(k) for k in list(body) if k not in _SDK_FIELDS}
        return body, {**self.cfg.extra_body, **extra}

    async def _attempt(self, case: Case, resp: Response, t0: float) -> None:
        """One request. Timings run from its send time (see the module docstring); ``t0`` stands in should the
        request hook not run (a client swapped in from outside)."""
        body, extra = self._split_body(case)
        kwargs: dict[str, Any] = {"model": self.cfg.model, **body}
        if extra:
            kwargs["extra_body"] = extra
        sent_at = [t0]
        token = _SENT_AT.set(sent_at)
        try:
            if self.cfg.stream:
                kwargs.update(stream=True, stream_options={"include_usage": True})
                raw = await self._client.chat.completions.with_raw_response.create(**kwargs)
                resp.status, resp.server = raw.status_code, raw.headers.get("server")
                ctype = raw.headers.get("content-type", "")
                if "text/event-stream" not in ctype:
                    raise _Fault("bad_response", f"expected a text/event-stream, got content-type {ctype!r}",
                                 raw.status_code)
                await self._read_stream(raw.parse(), resp, sent_at[0])
            else:
                raw = await self._client.chat.completions.with_raw_response.create(**kwargs)
                resp.status, resp.server = raw.status_code, raw.headers.get("server")
                _read_completion(raw.parse(), resp, sent_at[0])
        except _Fault:
            raise
        except openai.APIStatusError as exc:
            raise _status_fault(exc, self.redact) from None
        except openai.APITimeoutError:
            raise _Fault("timeout", f"timed out (timeout_s={self.cfg.timeout_s:g})") from None
        except openai.APIConnectionError as exc:
            cause = exc.__cause__ or exc
            raise _transport_fault(cause, resp.n_chunks > 0, self.redact) from None
        except (openai.APIResponseValidationError, json.JSONDecodeError, ValueError, TypeError) as exc:
            raise _Fault("bad_response", self.redact(f"{type(exc).__name__}: {exc}"[:500]), resp.status) from None
        except openai.APIError as exc:  # an error event inside the stream
            raise _Fault("server_error", self.redact(f"error event in stream: {exc}"[:500]), resp.status) from None
        except Exception as exc:  # transport errors raised while iterating the stream
            if type(exc).__module__.split(".")[0] in ("httpx", "httpx2", "httpcore", "httpcore2", "anyio"):
                raise _transport_fault(exc, resp.n_chunks > 0, self.redact) from None
            raise
        finally:
            _SENT_AT.reset(token)

    async def _read_stream(self, stream: Any, resp: Response, t0: float) -> None:
        """Read every chunk into ``resp``. The loop keeps its state in locals and fills ``resp`` once at the end
        (also when the stream breaks, so a partial answer is kept): it runs for every chunk of every answer."""
        content: list[str] = []
        reasoning: list[str] = []
        calls = ToolCalls()
        saw_choice = False
        n = 0
        first: float | None = None  # monotonic time of the first chunk, the first and the last token-bearing one
        first_token: float | None = None
        last_token: float | None = None
        model: str | None = None
        usage: Any = None
        finish: str | None = None
        try:
            async for chunk in stream:
                now = time.monotonic()
                n += 1
                if first is None:
                    first = now
                model = getattr(chunk, "model", None) or model
                usage = getattr(chunk, "usage", None) or usage
                token = False
                for choice in chunk.choices or ():
                    saw_choice = True
                    delta = choice.delta
                    if delta is not None:
                        if delta.content:
                            content.append(delta.content)
                            token = True
                        extra = delta.model_extra
                        if extra:
                            think = extra.get("reasoning_content") or extra.get("reasoning")
                            if think:
                                reasoning.append(str(think))
                                token = True
                        if delta.tool_calls:
                            for tc in delta.tool_calls:
                                fn = tc.function
                                calls.add(tc.index, tc.id, fn.name if fn else None, fn.arguments if fn else None)
                            token = True
                    if choice.finish_reason:
                        finish = choice.finish_reason
                if token:
                    if first_token is None:
                        first_token = now
                    last_token = now
        finally:
            with contextlib.suppress(Exception):
                await stream.close()
            resp.n_chunks = n
            resp.model = model or resp.model
            if usage is not None:
                resp.usage = usage.model_dump()
            if finish is not None:
                resp.finish_reason = finish
            if first is not None:
                resp.ttfc_ms = (first - t0) * 1000
            if first_token is not None and last_token is not None:
                resp.ttft_ms = (first_token - t0) * 1000
                resp.e2e_ms = (last_token - t0) * 1000
            resp.text = "".join(content) if content or saw_choice else None
            resp.reasoning = "".join(reasoning) or None
            resp.tool_calls = calls.calls()
        fault = stream_fault(saw_choice=saw_choice, finish_reason=resp.finish_reason, n_events=resp.n_chunks)
        if fault is not None:
            raise _Fault(fault[0], fault[1], resp.status)


def _read_completion(completion: Any, resp: Response, t0: float) -> None:
    now = time.monotonic()
    resp.ttfc_ms = resp.ttft_ms = resp.e2e_ms = (now - t0) * 1000
    resp.model = getattr(completion, "model", None)
    resp.usage = completion.usage.model_dump() if getattr(completion, "usage", None) else None
    if not getattr(completion, "choices", None):
        raise _Fault("bad_response", "completion has no choices", resp.status)
    choice = completion.choices[0]
    msg = choice.message
    resp.text = msg.content
    extra = msg.model_extra or {}
    resp.reasoning = extra.get("reasoning_content") or extra.get("reasoning")
    resp.tool_calls = [tc.model_dump(include={"id", "type", "function"}) for tc in msg.tool_calls or ()]
    resp.finish_reason = choice.finish_reason


def _copy_answer(src: Response, dst: Response, partial: bool = False) -> None:
    for f in ("text", "reasoning", "tool_calls", "finish_reason", "usage", "model", "server", "ttfc_ms",
              "ttft_ms", "e2e_ms", "n_chunks"):
        setattr(dst, f, getattr(src, f))
    if not partial:
        dst.status = src.status
