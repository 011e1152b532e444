"""Shapes of the SSE payloads a server sends: learnt once per load process, then recognised without a JSON parse.

Why: against a fast endpoint the Locust process is CPU-bound, and after the per-stream template
(:mod:`conformance.load.sse`) most of what a stream still costs is the full ``json.loads`` of its few other
events — the role chunk, the first token, the finish chunk. From one stream to the next those payloads differ only
in values a trace never reads (``id``, ``created``, a per-event nonce) and, for a token, in its text.

A :class:`Shape` is such a payload with *holes* at those literals: ``seg0 hole1 seg1 … holeN segN``. It is learnt
from a payload already parsed in full (so its effect on a trace is known: nothing, a finish reason, or one text)
and *proven by substitution* before use: every hole's literal is replaced by another one — a string by U+0000
repeated (``\\u0000`` is the only way to write that character in JSON, and the payload has none), an integer by
itself + 1 — and the probe must parse to the same object with exactly those values changed, each at its top-level
key (the text at ``choices[0].delta[field]``). JSON's structure does not depend on a literal's value, so any
payload made of the same segments around literals of the same kinds parses to that object with other values in
those places: same effect, the text excepted. :meth:`Shape.match` checks exactly that, with ``str.startswith``
and the JSON string decoder ``json.loads`` itself uses.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from json.decoder import scanstring  # type: ignore[attr-defined]  # the C string decoder json.loads uses
from typing import Any

#: Top-level keys whose values a trace reads: never holes.
READ_KEYS = frozenset({"object", "usage", "choices", "error"})
#: A JSON integer literal (a number token followed by ``.``/``e`` fails the next segment).
_INT = re.compile(r"-?(?:0|[1-9][0-9]*)")
_WS = re.compile(r"[ \t\n\r]*")
#: Shapes kept per process, and failed proofs after which a process stops learning (nothing here repeats).
MAX_SHAPES = 16
MAX_FAILURES = 64


@dataclass(frozen=True, slots=True)
class Shape:
    """A proven payload shape and its effect: ``text_key`` (one text, in hole ``text_hole``), ``finish`` (a finish
    reason) or neither (the event only counts as an event)."""

    segments: tuple[str, ...]
    ints: tuple[bool, ...]  # per hole: an integer literal (else a string literal, after its opening quote)
    text_hole: int = -1
    text_key: str | None = None
    finish: str | None = None
    choice: bool = False  # the payload carries a choice (a stream that had none is not an answer)

    def match(self, data: str) -> tuple[str, int, int] | None:
        """(text, start, end) when ``data`` has this shape — ``data[start:end]`` the text literal's body and closing
        quote, ("", -1, -1) without a text hole — else None."""
        segs = self.segments
        if not self.ints:
            return ("", -1, -1) if data == segs[0] else None
        if not data.startswith(segs[0]) or not data.endswith(segs[-1]):
            return None
        pos, last = len(segs[0]), len(self.ints) - 1
        text, t_start, t_end = "", -1, -1
        for i, is_int in enumerate(self.ints):
            if is_int:
                m = _INT.match(data, pos)
                if m is None:
                    return None
                end = m.end()
            else:
                try:
                    value, end = scanstring(data, pos)
                except ValueError:
                    return None
                if i == self.text_hole:
                    text, t_start, t_end = value, pos, end
            seg = segs[i + 1]
            if i == last:
                if end != len(data) - len(seg):
                    return None
            elif not data.startswith(seg, end):
                return None
            pos = end + len(seg)
        return text, t_start, t_end


class ShapeTable:
    """The shapes one process has proven (shared by all its streams); learning stops when full or fruitless."""

    def __init__(self) -> None:
        self.shapes: list[Shape] = []
        self.failures = 0

    def match(self, data: str) -> tuple[Shape, tuple[str, int, int]] | None:
        for shape in self.shapes:
            hit = shape.match(data)
            if hit is not None:
                return shape, hit
        return None

    @property
    def learning(self) -> bool:
        return len(self.shapes) < MAX_SHAPES and self.failures < MAX_FAILURES

    def learn(self, data: str, chunk: dict[str, Any], text_key: str | None, finish: str | None,
              decode: Callable[[str], Any]) -> Shape | None:
        shape = learn_shape(data, chunk, text_key, finish, decode)
        if shape is None:
            self.failures += 1
        elif shape not in self.shapes:
            self.shapes.append(shape)
        return shape


#: The process' table (one Locust process, one server per plan).
SHAPES = ShapeTable()


def learn_shape(data: str, chunk: dict[str, Any], text_key: str | None, finish: str | None,
                decode: Callable[[str], Any]) -> Shape | None:
    """The proven shape of ``data`` (which ``decode`` parsed to ``chunk``, with the given effect), or None.

    Holes: the string and integer values of top-level keys a trace does not read, and the text of ``text_key``. A
    literal not found where expected stays in its segment (a narrower shape). A ``usage`` payload gets no shape:
    its figures matter, and recognising them costs as much as the parse.
    """
    if "\\u0000" in data or "\n" in data or isinstance(chunk.get("usage"), dict):  # "\n": several data lines
        return None
    holes: list[tuple[int, int, bool, tuple[str, ...], Any]] = []  # start, end, integer?, where, value
    for key, value in chunk.items():
        if key not in READ_KEYS and type(value) in (str, int):
            span = _literal(data, json.dumps(key, ensure_ascii=False), type(value) is int)
            if span is not None:
                holes.append((*span, type(value) is int, ("top", key), value))
    if text_key is not None:
        span = _literal(data, json.dumps(text_key), False)
        if span is None:
            return None
        holes.append((*span, False, ("text", text_key), chunk["choices"][0]["delta"][text_key]))
    holes.sort(key=lambda h: h[0])
    if any(a[1] > b[0] for a, b in itertools.pairwise(holes)):
        return None
    # the probe: each hole's literal replaced by a different one, then the same object with those values
    parts, marks, pos = [], [], 0
    for i, (start, end, is_int, _, value) in enumerate(holes):
        mark: Any = value + 1 if is_int else "\x00" * (i + 1)
        parts += [data[pos:start], str(mark) if is_int else "\\u0000" * (i + 1) + '"']
        marks.append(mark)
        pos = end
    try:
        probe = decode("".join(parts) + data[pos:])
        for (_, _, _, (kind, name), value), mark in zip(holes, marks, strict=True):
            where = probe if kind == "top" else probe["choices"][0]["delta"]
            if where[name] != mark or type(where[name]) is not type(mark):
                return None
            where[name] = value
    except (ValueError, LookupError, TypeError):
        return None
    if probe != chunk:
        return None
    cuts = [0, *(x for start, end, *_ in holes for x in (start, end)), len(data)]
    choices = chunk.get("choices")
    has_choice = isinstance(choices, list) and any(isinstance(c, dict) for c in choices)
    return Shape(tuple(data[a:b] for a, b in zip(cuts[::2], cuts[1::2], strict=True)), tuple(h[2] for h in holes),
                 next((i for i, h in enumerate(holes) if h[3][0] == "text"), -1), text_key, finish, has_choice)


def _literal(data: str, key_json: str, is_int: bool) -> tuple[int, int] | None:
    """The span of the literal after the first ``"key":``: an integer, or a string's body and closing quote."""
    at = data.find(key_json + ":")
    if at < 0:
        return None
    start = _WS.match(data, at + len(key_json) + 1).end()  # type: ignore[union-attr]  # always matches
    if is_int:
        m = _INT.match(data, start)
        return (start, m.end()) if m is not None else None
    if not data.startswith('"', start):
        return None
    try:
        return start + 1, scanstring(data, start + 1)[1]
    except ValueError:
        return None
