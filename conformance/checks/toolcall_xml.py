"""Qwen3-Coder XML tool calls, delimited the way vLLM's ``qwen3_coder`` parser delimits them.

Why mirror vLLM instead of reading the XML "properly": a consumer of a vLLM-served model gets the calls vLLM's
parser found — no more, no fewer. When the baseline was served that way and the candidate emits the same XML as
text, the harness must find the same calls, or it reports differences no consumer would ever see (and misses the
ones it would). The rules below are vLLM's, restated; the test vectors in
``tests/checks/fixtures/vllm_qwen3coder.yaml`` name the repository, paths and commits they come from.

- No ``<function=`` anywhere: no calls.
- **Blocks.** A block runs from ``<tool_call>`` to the first ``</tool_call>`` that is followed (after whitespace)
  by another ``<tool_call>`` or by the end of the text; without one it runs to the end. So a ``</tool_call>``
  followed by prose does *not* end its block. With no ``<tool_call>`` at all, the whole text is one block
  (``<function=…>`` without a wrapper is still a call).
- **One function per block**: the first ``<function=`` in it. Any later one in the same block is never read
  (:attr:`XmlScan.hidden`) — e.g. a second call after prose that followed the first ``</tool_call>``.
- **Structure vs. literal text.** A ``<parameter=`` is structural only at the start of a line. A
  ``</parameter>`` ends its value only when what follows (after whitespace) is a parameter the tool declares
  (any name when the tool is unknown), ``</function>``, ``</tool_call>`` or — when the whole text is known — the
  end; ``<parameter=…>``/``</parameter>`` pairs inside a value nest. That is how a file-writing call whose
  content itself contains tool-call XML keeps its content intact.
- **Name.** The text up to the first ``>``; a name that is empty or holds whitespace, quotes, ``{}`` or ``<>``
  (an unrendered template such as ``<function={{ tc.name }}>``) is not a call.
- **Values.** One newline after the opening and one before the closing tag belong to the format. A value with no
  ``</parameter>`` ends at the next structural ``<parameter=`` of a declared name, else at ``</function>``.
- **Content** is the text before the first ``<tool_call>`` that holds a ``<function=`` (else before the first
  ``<function=``); text after the calls is not content.

This module only delimits; :mod:`conformance.checks.toolcall_parse` turns the result into calls and defects, and
:mod:`conformance.checks.toolcall_values` converts the parameter texts.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Callable, Iterator
from dataclasses import dataclass

__all__ = ["XmlFunction", "XmlScan", "scan_xml", "valid_name"]

TC_OPEN, TC_CLOSE = "<tool_call>", "</tool_call>"
FN_OPEN, FN_CLOSE = "<function=", "</function>"
P_OPEN, P_CLOSE = "<parameter=", "</parameter>"
_SPACE = re.compile(r"\s*")
_WALK_SPACE = " \t\n\r"  # what the walker skips between parameters (exactly these, as vLLM does)
_BAD_NAME = re.compile(r"[{}<>\"' \t\n\r]")

#: ``names(function_name)`` → the parameter names the tool declares, or None when it declares none / is unknown.
Names = Callable[[str], "frozenset[str] | None"]
#: Work bound for one text (steps over tag occurrences). Real answers need a few steps per parameter; text built to
#: make the structural rules quadratic (they are, in vLLM too) is given up on instead (``too_complex``).
MAX_STEPS = 1_000_000


@dataclass(frozen=True)
class XmlFunction:
    """One ``<function=…>`` as vLLM delimits it: its name text and its parameters' raw texts, in order."""

    name: str | None                      # text up to the first ">" (None: there is no ">")
    params: tuple[tuple[str, str], ...]   # (parameter name, raw text) — a repeated name appears twice
    start: int                            # offset of "<function=" in the scanned text
    wrapped: bool                         # inside a <tool_call> block (False: the no-wrapper fallback)
    closed: bool                          # its </function> was found
    tag_closed: bool                      # a </tool_call> follows it (always True when not wrapped)
    unclosed_params: tuple[str, ...] = ()  # parameters whose </parameter> was missing
    settled: bool = False                 # more text appended later cannot change this call (streaming)


@dataclass(frozen=True)
class XmlScan:
    """Everything vLLM's qwen3_coder parser would read from a text."""

    functions: tuple[XmlFunction, ...] = ()
    hidden: tuple[str, ...] = ()   # names of <function=…> that no block reads (never called)
    empty_blocks: tuple[str, ...] = ()  # bodies of <tool_call> blocks that hold no <function=
    content: str = ""
    too_complex: bool = False  # the work bound was hit: nothing was read


def valid_name(name: str | None) -> bool:
    """A function name vLLM accepts: non-empty, no whitespace, quotes, braces or angle brackets."""
    return bool(name) and not _BAD_NAME.search(name or "")


class _TooComplex(Exception):
    pass


