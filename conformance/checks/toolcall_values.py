"""Typed values of tool-call arguments: what a schema admits, and how text becomes a value.

Why two conversions live here. Qwen3-Coder XML carries every parameter as *text*; a consumer served by vLLM gets
the values vLLM's ``qwen3_coder`` parser made of that text. When the baseline was vLLM-served and the candidate
emits the same XML as text, the harness has to read it exactly as vLLM would, or the two differ spuriously —
:func:`convert_xml_value` is that reading (the rules are vLLM's ``_convert_param_value``; the test vectors in
``tests/checks/fixtures/vllm_qwen3coder.yaml`` name the commit). :func:`coerce_text` is the harness's own, schema-
driven reading, used only for the *lenient* comparison tier (what a coercing consumer such as Pydantic lax mode
sees); it never decides what a call *is*.

vLLM's reading, in short (``prop`` is the parameter's schema in the tool's top-level ``properties``):

- a parameter the schema does not declare (or no tools at all) stays text;
- the type is ``prop["type"]`` as lower-cased text, or the first non-null ``type`` of an ``anyOf``; a list of
  types is read as its Python text (``"['integer', 'null']"``), which matches no rule below but the last;
- ``null``/``None`` (any case) is JSON null when the schema allows null or the type is not a string type;
- string types (``string``, ``str``, ``text``, ``varchar``, ``char``, ``enum``) keep the text verbatim;
- integer types (``int*``, ``uint*``, ``long*``, ``short*``, ``unsigned*``): Python ``int()`` — so ``" 42"``,
  ``"1_000"`` and non-ASCII digits are integers; anything else stays text;
- number types (``num*``, ``float*``): Python ``float()``, and an integral result becomes an integer (``"5.0"``
  → ``5``); ``"inf"`` makes vLLM's parser raise, which loses every call of the answer;
- booleans: ``true`` (any case) is true and *every other text is false*;
- everything else: objects/arrays try JSON first (a JSON string holding a Python literal is decoded once more),
  then Python *literal* syntax (``{'key': 'value'}``, ``['x','y']``, ``True``, ``None``) — literals only, never
  code; text that is neither stays text.

The result must then survive ``json.dumps``: a set, bytes or ``...`` makes vLLM's parser raise as well.
"""

from __future__ import annotations

import ast
import contextlib
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from conformance.checks.schema import Schema, resolve_branches

__all__ = ["Converted", "coerce_text", "convert_xml_value", "jsonable", "property_schema", "schema_types",
           "tool_schemas", "value_type"]

