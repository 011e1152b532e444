"""What an untrusted value looks like in ``report.html``: readable text, escaped once, bidi controls made visible.

Why one module: every string the page shows that this package did not write itself — model answers, golden text,
case ids, messages, endpoint names — is untrusted, and three things must happen to all of it, in one place so that
no section forgets one or does one twice:

* **Escaped exactly once** (``html.escape`` with quotes). Escaping twice shows entities literally (``may&#x27;``);
  not escaping lets ``<script>`` in an answer run.
* **Bidi controls neutralised.** U+202E (RIGHT-TO-LEFT OVERRIDE) and its relatives reorder how the characters after
  them are *displayed* without changing what they are: an answer holding ``\\u202elive`` reads "evil" on screen (the
  "Trojan Source" trick). A reviewer must see the text in its logical order, so each control is replaced by a
  visible marker, ``⟨U+202E⟩``. Arabic or Hebrew letters keep their natural direction; only the invisible
  overrides, embeddings, isolates and marks are shown.
* **Structured values read as text.** A dict or list ``str()``-ed into the page reads as Python source
  (``{'text': '订金', 'start': 11}``); :func:`plain` writes ``text: 订金, start: 11`` instead and
  :func:`calls_text` writes tool calls as calls: ``get_weather(city="Paris")``.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

#: ALM, LRM, RLM, the embeddings/overrides LRE RLE PDF LRO RLO and the isolates LRI RLI FSI PDI.
BIDI_CONTROLS = "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
_BIDI = re.compile(f"[{BIDI_CONTROLS}]")


def visible_controls(text: str) -> str:
    """``"a\\u202eb"`` → ``"a⟨U+202E⟩b"``: every bidi control replaced by a marker naming it."""
    return _BIDI.sub(lambda m: f"⟨U+{ord(m.group()):04X}⟩", text) if _BIDI.search(text) else text


def text_html(text: str) -> str:
    """A string as HTML text or a quoted attribute value: controls made visible, then escaped (once)."""
    return html.escape(visible_controls(text), quote=True)


def plain(value: Any) -> str:
    """Any value as one line of readable text: ``None`` → ``""``; a mapping → ``key: value, …``; a list →
    ``a, b``; nested containers in parentheses. Scalars are ``str()``-ed."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        return ", ".join(f"{plain(k)}: {_nested(v)}" for k, v in value.items())
    if isinstance(value, Sequence | set | frozenset) and not isinstance(value, bytes | bytearray):
        return ", ".join(_nested(v) for v in value)
    return str(value)


def _nested(value: Any) -> str:
    if isinstance(value, Mapping) or (isinstance(value, Sequence | set | frozenset)
                                      and not isinstance(value, str | bytes | bytearray)):
        return f"({plain(value)})"
    return plain(value)


def esc(value: Any) -> str:
    """Escape anything for HTML text or a quoted attribute; ``None`` becomes an empty string, containers read as
    :func:`plain` text."""
    return "" if value is None else text_html(plain(value))


def _literal(value: Any) -> str:
    """An argument value as it would be written in a call: strings quoted, containers spelled out."""
    if isinstance(value, Mapping):
        return "(" + ", ".join(f"{k}={_literal(v)}" for k, v in value.items()) + ")"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_literal(v) for v in value) + "]"
    return json.dumps(value, ensure_ascii=False)


def calls_text(calls: Sequence[Any]) -> str:
    """Tool calls (OpenAI shape: ``{"function": {"name", "arguments": "<JSON>"}}``) one per line, as calls:
    ``get_weather(city="Paris", days=3)``. Arguments that are not a JSON object are shown as they came."""
    lines = []
    for call in calls:
        fn = call.get("function") if isinstance(call, Mapping) else None
        fn = fn if isinstance(fn, Mapping) else (call if isinstance(call, Mapping) else {})
        name, args = str(fn.get("name") or "?"), fn.get("arguments")
        if isinstance(args, str):
            try:
                args = json.loads(args) if args.strip() else {}
            except ValueError:
                lines.append(f"{name}({args})")
                continue
        if isinstance(args, Mapping):
            lines.append(f"{name}(" + ", ".join(f"{k}={_literal(v)}" for k, v in args.items()) + ")")
        else:
            lines.append(f"{name}({'' if args is None else _literal(args)})")
    return "\n".join(lines)
