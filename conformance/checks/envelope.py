"""The *envelope* of a prose answer: what a reader notices before reading a word of it.

A candidate can score well on similarity and still break the consuming team: it answers a Chinese customer
in English, it refuses ("抱歉，我无法…") where the old model answered, it drops the "风险提示" section the
weekly-report parser looks for, or it turns a numbered list into a paragraph. Each of those is one
function here, pure and cheap, so :mod:`conformance.checks.text` can report them as separate findings a team
can act on.

Decisions worth knowing:

- **Script** is measured on letters only (:func:`cjk_letter_share`): punctuation, digits and Markdown markup
  are not language and would dilute :func:`~conformance.checks.normalize.cjk_share`. A text is ``cjk`` at a
  share ≥ 0.5, ``non_cjk`` at ≤ 0.1 and ``mixed`` in between (bilingual answers, Chinese with many English
  product names); only a ``cjk`` ↔ ``non_cjk`` flip is a language switch, so mixed answers never cry wolf.
- **Refusals** are matched on the opening of the answer only (``window`` characters, 200 by default):
  refusals come first, and "I cannot stress enough…" deep in an answer is not one. Matching is width-,
  case- and punctuation-insensitive ("I can’t" = "I can't", "抱歉，我无法" = "抱歉,我无法"), and English
  phrases only match whole words, so "As an AI" does not fire on "has an aim".
- **Markdown** is counted outside code fences (a ``# comment`` in Python is not a heading) and after width
  folding (full-width ＃ and １． are what Chinese editors type).
- **Required phrases** use :func:`~conformance.checks.normalize.fold` (width, case, punctuation and
  whitespace ignored), the same key the term checks use.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

from conformance.checks.normalize import cjk_share, fold, fold_width
from conformance.checks.result import Finding
from conformance.checks.similarity import normalize_text, tokens

Script = Literal["cjk", "non_cjk", "mixed", "none"]

#: Opening phrases of a refusal, Chinese and English. Suites replace them (``refusal_phrases``) or add to
#: them (``extra_refusal_phrases``).
DEFAULT_REFUSAL_PHRASES: tuple[str, ...] = (
    "抱歉，我无法", "对不起，我无法", "我无法提供", "我不能", "作为一个AI", "作为一个人工智能", "作为AI",
    "I can't help with", "I can't assist", "I cannot", "I'm unable to", "I am unable to",
    "I'm sorry, but I can't", "As an AI",
)
#: A text is Chinese when at least this share of its letters are CJK ideographs …
CJK_HIGH = 0.5
#: … and clearly not Chinese at or below this share.
CJK_LOW = 0.1
#: Characters from the start of an answer searched for a refusal phrase.
REFUSAL_WINDOW = 200

_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_HEADING = re.compile(r"^ {0,3}(#{1,6})(?!#)(?:[ \t]+(.*?))?[ \t#]*$")
_RULE = re.compile(r"^ {0,3}([-*_])(?:[ \t]*\1){2,}[ \t]*$")
_BULLET = re.compile(r"^[ \t]*[-*+•][ \t]+\S")
_NUMBERED = re.compile(r"^[ \t]*(?:\d{1,3}[.)][ \t]+\S|\d{1,3}、|[一二三四五六七八九十]{1,3}、|"
                       r"\([一二三四五六七八九十\d]{1,3}\))")
_TABLE_RULE = re.compile(r"^[ \t]*\|?[ \t]*:?-{3,}:?[ \t]*(?:\|[ \t]*:?-{3,}:?[ \t]*)+\|?[ \t]*$"
                         r"|^[ \t]*\|[ \t]*:?-{3,}:?[ \t]*\|[ \t]*$")


def cjk_letter_share(text: str) -> float | None:
    """Share of CJK ideographs among the letters of ``text``; None when it has no letters at all."""
    letters = "".join(c for c in fold_width(text) if c.isalpha())
    return cjk_share(letters) if letters else None


def script_of(share: float | None, *, high: float = CJK_HIGH, low: float = CJK_LOW) -> Script:
    """``cjk`` / ``non_cjk`` / ``mixed`` from a letter share, ``none`` for a text without letters."""
    if share is None:
        return "none"
    if share >= high:
        return "cjk"
    return "non_cjk" if share <= low else "mixed"


def language_switched(baseline: Script, candidate: Script) -> bool:
    """Only a clear flip counts; ``mixed`` and ``none`` (an empty answer is a length problem) never do."""
    return {baseline, candidate} == {"cjk", "non_cjk"}


def _phrase_pattern(phrase: str) -> re.Pattern[str] | None:
    key = " ".join(tokens(phrase))
    if not key:
        return None
    head = r"(?<![a-z0-9])" if key[0].isascii() and key[0].isalnum() else ""
    tail = r"(?![a-z0-9])" if key[-1].isascii() and key[-1].isalnum() else ""
    return re.compile(head + re.escape(key) + tail)


def detect_refusal(text: str, phrases: tuple[str, ...] = DEFAULT_REFUSAL_PHRASES, *,
                   window: int = REFUSAL_WINDOW) -> str | None:
    """The first refusal phrase found in the opening ``window`` characters (0 = whole text), else None."""
    opening = " ".join(tokens(text[:window] if window > 0 else text))
    for phrase in phrases:
        pattern = _phrase_pattern(phrase)
        if pattern is not None and pattern.search(opening):
            return phrase
    return None


def _phrase_keys(text: str, phrase: str) -> tuple[str, str]:
    key = fold(phrase)
    if key:
        return fold(text), key
    # A phrase made only of punctuation ("```", "——") would fold to nothing and match everything.
    return normalize_text(text), normalize_text(phrase)


def contains_phrase(text: str, phrase: str) -> bool:
    """Folded substring match (width, case, punctuation and whitespace ignored)."""
    haystack, needle = _phrase_keys(text, phrase)
    return bool(needle) and needle in haystack


def missing_phrases(text: str, phrases: tuple[str, ...] | list[str]) -> list[str]:
    """The ``must_include`` phrases ``text`` lacks, in the order given."""
    return [p for p in phrases if not contains_phrase(text, p)]


def present_phrases(text: str, phrases: tuple[str, ...] | list[str]) -> list[str]:
    """The ``must_not_include`` phrases ``text`` contains, in the order given."""
    return [p for p in phrases if contains_phrase(text, p)]


def length_ratio(baseline: str, candidate: str) -> float | None:
    """len(candidate) / len(baseline) after normalisation; None when the baseline is empty."""
    b, c = len(normalize_text(baseline)), len(normalize_text(candidate))
    return c / b if b else None


@dataclass(frozen=True)
class MarkdownStructure:
    """Counts of the Markdown elements consuming parsers and readers rely on."""

    headings: int = 0
    bullets: int = 0
    numbered: int = 0
    code_blocks: int = 0
    tables: int = 0
    heading_titles: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"headings": self.headings, "bullets": self.bullets, "numbered": self.numbered,
                "code_blocks": self.code_blocks, "tables": self.tables,
                "heading_titles": list(self.heading_titles)}


def markdown_structure(text: str) -> MarkdownStructure:
    """Count headings, bullet and numbered items, code blocks and tables; never raises on any string.

    An unclosed fence still counts as a block (the answer was cut off inside it) and hides what follows.
    """
    counts = {"bullets": 0, "numbered": 0, "code_blocks": 0, "tables": 0}
    titles: list[str] = []
    fence: str | None = None
    for line in fold_width(text).splitlines():
        opened = _FENCE.match(line)
        if fence is not None:
            if opened and opened.group(1)[0] == fence[0] and len(opened.group(1)) >= len(fence) \
                    and not line.strip()[len(opened.group(1)):].strip():
                fence = None
            continue
        if opened:
            fence = opened.group(1)
            counts["code_blocks"] += 1
        elif (heading := _HEADING.match(line)) is not None:
            titles.append((heading.group(2) or "").strip())
        elif _TABLE_RULE.match(line):
            counts["tables"] += 1
        elif _RULE.match(line):
            continue
        elif _BULLET.match(line):
            counts["bullets"] += 1
        elif _NUMBERED.match(line):
            counts["numbered"] += 1
    return MarkdownStructure(headings=len(titles), heading_titles=tuple(titles), **counts)


_ELEMENTS = {"headings": "headings", "bullets": "bullet items", "numbered": "numbered items",
             "code_blocks": "code blocks", "tables": "tables"}


def structure_changes(baseline: MarkdownStructure, candidate: MarkdownStructure) -> list[Finding]:
    """``structure_change`` when an element kind appears or vanishes or the heading count changes (the
    section layout a reader or parser relies on); ``list_change``/``headings_renamed`` for softer moves."""
    out: list[Finding] = []
    for attr, name in _ELEMENTS.items():
        b, c = getattr(baseline, attr), getattr(candidate, attr)
        if b == c:
            continue
        if b and not c:
            out.append(Finding("structure_change", f"candidate dropped the {name} (baseline had {b})",
                               path=attr, baseline=b, candidate=c))
        elif c and not b:
            out.append(Finding("structure_change", f"candidate added {name} ({c}); the baseline had none",
                               path=attr, baseline=b, candidate=c))
        elif attr == "headings":
            gone = _missing_titles(baseline, candidate)
            extra = f"; missing: {', '.join(repr(t) for t in gone[:5])}" if gone else ""
            out.append(Finding("structure_change", f"headings {b} → {c}{extra}", path=attr,
                               baseline=b, candidate=c))
        else:
            out.append(Finding("list_change", f"{name} {b} → {c}", path=attr, baseline=b, candidate=c))
    if baseline.headings == candidate.headings and baseline.headings:
        gone = _missing_titles(baseline, candidate)
        if gone:
            names = ", ".join(repr(t) for t in gone[:5])
            out.append(Finding("headings_renamed", f"headings renamed: {names} no longer present",
                               path="heading_titles", baseline=list(baseline.heading_titles),
                               candidate=list(candidate.heading_titles)))
    return out


def _missing_titles(baseline: MarkdownStructure, candidate: MarkdownStructure) -> list[str]:
    have = {fold(t) for t in candidate.heading_titles}
    return [t for t in baseline.heading_titles if fold(t) not in have]


@dataclass(frozen=True)
class Envelope:
    """Everything above, measured once for one answer."""

    length: int
    cjk_share: float | None
    script: Script
    refusal: str | None
    markdown: MarkdownStructure

    def to_dict(self) -> dict[str, Any]:
        return {"length": self.length, "cjk_share": self.cjk_share, "script": self.script,
                "refusal": self.refusal, "markdown": self.markdown.to_dict()}


def describe(text: str, *, refusal_phrases: tuple[str, ...] = DEFAULT_REFUSAL_PHRASES,
             refusal_window: int = REFUSAL_WINDOW, cjk_high: float = CJK_HIGH,
             cjk_low: float = CJK_LOW) -> Envelope:
    """Measure one answer's envelope."""
    share = cjk_letter_share(text)
    return Envelope(length=len(normalize_text(text)), cjk_share=share,
                    script=script_of(share, high=cjk_high, low=cjk_low),
                    refusal=detect_refusal(text, refusal_phrases, window=refusal_window),
                    markdown=markdown_structure(text))
