"""The SSE trace as it was before the fast path: line by line, ``json.loads`` of every event, times in ms.

Kept only as the oracle of ``test_sse.py``: whatever the chunking of the body and whatever the events, the shipped
:class:`conformance.load.sse.StreamTrace` must give the record this one gives (after
:func:`conformance.load.stats.expand_record`). Deliberately plain — do not optimise it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from conformance.checks.latency import itl_gaps, tpot_ms


@dataclass
class ReferenceTrace:
    t0: float
    ttfc_ms: float | None = None
    token_ms: list[float] = field(default_factory=list)
    content: list[str] = field(default_factory=list)
    reasoning: list[str] = field(default_factory=list)
    tool_calls: dict[int, dict[str, Any]] = field(default_factory=dict)
    usage: dict[str, Any] | None = None
    finish_reason: str | None = None
    saw_choice: bool = False
    done: bool = False
    error: str | None = None
    bad: str | None = None
    n_events: int = 0
    _data: list[str] = field(default_factory=list)

    def feed_line(self, raw: bytes | str, now: float) -> None:
        line = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else raw
        line = line.rstrip("\r\n")
        if not line:
            self.flush(now)
        elif line.startswith("data:"):
            self._data.append(line[5:].removeprefix(" "))

    def flush(self, now: float) -> None:
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
            self.saw_choice = True
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
                        idx = tc["index"] if isinstance(tc.get("index"), int) else len(self.tool_calls)
                        slot = self.tool_calls.setdefault(idx, {"id": None, "type": "function",
                                                                "function": {"name": "", "arguments": ""}})
                        slot["id"] = tc.get("id") or slot["id"]
                        fn = tc.get("function") or {}
                        # the name is set once (conformance.stream: servers may repeat it in every delta)
                        slot["function"]["name"] = slot["function"]["name"] or fn.get("name") or ""
                        slot["function"]["arguments"] += fn.get("arguments") or ""
                        token = True
            if choice.get("finish_reason"):
                self.finish_reason = str(choice["finish_reason"])
        return token

    def fault(self) -> tuple[str | None, str | None]:
        if self.error is not None:
            return "server_error", f"error event in stream: {self.error}"
        if self.bad is not None:
            return "bad_response", self.bad
        if not self.saw_choice:  # the shared rule (conformance.stream.stream_fault) since streams are assembled once
            return "bad_response", "stream carried no choices"
        if self.finish_reason is None:
            return "truncated_stream", f"stream ended without finish_reason after {self.n_events} chunks"
        return None, None

    def record(self) -> dict[str, Any]:
        completion = (self.usage or {}).get("completion_tokens")
        n_out, source = ((completion, "usage") if isinstance(completion, int) and completion >= 0
                         else (len(self.token_ms), "chunks"))
        ttft = self.token_ms[0] if self.token_ms else None
        e2el = self.token_ms[-1] if self.token_ms else None
        return {
            "ttfc_ms": _r(self.ttfc_ms), "ttft_ms": _r(ttft), "e2el_ms": _r(e2el),
            # ttft/e2el rounded first: the shipped trace keeps whole µs, so its tpot is of rounded times
            "tpot_ms": _r(tpot_ms(_r(ttft), _r(e2el), n_out)), "n_out": n_out, "tokens_source": source,
            "n_token_events": len(self.token_ms), "n_events": self.n_events,
            "itl_ms": [_r(g) for g in itl_gaps(self.token_ms)], "finish_reason": self.finish_reason,
            "usage": self.usage, "text": "".join(self.content), "reasoning": "".join(self.reasoning) or None,
            "tool_calls": [self.tool_calls[i] for i in sorted(self.tool_calls)],
        }


def _r(value: float | None) -> float | None:
    return None if value is None else round(value, 3)
