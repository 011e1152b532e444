"""The data of tool-call parsing: canonical calls, named defects, one response's result.

Why a module of its own: the shape readers (:mod:`conformance.checks.toolcall_json` for native and hermes,
:mod:`conformance.checks.toolcall_parse` for Qwen3-Coder XML) and the comparison
(:mod:`conformance.checks.toolcalls`) all speak these values; keeping them apart from any one reader avoids
import cycles and keeps "what is fatal" in one list.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from conformance.canonical import canonical_json

__all__ = ["FATAL", "FORMATS", "Defect", "Format", "ParseResult", "TextCalls", "ToolCall"]

#: ``auto`` | ``native`` | ``hermes`` | ``qwen3_xml`` — which shapes :func:`~conformance.checks.toolcall_parse.
#: parse_tool_calls` reads (see its module docstring).
Format = Literal["auto", "native", "hermes", "qwen3_xml"]
FORMATS: tuple[Format, ...] = ("auto", "native", "hermes", "qwen3_xml")

#: Defects after which a standard consumer cannot use the output: vLLM's parser returns no calls at all, or the
#: consumer's ``json.loads(arguments)`` gives no object. Every other defect is a warning about output that is
#: still read (docs/TOOLCALLS.md lists them all).
FATAL: frozenset[str] = frozenset({
    "invalid_json", "nan", "double_encoded_arguments", "missing_name", "missing_arguments", "parameters_key",
    "call_list", "arguments_not_object", "arguments_not_string", "invalid_xml", "empty_call", "invalid_call",
    "unconvertible_value", "too_complex", "parser_error"})


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


@dataclass
class TextCalls:
    """Calls read from one text (a parser's working result); ``settled``: how many leading calls later text can
    no longer change (streaming)."""

    calls: list[ToolCall] = field(default_factory=list)
    defects: list[Defect] = field(default_factory=list)
    content: str = ""
    settled: int = 0
