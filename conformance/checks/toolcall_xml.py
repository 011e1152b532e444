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
from collections.abc import Callable
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


def valid_name(name: str | None) -> bool:
    """A function name vLLM accepts: non-empty, no whitespace, quotes, braces or angle brackets."""
    return bool(name) and not _BAD_NAME.search(name or "")


def _skip(text: str, pos: int, end: int) -> int:
    m = _SPACE.match(text, pos, end)
    return m.end() if m else pos


def _param_start(text: str, pos: int, end: int, base: int, names: frozenset[str] | None) -> int:
    """Next ``<parameter=`` at a line start (or at ``base``) in [pos, end); with ``names``, of those names only."""
    i = pos
    while (i := text.find(P_OPEN, i, end)) != -1:
        if i == base or text[i - 1] == "\n":
            if names is None:
                return i
            gt = text.find(">", i + len(P_OPEN), end)
            if gt == -1:
                return -1  # no later candidate can have a ">" either
            if text[i + len(P_OPEN):gt] in names:
                return i
        i += 1
    return -1


def _declared_param_at(text: str, i: int, end: int, names: frozenset[str] | None) -> bool:
    if not text.startswith(P_OPEN, i, end):
        return False
    if names is None:
        return True
    gt = text.find(">", i + len(P_OPEN), end)
    return gt != -1 and text[i + len(P_OPEN):gt] in names


def _param_close(text: str, start: int, end: int, names: frozenset[str] | None, lookahead: bool) -> int:
    """Index of the ``</parameter>`` that ends a value starting at ``start``, or -1 (see the module docstring).

    ``lookahead``: the end of the text does not count as structural (the text may still grow)."""
    depth, pos, nxt = 0, start, -2
    while pos < end:
        if nxt == -2 or -1 < nxt < pos:
            nxt = _param_start(text, pos, end, start, None)
        close = text.find(P_CLOSE, pos, end)
        if close == -1:
            return -1
        if nxt != -1 and nxt < close:
            depth, pos = depth + 1, nxt + len(P_OPEN)
        elif depth:
            depth, pos = depth - 1, close + len(P_CLOSE)
        else:
            i = _skip(text, close + len(P_CLOSE), end)
            if ((i == end and not lookahead) or _declared_param_at(text, i, end, names)
                    or text.startswith((FN_CLOSE, TC_CLOSE), i, end)):
                return close
            pos = close + len(P_CLOSE)
    return -1


def _function_close(text: str, start: int, end: int) -> int:
    """First ``</function>`` in [start, end) followed only by whitespace and then ``</tool_call>`` or the end."""
    i = start
    while (i := text.find(FN_CLOSE, i, end)) != -1:
        j = _skip(text, i + len(FN_CLOSE), end)
        if j == end or text.startswith(TC_CLOSE, j, end):
            return i
        i += len(FN_CLOSE)
    return -1


def _walk(text: str, start: int, end: int, names: frozenset[str] | None) -> int:
    """Walk a function body parameter by parameter to its structural ``</function>``; its index, or -1."""
    pos, seen = start, set[str]()
    while pos < end:
        while pos < end and text[pos] in _WALK_SPACE:
            pos += 1
        if pos >= end:
            return -1
        if text.startswith(FN_CLOSE, pos, end):
            return pos
        if not text.startswith(P_OPEN, pos, end):
            return _function_close(text, pos, end)
        gt = text.find(">", pos + len(P_OPEN), end)
        if gt == -1:
            return -1
        pname = text[pos + len(P_OPEN):gt]
        value = gt + 1 + (gt + 1 < end and text[gt + 1] == "\n")
        close = _param_close(text, value, end, names, lookahead=True)
        if close == -1:  # a missing </parameter>: the next declared, not yet seen parameter ends it
            unseen = None if names is None else names - seen - {pname}
            nxt = _param_start(text, value, end, value, unseen)
            if nxt == -1:
                return -1
            seen.add(pname)
            pos = nxt
            continue
        seen.add(pname)
        pos = close + len(P_CLOSE)
    return -1


def _blocks(text: str) -> list[tuple[int, int]]:
    """(body start, body end) of each <tool_call> block; [(0, len)] when there is no <tool_call>."""
    spans, pos, n = [], 0, len(text)
    while (s := text.find(TC_OPEN, pos)) != -1:
        body = k = s + len(TC_OPEN)
        close = -1
        while (k := text.find(TC_CLOSE, k)) != -1:
            j = _skip(text, k + len(TC_CLOSE), n)
            if j == n or text.startswith(TC_OPEN, j):
                close = k
                break
            k += len(TC_CLOSE)
        spans.append((body, n if close == -1 else close))
        if close == -1:
            break
        pos = close + len(TC_CLOSE)
    return spans or [(0, n)]


