"""Tool-call parsing: every shape a server emits → one canonical form, plus named defects.

Why: the same model family emits tool calls in different *shapes* depending on the server's tool parser —
OpenAI-native ``message.tool_calls``, hermes text (``<tool_call>{"name":…,"arguments":…}</tool_call>``) or
Qwen3-Coder XML (``<tool_call><function=NAME><parameter=P>VALUE</parameter></function></tool_call>``). A
consumer dispatches on *name + arguments*, so that is what survives parsing; the shape is recorded in
:attr:`ToolCall.source` and call ids are kept only for display.

:func:`parse_tool_calls` never raises: bad output is data. It returns the calls it could recover and named
**defects**. *Fatal* defects (:data:`FATAL`) mean a standard consumer could not use the output
(``invalid_json``, ``nan``, ``double_encoded_arguments``, ``call_inside_think`` …); the others are warnings
the parser recovered from (``unclosed_tag``, ``duplicate_keys``, ``unknown_tool``, ``unknown_parameter`` …).

XML parameter values are text, so they are coerced by the tool's JSON schema, trying null → boolean →
integer → number → object/array and keeping the text when ``string`` is allowed (so a union
``integer | string`` reads ``"30"`` as 30); a value that fits no declared type stays a string (defect
``coercion_failed``). Without a schema XML values stay strings, as in vLLM's ``qwen3_coder`` parser. One
newline after the opening and before the closing parameter tag belongs to the format and is dropped.

Comparison, tiers and gates live in :mod:`conformance.checks.toolcalls`, the public face of this module.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from conformance.checks.schema import Schema, resolve_branches

FATAL: frozenset[str] = frozenset({
    "invalid_json", "nan", "double_encoded_arguments", "missing_name", "arguments_not_object",
    "arguments_not_string", "call_inside_think", "invalid_xml", "empty_call", "invalid_call", "parser_error"})
_TAG = re.compile(r"</?tool_call>|</?think>")
_FUNC = re.compile(r"<function=([^>\n]*)>(.*?)(</function>|(?=<function=)|\Z)", re.DOTALL)
_PARAM = re.compile(r"<parameter=([^>\n]*)>(.*?)(</parameter>|(?=<parameter=)|\Z)", re.DOTALL)
_INT = re.compile(r"-?\d+")
_NUM = re.compile(r"-?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def canonical_json(obj: Any) -> str:
    """Sorted keys, no whitespace, UTF-8 kept; NaN stays ``NaN`` so a value always equals itself."""
    return json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)


@dataclass(frozen=True)
class ToolCall:
    """One call in canonical form. ``source``: native | hermes | xml | expected; ``id`` is never compared."""

    name: str
    arguments: Any
    source: str = "native"
    id: str | None = field(default=None, compare=False)

    @property
    def canonical(self) -> str:
        return canonical_json({"name": self.name, "arguments": self.arguments})


@dataclass(frozen=True)
class Defect:
    """A named problem in one output; ``call`` is the 0-based index of the call it belongs to, if any."""

    name: str
    detail: str
    call: int | None = None

    @property
    def fatal(self) -> bool:
        return self.name in FATAL


@dataclass(frozen=True)
class ParseResult:
    """Calls recovered from one response, its defects, the text next to the calls and its finish_reason."""

    calls: tuple[ToolCall, ...] = ()
    defects: tuple[Defect, ...] = ()
    content: str = ""
    finish_reason: str | None = None

    @property
    def ok(self) -> bool:
        return not any(d.fatal for d in self.defects)

    @property
    def sources(self) -> frozenset[str]:
        return frozenset(c.source for c in self.calls)


# ---------------------------------------------------------------- schema helpers
def tool_schemas(tools: Sequence[Mapping[str, Any]] | None) -> dict[str, Schema] | None:
    """``{name: parameters schema}`` from an OpenAI ``tools`` array (None when no tools were given)."""
    if tools is None:
        return None
    out: dict[str, Schema] = {}
    for tool in tools:
        fn = tool.get("function", tool) if isinstance(tool, Mapping) else None
        if isinstance(fn, Mapping) and isinstance(fn.get("name"), str):
            params = fn.get("parameters")
            out[fn["name"]] = params if isinstance(params, Mapping) else {}
    return out


def schema_types(schema: Any, root: Schema) -> set[str]:
    """JSON types a (sub)schema admits: ``type``, ``nullable``, ``enum``/``const`` and union branches."""
    out: set[str] = set()
    for s in resolve_branches(schema, root):
        t = s.get("type")
        out.update([t] if isinstance(t, str) else [x for x in t if isinstance(x, str)] if isinstance(t, list) else [])
        if s.get("nullable") is True:
            out.add("null")
        for v in [*(s.get("enum") or ()), *([s["const"]] if "const" in s else [])]:
            out.add(value_type(v))
    return out


def property_schema(params: Schema | None, name: str, root: Schema | None = None) -> Any:
    """The subschema of parameter ``name`` (looking through unions and local refs), or None."""
    if not params:
        return None
    for s in resolve_branches(params, root if root is not None else params):
        sub = (s.get("properties") or {}).get(name)
        if sub is not None:
            return sub
    return None


def value_type(v: Any) -> str:
    """JSON-Schema type name of a value; unlike JSON's one "number", integer and float are told apart."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, int):
        return "integer"
    return {float: "number", str: "string", list: "array", dict: "object"}.get(type(v), type(v).__name__)


