"""Assembling one streamed chat completion — shared by the SDK client and the Locust driver.

Two readers consume the same server-sent events: the product client (``conformance.endpoints.openai``, chunks as
the ``openai`` SDK yields them) and the load driver (``conformance.load.sse``, raw bytes parsed in the Locust
process, which must not import the SDK). What an answer *is* — its tool calls, whether the stream ended as a
complete answer, how many tokens it had — must not depend on which of them read it, or the same server would look
different under load than at rest. So the rules live here, pure and import-light:

- **Tool-call deltas** (:class:`ToolCalls`): a call's ``name`` is set once, by the first delta that carries it;
  ``arguments`` are appended. OpenAI and vLLM send the name in the first delta only, but llama-cpp-python repeats
  the whole name in every delta; concatenating names (as both readers once did) produced names of 480–1,296
  characters. A later delta with a *different* name for the same index is kept as a defect, not glued on.
- **How a stream ended** (:func:`stream_fault`): an error event, an unparseable event, no choices at all, or no
  ``finish_reason`` before the stream closed — each its own fault class.
- **Output tokens** (:func:`output_tokens`): ``usage.completion_tokens`` when the server sent it, else the number of
  token-bearing events (and which of the two it was).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from conformance.response import Fault


@dataclass(slots=True)
class ToolCalls:
    """Tool-call deltas of one streamed answer, merged by index (see the module docstring)."""

    slots: dict[int, dict[str, Any]] = field(default_factory=dict)
    defects: list[str] = field(default_factory=list)

    def add(self, index: int | None, call_id: str | None, name: str | None, arguments: str | None) -> None:
        """One ``tool_calls`` delta; ``index`` None (a server that omits it) means "the next call"."""
        idx = index if isinstance(index, int) else len(self.slots)
        slot = self.slots.get(idx)
        if slot is None:
            slot = self.slots[idx] = {"id": None, "type": "function", "function": {"name": "", "arguments": ""}}
        if call_id:
            slot["id"] = call_id
        fn = slot["function"]
        if name:
            if not fn["name"]:
                fn["name"] = name
            elif name != fn["name"]:
                self.defects.append(f"tool call {idx}: a later delta renamed {fn['name']!r} to {name!r}; kept the "
                                    "first name")
        if arguments:
            fn["arguments"] += arguments

    def calls(self) -> list[dict[str, Any]]:
        """The calls in index order, as an OpenAI assistant message's ``tool_calls``."""
        return [self.slots[i] for i in sorted(self.slots)]

    def __bool__(self) -> bool:
        return bool(self.slots)


def stream_fault(*, error: str | None = None, bad: str | None = None, saw_choice: bool = True,
                 finish_reason: str | None = None, n_events: int = 0) -> tuple[Fault, str] | None:
    """The fault of a stream that was read to its end, or None when it is a complete answer.

    ``error``: the message of an error event inside the stream; ``bad``: why an event could not be read;
    ``saw_choice``: whether any chunk carried ``choices``; ``finish_reason``: the last one seen.
    """
    if error is not None:
        return Fault.SERVER_ERROR, f"error event in stream: {error}"
    if bad is not None:
        return Fault.BAD_RESPONSE, bad
    if not saw_choice:
        return Fault.BAD_RESPONSE, "stream carried no choices"
    if finish_reason is None:
        return Fault.TRUNCATED_STREAM, f"stream ended without finish_reason after {n_events} chunks"
    return None


def output_tokens(usage: Any, token_events: int) -> tuple[int, str]:
    """Output tokens and where the number came from: ``usage`` when the server sent it, else ``chunks``."""
    completion = usage.get("completion_tokens") if isinstance(usage, dict) else None
    if isinstance(completion, int) and not isinstance(completion, bool) and completion >= 0:
        return completion, "usage"
    return token_events, "chunks"