def _strip_newlines(value: str) -> str:
    value = value[1:] if value.startswith("\n") else value
    return value[:-1] if value.endswith("\n") else value


def _params(text: str, start: int, end: int, names: frozenset[str] | None
            ) -> tuple[list[tuple[str, str]], list[str]]:
    """The parameters of a delimited function ``text[start:end]`` (``start``: after the name's ``>``)."""
    params: list[tuple[str, str]] = []
    unclosed: list[str] = []
    pos = start
    while (ps := _param_start(text, pos, end, start, None)) != -1:
        gt = text.find(">", ps + len(P_OPEN), end)
        if gt == -1:
            break
        pname, value = text[ps + len(P_OPEN):gt], gt + 1
        close = _param_close(text, value, end, names, lookahead=False)
        if close != -1:
            raw, pos = text[value:close], close + len(P_CLOSE)
        else:
            unclosed.append(pname)
            nxt = _param_start(text, value, end, value, names)
            if nxt != -1:
                raw, pos = text[value:nxt], nxt
            else:
                fc = _function_close(text, value, end)
                raw, pos = text[value:fc if fc != -1 else end], end
        params.append((pname, _strip_newlines(raw)))
    return params, unclosed


def _function(text: str, body: int, end: int, wrapped: bool, names: Names) -> tuple[XmlFunction | None, int]:
    """The first function of the block ``text[body:end]`` and where it ends, or (None, body) when it has none."""
    fs = text.find(FN_OPEN, body, end)
    if fs == -1:
        return None, body
    after = fs + len(FN_OPEN)
    gt = text.find(">", after, end)
    walked = _walk(text, gt + 1, end, names(text[after:gt])) if gt != -1 else _walk(text, after, end, None)
    fend = walked if walked != -1 else _function_close(text, after, end)
    closed = fend != -1
    fend = fend if closed else end
    tag_closed = not wrapped or (closed and text.startswith(TC_CLOSE, _skip(text, fend + len(FN_CLOSE),
                                                                             len(text))))
    gt = text.find(">", after, fend)
    if gt == -1:
        return XmlFunction(None, (), fs, wrapped, closed, tag_closed), fend
    name = text[after:gt]
    params, unclosed = _params(text, gt + 1, fend, names(name))
    return XmlFunction(name, tuple(params), fs, wrapped, closed, tag_closed, tuple(unclosed),
                       settled=wrapped and walked != -1), fend


def _content(text: str) -> str:
    """vLLM's content: the text before the first <tool_call> holding a <function=, else before <function=."""
    pos = 0
    while (tc := text.find(TC_OPEN, pos)) != -1:
        close = text.find(TC_CLOSE, tc + len(TC_OPEN))
        limit = close if close != -1 else len(text)
        if text.find(FN_OPEN, tc + len(TC_OPEN), limit) != -1:
            return text[:tc]
        pos = close + len(TC_CLOSE) if close != -1 else limit
    at = text.find(FN_OPEN)
    return text[:at] if at >= 0 else text


def scan_xml(text: str, names: Names) -> XmlScan:
    """Delimit every call vLLM's qwen3_coder parser would read from ``text`` (already free of reasoning)."""
    if FN_OPEN not in text:  # vLLM reads no call; the blocks are reported, or the raw tags would go unnoticed
        return XmlScan(empty_blocks=tuple(text[b:e] for b, e in _blocks(text)) if TC_OPEN in text else (),
                       content=text)
    wrapped = TC_OPEN in text
    functions: list[XmlFunction] = []
    hidden: list[str] = []
    empty: list[str] = []
    for body, end in _blocks(text):
        fn, fend = _function(text, body, end, wrapped, names)
        if fn is None:
            empty.append(text[body:end])
            continue
        functions.append(fn)
        pos = fend
        while (more := text.find(FN_OPEN, pos, end)) != -1:
            gt = text.find(">", more, end)
            hidden.append(text[more + len(FN_OPEN):gt if gt != -1 else min(end, more + 40)])
            pos = more + len(FN_OPEN)
    return XmlScan(tuple(functions), tuple(hidden), tuple(empty),
                   _content(text) if functions else text)