_STRING_TYPES = frozenset({"string", "str", "text", "varchar", "char", "enum"})
_INT_PREFIXES = ("int", "uint", "long", "short", "unsigned")
_CONTAINERS = frozenset({"object", "array", "arr"})
_INT = re.compile(r"-?\d+")
_NUM = re.compile(r"-?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
#: Literal syntax is parsed by CPython's parser; past this size the text is kept as text instead.
MAX_LITERAL_CHARS = 1_000_000


@dataclass(frozen=True)
class Converted:
    """A parameter's value as vLLM delivers it. ``note`` says why it is not what the schema asked for;
    ``breaks_vllm``: vLLM's parser raises on it and returns the whole answer as text, without any call."""

    value: Any
    note: str | None = None
    breaks_vllm: bool = False


# ---------------------------------------------------------------- schemas
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


def value_type(v: Any) -> str:
    """JSON-Schema type name of a value; unlike JSON's one "number", integer and float are told apart."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, int):
        return "integer"
    return {float: "number", str: "string", list: "array", dict: "object"}.get(type(v), type(v).__name__)


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
        props = s.get("properties")
        sub = props.get(name) if isinstance(props, Mapping) else None
        if sub is not None:
            return sub
    return None


# ---------------------------------------------------------------- vLLM's reading of XML parameter text
def _declared_type(prop: Any) -> tuple[str, bool]:
    """(type text, null allowed) the way vLLM reads a parameter schema."""
    if isinstance(prop, Mapping) and "type" in prop:
        kind = str(prop["type"]).strip().lower()
        return kind, kind == "null"
    if isinstance(prop, Mapping) and "anyOf" in prop:
        kind, picked, nullable = "string", False, False
        options = prop["anyOf"] if isinstance(prop["anyOf"], list) else []
        for option in options:
            if isinstance(option, Mapping) and "type" in option:
                t = str(option["type"]).strip().lower()
                if t == "null":
                    nullable = True
                elif not picked:
                    kind, picked = t, True
        return kind, nullable
    return "string", False


def _literal(text: str) -> Any:
    """Python literal syntax (never code); raises ValueError/SyntaxError/TypeError like ast.literal_eval."""
    if len(text) > MAX_LITERAL_CHARS:
        raise ValueError("too long to read as a literal")
    try:
        return ast.literal_eval(text)
    except (MemoryError, RecursionError) as exc:
        raise _Breaks(f"reading it as a Python literal fails ({type(exc).__name__})") from exc


class _Breaks(Exception):
    """vLLM's parser would raise here (an exception type it does not catch)."""


def _container(text: str, container: bool) -> tuple[Any, str | None]:
    if container:
        try:
            parsed = json.loads(text)
        except RecursionError as exc:
            raise _Breaks("nested too deeply for json.loads") from exc
        except ValueError:
            pass
        else:
            if isinstance(parsed, str):  # a JSON string holding a Python literal: "{'k': 'v'}"
                with contextlib.suppress(ValueError, SyntaxError, TypeError):
                    parsed = _literal(parsed)
            return parsed, None
    try:
        value = _literal(text)
    except (ValueError, SyntaxError, TypeError):
        return text, "is neither JSON nor a Python literal; kept as text" if container else None
    if container and isinstance(value, str):
        with contextlib.suppress(ValueError, SyntaxError, TypeError):
            value = _literal(value)
    return value, None


def _convert(text: str, prop: Any) -> tuple[Any, str | None]:
    kind, nullable = _declared_type(prop)
    if nullable and text.lower() in ("null", "none"):
        return None, None
    if kind in _STRING_TYPES:
        return text, None
    if text.lower() in ("null", "none"):
        return None, None
    if kind.startswith(_INT_PREFIXES):
        try:
            return int(text), None
        except ValueError:
            return text, f"is not an integer ({kind}); kept as text"
    if kind.startswith(("num", "float")):
        try:
            number = float(text)
            return (number if number - int(number) != 0 else int(number)), None
        except OverflowError as exc:
            raise _Breaks(f"float({text[:20]!r}) is infinite and int() of it raises OverflowError") from exc
        except ValueError:  # not a number, or NaN (int(nan) raises ValueError, which vLLM catches)
            return text, f"is not a number ({kind}); kept as text"
    if kind in ("boolean", "bool", "binary"):
        low = text.lower()
        return low == "true", None if low in ("true", "false") else "is not true/false; vLLM reads it as false"
    return _container(text, kind in _CONTAINERS or kind.startswith(("dict", "list")))


def jsonable(value: Any) -> tuple[Any, bool]:
    """(the value as a JSON consumer receives it, True) — or (value, False) when json.dumps refuses it."""
    try:
        return json.loads(json.dumps(value, ensure_ascii=False)), True
    except (TypeError, ValueError, RecursionError):
        return value, False


def convert_xml_value(text: str, prop: Any, declared: bool) -> Converted:
    """One XML parameter's text → the value vLLM's ``qwen3_coder`` parser delivers (module docstring); never
    raises. ``declared``: the parameter is in the tool's top-level ``properties`` (else it stays text)."""
    if not declared:
        return Converted(text)
    try:
        value, note = _convert(text, prop)
    except _Breaks as exc:
        return Converted(text, str(exc), breaks_vllm=True)
    value, ok = jsonable(value)
    if not ok:
        return Converted(text, f"reads as a Python {type(value).__name__}, which json.dumps refuses",
                         breaks_vllm=True)
    return Converted(value, note)


def has_non_finite(value: Any) -> bool:
    """NaN or ±Infinity anywhere in a value: json.dumps writes them, strict JSON parsers reject them."""
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, dict):
        return any(has_non_finite(v) for v in value.values())
    if isinstance(value, list):
        return any(has_non_finite(v) for v in value)
    return False


# ---------------------------------------------------------------- the harness's own coercion (lenient tier)
def coerce_text(value: str, schema: Any, root: Schema | None = None) -> tuple[Any, bool]:
    """Text → typed value by schema for lenient comparison; ``(value, False)`` when no declared type fits.

    Tries null → boolean → integer → number → object/array and keeps the text when ``string`` is allowed (so a
    union ``integer | string`` reads ``"30"`` as 30).
    """
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
        try:
            loaded = json.loads(s)
        except (ValueError, RecursionError):
            return value, "string" in types
        if value_type(loaded) in types:
            return loaded, True
    return value, "string" in types
