"""Get the JSON out of a model answer — and record exactly what had to be peeled off to get it.

Why this exists: a consuming team's code usually does ``json.loads(message.content)``. A candidate that
wraps the same JSON in a ``<think>…</think>`` block, a Markdown fence or a friendly sentence breaks that
code even when the JSON itself is perfect. So extraction never silently "fixes" an answer: every step it
applies is listed in :attr:`Extraction.steps`, and :func:`compare_envelopes` turns the difference between
the baseline's and the candidate's steps into findings a team can act on ("candidate now emits a <think>
block the baseline never did").

Steps, in the order they are tried:

``think_stripped``
    a leading ``<think>…</think>`` block (or text up to an orphan ``</think>``, which chat templates that
    open the block in the prompt produce) is removed. An unclosed ``<think>`` is an error: the answer was
    cut off inside its reasoning.
``fence_unwrapped``
    the remaining text is exactly one Markdown code fence (```` ```json ```` or bare ```` ``` ````).
``prose_trimmed``
    text around the JSON was dropped — only when the suite sets ``allow_prose``; otherwise it is an error
    that quotes the offending prose.

JSON is parsed strictly: ``NaN``/``Infinity`` are rejected because most consumers (JavaScript, Go, Java)
reject them, even though Python's ``json`` module accepts them.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace
from typing import Any, Literal

from conformance.checks.result import Finding
from conformance.checks.think import split_think

ReasoningPlace = Literal["none", "field", "content", "both"]

_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[ \t]*\r?\n(.*?)(?:\r?\n)?[ \t]*```", re.DOTALL)
_FENCE_WHOLE = re.compile(r"\A```[ \t]*([A-Za-z0-9_+-]*)[ \t]*\r?\n(.*)```\Z", re.DOTALL)
_FENCE_OPEN_ONLY = re.compile(r"\A```[ \t]*([A-Za-z0-9_+-]*)[ \t]*\r?\n(.*)\Z", re.DOTALL)
_JSON_LANGS = {"", "json", "jsonc", "json5"}


@dataclass(frozen=True)
class Extraction:
    """What was extracted from one answer and how.

    ``value`` is only meaningful when ``error`` is None (JSON ``null`` is a valid value). ``think`` holds
    the text of a think block found in the content, ``reasoning`` the separate ``reasoning_content`` /
    ``reasoning`` field the server returned (if any) — both are kept so envelope moves can be reported.
    """

    raw: str | None
    json_text: str | None = None
    value: Any = None
    steps: tuple[str, ...] = ()
    had_think: bool = False
    think: str | None = None
    reasoning: str | None = None
    prose: str = ""
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def reasoning_place(self) -> ReasoningPlace:
        """Where the model's reasoning travelled: the separate field, the content, both or nowhere."""
        field, content = bool(self.reasoning and self.reasoning.strip()), self.had_think
        return "both" if field and content else "field" if field else "content" if content else "none"

    def to_dict(self) -> dict[str, Any]:
        return {"steps": list(self.steps), "had_think": self.had_think,
                "reasoning_place": self.reasoning_place, "prose": self.prose, "error": self.error,
                "json_text": self.json_text}


def _reject_constant(name: str) -> Any:
    raise ValueError(f"non-standard JSON constant {name} (strict JSON parsers reject it)")


def loads_strict(text: str) -> Any:
    """``json.loads`` that refuses ``NaN``/``Infinity``; raises ``ValueError`` (JSONDecodeError is one)."""
    return json.loads(text, parse_constant=_reject_constant)


def _decode_at(text: str, pos: int) -> tuple[Any, int] | None:
    try:
        return json.JSONDecoder(parse_constant=_reject_constant).raw_decode(text, pos)
    except (ValueError, RecursionError):
        return None


def _parses(text: str) -> bool:
    try:
        loads_strict(text)
    except (ValueError, RecursionError):
        return False
    return True