class _Text:
    """One text with its tag positions indexed, so each lookup is a binary search (never a rescan)."""

    def __init__(self, text: str) -> None:
        self.text, self.steps = text, 0
        self._at: dict[str, list[int]] = {}

    def _positions(self, token: str) -> list[int]:
        if token not in self._at:
            found, i = [], self.text.find(token)
            while i != -1:
                found.append(i)
                i = self.text.find(token, i + len(token))
            self._at[token] = found
        return self._at[token]

    def step(self) -> None:
        self.steps += 1
        if self.steps > MAX_STEPS:
            raise _TooComplex

    def each(self, token: str, pos: int, end: int) -> Iterator[int]:
        """Positions of ``token`` lying wholly in [pos, end), in order."""
        at = self._positions(token)
        for k in range(bisect_left(at, pos), bisect_left(at, end - len(token) + 1)):
            yield at[k]

    def find(self, token: str, pos: int, end: int) -> int:
        at = self._positions(token)
        k = bisect_left(at, pos)
        return at[k] if k < len(at) and at[k] + len(token) <= end else -1

    def skip(self, pos: int, end: int) -> int:
        m = _SPACE.match(self.text, pos, end)
        return m.end() if m else pos

    def name_at(self, i: int, end: int) -> str | None:
        """The NAME of a ``<parameter=NAME>`` starting at ``i`` (None without a ``>``)."""
        gt = self.find(">", i + len(P_OPEN), end)
        return self.text[i + len(P_OPEN):gt] if gt != -1 else None

    def param_start(self, pos: int, end: int, base: int, names: frozenset[str] | None) -> int:
        """Next ``<parameter=`` at a line start (or at ``base``) in [pos, end); with ``names``, of those only."""
        text = self.text
        for i in self.each(P_OPEN, pos, end):
            self.step()
            if i == base or text[i - 1] == "\n":
                if names is None:
                    return i
                name = self.name_at(i, end)
                if name is None:
                    return -1  # no later candidate can have a ">" either
                if name in names:
                    return i
        return -1

    def declared_param_at(self, i: int, end: int, names: frozenset[str] | None) -> bool:
        if not self.text.startswith(P_OPEN, i, end):
            return False
        return names is None or self.name_at(i, end) in names

    def param_close(self, start: int, end: int, names: frozenset[str] | None, lookahead: bool) -> int:
        """Index of the ``</parameter>`` ending a value that starts at ``start``, or -1 (module docstring).

        ``lookahead``: the end of the text does not count as structural (the text may still grow)."""
        depth, pos, nxt = 0, start, -2
        while pos < end:
            self.step()
            if nxt == -2 or -1 < nxt < pos:
                nxt = self.param_start(pos, end, start, None)
            close = self.find(P_CLOSE, pos, end)
            if close == -1:
                return -1
            if nxt != -1 and nxt < close:
                depth, pos = depth + 1, nxt + len(P_OPEN)
            elif depth:
                depth, pos = depth - 1, close + len(P_CLOSE)
            else:
                i = self.skip(close + len(P_CLOSE), end)
                if ((i == end and not lookahead) or self.declared_param_at(i, end, names)
                        or self.text.startswith((FN_CLOSE, TC_CLOSE), i, end)):
                    return close
                pos = close + len(P_CLOSE)
        return -1

    def function_close(self, start: int, end: int) -> int:
        """First ``</function>`` in [start, end) followed only by whitespace and then ``</tool_call>`` or the end."""
        for i in self.each(FN_CLOSE, start, end):
            self.step()
            j = self.skip(i + len(FN_CLOSE), end)
            if j == end or self.text.startswith(TC_CLOSE, j, end):
                return i
        return -1

    def walk(self, start: int, end: int, names: frozenset[str] | None) -> int:
        """Walk a function body parameter by parameter to its structural ``</function>``; its index, or -1."""
        text, pos, seen = self.text, start, set[str]()
        while pos < end:
            self.step()
            while pos < end and text[pos] in _WALK_SPACE:
                pos += 1
            if pos >= end:
                return -1
            if text.startswith(FN_CLOSE, pos, end):
                return pos
            if not text.startswith(P_OPEN, pos, end):
                return self.function_close(pos, end)
            gt = self.find(">", pos + len(P_OPEN), end)
            if gt == -1:
                return -1
            pname = text[pos + len(P_OPEN):gt]
            value = gt + 1 + (gt + 1 < end and text[gt + 1] == "\n")
            close = self.param_close(value, end, names, lookahead=True)
            if close == -1:  # a missing </parameter>: the next declared, not yet seen parameter ends it
                unseen = None if names is None else names - seen - {pname}
                nxt = self.param_start(value, end, value, unseen)
                if nxt == -1:
                    return -1
                seen.add(pname)
                pos = nxt
                continue
            seen.add(pname)
            pos = close + len(P_CLOSE)
        return -1

    def blocks(self) -> list[tuple[int, int]]:
        """(body start, body end) of each <tool_call> block; [(0, len)] when there is no <tool_call>."""
        text, n = self.text, len(self.text)
        spans, pos = [], 0
        while (s := self.find(TC_OPEN, pos, n)) != -1:
            body, close = s + len(TC_OPEN), -1
            for k in self.each(TC_CLOSE, body, n):
                self.step()
                j = self.skip(k + len(TC_CLOSE), n)
                if j == n or text.startswith(TC_OPEN, j):
                    close = k
                    break
            spans.append((body, n if close == -1 else close))
            if close == -1:
                break
            pos = close + len(TC_CLOSE)
        return spans or [(0, n)]

    def params(self, start: int, end: int, names: frozenset[str] | None
               ) -> tuple[list[tuple[str, str]], list[str]]:
        """The parameters of a delimited function ``text[start:end]`` (``start``: after the name's ``>``)."""
        text = self.text
        params: list[tuple[str, str]] = []
        unclosed: list[str] = []
        pos = start
        while (ps := self.param_start(pos, end, start, None)) != -1:
            gt = self.find(">", ps + len(P_OPEN), end)
            if gt == -1:
                break
            pname, value = text[ps + len(P_OPEN):gt], gt + 1
            close = self.param_close(value, end, names, lookahead=False)
            if close != -1:
                raw, pos = text[value:close], close + len(P_CLOSE)
            else:
                unclosed.append(pname)
                nxt = self.param_start(value, end, value, names)
                if nxt != -1:
                    raw, pos = text[value:nxt], nxt
                else:
                    fc = self.function_close(value, end)
                    raw, pos = text[value:fc if fc != -1 else end], end
            params.append((pname, _strip_newlines(raw)))
        return params, unclosed

    def function(self, body: int, end: int, wrapped: bool, names: Names) -> tuple[XmlFunction | None, int]:
        """The first function of the block ``text[body:end]`` and where it ends, or (None, body) without one."""
        text = self.text
        fs = self.find(FN_OPEN, body, end)
        if fs == -1:
            return None, body
        after = fs + len(FN_OPEN)
        gt = self.find(">", after, end)
        walked = self.walk(gt + 1, end, names(text[after:gt])) if gt != -1 else self.walk(after, end, None)
        fend = walked if walked != -1 else self.function_close(after, end)
        closed = fend != -1
        fend = fend if closed else end
        tag_closed = not wrapped or (closed and text.startswith(TC_CLOSE, self.skip(fend + len(FN_CLOSE),
                                                                                      len(text))))
        gt = self.find(">", after, fend)
        if gt == -1:
            return XmlFunction(None, (), fs, wrapped, closed, tag_closed), fend
        name = text[after:gt]
        params, unclosed = self.params(gt + 1, fend, names(name))
        return XmlFunction(name, tuple(params), fs, wrapped, closed, tag_closed, tuple(unclosed),
                           settled=wrapped and walked != -1), fend

    def content(self) -> str:
        """vLLM's content: the text before the first <tool_call> holding a <function=, else before <function=."""
        text, n, pos = self.text, len(self.text), 0
        while (tc := self.find(TC_OPEN, pos, n)) != -1:
            self.step()
            close = self.find(TC_CLOSE, tc + len(TC_OPEN), n)
            limit = close if close != -1 else n
            if self.find(FN_OPEN, tc + len(TC_OPEN), limit) != -1:
                return text[:tc]
            pos = close + len(TC_CLOSE) if close != -1 else limit
        at = self.find(FN_OPEN, 0, n)
        return text[:at] if at >= 0 else text


