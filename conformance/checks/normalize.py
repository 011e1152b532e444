"""Text folding shared by label extraction, term matching and similarity.

Why a dedicated module: Chinese users type full-width punctuation (，。！？（）) and full-width
digits/letters interchangeably with their half-width forms, and models switch between them
between quantisations. Comparisons must not count that as drift unless a suite says so.
"""

from __future__ import annotations

import re
import unicodedata

# Punctuation we fold away for label/term matching (ASCII and CJK). Kept explicit so behaviour
# does not depend on the Unicode database version.
_PUNCT = re.compile(r"[\s\u3000!-/:-@\[-`{-~\u3001-\u3003\u3008-\u3011\u3014-\u301f\uff01-\uff0f\uff1a-\uff20"
                    r"\uff3b-\uff40\uff5b-\uff65\u2018-\u201f\u2026\u00b7]+")
_WS = re.compile(r"\s+")
_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")


def fold_width(text: str) -> str:
    """Full-width → half-width (NFKC), which also normalises compatibility characters."""
    return unicodedata.normalize("NFKC", text)


def collapse_ws(text: str) -> str:
    """Collapse runs of whitespace to one space and strip the ends."""
    return _WS.sub(" ", text).strip()


def strip_punct(text: str) -> str:
    """Remove ASCII and CJK punctuation and all whitespace."""
    return _PUNCT.sub("", text)


def fold(text: str, *, punctuation: bool = True, case: bool = True) -> str:
    """The default comparison key: width-folded, whitespace-collapsed, optionally without
    punctuation and lower-cased."""
    out = fold_width(text)
    out = strip_punct(out) if punctuation else collapse_ws(out)
    return out.casefold() if case else out


def cjk_share(text: str) -> float:
    """Share of CJK ideographs among non-space characters (0.0 for empty text)."""
    chars = [c for c in text if not c.isspace()]
    if not chars:
        return 0.0
    return sum(1 for c in chars if _CJK.match(c)) / len(chars)