def _find_embedded(text: str) -> tuple[Any, int, int] | None:
    """The longest JSON object/array embedded in prose (earliest wins ties), as (value, start, end)."""
    best: tuple[Any, int, int] | None = None
    i = 0
    while True:
        starts = [p for p in (text.find("{", i), text.find("[", i)) if p >= 0]
        if not starts:
            return best
        pos = min(starts)
        hit = _decode_at(text, pos)
        if hit is None:
            i = pos + 1
            continue
        value, end = hit
        if best is None or end - pos > best[2] - best[1]:
            best = (value, pos, end)
        i = end


def _clip(text: str, n: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"


def _not_json_first(before: str) -> bool:
    # a "</think>" that follows the start of a JSON document or fence is text inside it (a string value), not
    # the end of a template-opened think block
    return not before.lstrip().startswith(("{", "[", "`"))


def _strip_think(text: str) -> tuple[str, str | None, str | None]:
    """(rest, think text or None, error or None) — the reading of :mod:`conformance.checks.think`."""
    split = split_think(text, orphan_ok=_not_json_first)
    if split.unclosed:
        return "", split.reasoning, "unclosed <think> block: the answer ended inside its reasoning"
    return split.answer, split.reasoning, None


def extract_json(text: str | None, reasoning: str | None = None, *, allow_prose: bool = False) -> Extraction:
    """Extract one JSON value from an answer's content; never raises on bad model output.

    ``reasoning`` is the response's separate ``reasoning_content``/``reasoning`` field, passed through so
    :func:`compare_envelopes` can tell "reasoning moved into the content" from "reasoning appeared".
    """
    if text is None:
        return Extraction(raw=None, reasoning=reasoning, error="no content (the answer had no text at all)")
    steps: list[str] = []
    body, think, err = _strip_think(text.lstrip("\ufeff"))
    had_think = think is not None
    if had_think:
        steps.append("think_stripped")
    base = Extraction(raw=text, had_think=had_think, think=think, reasoning=reasoning)
    if err:
        return replace(base, steps=tuple(steps), error=err)
    body = body.strip()
    prose = ""
    fences = [f for f in _FENCE.finditer(body) if f.group(1).lower() in _JSON_LANGS]
    whole = _FENCE_WHOLE.match(body)
    if whole and whole.group(1).lower() in _JSON_LANGS and (
            (len(fences) == 1 and fences[0].span() == (0, len(body))) or _parses(whole.group(2))):
        body = whole.group(2).strip()  # one fence around everything (its JSON may itself contain ```)
        steps.append("fence_unwrapped")
    elif not fences and (m := _FENCE_OPEN_ONLY.match(body)) and m.group(1).lower() in _JSON_LANGS:
        body = m.group(2).strip()  # an unclosed fence: the answer was cut off; parsing will say where
        steps.append("fence_unwrapped")
    elif fences and allow_prose:
        for f in fences:
            if _decode_at(f.group(2).strip(), 0) is not None:
                prose = " ".join((body[: f.start()] + " " + body[f.end():]).split())
                body = f.group(2).strip()
                steps += ["prose_trimmed", "fence_unwrapped"]
                break
    elif fences:
        where = f"{len(fences)} code fences" if len(fences) > 1 else "a code fence"
        outside = " ".join((body[: fences[0].start()] + " " + body[fences[-1].end():]).split())
        error = f"prose around JSON: {where} with text {_clip(outside)!r} (set allow_prose to tolerate)"
        return replace(base, steps=tuple(steps), prose=outside, error=error)
    try:
        value = loads_strict(body)
    except (ValueError, RecursionError) as exc:
        if not allow_prose or (found := _find_embedded(body)) is None:
            return replace(base, steps=tuple(steps), error=_describe_error(body, exc, allow_prose))
        value, start, end = found
        prose = " ".join((body[:start] + " " + body[end:]).split())
        body = body[start:end]
        steps.append("prose_trimmed")
    return replace(base, json_text=body, value=value, steps=tuple(steps), prose=prose)


def _describe_error(body: str, exc: BaseException, allow_prose: bool) -> str:
    if not body:
        return "empty content: no JSON found"
    if isinstance(exc, RecursionError):
        return "invalid JSON: nested too deeply to parse"
    if not allow_prose:
        head = _decode_at(body, 0)
        if head is not None:
            return f"trailing prose after the JSON: {_clip(body[head[1]:])!r} (set allow_prose to tolerate)"
        found = _find_embedded(body)
        # a body that itself opens a JSON document is broken JSON (often cut off at max_tokens), not prose around
        # a smaller object found inside it
        if found is not None and not body.lstrip().startswith(("{", "[")):
            return f"prose before the JSON: {_clip(body[:found[1]])!r} (set allow_prose to tolerate)"
    if isinstance(exc, json.JSONDecodeError):
        near = _clip(body[max(0, exc.pos - 20): exc.pos + 20], 50)
        return f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg} (near {near!r})"
    return f"invalid JSON: {exc}"


