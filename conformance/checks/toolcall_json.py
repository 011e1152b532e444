"""Tool calls carried as JSON: OpenAI-native ``tool_calls`` and hermes ``<tool_call>{…}</tool_call>`` text.

Why these rules: a consumer of an OpenAI-compatible server runs ``json.loads(call.function.arguments)`` and
dispatches on the name; for hermes text served by vLLM, what reaches it is what vLLM's ``hermes`` parser made of
the text. So native arguments must be a JSON *string* holding an *object*, and hermes text is read as vLLM reads
it (the vectors in ``tests/checks/fixtures/vllm_hermes.yaml`` name the commit):

- each ``<tool_call>`` up to the next ``</tool_call>`` (or the end of the text) holds one JSON object with a string
  ``name`` and an ``arguments`` member; content is the text before the first ``<tool_call>``;
- invalid JSON, a list of calls, a missing ``name`` or ``arguments`` (``"parameters"`` instead is the common
  mistake) make vLLM's parser raise — and then it returns **no calls at all**, only the raw text: fatal defects;
- ``arguments`` given as a JSON string that holds an object is passed on as that object (a warning, not fatal);
  any other non-object ``arguments`` reaches the consumer as something that is not a mapping: fatal.

Where the harness differs from vLLM on purpose it says so in ``docs/TOOLCALLS.md`` (named divergences): here,
the calls of an answer with one broken block are still listed — the fatal defect, not an empty list, says that a
vLLM consumer gets none.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from conformance.canonical import canonical_json
from conformance.checks.toolcall_model import Defect, TextCalls, ToolCall
from conformance.checks.toolcall_values import value_type

__all__ = ["load_json", "native_arguments", "parse_hermes", "parse_native"]

_HERMES = re.compile(r"<tool_call>(.*?)</tool_call>|<tool_call>(.*)", re.DOTALL)
_OPEN = "<tool_call>"


def load_json(text: str) -> tuple[Any, list[str], str | None]:
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


def _flag(flags: list[str], where: str, defects: list[Defect], i: int) -> None:
    defects += [Defect(f, f"{where}: arguments contain {f.replace('_', ' ')}", i) for f in flags]


def native_arguments(raw: Any, where: str, defects: list[Defect], i: int) -> dict[str, Any] | None:
    """``function.arguments`` of a native call: a JSON *string* holding an object. None when unusable."""
    if isinstance(raw, Mapping):
        defects.append(Defect("arguments_not_string", f"{where}: arguments is a JSON object, not a JSON string "
                              "— json.loads(arguments) raises TypeError", i))
        return dict(raw)
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        defects.append(Defect("empty_arguments", f"{where}: no arguments given; read as {{}}", i))
        return {}
    if not isinstance(raw, str):
        defects.append(Defect("arguments_not_string", f"{where}: arguments is {value_type(raw)}, not a JSON "
                              "string", i))
        return None
    value, flags, err = load_json(raw)
    if err is not None:
        defects.append(Defect("invalid_json", f"{where}: arguments are not valid JSON ({err}): {raw[:80]!r}", i))
        return None
    _flag(flags, where, defects, i)
    if isinstance(value, str):
        inner, _, err = load_json(value)
        if err is None:  # the string holds JSON again: named, and the inner object still compared
            defects.append(Defect("double_encoded_arguments", f"{where}: arguments were JSON-encoded twice — "
                                  "json.loads(arguments) gives a string (holding JSON "
                                  f"{value_type(inner)}), not an object", i))
            return inner if isinstance(inner, dict) else None
    if not isinstance(value, dict):
        defects.append(Defect("arguments_not_object", f"{where}: arguments are {value_type(value)}, not an object",
                              i))
        return None
    return value


def _hermes_arguments(obj: dict[str, Any], where: str, defects: list[Defect], i: int) -> dict[str, Any] | None:
    """The ``arguments`` member of a hermes call object, judged by what vLLM's hermes parser hands on."""
    if "arguments" not in obj:
        if "parameters" in obj:
            defects.append(Defect("parameters_key", f"{where}: \"parameters\" instead of \"arguments\" — vLLM's "
                                  "hermes parser raises KeyError and returns no calls at all", i))
            raw = obj["parameters"]
            return dict(raw) if isinstance(raw, dict) else {}
        defects.append(Defect("missing_arguments", f"{where}: no \"arguments\" — vLLM's hermes parser raises "
                              "KeyError and returns no calls at all", i))
        return {}
    raw = obj["arguments"]
    if isinstance(raw, dict):
        return raw
    if isinstance(raw, str):
        value, flags, err = load_json(raw)
        if err is None and isinstance(value, dict):
            defects.append(Defect("serialized_arguments", f"{where}: arguments are a JSON string holding an "
                                  "object; vLLM passes the object on (older releases encoded it twice)", i))
            _flag(flags, where, defects, i)
            return value
    defects.append(Defect("arguments_not_object", f"{where}: arguments are {value_type(raw)} "
                          f"{canonical_json(raw)[:60]}, not an object — a consumer's json.loads(arguments) "
                          "gets no mapping", i))
    return None


def parse_native(items: Sequence[Any], defects: list[Defect]) -> list[ToolCall]:
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
        args = native_arguments(fn.get("arguments"), f"call {i + 1} `{name}`", defects, i)
        if args is not None:
            ident = tc.get("id") if isinstance(tc, Mapping) and isinstance(tc.get("id"), str) else None
            calls.append(ToolCall(name, args, "native", ident))
    return calls


def parse_hermes(answer: str, offset: int) -> TextCalls:
    """vLLM's hermes parser: each <tool_call> up to the next </tool_call> (or the end) holds one JSON call."""
    out = TextCalls(content=answer[:answer.find(_OPEN)] if _OPEN in answer else answer)
    for m in _HERMES.finditer(answer):
        closed, body = m.group(1) is not None, (m.group(1) if m.group(1) is not None else m.group(2))
        i = offset + len(out.calls)
        if not closed:
            out.defects.append(Defect("unclosed_tag", f"call {i + 1}: <tool_call> without </tool_call>", i))
        if not body.strip():
            out.defects.append(Defect("empty_call", f"call {i + 1}: empty <tool_call> block", i))
            continue
        value, flags, err = load_json(body)
        if err is not None:
            out.defects.append(Defect("invalid_json", f"call {i + 1}: <tool_call> body is not valid JSON ({err}): "
                                      f"{body.strip()[:80]!r}", i))
            continue
        _flag(flags, f"call {i + 1}", out.defects, i)
        if isinstance(value, list):
            out.defects.append(Defect("call_list", f"call {i + 1}: one <tool_call> holds a list of {len(value)} "
                                      "calls — vLLM's hermes parser returns no calls at all", i))
        for obj in value if isinstance(value, list) else [value]:
            i = offset + len(out.calls)
            if not isinstance(obj, dict):
                out.defects.append(Defect("invalid_call", f"call {i + 1}: <tool_call> body is {value_type(obj)}, "
                                          "not an object", i))
                continue
            name = obj.get("name")
            if not isinstance(name, str) or not name:
                out.defects.append(Defect("missing_name", f"call {i + 1}: no \"name\" in {body.strip()[:80]!r}", i))
                continue
            args = _hermes_arguments(obj, f"call {i + 1} `{name}`", out.defects, i)
            if args is not None:
                out.calls.append(ToolCall(name, args, "hermes"))
        if closed:  # only the last block can be unclosed; a closed one never changes as text arrives
            out.settled = len(out.calls)
    return out