def _strip_newlines(value: str) -> str:
    value = value[1:] if value.startswith("\n") else value
    return value[:-1] if value.endswith("\n") else value


def scan_xml(text: str, names: Names) -> XmlScan:
    """Delimit every call vLLM's qwen3_coder parser would read from ``text`` (already free of reasoning)."""
    if FN_OPEN not in text and TC_OPEN not in text:
        return XmlScan(content=text)
    t = _Text(text)
    try:
        if FN_OPEN not in text:  # vLLM reads no call; the blocks are reported, or the raw tags would go unnoticed
            return XmlScan(empty_blocks=tuple(text[b:e] for b, e in t.blocks()), content=text)
        wrapped = TC_OPEN in text
        functions: list[XmlFunction] = []
        hidden: list[str] = []
        empty: list[str] = []
        for body, end in t.blocks():
            fn, fend = t.function(body, end, wrapped, names)
            if fn is None:
                empty.append(text[body:end])
                continue
            functions.append(fn)
            for more in t.each(FN_OPEN, fend, end):
                gt = t.find(">", more, end)
                hidden.append(text[more + len(FN_OPEN):gt if gt != -1 else min(end, more + 40)])
        return XmlScan(tuple(functions), tuple(hidden), tuple(empty), t.content() if functions else text)
    except _TooComplex:
        return XmlScan(content=text, too_complex=True)
