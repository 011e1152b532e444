"""``conformance parse-tool-calls``: the tool calls a consumer would get from one raw model answer.

Why: when a consumer breaks after a migration, the first question is "what did the model emit, and what does a
parser make of it?". This command answers it for one answer, with the harness's own parser — the one the replay
uses, which reads hermes and Qwen3-Coder XML text the way vLLM's parsers do (docs/TOOLCALLS.md):

    conformance parse-tool-calls [--format auto|native|hermes|qwen3_xml] [--tools TOOLS.json] FILE|-

``FILE`` (or ``-`` for stdin) is the raw text of the answer; for ``--format native`` it is the assistant message
as JSON (``{"content": …, "tool_calls": [...]}``, or a whole chat-completion response). ``auto`` reads a JSON object
with ``tool_calls``/``content``/``choices`` as a message, anything else as text. ``--tools`` is the request's
``tools`` array (or a request body holding one); the parameter schemas decide how XML values are converted, and
unknown tools or parameters are reported.

It prints one JSON object, ``{"calls": [{"name", "arguments"}], "defects": [{"code", "fatal", "message"}]}``. A
call that cannot be used at all is missing from ``calls`` or carries a fatal defect. Non-finite numbers (which
JSON cannot hold) are printed as the strings ``"NaN"``/``"Infinity"``; a fatal ``nan`` defect names them.

Exit codes: 0 parsed (no fatal defect), 1 fatal defects, 2 usage error (unreadable, oversized or malformed input).
The input is untrusted: it is read up to :data:`MAX_INPUT_BYTES` and refused beyond, and values are read as JSON
or Python *literals* — never evaluated as code.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

from conformance.checks.toolcall_model import FORMATS
from conformance.errors import ConformanceError

__all__ = ["MAX_INPUT_BYTES", "add_parser", "cmd_parse_tool_calls"]

#: Inputs (answer and tools file alike) above this size are refused: a model answer is kilobytes.
MAX_INPUT_BYTES = 4 * 1024 * 1024
_MESSAGE_KEYS = ("tool_calls", "content", "choices")


def add_parser(sub: Any) -> None:
    """Register the subcommand on ``conformance``'s subparsers."""
    p = sub.add_parser("parse-tool-calls", help="show the tool calls and defects read from one raw model answer",
                       description="Parse one raw model answer as the replay (and vLLM's tool parsers) "
                                   "would, and print its calls and defects as JSON.")
    p.add_argument("file", metavar="FILE|-", help="the answer's raw text (native: the assistant message as JSON)")
    p.add_argument("--format", choices=FORMATS, default="auto",
                   help="how the text carries calls (default: auto — native message JSON, hermes or Qwen3-Coder XML)")
    p.add_argument("--tools", metavar="TOOLS.json", help="the request's tools array: XML values are converted by "
                                                          "its schemas, unknown tools/parameters reported")
    p.set_defaults(func=cmd_parse_tool_calls)


def _read(source: str, what: str) -> str:
    """At most MAX_INPUT_BYTES of UTF-8 from a file or stdin; a clear error otherwise."""
    try:
        if source == "-":
            data = sys.stdin.buffer.read(MAX_INPUT_BYTES + 1)
        else:
            with Path(source).open("rb") as fh:
                data = fh.read(MAX_INPUT_BYTES + 1)
    except OSError as exc:
        raise ConformanceError(f"cannot read {what} {source!r}: {exc.strerror or exc}") from exc
    if len(data) > MAX_INPUT_BYTES:
        raise ConformanceError(f"{what} {source!r} is larger than {MAX_INPUT_BYTES / 2**20:g} MiB; "
                               "parse-tool-calls reads one model answer — cut it down to the answer in question")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConformanceError(f"{what} {source!r} is not UTF-8 text (byte {exc.start})") from exc


def _json(text: str, what: str) -> Any:
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise ConformanceError(f"{what} is not valid JSON: {exc}") from exc


def _tools(source: str | None) -> list[dict[str, Any]] | None:
    if source is None:
        return None
    doc = _json(_read(source, "tools file"), f"tools file {source!r}")
    tools = doc.get("tools") if isinstance(doc, dict) else doc
    if not isinstance(tools, list) or not all(isinstance(t, dict) for t in tools):
        raise ConformanceError(f"tools file {source!r} must hold an OpenAI tools array "
                               '([{"type": "function", "function": {"name": …, "parameters": …}}]) or an object '
                               "with a `tools` array")
    return tools


def _message(doc: Any) -> dict[str, Any] | None:
    """The assistant message in a message or a chat-completion response, or None when ``doc`` is neither."""
    if isinstance(doc, dict) and isinstance(doc.get("choices"), list) and doc["choices"]:
        first = doc["choices"][0]
        doc = first.get("message") if isinstance(first, dict) else None
    if isinstance(doc, dict) and any(k in doc for k in _MESSAGE_KEYS):
        return doc
    return None


def _finite(value: Any) -> Any:
    """The value with NaN/±Infinity as strings, so that what is printed is JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def _content(message: dict[str, Any]) -> str | None:
    content = message.get("content")
    if isinstance(content, list):  # content parts: [{"type": "text", "text": …}, …]
        return "".join(p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str))
    return content if isinstance(content, str) else None


def _split_input(raw: str, fmt: str) -> tuple[str | None, list[Any] | None]:
    """(text, native tool_calls) of the input as ``fmt`` reads it."""
    message = None
    if fmt == "native":
        message = _message(_json(raw, "--format native input (an assistant message)"))
        if message is None:
            raise ConformanceError("--format native reads an assistant message as JSON: an object with "
                                   "`tool_calls` and/or `content` (or a chat-completion response with `choices`)")
    elif fmt == "auto" and raw.lstrip().startswith("{"):
        try:
            message = _message(json.loads(raw))
        except (ValueError, RecursionError):  # not JSON: the raw text of an answer
            message = None
    if message is None:
        return raw, None
    calls = message.get("tool_calls")
    return _content(message), calls if isinstance(calls, list) else None


def cmd_parse_tool_calls(args: argparse.Namespace) -> int:
    from conformance.checks.toolcall_parse import parse_tool_calls

    tools = _tools(args.tools)
    text, native = _split_input(_read(args.file, "input"), args.format)
    result = parse_tool_calls(text, native, tools, format=args.format)
    out = {"calls": [{"name": c.name, "arguments": _finite(c.arguments)} for c in result.calls],
           "defects": [{"code": d.name, "fatal": d.fatal, "message": d.detail} for d in result.defects]}
    print(json.dumps(out, ensure_ascii=False, indent=2))
    return 0 if result.ok else 1
