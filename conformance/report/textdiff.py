"""Baseline vs candidate text, with the difference marked — escaped HTML, safe for any model output.

Why a tokenizer instead of plain character or word diffs: a CJK legal clause must be compared character by
character (定金 → 订金 is a one-character swap that changes the law), while an English sentence diffed by
character is unreadable ("shall" → "may" shows as five scattered edits). One token stream serves both and mixed
text: every CJK character is a token, every Latin word / number is a token, whitespace runs and other symbols are
tokens. ``difflib.SequenceMatcher`` then aligns tokens; ``autojunk`` is off because with it, any token making up
more than 1% of a long text (a frequent character such as 的) would be ignored and the alignment would go wrong.

Every piece of text goes through :func:`~conformance.report.escape.text_html` before it is wrapped in
``<del>``/``<ins>``, so a golden or an answer containing ``<script>`` is shown, never run, and one holding a bidi
override reads in its logical order. The diff runs on the original text (a control character is one token, so an
inserted override shows as an insertion); only what is written out is neutralised.
"""

from __future__ import annotations

import difflib
import re

from conformance.report.escape import text_html

#: CJK ideographs, kana, Hangul, full-width forms and CJK punctuation: one token per character.
_CJK = "\u3000-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff\uff00-\uffef"
_TOKEN = re.compile(rf"[{_CJK}]|[^\W{_CJK}]+|\s+|.", re.DOTALL)

#: Beyond this many tokens a side, the diff is skipped (SequenceMatcher is quadratic in the worst case and a
#: report must render in seconds); the texts are still shown in full.
MAX_TOKENS = 6000


def tokens(text: str) -> list[str]:
    """Diff tokens; ``"".join(tokens(t)) == t`` always."""
    return _TOKEN.findall(text)


def _span(tag: str, toks: list[str]) -> str:
    s = text_html("".join(toks))
    return f"<{tag}>{s}</{tag}>" if tag else s


def diff_html(baseline: str, candidate: str) -> tuple[str, str, float]:
    """``(baseline_html, candidate_html, ratio)``: deletions in ``<del>`` on the baseline side, insertions in
    ``<ins>`` on the candidate side, everything escaped; ``ratio`` is SequenceMatcher's similarity (1.0 = same)."""
    a, b = tokens(baseline), tokens(candidate)
    if len(a) > MAX_TOKENS or len(b) > MAX_TOKENS:
        same = baseline == candidate
        return text_html(baseline), text_html(candidate), 1.0 if same else float("nan")
    sm = difflib.SequenceMatcher(None, a, b, autojunk=False)
    left: list[str] = []
    right: list[str] = []
    for op, i1, i2, j1, j2 in sm.get_opcodes():
        if op == "equal":
            left.append(_span("", a[i1:i2]))
            right.append(_span("", b[j1:j2]))
            continue
        if i2 > i1:
            left.append(_span("del", a[i1:i2]))
        if j2 > j1:
            right.append(_span("ins", b[j1:j2]))
    return "".join(left), "".join(right), sm.ratio()
