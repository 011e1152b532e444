"""Server-sent events of a streaming chat completion, timestamped by us — pure, so it is tested without a server.

Why we timestamp events ourselves: Locust's ``response_time`` for a streamed request stops at the response
headers, which for an LLM says nothing about when tokens arrive. The locustfile feeds every line it reads, with
the monotonic time it was read, to a :class:`StreamTrace`; the trace knows the vLLM benchmark timings:

- ``ttfc``: the first event of any kind (often a role-only delta), time-to-first-chunk;
- ``ttft``: the first event carrying a token — non-empty ``content``, ``reasoning_content``/``reasoning`` or a
  ``tool_calls`` delta;
- ``e2el``: the last token-bearing event (not the finish, usage or ``[DONE]`` events).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from conformance.checks.latency import itl_gaps, tpot_ms


@dataclass
class StreamTrace:
    """Accumulates one streamed answer; times are ms since ``t0`` (the monotonic clock just before sending)."""

    t0: float
    ttfc_ms: float | None = None
    token_ms: list[float] = field(default_factory=list)
    content: list[str] = field(default_factory=list)
    reasoning: list[str] = field(default_factory=list)
    tool_calls: dict[int, dict[str, Any]] = field(default_factory=dict)
    usage: dict[str, Any] | None = None
    finish_reason: str | None = None
    done: bool = False
    error: str | None = None
    bad: str | None = None
    n_events: int = 0
    _data: list[str] = field(default_factory=list)

    def feed_line(self, raw: bytes | str, now: float) -> None:
        """One line of the body (with or without its newline); a blank line dispatches the event."""
        line = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else raw
        line = line.rstrip("\r\n")
        if not line:
            self.flush(now)
        elif line.startswith("data:"):
            self._data.append(line[5:].removeprefix(" "))
        # comments (":"), event:, id:, retry: carry nothing we time

    def flush(self, now: float) -> None:
        """Dispatch a pending event (called on a blank line, and once at the end of the body)."""
        if not self._data:
            return
        data, self._data = "\n".join(self._data), []
        self.n_events += 1
        ms = (now - self.t0) * 1000
        if self.ttfc_ms is None:
            self.ttfc_ms = ms
        if data.strip() == "[DONE]":
            self.done = True
            return
        try:
            chunk = json.loads(data)
        except ValueError:
            self.bad = self.bad or f"invalid JSON in event {self.n_events}: {data[:120]!r}"
            return
        if not isinstance(chunk, dict):
            self.bad = self.bad or f"event {self.n_events} is not a JSON object"
            return
        if "error" in chunk or chunk.get("object") == "error":
            err = chunk.get("error", chunk)
            self.error = str(err.get("message", err) if isinstance(err, dict) else err)[:300]
            return
        if isinstance(chunk.get("usage"), dict):
            self.usage = chunk["usage"]
        if self._choices(chunk.get("choices") or ()):
            self.token_ms.append(ms)

    def _choices(self, choices: Any) -> bool:
        token = False
        for choice in choices if isinstance(choices, list) else ():
            if not isinstance(choice, dict):
                continue
            delta = choice.get("delta") or {}
            if isinstance(delta, dict):
                if delta.get("content"):
                    self.content.append(str(delta["content"]))
                    token = True
                think = delta.get("reasoning_content") or delta.get("reasoning")
                if think:
                    self.reasoning.append(str(think))
                    token = True
                for tc in delta.get("tool_calls") or ():
                    if isinstance(tc, dict):
                        self._merge_tool(tc)
                        token = True
            if choice.get("finish_reason"):
                self.finish_reason = str(choice["finish_reason"])
        return token

    def _merge_tool(self, tc: dict[str, Any]) -> None:
        idx = tc["index"] if isinstance(tc.get("index"), int) else len(self.tool_calls)
        slot = self.tool_calls.setdefault(idx, {"id": None, "type": "function",
                                                "function": {"name": "", "arguments": ""}})
        slot["id"] = tc.get("id") or slot["id"]
        fn = tc.get("function") or {}
        slot["function"]["name"] += fn.get("name") or ""
        slot["function"]["arguments"] += fn.get("arguments") or ""

    # ------------------------------------------------------------------------------------------ results

    @property
    def ttft_ms(self) -> float | None:
        return self.token_ms[0] if self.token_ms else None

    @property
    def e2el_ms(self) -> float | None:
        return self.token_ms[-1] if self.token_ms else None

    @property
    def n_out(self) -> tuple[int, str]:
        """Output tokens and where the number came from: ``usage`` when the server sent it, else ``chunks``."""
        completion = (self.usage or {}).get("completion_tokens")
        if isinstance(completion, int) and completion >= 0:
            return completion, "usage"
        return len(self.token_ms), "chunks"

    def fault(self) -> tuple[str | None, str | None]:
        """(fault class, detail) of a stream that was read to its end; (None, None) when it is a full answer."""
        if self.error is not None:
            return "server_error", f"error event in stream: {self.error}"
        if self.bad is not None:
            return "bad_response", self.bad
        if self.finish_reason is None:
            return "truncated_stream", f"stream ended without finish_reason after {self.n_events} events"
        return None, None

    def record(self) -> dict[str, Any]:
        """The timing and answer fields of one raw JSONL record."""
        n_out, source = self.n_out
        return {
            "ttfc_ms": _r(self.ttfc_ms), "ttft_ms": _r(self.ttft_ms), "e2el_ms": _r(self.e2el_ms),
            "tpot_ms": _r(tpot_ms(self.ttft_ms, self.e2el_ms, n_out)), "n_out": n_out, "tokens_source": source,
            "n_token_events": len(self.token_ms), "n_events": self.n_events,
            "itl_ms": [_r(g) for g in itl_gaps(self.token_ms)], "finish_reason": self.finish_reason,
            "usage": self.usage, "text": "".join(self.content),
            "reasoning": "".join(self.reasoning) or None,
            "tool_calls": [self.tool_calls[i] for i in sorted(self.tool_calls)],
        }


def _r(value: float | None) -> float | None:
    return None if value is None else round(value, 3)
