from __future__ import annotations

import html
import re

from hypothesis import given
from hypothesis import strategies as st

from conformance.report.escape import visible_controls
from conformance.report.textdiff import MAX_TOKENS, diff_html, tokens

_TAG = re.compile(r"</?(?:ins|del)>")
TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=80) | st.text(
    "定金订金应当可以 shall may<>&\"'\n\u202e\u2066", max_size=40)


def _plain(fragment: str) -> str:
    """Undo diff_html: drop its own tags, unescape the rest."""
    return html.unescape(_TAG.sub("", fragment))


@given(TEXT)
def test_tokens_cover_the_text_exactly(text: str) -> None:
    assert "".join(tokens(text)) == text


@given(TEXT, TEXT)
def test_both_sides_reproduce_their_text_and_hold_no_raw_markup(a: str, b: str) -> None:
    left, right, ratio = diff_html(a, b)
    assert _plain(left) == visible_controls(a)  # the text, bidi controls shown as ⟨U+…⟩ markers
    assert _plain(right) == visible_controls(b)
    assert "<ins>" not in left and "<del>" not in right
    for side in (left, right):  # after removing our tags nothing may start a tag
        assert "<" not in _TAG.sub("", side)
    assert 0.0 <= ratio <= 1.0
    assert (ratio == 1.0) == (a == b) or (not a and not b)


def test_cjk_is_diffed_per_character() -> None:
    left, right, _ = diff_html("买方应支付定金。", "买方应支付订金。")
    assert left == "买方应支付<del>定</del>金。"
    assert right == "买方应支付<ins>订</ins>金。"


def test_latin_is_diffed_per_word() -> None:
    left, right, _ = diff_html("The Seller shall deliver.", "The Seller may deliver.")
    assert left == "The Seller <del>shall</del> deliver."
    assert right == "The Seller <ins>may</ins> deliver."


def test_markup_in_answers_is_escaped_inside_the_marks() -> None:
    left, right, _ = diff_html("ok", "ok <script>alert(1)</script>")
    assert left == "ok"
    assert right == "ok<ins> &lt;script&gt;alert(1)&lt;/script&gt;</ins>"


def test_very_long_texts_are_shown_without_a_diff() -> None:
    a, b = "字" * (MAX_TOKENS + 1), "字" * MAX_TOKENS + "<b>"
    left, right, ratio = diff_html(a, b)
    assert left == a and right == "字" * MAX_TOKENS + "&lt;b&gt;"
    assert ratio != ratio  # NaN: not computed


def test_an_inserted_bidi_override_shows_as_an_insertion_in_logical_order() -> None:
    left, right, _ = diff_html("status: evil", "status: \u202eevil\u202c")
    assert left == "status: evil"
    assert right == "status: <ins>⟨U+202E⟩</ins>evil<ins>⟨U+202C⟩</ins>"
    _, long_right, _ = diff_html("字" * (MAX_TOKENS + 1), "\u202e" + "字" * MAX_TOKENS)
    assert long_right.startswith("⟨U+202E⟩字")  # the undiffed path neutralises too
