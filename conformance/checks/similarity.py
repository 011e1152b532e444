"""How close is the candidate's prose to the baseline's (or to a reference)? Character- and token-level.

Why two measures:

- **Character level** (:func:`cer`, :func:`char_similarity`): the edit distance on characters. It is the
  measure ASR post-processing and Chinese text need — Chinese has no spaces, so "words" are not a unit a
  tokenizer can find, and the ASR team already tracks character error rate (CER = edits / reference length).
- **Token set** (:func:`token_set_similarity`, rapidfuzz's ``token_set_ratio``): forgiving to reordered
  prose ("Risks: … Summary: …" vs "Summary: … Risks: …"). Tokens are the runs between whitespace *and*
  punctuation, so in English they are words and in Chinese they are clauses (the text between ，。；).
  It is blind to truncation — a candidate that says only the first half of the baseline scores 1.0 — so it
  is never used alone: the envelope check's length ratio catches what it misses.

Both are computed on :func:`normalize_text` output, so full-/half-width variants (，vs ,  ２ vs 2) and
whitespace runs never count as drift; punctuation only stops counting when the suite says so, because for
ASR post-processing punctuation *is* the product.

What ``punctuation=False`` (the default; ``punctuation: false`` in a text config) means exactly: a missing,
added or *different* mark is an edit (、 for ，, ； for 。, 「」 for “”), but the *same* mark in another width or
typographic form is not (，/,  。/.  “”/""  ：/:) — width is not content; the list is
:data:`conformance.checks.normalize.SAME_MARK` plus NFKC. With ``punctuation=True`` every mark is folded away.

A text with no words (only punctuation, or nothing) has no tokens, and a token set of nothing would make any
two of them identical. Such a pair is therefore scored on its characters: two punctuation-only texts score 1.0
only when they are equal once normalised, and the empty text scores 0.0 against any text that is not empty
once normalised.

A similarity means nothing without its **noise floor**: the same measure between the baseline and a repeat
of the baseline (:func:`noise_floor`). 0.91 is alarming when the baseline repeats itself at 1.00, and normal
when it repeats itself at 0.90.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any, Literal

from rapidfuzz import fuzz
from rapidfuzz.distance import Levenshtein

from conformance.checks.normalize import cjk_share, collapse_ws, fixpoint, fold, fold_width, strip_punct

Metric = Literal["char", "token_set"]
_WS = re.compile(r"\s+")
METRICS: tuple[Metric, ...] = ("char", "token_set")


def normalize_text(text: str, *, punctuation: bool = False, casefold: bool = True) -> str:
    """The comparison form of a text: width-folded (NFKC), optionally case-folded, with whitespace kept only
    between two words of a spaced script (a space next to a CJK character or punctuation is layout), or with
    punctuation *and all whitespace* removed (``punctuation=True``, the :func:`~normalize.fold` key).

    The same mark in another width or typographic form is the same character here (，→ ,  。→ .  “ → "), see
    :mod:`conformance.checks.normalize`. Idempotent, so normalising an already normalised text (a stored
    reference) changes nothing.
    """
    return fixpoint(lambda t: _normalize_once(t, punctuation, casefold), text)


def _normalize_once(text: str, punctuation: bool, casefold: bool) -> str:
    if punctuation:
        return fold(text, punctuation=True, case=casefold)
    out = _layout_ws(collapse_ws(fold_width(text)))
    return out.casefold() if casefold else out


def _spaced(char: str) -> bool:
    """A letter or digit of a script that separates words with spaces (not a CJK ideograph)."""
    return char.isalnum() and cjk_share(char) == 0.0


def _layout_ws(text: str) -> str:
    """Keep a space only between two words of a spaced script; anywhere else ("共 3 期", "20%, 共") it is
    layout, and a full-width comma (which carries its own spacing) must equal ", "."""
    def repl(m: re.Match[str]) -> str:
        before = text[m.start() - 1] if m.start() else ""
        after = text[m.end()] if m.end() < len(text) else ""
        return " " if before and after and _spaced(before) and _spaced(after) else ""

    return _WS.sub(repl, text)


def tokens(text: str, *, casefold: bool = True) -> list[str]:
    """Runs of text between whitespace and punctuation (words in English, clauses in Chinese)."""
    folded = normalize_text(text, casefold=casefold)
    spaced = "".join(c if strip_punct(c) else " " for c in folded)
    return spaced.split()


def cer(reference: str, hypothesis: str) -> float:
    """Character error rate: Levenshtein edits turning ``reference`` into ``hypothesis`` / ``len(reference)``.

    Not symmetric (the reference is the denominator) and not capped at 1 (insertions count), exactly like the
    CER the ASR team reports. An empty reference has no denominator: 0.0 when the hypothesis is empty too,
    else 1.0 ("everything is wrong") rather than an infinite or undefined rate.
    """
    if not reference:
        return 0.0 if not hypothesis else 1.0
    return Levenshtein.distance(reference, hypothesis) / len(reference)


def char_similarity(a: str, b: str) -> float:
    """1 − edits / max(len): symmetric, in [0, 1], 1.0 exactly when the texts are identical."""
    return float(Levenshtein.normalized_similarity(a, b))


def token_set_similarity(a: str, b: str, *, casefold: bool = True, punctuation: bool = False) -> float:
    """rapidfuzz ``token_set_ratio`` over :func:`tokens`, scaled to [0, 1].

    When neither text has a token (punctuation only, or empty) there is no token set to compare, and calling
    them identical would score "。" against "？" or "" as 1.0: the pair is scored on its normalised characters
    instead (``punctuation`` as in :func:`normalize_text`), so it is 1.0 exactly when they normalise equal.
    """
    ta, tb = " ".join(tokens(a, casefold=casefold)), " ".join(tokens(b, casefold=casefold))
    if not ta and not tb:
        return char_similarity(normalize_text(a, punctuation=punctuation, casefold=casefold),
                               normalize_text(b, punctuation=punctuation, casefold=casefold))
    if ta == tb:
        return 1.0
    return fuzz.token_set_ratio(ta, tb, processor=None) / 100.0


@dataclass(frozen=True)
class Similarity:
    """One text compared with another: both similarities and the CER (``a`` taken as the reference)."""

    char: float
    token_set: float
    cer: float

    def get(self, metric: Metric) -> float:
        """The similarity a suite gates on (``char`` or ``token_set``)."""
        return self.char if metric == "char" else self.token_set

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def compare_texts(reference: str, hypothesis: str, *, punctuation: bool = False,
                  casefold: bool = True) -> Similarity:
    """Normalise both texts, then measure: the one entry point :mod:`conformance.checks.text` uses."""
    ra = normalize_text(reference, punctuation=punctuation, casefold=casefold)
    hb = normalize_text(hypothesis, punctuation=punctuation, casefold=casefold)
    token_set = token_set_similarity(reference, hypothesis, casefold=casefold, punctuation=punctuation)
    return Similarity(char=char_similarity(ra, hb), token_set=token_set, cer=cer(ra, hb))


def noise_floor(baseline: str, baseline_repeat: str | None, *, punctuation: bool = False,
                casefold: bool = True) -> Similarity | None:
    """The baseline against a repeat of itself, or None when no repeat was recorded.

    The caller decides what "not measured" means; :func:`conformance.checks.text.text_gates` assumes a
    perfect floor (1.0), the strictest reading, and says so in the gate message.
    """
    if baseline_repeat is None:
        return None
    return compare_texts(baseline, baseline_repeat, punctuation=punctuation, casefold=casefold)
