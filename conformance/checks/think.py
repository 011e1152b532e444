"""One reading of ``<think>…</think>``: where a model's reasoning ends and its answer begins.

Why one module: JSON extraction (:mod:`conformance.checks.extract`), label extraction
(:mod:`conformance.checks.classification`) and tool-call parsing (:mod:`conformance.checks.toolcall_parse`) all
have to skip the reasoning of a thinking model. Three copies had drifted apart (one tag spelling per copy, first
versus last closing tag); a label, a JSON answer and a tool call read from the same text must agree on where the
answer starts.

The reading follows vLLM's reasoning parsers (``qwen3``, ``deepseek_r1``), because a vLLM-served baseline was
split that way before its consumers ever saw it: the reasoning ends at the **first** closing tag.

- ``<think>R</think>A`` at the start of the text (after whitespace): reasoning ``R``, answer ``A``.
- ``<think>R`` at the start and no closing tag: the text ended inside its reasoning (:attr:`ThinkSplit.unclosed`;
  usually ``max_tokens``), the answer is empty.
- ``R</think>A`` with no opening tag first: chat templates that put ``<think>`` into the *prompt* leave only the
  closing tag in the output — reasoning ``R`` (:attr:`ThinkSplit.orphan`). A caller whose answers can quote the
  tag (JSON strings, tool-call arguments) passes ``orphan_ok`` to veto that reading from the text before it.
- anything else: no reasoning; the whole text is the answer. A ``<think>`` in mid-text without a closing tag is
  not treated as reasoning here — a caller that wants that strictness asks :data:`THINK_OPEN` itself.

Tags are matched case-insensitively and allow whitespace before ``>`` (``<think >``, ``</THINK>``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["THINK_CLOSE", "THINK_OPEN", "ThinkSplit", "split_think"]

THINK_OPEN = re.compile(r"<think\s*>", re.IGNORECASE)
THINK_CLOSE = re.compile(r"</think\s*>", re.IGNORECASE)
_LEADING_OPEN = re.compile(r"\A\s*<think\s*>", re.IGNORECASE)


@dataclass(frozen=True)
class ThinkSplit:
    """A text cut into reasoning and answer; ``text[start:] == answer`` always holds."""

    answer: str
    start: int
    reasoning: str | None = None  # None: no think markup at all ("" is an empty think block)
    unclosed: bool = False        # an opening tag without a closing one: the text ended inside its reasoning
    orphan: bool = False          # a closing tag without a leading opening one (the template opened the block)

    @property
    def had_think(self) -> bool:
        return self.reasoning is not None


def split_think(text: str, *, orphan_ok: Callable[[str], bool] | None = None) -> ThinkSplit:
    """Split ``text`` at its reasoning (see the module docstring); never raises.

    ``orphan_ok(before)`` is asked before text ending in a closing tag that has no leading opening tag is read
    as reasoning; returning False keeps the whole text as the answer.
    """
    lead = _LEADING_OPEN.match(text)
    if lead:
        close = THINK_CLOSE.search(text, lead.end())
        if close is None:
            return ThinkSplit("", len(text), text[lead.end():], unclosed=True)
        return ThinkSplit(text[close.end():], close.end(), text[lead.end():close.start()])
    close = THINK_CLOSE.search(text)
    if close is not None and (orphan_ok is None or orphan_ok(text[:close.start()])):
        return ThinkSplit(text[close.end():], close.end(), text[:close.start()], orphan=True)
    return ThinkSplit(text, 0)
