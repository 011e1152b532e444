"""Hypothesis strategies for text folding, shared by the normaliser and similarity tests."""

from __future__ import annotations

from hypothesis import strategies as st

from conformance.checks.normalize import SAME_MARK

ASCII_PUNCT = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"


def twins(mark: str) -> list[str]:
    """Every form the normaliser declares to be the same mark as the ASCII ``mark``: itself, its full-width form
    (U+FF01…U+FF5E, folded by NFKC) and the typographic forms in SAME_MARK."""
    return [mark, chr(ord(mark) + 0xFEE0), *(k for k, v in SAME_MARK.items() if v == mark)]


@st.composite
def text_and_twin(draw: st.DrawFn) -> tuple[str, str]:
    """A text of words and ASCII marks, and the same text with each mark in a randomly chosen other form."""
    chars = draw(st.lists(st.sampled_from([*"ab Z9定金条款", *ASCII_PUNCT]), max_size=40))
    twin = [draw(st.sampled_from(twins(c))) if c in ASCII_PUNCT else c for c in chars]
    return "".join(chars), "".join(twin)
