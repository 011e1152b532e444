"""Prompt perturbation: deterministic, meaning-preserving variants of user text.

Why: a quantised candidate can be right on the golden prompt and flip when a user types the same question
with a full-width comma, an extra space or a trailing 吧 — exactly what real users do. Replaying each
classification case once more with a perturbed prompt, for both endpoints, and requiring that the
candidate flips no more often than the baseline (``gates.classification.max_perturbation_excess``, see
:mod:`conformance.checks.classification`) catches that brittleness without new golden cases.

Pure and deterministic: the same text and seed always give the same variant (``random.Random(seed)``, no
global state), so a failing case can be replayed and a recording stays valid.
"""

from __future__ import annotations

import dataclasses
import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from conformance.goldens.model import Case

__all__ = ["PARTICLES", "PERTURBATIONS", "Perturbation", "perturb", "perturb_messages", "perturbed_case"]

#: Trailing particles a Chinese user adds without changing what they ask (softening / tone only).
PARTICLES = ("呢", "吧", "啊")
PERTURBATIONS = ("whitespace", "width", "particle")
_WIDTH_PAIRS = {",": "，", ".": "。", "!": "！", "?": "？", ":": "：", ";": "；", "(": "（", ")": "）"}
_WIDTH_SWAP = {**_WIDTH_PAIRS, **{v: k for k, v in _WIDTH_PAIRS.items()}}
_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_TRAILING = re.compile(r"[\s\u3000!-/:-@\[-`{-~\u3001-\u3003\u3008-\u3011\uff01-\uff0f\uff1a-\uff20]*\Z")


@dataclass(frozen=True)
class Perturbation:
    """A perturbed user text, which perturbations were applied and the particle added (if any)."""

    text: str
    seed: int
    kinds: tuple[str, ...]
    particle: str | None = None


def _soft(ch: str) -> bool:
    """Whether a space next to ``ch`` cannot split a word: CJK, sentence punctuation, or whitespace."""
    return bool(_CJK.match(ch)) or ch.isspace() or ch in _WIDTH_SWAP


def _in_number(chars: list[str], i: int) -> bool:
    """Whether position ``i`` (between ``chars[i-1]`` and ``chars[i]``) is next to the point or comma inside an
    ASCII token such as 3.5 or 1,000 — a space there would split it."""
    def word(j: int) -> bool:
        return 0 <= j < len(chars) and chars[j].isascii() and chars[j].isalnum()

    return (chars[i - 1] in ".," and word(i) and word(i - 2)) or (chars[i] in ".," and word(i - 1) and word(i + 1))


def perturb(text: str, seed: int, kinds: Sequence[str] = PERTURBATIONS) -> Perturbation:
    """A deterministic, meaning-preserving variant of ``text`` (same ``seed`` → same output).

    ``whitespace`` adds spaces (ASCII or ideographic) only where they cannot split a Latin word; ``width``
    swaps half/full-width punctuation (never between two ASCII alphanumerics, so 3.5 and 1,000 survive);
    ``particle`` appends 呢/吧/啊 before the trailing punctuation of text that ends in a CJK character.
    :func:`conformance.checks.normalize.fold` of the result equals that of ``text`` plus the particle.
    """
    unknown = set(kinds) - set(PERTURBATIONS)
    if unknown:
        raise ValueError(f"unknown perturbation(s) {sorted(unknown)}; use {PERTURBATIONS}")
    rng = random.Random(seed)
    chars = list(text)
    applied: list[str] = []
    particle = None
    if "particle" in kinds:
        core = _TRAILING.sub("", text)
        if core and _CJK.match(core[-1]):
            particle = rng.choice([p for p in PARTICLES if p != core[-1]])
            chars.insert(len(core), particle)
            applied.append("particle")
    if "width" in kinds:
        for i, ch in enumerate(chars):
            ascii_pair = 0 < i < len(chars) - 1 and chars[i - 1].isascii() and chars[i - 1].isalnum() \
                and chars[i + 1].isascii() and chars[i + 1].isalnum()
            if ch in _WIDTH_SWAP and not ascii_pair and rng.random() < 0.5:
                chars[i] = _WIDTH_SWAP[ch]
                applied.append("width")
    if "whitespace" in kinds:
        out: list[str] = []
        for i, ch in enumerate(chars):
            if i and (_soft(chars[i - 1]) or _soft(ch)) and not _in_number(chars, i) and rng.random() < 0.15:
                out.append(rng.choice((" ", "  ", "\u3000")))
                applied.append("whitespace")
            out.append(ch)
        if rng.random() < 0.5:
            out.append(rng.choice((" ", "\n")))
            applied.append("whitespace")
        chars = out
    return Perturbation("".join(chars), seed, tuple(dict.fromkeys(applied)), particle)


def perturb_messages(messages: Sequence[Mapping[str, Any]], seed: int,
                     kinds: Sequence[str] = PERTURBATIONS) -> list[dict[str, Any]]:
    """Copies of chat ``messages`` with every *user* text perturbed (seed + message index); system prompts and
    assistant turns are the suite's, not the user's, and stay as they are."""
    out = []
    for i, msg in enumerate(messages):
        m = dict(msg)
        if m.get("role") == "user" and isinstance(m.get("content"), str):
            m["content"] = perturb(m["content"], seed + i, kinds).text
        out.append(m)
    return out


def perturbed_case(case: Case, seed: int) -> Case:
    """The same case with its user text perturbed deterministically — a distinct request (its own fingerprint), so
    the run cache keeps both answers; the id is unchanged so its answer pairs with the original case's."""
    return dataclasses.replace(case, messages=tuple(perturb_messages(case.messages, seed)))
