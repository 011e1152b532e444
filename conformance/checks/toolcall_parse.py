"""Tool-call parsing: every shape a server emits → one canonical form, plus named defects.

Why: the same model family emits tool calls in different *shapes* depending on the server's tool parser —
OpenAI-native ``message.tool_calls``, hermes text (``<tool_call>{"name":…,"arguments":…}</tool_call>``) or
Qwen3-Coder XML (``<tool_call><function=NAME><parameter=P>VALUE</parameter></function></tool_call>``). A
consumer dispatches on *name + arguments*, so that is what survives parsing; the shape is recorded in
:attr:`ToolCall.source` and call ids are kept only for display.

Text shapes are read **the way vLLM's tool parsers read them** (``hermes``, ``qwen3_coder``), so that a
vLLM-served baseline and a candidate emitting the same text as content agree exactly where a vLLM consumer would
see the same calls (see ``docs/TOOLCALLS.md`` for the rules, the vectors and the named divergences):

``format="auto"`` (default)
    native calls, plus the text shape the answer uses — hermes when its first ``<tool_call>`` holds JSON,
    Qwen3-Coder XML when it holds ``<function=`` (or there is a ``<function=`` and no ``<tool_call>`` at all).
``"native"``
    only ``message.tool_calls``; tool-call markup left in the content is reported (``calls_in_content``).
``"hermes"`` / ``"qwen3_xml"``
    native calls plus that one text shape, whatever the text looks like.

Reasoning is skipped first (:mod:`conformance.checks.think`); calls inside it are never made. A complete call
found there is a warning (``call_inside_think``), a mere mention of ``<tool_call>`` is nothing.

:func:`parse_tool_calls` never raises: bad output is data. It returns the calls it could recover and named
**defects**. *Fatal* defects (:data:`FATAL`) mean a standard consumer could not use the output — vLLM's parser
would return no calls at all (``invalid_json``, ``parameters_key``, ``unconvertible_value`` …) or the consumer's
``json.loads(arguments)`` would not give an object (``double_encoded_arguments``, ``nan`` …). A call that cannot
be used at all is either left out of :attr:`ParseResult.calls` or carries a fatal defect. The others are warnings
about output vLLM still reads (``unclosed_tag``, ``unwrapped_call``, ``hidden_call``, ``serialized_arguments``,
``coercion_failed``, ``unknown_tool`` …).

Comparison, tiers and gates live in :mod:`conformance.checks.toolcalls`, the public face of this module.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from conformance.canonical import canonical_json
from conformance.checks.schema import Schema, resolve_branches
from conformance.checks.think import split_think
from conformance.checks.toolcall_json import native_arguments, parse_hermes, parse_native
from conformance.checks.toolcall_model import FATAL, FORMATS, Defect, Format, ParseResult, TextCalls, ToolCall
from conformance.checks.toolcall_values import (
    coerce_text,
    convert_xml_value,
    has_non_finite,
    property_schema,
    schema_types,
    tool_schemas,
    value_type,
)
from conformance.checks.toolcall_xml import FN_OPEN, TC_OPEN, XmlScan, scan_xml, valid_name

__all__ = [
    "FATAL", "FORMATS", "Defect", "Format", "ParseResult", "ToolCall", "ToolCallStream", "canonical_json",
    "coerce_text", "expected_calls", "parse_tool_calls", "property_schema", "render_hermes", "render_native",
    "render_xml", "schema_types", "tool_schemas", "value_type",
]

_SPACE = re.compile(r"\s*")


def _properties(schemas: dict[str, Schema] | None, name: str) -> Mapping[str, Any]:
    """The tool's top-level ``properties``, the only place vLLM looks for parameter types."""
    props = (schemas or {}).get(name, {}).get("properties")
    return props if isinstance(props, Mapping) else {}


