"""Server-sent events of a streaming chat completion, timestamped by us — pure, so it is tested without a server.

Why we timestamp events ourselves: Locust's ``response_time`` for a streamed request stops at the response
headers, which for an LLM says nothing about when tokens arrive. The locustfile feeds the body to a
:class:`StreamTrace` as it comes off the socket, each piece with the monotonic time it was read; an event is
timed when its terminating blank line arrives. The trace knows the vLLM benchmark timings:

- ``ttfc``: the first event of any kind (often a role-only delta), time-to-first-chunk;
- ``ttft``: the first event carrying a token — non-empty ``content``, ``reasoning_content``/``reasoning`` or a
  ``tool_calls`` delta;
- ``e2el``: the last token-bearing event (not the finish, usage or ``[DONE]`` events).

Why it is written for speed: a Locust process is CPU-bound against a fast endpoint, and a full ``json.loads`` of
every event cost more than the whole uninstrumented request (docs/PERFORMANCE.md, F5). Four things keep the work
per event small without changing any result:

- the body is decoded and split into events once per socket read, not read and decoded line by line;
- **shapes** (:mod:`conformance.load.sse_shapes`): the role, first-token and finish events of one answer are,
  to the literal, those of the previous one but for values a trace never reads (``id``, ``created``…) and the
  text. Their shapes are learnt once per process, each proven by a substituted parse, and later events are
  recognised with string comparisons and the JSON string decoder instead of being parsed;
- a **template** per stream: its token events differ only in their text, so once the first token's shape gave
  ``prefix`` and ``suffix``, a later event that is ``prefix + <one JSON string literal> + suffix`` is decoded with
  ``json.decoder.scanstring`` alone — the decoder ``json.loads`` uses, so text, escapes and invalid input read
  exactly as the full parse would. Anything else (usage, tool calls, errors, ``[DONE]``, invalid JSON, an
  unknown layout) takes the full path. ``templates=False`` switches shapes and templates off; tests check that
  both give identical records for any chunking;
- nothing is derived here: :meth:`StreamTrace.record` keeps raw µs times, and
  :func:`conformance.load.stats.expand_record` (``read_records``, after the run) computes ``ttft_ms``, ``itl_ms``
  and the rest.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from json.decoder import scanstring  # type: ignore[attr-defined]  # the C string decoder json.loads uses
from typing import Any

from conformance.load.sse_shapes import SHAPES, ShapeTable
from conformance.stream import ToolCalls, output_tokens, stream_fault

#: Delta fields whose text is a token; the template fast path handles exactly these.
_TEXT_KEYS = ("content", "reasoning_content", "reasoning")
#: ``json.loads`` without its argument checks (the payload is always a str).
_decode = json.JSONDecoder().decode
#: Shapes one stream may try to learn (each costs a second parse); a process' table is usually full after one.
MAX_LEARN = 4


@dataclass(frozen=True, slots=True)
class _Template:
    """A proven split of a token event: ``prefix`` ends just after the field's opening quote, ``suffix`` starts
    just after its closing quote; ``sink`` is the list the field's text goes to; ``head`` is ``data: `` + prefix,
    what a one-line event starts with (the hot path matches whole lines)."""

    prefix: str
    suffix: str
    sink: list[str]
    head: str


@dataclass(slots=True)
class StreamTrace:
    """Accumulates one streamed answer; times are whole µs since ``t0`` (the monotonic clock just before sending):
    exact enough, and cheap to keep and to write (:meth:`record`; ``stats.expand_record`` makes them ms)."""

    t0: float
    templates: bool = True
    ttfc_us: int | None = None
    token_us: list[int] = field(default_factory=list)
    content: list[str] = field(default_factory=list)
    reasoning: list[str] = field(default_factory=list)
    tool_calls: ToolCalls = field(default_factory=ToolCalls)
    usage: dict[str, Any] | None = None
    finish_reason: str | None = None
    done: bool = False
    saw_choice: bool = False  # some event carried a choice (every template or shape hit does)
    error: str | None = None
    bad: str | None = None
    n_events: int = 0
    _data: list[str] = field(default_factory=list)  # data lines of the event being read
    _carry: list[bytes] = field(default_factory=list)  # bytes after the last complete event (or line)
    shapes: ShapeTable = field(default_factory=lambda: SHAPES)
    _tpl: _Template | None = None
    _learn_left: int = MAX_LEARN

    # ------------------------------------------------------------------------------------------ input

    def feed(self, chunk: bytes, now: float) -> None:
        """Body bytes as read from the socket (any split), ``now`` the monotonic time they were read."""
        if b"\n" not in chunk:  # no line ends here: nothing can complete
            if chunk:
                self._carry.append(chunk)
            return
        if self._carry:
            self._carry.append(chunk)
            chunk = b"".join(self._carry)
            self._carry = []
        us = round((now - self.t0) * 1e6)
        # Decoded at once up to a line end: lines end in ASCII, so this is each line decoded on its own.
        cut = -1 if b"\r" in chunk else chunk.rfind(b"\n\n")
        if cut >= 0:  # whole events, up to the last blank line
            self._events(chunk[:cut].decode("utf-8", "replace").split("\n\n"), us)
            rest = chunk[cut + 2:]
        else:  # CRLF (or stray CR) line ends, or no event ends here: line by line
            cut = chunk.rfind(b"\n")
            for line in chunk[:cut].decode("utf-8", "replace").split("\n"):
                self._line(line, us)
            rest = chunk[cut + 1:]
        if rest:
            self._carry.append(rest)

    def _events(self, parts: list[str], us: int) -> None:
        """Complete events (each the lines before a blank line), all read at ``us``.

        The one-line token event that matches the stream's template — nearly every event of a long answer — is
        handled right here, with the template's pieces held in locals: this loop is the hot path.
        """
        tpl = self._tpl
        head, tail, sink = (tpl.head, tpl.suffix, tpl.sink) if tpl is not None else ("", "", [])
        hl, tl = len(head), len(tail)
        pending = self._data
        add_time = self.token_us.append
        hits = 0  # template events not yet counted in n_events
        for part in parts:
            if tpl is not None and part.startswith(head) and part.endswith(tail) and not pending:
                try:
                    text, end = scanstring(part, hl)
                except ValueError:  # not one valid string literal there: let the full parse say why
                    end = -1
                if end == len(part) - tl:
                    hits += 1  # ttfc_us is set: a template is learnt from an earlier event
                    if text:
                        sink.append(text)
                        add_time(us)
                    continue
            self.n_events += hits
            hits = 0
            if pending or "\n" in part or not part.startswith("data: "):
                for line in part.split("\n"):
                    self._line(line, us)
                self._dispatch(us)
            else:
                self._event(part[6:], us)
            if self._tpl is not tpl:  # that event taught a template
                tpl = self._tpl
                if tpl is not None:
                    head, tail, sink = tpl.head, tpl.suffix, tpl.sink
                    hl, tl = len(head), len(tail)
        self.n_events += hits
        if hits:
            self.saw_choice = True

    def feed_line(self, raw: bytes | str, now: float) -> None:
        """One complete line of the body (with or without its newline); a blank line dispatches the event."""
        line = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
        self._line(line.rstrip("\r\n"), round((now - self.t0) * 1e6))

    def flush(self, now: float) -> None:
        """The body has ended: a last line without its newline counts, and a pending event is dispatched."""
        us = round((now - self.t0) * 1e6)
        if self._carry:
            rest = b"".join(self._carry)
            self._carry.clear()
            for line in rest.decode("utf-8", "replace").split("\n"):
                self._line(line, us)
        self._dispatch(us)

    def _line(self, line: str, us: int) -> None:
        line = line.rstrip("\r")
        if not line:
            self._dispatch(us)
        elif line.startswith("data:"):
            self._data.append(line[6:] if line.startswith("data: ") else line[5:])
        # comments (":"), event:, id:, retry: carry nothing we time

    def _dispatch(self, us: int) -> None:
        if self._data:
            data = "\n".join(self._data)
            self._data.clear()  # the same list: _events holds it
            self._event(data, us)

    # ------------------------------------------------------------------------------------------ events

    def _event(self, data: str, us: int) -> None:
        self.n_events += 1
        if self.ttfc_us is None:
            self.ttfc_us = us
        tpl = self._tpl
        if tpl is not None and data.startswith(tpl.prefix) and data.endswith(tpl.suffix):
            try:
                text, end = scanstring(data, len(tpl.prefix))
            except ValueError:  # not one valid string literal there: let the full parse say why
                end = -1
            if end == len(data) - len(tpl.suffix):
                self.saw_choice = True
                if text:
                    tpl.sink.append(text)
                    self.token_us.append(us)
                return
        if self.templates and data.startswith("{"):
            hit = self.shapes.match(data)
            if hit is not None:  # seen before (sse_shapes): its effect without a parse
                shape, (text, start, end) = hit
                if shape.choice:
                    self.saw_choice = True
                if shape.text_key is not None:
                    sink = self.content if shape.text_key == "content" else self.reasoning
                    if text:
                        sink.append(text)
                        self.token_us.append(us)
                    self._tpl = _Template(data[:start], data[end:], sink, "data: " + data[:start])
                elif shape.finish is not None:
                    self.finish_reason = shape.finish
                return
        self._parse(data, us)

    def _parse(self, data: str, us: int) -> None:
        if data.strip() == "[DONE]":
            self.done = True
            return
        try:
            chunk = _decode(data)
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
        elif self.templates and self._learn_left > 0 and self.shapes.learning:
            self._learn(data, chunk)
        if self._choices(chunk.get("choices") or ()):
            self.token_us.append(us)

    def _learn(self, data: str, chunk: dict[str, Any]) -> None:
        """Learn the shape of a payload whose effect is nothing, a finish reason or one text (see sse_shapes); for a
        text, it is also this stream's template."""
        scratch = StreamTrace(0.0, templates=False)
        scratch._choices(chunk.get("choices") or ())  # the effect, found by the code that applies it
        texts = scratch.content + scratch.reasoning
        if scratch.tool_calls or len(texts) > 1 or (texts and scratch.finish_reason is not None):
            return
        text_key = _text_only(chunk) if texts else None
        if texts and text_key is None:
            return
        self._learn_left -= 1
        shape = self.shapes.learn(data, chunk, text_key, scratch.finish_reason, _decode)
        if shape is not None and text_key is not None:
            hit = shape.match(data)
            if hit is not None:
                start, end = hit[1], hit[2]
                sink = self.content if text_key == "content" else self.reasoning
                self._tpl = _Template(data[:start], data[end:], sink, "data: " + data[:start])

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
                        fn: dict[str, Any] = tc["function"] if isinstance(tc.get("function"), dict) else {}
                        self.tool_calls.add(tc.get("index"), tc.get("id"), fn.get("name"), fn.get("arguments"))
                        token = True
            if choice.get("finish_reason"):
                self.finish_reason = str(choice["finish_reason"])
        return token

    # ------------------------------------------------------------------------------------------ results

    @property
    def ttft_ms(self) -> float | None:
        return self.token_us[0] / 1000 if self.token_us else None

    @property
    def e2el_ms(self) -> float | None:
        return self.token_us[-1] / 1000 if self.token_us else None

    @property
    def n_out(self) -> tuple[int, str]:
        """Output tokens and where the number came from: ``usage`` when the server sent it, else ``chunks``."""
        return output_tokens(self.usage, len(self.token_us))

    def fault(self) -> tuple[str | None, str | None]:
        """(fault class, detail) of a stream that was read to its end; (None, None) when it is a full answer
        (the rules are :func:`conformance.stream.stream_fault`'s, shared with the SDK client)."""
        found = stream_fault(error=self.error, bad=self.bad, saw_choice=self.saw_choice,
                             finish_reason=self.finish_reason, n_events=self.n_events)
        return (str(found[0]), found[1]) if found else (None, None)

    def record(self) -> dict[str, Any]:
        """The trace's fields of one raw JSONL record: times as µs, nothing derived (see
        :func:`conformance.load.stats.expand_record`)."""
        return {
            "ttfc_us": self.ttfc_us, "tok_us": self.token_us, "n_events": self.n_events,
            "finish_reason": self.finish_reason, "usage": self.usage, "text": "".join(self.content),
            "reasoning": "".join(self.reasoning) or None,
            "tool_calls": self.tool_calls.calls(),
        }


def _text_only(chunk: dict[str, Any]) -> str | None:
    """The delta field whose text was the chunk's only effect on a trace, else None.

    Only then is "the same payload with another string there" the same event with another text: no error, no
    usage, one choice, no finish reason, no tool call, and the other text fields absent or empty.
    """
    choices = chunk.get("choices")
    if "error" in chunk or chunk.get("object") == "error" or isinstance(chunk.get("usage"), dict) \
            or not isinstance(choices, list) or len(choices) != 1 or not isinstance(choices[0], dict):
        return None
    choice = choices[0]
    delta = choice.get("delta")
    if choice.get("finish_reason") or not isinstance(delta, dict) or delta.get("tool_calls"):
        return None
    keys = [k for k in _TEXT_KEYS if delta.get(k)]
    return keys[0] if len(keys) == 1 and isinstance(delta[keys[0]], str) else None