def coerce_text(value: str, schema: Any, root: Schema | None = None) -> tuple[Any, bool]:
    """An XML parameter's text → typed value by schema; ``(value, False)`` when no declared type fits."""
    types = schema_types(schema, root or (schema if isinstance(schema, Mapping) else {}))
    if not types:
        return value, True
    s = value.strip()
    if "null" in types and s.lower() in ("null", "none"):
        return None, True
    if "boolean" in types and s.lower() in ("true", "false"):
        return s.lower() == "true", True
    if types & {"integer", "number"} and _NUM.fullmatch(s) and len(s) <= 4000:  # int() refuses longer digits
        if _INT.fullmatch(s):
            return int(s), True
        if "number" in types:
            return float(s), True
    if types & {"object", "array"}:
        loaded, _, err = _load_json(s)
        if err is None and value_type(loaded) in types:
            return loaded, True
    return value, "string" in types


# ---------------------------------------------------------------- parsing
def _load_json(text: str) -> tuple[Any, list[str], str | None]:
    """JSON value, defect names (nan, duplicate_keys), error message."""
    flags: list[str] = []

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        if len({k for k, _ in items}) < len(items):
            flags.append("duplicate_keys")
        return dict(items)

    def const(name: str) -> float:
        flags.append("nan")
        return float(name)

    try:
        return json.loads(text, object_pairs_hook=pairs, parse_constant=const), sorted(set(flags)), None
    except json.JSONDecodeError as exc:
        return None, [], f"{exc.msg} at line {exc.lineno} column {exc.colno}"
    except (ValueError, RecursionError) as exc:
        return None, [], f"{type(exc).__name__}: {exc}"


def _arguments(raw: Any, where: str, defects: list[Defect], i: int, *, from_string: bool) -> Any:
    """Validate/decode one call's arguments; appends defects; returns a dict, or None when unusable."""
    if from_string and isinstance(raw, Mapping):
        defects.append(Defect("arguments_not_string", f"{where}: arguments is a JSON object, not a JSON string "
                              "— json.loads(arguments) raises TypeError", i))
        return dict(raw)
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        defects.append(Defect("empty_arguments", f"{where}: no arguments given; read as {{}}", i))
        return {}
    value = raw
    if isinstance(raw, str):
        value, flags, err = _load_json(raw)
        if err is not None:
            kind = "invalid_json" if from_string else "arguments_not_object"
            defects.append(Defect(kind, f"{where}: arguments are not valid JSON ({err}): {raw[:80]!r}", i))
            return None
        defects += [Defect(f, f"{where}: arguments contain {f.replace('_', ' ')}", i) for f in flags]
        if not from_string and isinstance(value, dict):  # hermes: "arguments" should be an object, not text
            defects.append(Defect("double_encoded_arguments", f"{where}: arguments are a JSON string holding "
                                  "an object", i))
            return value
        if isinstance(value, str):
            inner, _, err = _load_json(value)
            if err is None and isinstance(inner, dict):
                defects.append(Defect("double_encoded_arguments", f"{where}: arguments were JSON-encoded twice", i))
                return inner
    if not isinstance(value, dict):
        defects.append(Defect("arguments_not_object", f"{where}: arguments are {value_type(value)}, not an object", i))
        return None
    return value


def _native(items: Sequence[Any], defects: list[Defect]) -> list[ToolCall]:
    calls = []
    for i, tc in enumerate(items):
        fn = tc.get("function") if isinstance(tc, Mapping) else None
        if not isinstance(fn, Mapping):
            defects.append(Defect("invalid_call", f"native call {i + 1} has no function object: {tc!r:.80}", i))
            continue
        name = fn.get("name")
        if not isinstance(name, str) or not name:
            defects.append(Defect("missing_name", f"native call {i + 1} has no function name", i))
            continue
        args = _arguments(fn.get("arguments"), f"call {i + 1} `{name}`", defects, i, from_string=True)
        if args is not None:
            calls.append(ToolCall(name, args, "native", tc.get("id") if isinstance(tc.get("id"), str) else None))
    return calls


