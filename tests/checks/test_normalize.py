from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conformance.checks.normalize import SAME_MARK, fold, fold_width, strip_punct
from tests.support.text import text_and_twin


@pytest.mark.parametrize(("a", "b"), [
    ("你好，世界。", "你好,世界."),
    ("他说：“好。”", '他说:"好."'),
    ("I can’t", "I can't"),
    ("‘单引号’", "'单引号'"),
    ("3〜5天", "3~5天"),
    ("3～5天", "3~5天"),
    ("马丁・路德", "马丁·路德"),
    ("〝好〞", '"好"'),
])
def test_the_same_mark_in_another_width_or_form_is_one_mark(a: str, b: str) -> None:
    assert fold_width(a) == fold_width(b)
    assert fold(a, punctuation=False) == fold(b, punctuation=False)


@pytest.mark.parametrize(("a", "b"), [
    ("甲、乙", "甲,乙"),        # enumeration comma vs comma
    ("好；", "好。"),
    ("「好」", "“好”"),         # corner brackets are not quotation marks here
    ("《合同法》", '"合同法"'),
    ("甲——乙", "甲-乙"),
])
def test_different_marks_stay_different_until_punctuation_is_folded_away(a: str, b: str) -> None:
    assert fold(a, punctuation=False) != fold(b, punctuation=False)
    assert fold(a) == fold(b)


def test_same_mark_table_maps_punctuation_to_stable_punctuation() -> None:
    for key, value in SAME_MARK.items():
        assert strip_punct(key) == "" and strip_punct(value) == "", key
        assert fold_width(key) == value and fold_width(value) == value and value.casefold() == value


@given(st.text(max_size=60))
def test_fold_width_is_idempotent(text: str) -> None:
    once = fold_width(text)
    assert fold_width(once) == once


@given(st.text(max_size=60), st.booleans(), st.booleans())
def test_fold_is_idempotent(text: str, punctuation: bool, case: bool) -> None:
    once = fold(text, punctuation=punctuation, case=case)
    assert fold(once, punctuation=punctuation, case=case) == once


@given(text_and_twin(), st.booleans())
def test_a_text_and_its_punctuation_twin_fold_equal(pair: tuple[str, str], punctuation: bool) -> None:
    text, twin = pair
    assert fold(text, punctuation=punctuation) == fold(twin, punctuation=punctuation)