def _xml(answer: str, schemas: dict[str, Schema] | None, offset: int) -> TextCalls:
    """vLLM's qwen3_coder parser (:mod:`conformance.checks.toolcall_xml`), values converted as vLLM does."""
    scan: XmlScan = scan_xml(answer, lambda n: frozenset(_properties(schemas, n)) or None)
    out = TextCalls(content=scan.content)
    if scan.too_complex:
        out.defects.append(Defect("too_complex", f"the Qwen3-Coder XML of this answer ({len(answer):,} characters) "
                                  "is too irregular to read within the parser's work bound; no call was read"))
    counting = True
    for fn in scan.functions:
        i = offset + len(out.calls)
        where = f"call {i + 1} `{fn.name}`"
        counting = counting and fn.settled
        if fn.name is None or not valid_name(fn.name):
            shown = "<function=" if fn.name is None else f"<function={fn.name[:40]}>"
            out.defects.append(Defect("invalid_function_name", f"{shown!r} is not a function name (no '>', or it "
                                      "holds whitespace, quotes, braces or angle brackets); vLLM drops the call", i))
            continue
        if not fn.wrapped:
            out.defects.append(Defect("unwrapped_call", f"{where}: <function=…> without a <tool_call> wrapper; "
                                      "vLLM's qwen3_coder parser still reads it", i))
        if not fn.closed:
            out.defects.append(Defect("unclosed_tag", f"{where}: missing </function>", i))
        elif not fn.tag_closed:
            out.defects.append(Defect("unclosed_tag", f"{where}: missing </tool_call>", i))
        out.defects += [Defect("unclosed_tag", f"{where}: missing </parameter> after `{p}`", i)
                        for p in fn.unclosed_params]
        props, args = _properties(schemas, fn.name), {}
        for pname, text in fn.params:
            if pname in args:
                out.defects.append(Defect("duplicate_keys", f"{where}: parameter `{pname}` given twice; the last "
                                          "one counts", i))
            conv = convert_xml_value(text, props.get(pname), pname in props)
            if conv.breaks_vllm:
                out.defects.append(Defect("unconvertible_value", f"{where}: `{pname}`={text[:40]!r} {conv.note} — "
                                          "vLLM's parser raises and returns no calls at all", i))
            elif conv.note:
                out.defects.append(Defect("coercion_failed", f"{where}: `{pname}`={text[:40]!r} {conv.note}", i))
            args[pname] = conv.value
        if has_non_finite(args):
            out.defects.append(Defect("nan", f"{where}: arguments contain NaN or Infinity", i))
        out.calls.append(ToolCall(fn.name, args, "xml"))
        out.settled += counting
    for body in scan.empty_blocks:
        i = offset + len(out.calls)
        out.defects.append(Defect("empty_call", "empty <tool_call> block", i) if not body.strip() else
                           Defect("invalid_xml", f"<tool_call> block with no <function=NAME>: "
                                  f"{body.strip()[:80]!r}; vLLM's qwen3_coder parser reads no call from it", i))
    out.defects += [Defect("hidden_call", f"<function={name[:40]}> is never read: vLLM's qwen3_coder parser "
                           "takes one function per <tool_call> block, and a </tool_call> followed by text does "
                           "not end a block") for name in scan.hidden]
    return out


def _shape(answer: str, fmt: Format) -> str | None:
    """Which text shape to read: "hermes", "xml" or None (no text calls).

    ``auto`` looks only at the first ``<tool_call>`` block — JSON (``{``/``[``) is hermes, anything else XML — so
    the choice never changes as a streamed answer grows."""
    if fmt == "native":
        return None
    if fmt != "auto":
        return "xml" if fmt == "qwen3_xml" else "hermes"
    start = answer.find(TC_OPEN)
    if start == -1:
        return "xml" if FN_OPEN in answer else None
    first = _SPACE.match(answer, start + len(TC_OPEN))
    at = first.end() if first else start + len(TC_OPEN)
    return "hermes" if answer.startswith(("{", "["), at) else "xml"


def _no_call_markup(before: str) -> bool:
    # a "</think>" after call markup is text inside a call (an argument), not the end of reasoning
    return TC_OPEN not in before and FN_OPEN not in before


def _text_calls(text: str, schemas: dict[str, Schema] | None, fmt: Format, offset: int) -> TextCalls:
    split = split_think(text, orphan_ok=_no_call_markup)
    answer = "" if split.unclosed else split.answer
    shape = _shape(answer, fmt)
    out = parse_hermes(answer, offset) if shape == "hermes" else _xml(answer, schemas, offset) if shape else \
        TextCalls(content=answer)
    if fmt == "native" and (TC_OPEN in answer or FN_OPEN in answer):
        out.defects.append(Defect("calls_in_content", "the content holds tool-call markup the server did not "
                                  "parse; consumers reading message.tool_calls never see those calls"))
    if split.reasoning and (TC_OPEN in split.reasoning or FN_OPEN in split.reasoning):
        thought = _text_calls(split.reasoning, schemas, "auto" if fmt == "native" else fmt, 0).calls
        if thought:
            out.defects.append(Defect("call_inside_think", f"{len(thought)} complete call(s) "
                                      f"({', '.join(c.name for c in thought)}) inside the reasoning: a reasoning "
                                      "parser hides them, so they are never made"))
    out.content = out.content.strip()
    return out


def _schema_defects(calls: Sequence[ToolCall], schemas: dict[str, Schema] | None) -> list[Defect]:
    if schemas is None:
        return []
    out = []
    for i, c in enumerate(calls):
        if c.name not in schemas:
            out.append(Defect("unknown_tool", f"`{c.name}` is not one of the tools offered ({sorted(schemas)})", i))
            continue
        params, args = schemas[c.name], c.arguments if isinstance(c.arguments, dict) else {}
        props = {k for s in resolve_branches(params, params) if isinstance(s.get("properties"), Mapping)
                 for k in s["properties"]}
        out += [Defect("unknown_parameter", f"`{c.name}` has no parameter `{k}`", i)
                for k in sorted(args) if props and k not in props]
        required = params.get("required")
        out += [Defect("missing_required", f"`{c.name}` lacks required argument `{k}`", i)
                for k in (required if isinstance(required, list) else ()) if isinstance(k, str) and k not in args]
    return out