def _xml(body: str, i: int, schemas: dict[str, Schema] | None, defects: list[Defect]) -> list[ToolCall]:
    calls = []
    for fm in _FUNC.finditer(body):
        name, fbody = fm.group(1).strip(), fm.group(2)
        if not fm.group(3):
            defects.append(Defect("unclosed_tag", f"call {i + 1} `{name}`: missing </function>", i))
        params = (schemas or {}).get(name)
        args: dict[str, Any] = {}
        for pm in _PARAM.finditer(fbody):
            pname, text = pm.group(1).strip(), pm.group(2)
            if not pm.group(3):
                defects.append(Defect("unclosed_tag", f"call {i + 1} `{name}`: missing </parameter> after "
                                      f"`{pname}`", i))
            text = text[1:] if text.startswith("\n") else text
            text = text[:-1] if text.endswith("\n") else text
            if pname in args:
                defects.append(Defect("duplicate_keys", f"call {i + 1} `{name}`: parameter `{pname}` given twice", i))
            value, fits = coerce_text(text, property_schema(params, pname), params)
            if not fits:
                defects.append(Defect("coercion_failed", f"call {i + 1} `{name}`: `{pname}`={text[:40]!r} fits no "
                                      "type the schema declares", i))
            args[pname] = value
        calls.append(ToolCall(name, args, "xml"))
    if not calls:
        defects.append(Defect("invalid_xml", f"call {i + 1}: no <function=NAME> in {body[:80]!r}", i))
    return calls


def _hermes(body: str, i: int, defects: list[Defect]) -> list[ToolCall]:
    value, flags, err = _load_json(body)
    if err is not None:
        defects.append(Defect("invalid_json", f"call {i + 1}: <tool_call> body is not valid JSON ({err}): "
                              f"{body[:80]!r}", i))
        return []
    defects += [Defect(f, f"call {i + 1}: <tool_call> body contains {f.replace('_', ' ')}", i) for f in flags]
    if isinstance(value, list):
        defects.append(Defect("call_list", f"call {i + 1}: one <tool_call> holds a list of {len(value)} calls", i))
    calls = []
    for obj in value if isinstance(value, list) else [value]:
        if not isinstance(obj, dict):
            defects.append(Defect("invalid_call", f"call {i + 1}: <tool_call> body is {value_type(obj)}, not an "
                                  "object", i))
            continue
        name = obj.get("name")
        if not isinstance(name, str) or not name:
            defects.append(Defect("missing_name", f"call {i + 1}: no \"name\" in {body[:80]!r}", i))
            continue
        if "arguments" not in obj and "parameters" in obj:
            defects.append(Defect("parameters_key", f"call {i + 1} `{name}`: \"parameters\" instead of "
                                  "\"arguments\"", i))
        raw = obj.get("arguments", obj.get("parameters"))
        args = _arguments(raw, f"call {i + 1} `{name}`", defects, i, from_string=False)
        if args is not None:
            calls.append(ToolCall(name, args, "hermes"))
    return calls


@dataclass
class _Scan:
    blocks: list[tuple[str, bool, bool]] = field(default_factory=list)  # (body, terminated, properly closed)
    content: list[str] = field(default_factory=list)
    think_calls: int = 0
    stray_close: int = 0


def _scan(text: str) -> _Scan:
    """Split text into <tool_call> blocks outside <think>, calls inside think, and the content around them."""
    sc, state, last, start = _Scan(), "out", 0, 0
    for m in _TAG.finditer(text):
        tag = m.group()
        if state == "out":
            if tag == "</think>":  # orphan close (template opened the block): what came before was reasoning
                sc.content.clear()
            else:
                sc.content.append(text[last:m.start()])
                sc.stray_close += tag == "</tool_call>"
                state = {"<tool_call>": "call", "<think>": "think"}.get(tag, "out")
            last = start = m.end()
        elif state == "call" and tag in ("</tool_call>", "<tool_call>"):
            sc.blocks.append((text[start:m.start()], True, tag == "</tool_call>"))
            state = "out" if tag == "</tool_call>" else "call"
            last = start = m.end()
        elif state == "think":
            sc.think_calls += tag == "<tool_call>"
            if tag == "</think>":
                state, last = "out", m.end()
    if state == "out":
        sc.content.append(text[last:])
    elif state == "call":
        sc.blocks.append((text[start:], False, False))
    return sc


