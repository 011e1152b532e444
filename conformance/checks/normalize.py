"""Text folding shared by label extraction, term matching and similarity.

Why a dedicated module: Chinese users type full-width punctuation (，。！？（）) and full-width
digits/letters interchangeably with their half-width forms, and models switch between them
between quantisations. Comparisons must not count that as drift unless a suite says so.

**Width is not content.** Folding maps every form of the *same* mark to one form, so even a suite that
counts punctuation as content (ASR post-processing: ``punctuation: false`` in a text config) never counts
a width or typographic variant as an error:

* full-width ↔ half-width (，/,  ！/!  ：/:  ２/2  ｡/。): Unicode NFKC;
* the CJK typographic forms NFKC leaves alone (:data:`SAME_MARK`): 。 is the full stop "."; “ ” „ ‟ 〝 〞 〟 are
  the double quotation mark '"' and ‘ ’ ‚ ‛ the single one (and the apostrophe: "can’t" = "can't"); 〜 is the
  wave dash "~" (like ～); ・ is the interpunct "·". Opening and closing quotes fold to the same straight quote,
  because a straight quote has no direction: “好” can only equal "好" if the direction is dropped.

**Different marks stay different** when punctuation counts: 、 (the enumeration comma) is not ","; 「」 and
《》 are not quotation marks; —— is not "-"; "；" is not "。". A swap between them is an edit.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Mapping
from types import MappingProxyType

__all__ = ["SAME_MARK", "cjk_share", "collapse_ws", "fixpoint", "fold", "fold_width", "strip_punct"]

#: Typographic forms of a mark that NFKC does not fold, mapped to the ASCII (or Latin-1) form of the same mark.
#: Every key is punctuation (:func:`strip_punct` removes it); every value is stable under NFKC and case folding.
SAME_MARK: Mapping[str, str] = MappingProxyType({
    "\u3002": ".",                                                        # 。 ideographic full stop
    "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u201f": '"',           # “ ” „ ‟
    "\u301d": '"', "\u301e": '"', "\u301f": '"',                          # 〝 〞 〟 (CJK double-prime quotes)
    "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'",           # ‘ ’ ‚ ‛
    "\u301c": "~",                                                        # 〜 wave dash (～ is ~ under NFKC)
    "\u30fb": "\u00b7",                                                   # ・ → · (interpunct, 间隔号)
})
_SAME_MARK_TABLE = str.maketrans(dict(SAME_MARK))

# Punctuation we fold away for label/term matching (ASCII, CJK and the General Punctuation block: the Chinese
# dash —— is U+2014, the ellipsis …… U+2026). Kept explicit so behaviour does not depend on the Unicode
# database version.
_PUNCT = re.compile(r"[\s\u3000!-/:-@\[-`{-~\u3001-\u3003\u3008-\u3011\u3014-\u301f\uff01-\uff0f\uff1a-\uff20"
                    r"\uff3b-\uff40\uff5b-\uff65\u2010-\u2027\u2030-\u205e\u00ab\u00b7\u00bb\u30fb]+")
_WS = re.compile(r"\s+")
_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
# NFKC and case folding can each produce what the other still changes (a cased letter whose case fold
# decomposes); repeating until nothing moves takes two rounds in practice.
_MAX_ROUNDS = 4


def fixpoint(step: Callable[[str], str], text: str) -> str:
    """Apply ``step`` until the text stops changing: what makes a composition of foldings idempotent."""
    out = text
    for _ in range(_MAX_ROUNDS):
        nxt = step(out)
        if nxt == out:
            break
        out = nxt
    return out


def fold_width(text: str) -> str:
    """Full-width → half-width (NFKC, which also normalises compatibility characters), then the CJK
    typographic forms of a mark → its ASCII form (:data:`SAME_MARK`). Idempotent."""
    return unicodedata.normalize("NFKC", text).translate(_SAME_MARK_TABLE)


def collapse_ws(text: str) -> str:
    """Collapse runs of whitespace to one space and strip the ends."""
    return _WS.sub(" ", text).strip()


def strip_punct(text: str) -> str:
    """Remove ASCII, CJK and general punctuation (dashes, ellipses, quotes) and all whitespace."""
    return _PUNCT.sub("", text)


def fold(text: str, *, punctuation: bool = True, case: bool = True) -> str:
    """The default comparison key: width-folded, whitespace-collapsed, optionally without
    punctuation and lower-cased. Idempotent: ``fold(fold(t)) == fold(t)``."""
    def once(t: str) -> str:
        out = fold_width(t)
        out = strip_punct(out) if punctuation else collapse_ws(out)
        return out.casefold() if case else out

    return fixpoint(once, text)


def cjk_share(text: str) -> float:
    """Share of CJK ideographs among non-space characters (0.0 for empty text)."""
    chars = [c for c in text if not c.isspace()]
    if not chars:
        return 0.0
    return sum(1 for c in chars if _CJK.match(c)) / len(chars)
