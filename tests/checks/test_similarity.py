from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conformance.checks.normalize import SAME_MARK
from conformance.checks.similarity import (
    cer,
    char_similarity,
    compare_texts,
    noise_floor,
    normalize_text,
    token_set_similarity,
    tokens,
)
from tests.support.text import text_and_twin

# Prose-like text: Latin, CJK, digits, ASCII and full-width punctuation, odd whitespace.
_PROSE_CHARS = "abcXYZ 019" "定金条款风险提示" "，。！？、（）" ",.!?()" "\t\n\u3000" "ＡＢ１２ß"
prose = st.text(alphabet=st.sampled_from(list(_PROSE_CHARS)), max_size=60)
any_text = st.text(max_size=60)

_ASCII_PUNCT = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"


def to_full_width(text: str) -> str:
    """ASCII letters, digits and punctuation → their full-width forms (U+FF01…U+FF5E)."""
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)


@given(any_text, st.booleans(), st.booleans())
def test_normalisation_is_idempotent(text: str, punctuation: bool, casefold: bool) -> None:
    once = normalize_text(text, punctuation=punctuation, casefold=casefold)
    assert normalize_text(once, punctuation=punctuation, casefold=casefold) == once


@given(st.text(alphabet=st.sampled_from(list("abcXYZ019 " + _ASCII_PUNCT)), max_size=40), st.booleans())
def test_normalisation_ignores_full_width(text: str, punctuation: bool) -> None:
    expected = normalize_text(text, punctuation=punctuation)
    assert normalize_text(to_full_width(text), punctuation=punctuation) == expected


@given(prose, prose)
def test_similarities_are_symmetric_and_bounded(a: str, b: str) -> None:
    assert char_similarity(a, b) == char_similarity(b, a)
    assert token_set_similarity(a, b) == token_set_similarity(b, a)
    for value in (char_similarity(a, b), token_set_similarity(a, b)):
        assert 0.0 <= value <= 1.0


@given(any_text, st.booleans())
def test_identical_text_is_similarity_one_and_cer_zero(text: str, punctuation: bool) -> None:
    sim = compare_texts(text, text, punctuation=punctuation)
    assert sim.char == 1.0 and sim.token_set == 1.0 and sim.cer == 0.0
    assert cer(text, text) == 0.0


@given(prose, prose)
def test_different_normalised_text_is_below_one(a: str, b: str) -> None:
    na, nb = normalize_text(a), normalize_text(b)
    if na != nb:
        assert char_similarity(na, nb) < 1.0
        assert cer(na, nb) > 0.0


def test_cer_counts_character_edits_over_reference_length() -> None:
    reference = "今天天气很好"
    assert cer(reference, "今天天汽很好") == 1 / len(reference)  # one substitution
    assert cer(reference, "今天天气很好啊啊") == 2 / len(reference)  # two insertions
    assert cer(reference, "天气很好") == 2 / len(reference)  # two deletions
    assert cer("ab", "abcdef") > 1.0  # insertions are not capped, as in ASR reporting


def test_cer_with_empty_reference_is_defined() -> None:
    assert cer("", "") == 0.0
    assert cer("", "任何内容") == 1.0


def test_width_and_whitespace_never_count_as_drift() -> None:
    sim = compare_texts("定金为总价的20%, 共 3 期", "定金为总价的２０％，共　３　期")
    assert sim.char == 1.0 and sim.cer == 0.0


def test_punctuation_counts_unless_the_suite_folds_it() -> None:
    # ASR post-processing: a missing full stop is an error …
    assert compare_texts("今天天气很好。", "今天天气很好").cer > 0.0
    # … unless the suite says punctuation does not matter.
    assert compare_texts("今天天气很好。", "今天天气很好", punctuation=True).cer == 0.0


def test_case_folding_is_configurable() -> None:
    assert compare_texts("Deposit Clause", "deposit clause").char == 1.0
    assert compare_texts("Deposit Clause", "deposit clause", casefold=False).char < 1.0


def test_token_set_forgives_reordered_prose_where_characters_do_not() -> None:
    a = "The buyer pays a deposit. The seller returns double on default."
    b = "The seller returns double on default. The buyer pays a deposit."
    sim = compare_texts(a, b)
    assert sim.token_set == 1.0
    assert sim.char < 0.9