def _block_calls(blocks: list[tuple[str, bool, bool]], schemas: dict[str, Schema] | None, defects: list[Defect],
                 offset: int = 0) -> list[ToolCall]:
    calls: list[ToolCall] = []
    for j, (body, _, closed) in enumerate(blocks):
        i = offset + j
        if not closed:
            defects.append(Defect("unclosed_tag", f"call {i + 1}: <tool_call> without </tool_call>", i))
        body = body.strip()
        if not body:
            defects.append(Defect("empty_call", f"call {i + 1}: empty <tool_call> block", i))
        elif body.startswith("<"):  # JSON never starts with "<": the XML shape (or broken XML)
            calls += _xml(body, i, schemas, defects)
        else:
            calls += _hermes(body, i, defects)
    return calls


def _schema_defects(calls: Sequence[ToolCall], schemas: dict[str, Schema] | None) -> list[Defect]:
    if schemas is None:
        return []
    out = []
    for i, c in enumerate(calls):
        if c.name not in schemas:
            out.append(Defect("unknown_tool", f"`{c.name}` is not one of the tools offered ({sorted(schemas)})", i))
            continue
        params, args = schemas[c.name], c.arguments if isinstance(c.arguments, dict) else {}
        props = {k for s in resolve_branches(params, params) for k in (s.get("properties") or {})}
        out += [Defect("unknown_parameter", f"`{c.name}` has no parameter `{k}`", i)
                for k in sorted(args) if props and k not in props]
        out += [Defect("missing_required", f"`{c.name}` lacks required argument `{k}`", i)
                for k in params.get("required") or () if k not in args]
    return out


def parse_tool_calls(text: str | None, native: Sequence[Mapping[str, Any]] | None = None,
                     tools: Sequence[Mapping[str, Any]] | None = None, *,
                     finish_reason: str | None = None) -> ParseResult:
    """Parse native calls and hermes/XML calls in the text into canonical calls plus defects; never raises."""
    try:
        defects: list[Defect] = []
        schemas = tool_schemas(tools)
        calls = _native(list(native or ()), defects)
        sc = _scan(text or "")
        if sc.think_calls:
            defects.append(Defect("call_inside_think", f"{sc.think_calls} <tool_call> inside <think>…</think>: "
                                  "a reasoning parser hides it, so the call is never made"))
        if sc.stray_close:
            defects.append(Defect("stray_close_tag", f"{sc.stray_close} </tool_call> without an opening tag"))
        text_calls = _block_calls(sc.blocks, schemas, defects, offset=len(calls))
        if calls and text_calls:
            defects.append(Defect("mixed_formats", "calls both in native tool_calls and as text in the content"))
        calls += text_calls
        defects += _schema_defects(calls, schemas)
        return ParseResult(tuple(calls), tuple(defects), "".join(sc.content).strip(), finish_reason)
    except Exception as exc:  # last resort: a crashing parser would hide the very output it should report on
        return ParseResult((), (Defect("parser_error", f"{type(exc).__name__}: {exc}"),), text or "", finish_reason)


class ToolCallStream:
    """Incremental parsing of streamed text, for consumers that dispatch a call as soon as it is complete.

    :meth:`feed` returns the calls whose ``<tool_call>`` block just ended (by ``</tool_call>`` or by the next
    ``<tool_call>``) outside any ``<think>`` block; :meth:`finish` returns exactly what
    :func:`parse_tool_calls` returns for the whole text, and the calls fed out are always a prefix of its
    calls — so chunk boundaries never change what a streaming consumer executes. Each feed rescans the buffer
    (quadratic, fine for answers of a few KB).
    """

    def __init__(self, tools: Sequence[Mapping[str, Any]] | None = None) -> None:
        self._tools, self._schemas = tools, tool_schemas(tools)
        self._text, self._emitted = "", 0

    def feed(self, chunk: str) -> list[ToolCall]:
        self._text += chunk
        try:
            done = [b for b in _scan(self._text).blocks if b[1]]
            calls = _block_calls(done, self._schemas, [])
        except Exception:  # never raise mid-stream; finish() reports it as parser_error
            return []
        new, self._emitted = calls[self._emitted:], max(self._emitted, len(calls))
        return new

    def finish(self, native: Sequence[Mapping[str, Any]] | None = None,
               finish_reason: str | None = None) -> ParseResult:
        return parse_tool_calls(self._text, native, self._tools, finish_reason=finish_reason)


def expected_calls(expected: Sequence[Mapping[str, Any]], tools: Sequence[Mapping[str, Any]] | None = None
                   ) -> ParseResult:
    """Golden ``expect.tool_calls`` (``[{name, arguments}]``; arguments a mapping or a JSON string)."""
    defects: list[Defect] = []
    calls = []
    for i, e in enumerate(expected):
        raw = e.get("arguments", {})
        args = _arguments(raw, f"expected call {i + 1}", defects, i, from_string=isinstance(raw, str))
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