#: (baseline place, candidate place) → (finding kind, message). "both" counts as "content": what breaks a
#: consumer is reasoning text inside the content, wherever else it also went.
_REASONING_MOVES: dict[tuple[str, str], tuple[str, str]] = {
    ("field", "content"): (
        "reasoning_moved",
        "candidate puts its reasoning into the content as <think>…</think> instead of the separate reasoning "
        "field the baseline used — consumers that parse the content as-is will break; enable the server's "
        "reasoning parser"),
    ("none", "content"): (
        "think_appeared",
        "candidate prefixes its answer with a <think>…</think> block the baseline never emitted — a consumer "
        "that parses the content as-is will break; strip it or disable thinking "
        "(e.g. chat_template_kwargs.enable_thinking=false)"),
    ("none", "field"): (
        "reasoning_appeared",
        "candidate returns a separate reasoning field the baseline did not; content parsers are unaffected, "
        "but it costs tokens and latency"),
    ("content", "field"): (
        "reasoning_moved",
        "candidate moved its reasoning from a <think> block in the content into the separate reasoning "
        "field; the content now starts with the answer"),
    ("field", "none"): (
        "reasoning_disappeared",
        "candidate no longer returns the reasoning field the baseline had; consumers that read it get "
        "nothing"),
    ("content", "none"): (
        "think_disappeared",
        "candidate no longer emits the <think> block the baseline had; consumers that skip a fixed prefix "
        "will now cut into the answer"),
}


def compare_envelopes(baseline: Extraction, candidate: Extraction) -> list[Finding]:
    """What changed around the JSON between baseline and candidate (think, reasoning field, fence, prose)."""
    findings: list[Finding] = []
    b_place, c_place = baseline.reasoning_place, candidate.reasoning_place
    if b_place != c_place:
        b_key = "content" if b_place == "both" else b_place
        c_key = "content" if c_place == "both" else c_place
        kind_msg = _REASONING_MOVES.get((b_key, c_key))
        if kind_msg is not None:
            findings.append(Finding(kind_msg[0], kind_msg[1], path="reasoning", baseline=b_place,
                                    candidate=c_place))
    for step, noun, why in (
        ("fence_unwrapped", "a ```json code fence", "json.loads on the raw content will fail"),
        ("prose_trimmed", "prose around the JSON", "json.loads on the raw content will fail"),
    ):
        was, now = step in baseline.steps, step in candidate.steps
        if now and not was:
            kind = step.split("_")[0] + "_appeared"
            msg = f"candidate wraps its JSON in {noun} the baseline did not emit — {why}"
            findings.append(Finding(kind, msg, path=step, baseline=False, candidate=True))
        elif was and not now:
            kind = step.split("_")[0] + "_disappeared"
            msg = (f"candidate dropped {noun} the baseline had — consumers that strip it by position may now "
                   "cut into the JSON")
            findings.append(Finding(kind, msg, path=step, baseline=True, candidate=False))
    return findings