def test_tokens_are_words_in_english_and_clauses_in_chinese() -> None:
    assert tokens("Hello, World!  again") == ["hello", "world", "again"]
    assert tokens("买方支付定金，卖方违约双倍返还。") == ["买方支付定金", "卖方违约双倍返还"]


def test_chinese_clause_reordering_keeps_token_set_high() -> None:
    sim = compare_texts("买方支付定金，卖方违约双倍返还。", "卖方违约双倍返还，买方支付定金。")
    assert sim.token_set == 1.0 and sim.char < 1.0


def test_noise_floor_needs_a_repeat() -> None:
    assert noise_floor("定金条款", None) is None
    floor = noise_floor("买方应支付定金。", "买方应当支付定金。")
    assert floor is not None and 0.0 < floor.char < 1.0
    assert floor.get("char") == floor.char and floor.get("token_set") == floor.token_set


# --- punctuation: the same mark in another form vs a different mark (issue #14 §3) ---------------------------

@pytest.mark.parametrize(("a", "b"), [("你好，世界。", "你好,世界."), ("他说：“好。”", '他说:"好."'),
                                      ("I can’t", "I can't")])
def test_cjk_full_stop_and_curly_quotes_are_the_same_marks(a: str, b: str) -> None:
    sim = compare_texts(a, b)
    assert sim.cer == 0.0 and sim.char == 1.0 and sim.token_set == 1.0


def test_a_different_mark_is_an_edit_when_punctuation_counts() -> None:
    assert compare_texts("甲、乙", "甲,乙").cer > 0.0  # the enumeration comma is not a comma
    assert compare_texts("甲、乙", "甲,乙", punctuation=True).cer == 0.0


def test_same_mark_table_is_what_normalisation_folds() -> None:
    for key, value in SAME_MARK.items():
        assert normalize_text(f"甲{key}乙") == normalize_text(f"甲{value}乙")


@given(text_and_twin(), st.booleans())
def test_a_text_and_its_punctuation_twin_compare_as_identical(pair: tuple[str, str], punctuation: bool) -> None:
    text, twin = pair
    sim = compare_texts(text, twin, punctuation=punctuation)
    assert sim.char == 1.0 and sim.token_set == 1.0 and sim.cer == 0.0


def test_punctuation_only_texts_are_not_identical_to_each_other_or_to_nothing() -> None:
    assert compare_texts("。", "！").token_set < 1.0
    assert compare_texts("。", "").token_set == 0.0 and compare_texts("", "？！").token_set == 0.0
    assert compare_texts("。", "．").token_set == 1.0  # the same mark
    # … unless punctuation is folded away: then both are the empty text
    assert compare_texts("。", "！", punctuation=True).token_set == 1.0


punct_only = st.text(alphabet=st.sampled_from(list("，。！？、（）「」“”,.!?()\"' \u3000——…")), max_size=8)


@given(punct_only, punct_only, st.booleans())
def test_punctuation_only_texts_score_one_only_when_equal_after_folding(a: str, b: str, punctuation: bool) -> None:
    sim = compare_texts(a, b, punctuation=punctuation)
    equal = normalize_text(a, punctuation=punctuation) == normalize_text(b, punctuation=punctuation)
    for value in (sim.char, sim.token_set):
        assert (value == 1.0) == equal, (value, sim)


@given(prose | punct_only, st.booleans())
def test_empty_against_non_empty_is_zero(text: str, punctuation: bool) -> None:
    if normalize_text(text, punctuation=punctuation):
        for a, b in (("", text), (text, "")):
            sim = compare_texts(a, b, punctuation=punctuation)
            assert sim.char == 0.0 and sim.token_set == 0.0 and sim.cer == 1.0


@given(prose | punct_only, prose | punct_only, st.booleans())
def test_similarities_are_symmetric_and_bounded_with_either_punctuation_setting(a: str, b: str,
                                                                                punctuation: bool) -> None:
    ab, ba = compare_texts(a, b, punctuation=punctuation), compare_texts(b, a, punctuation=punctuation)
    assert ab.char == ba.char and ab.token_set == ba.token_set
    assert 0.0 <= ab.char <= 1.0 and 0.0 <= ab.token_set <= 1.0