def _parse(text: str | None, native: Sequence[Mapping[str, Any]] | None, tools: Sequence[Mapping[str, Any]] | None,
           fmt: Format) -> tuple[ParseResult, int]:
    defects: list[Defect] = []
    schemas = tool_schemas(tools)
    calls = parse_native(list(native or ()), defects)
    found = _text_calls(text or "", schemas, fmt, offset=len(calls))
    defects += found.defects
    if calls and found.calls:
        defects.append(Defect("mixed_formats", "calls both in native tool_calls and as text in the content"))
    calls += found.calls
    defects += _schema_defects(calls, schemas)
    return ParseResult(tuple(calls), tuple(defects), found.content), found.settled


def parse_tool_calls(text: str | None, native: Sequence[Mapping[str, Any]] | None = None,
                     tools: Sequence[Mapping[str, Any]] | None = None, *, finish_reason: str | None = None,
                     format: Format = "auto") -> ParseResult:
    """Parse native calls and the text's calls (per ``format``) into canonical calls plus defects; never raises."""
    try:
        result, _ = _parse(text, native, tools, format)
        return ParseResult(result.calls, result.defects, result.content, finish_reason)
    except Exception as exc:  # last resort: a crashing parser would hide the very output it should report on
        return ParseResult((), (Defect("parser_error", f"{type(exc).__name__}: {exc}"),), text or "", finish_reason)


class ToolCallStream:
    """Incremental parsing of streamed text, for consumers that dispatch a call as soon as it is complete.

    :meth:`feed` returns the calls that later text can no longer change — a hermes call once its
    ``</tool_call>`` arrived, an XML call once its structural ``</function>`` did — outside any reasoning;
    :meth:`finish` returns exactly what :func:`parse_tool_calls` returns for the whole text, and the calls fed
    out are always a prefix of its calls, so chunk boundaries never change what a streaming consumer executes.
    (An XML call without a ``<tool_call>`` wrapper is only known at the end: a later ``<tool_call>`` would hide
    it.) Each feed rescans the buffer (quadratic, fine for answers of a few KB).
    """

    def __init__(self, tools: Sequence[Mapping[str, Any]] | None = None, *, format: Format = "auto") -> None:
        self._tools, self._format = tools, format
        self._text, self._emitted = "", 0

    def feed(self, chunk: str) -> list[ToolCall]:
        self._text += chunk
        try:
            result, settled = _parse(self._text, None, self._tools, self._format)
        except Exception:  # never raise mid-stream; finish() reports it as parser_error
            return []
        new = list(result.calls[self._emitted:settled])
        self._emitted = max(self._emitted, settled)
        return new

    def finish(self, native: Sequence[Mapping[str, Any]] | None = None,
               finish_reason: str | None = None) -> ParseResult:
        return parse_tool_calls(self._text, native, self._tools, finish_reason=finish_reason, format=self._format)


def expected_calls(expected: Sequence[Mapping[str, Any]], tools: Sequence[Mapping[str, Any]] | None = None
                   ) -> ParseResult:
    """Golden ``expect.tool_calls`` (``[{name, arguments}]``; arguments a mapping or a JSON string)."""
    defects: list[Defect] = []
    calls = []
    for i, e in enumerate(expected):
        if not isinstance(e, Mapping):
            defects.append(Defect("invalid_call", f"expected call {i + 1} is {value_type(e)}, not a mapping", i))
            continue
        raw = e.get("arguments", {})
        where = f"expected call {i + 1}"
        args = dict(raw) if isinstance(raw, Mapping) else native_arguments(raw, where, defects, i)
        calls.append(ToolCall(str(e.get("name", "")), args if args is not None else {}, "expected"))
    return ParseResult(tuple(calls), tuple(defects + _schema_defects(calls, tool_schemas(tools))))


# ---------------------------------------------------------------- rendering (fixtures, fakes, round trips)
def _name_args(call: ToolCall | Mapping[str, Any]) -> tuple[str, Any]:
    return (call.name, call.arguments) if isinstance(call, ToolCall) else (call["name"], call.get("arguments", {}))


def render_native(calls: Sequence[ToolCall | Mapping[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for i, c in enumerate(calls):
        name, args = _name_args(c)
        out.append({"id": f"call_{i}", "type": "function",
                    "function": {"name": name, "arguments": json.dumps(args, ensure_ascii=False)}})
    return out


def render_hermes(calls: Sequence[ToolCall | Mapping[str, Any]]) -> str:
    out = []
    for c in calls:
        name, args = _name_args(c)
        out.append(f"<tool_call>\n{json.dumps({'name': name, 'arguments': args}, ensure_ascii=False)}\n</tool_call>\n")
    return "".join(out)


def render_xml(calls: Sequence[ToolCall | Mapping[str, Any]]) -> str:
    parts = []
    for c in calls:
        name, args = _name_args(c)
        params = "".join(f"<parameter={k}>\n{v if isinstance(v, str) else json.dumps(v, ensure_ascii=False)}\n"
                         "</parameter>\n" for k, v in args.items())
        parts.append(f"<tool_call>\n<function={name}>\n{params}</function>\n</tool_call>\n")
    return "".join(parts)
