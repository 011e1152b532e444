from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conformance.checks.normalize import fold
from conformance.checks.perturb import PARTICLES, PERTURBATIONS, perturb, perturb_messages

# realistic user text: CJK, Latin words, digits, half/full-width punctuation, spaces
user_text = st.text(alphabet=st.sampled_from(list("物流太慢了再也不买吗我的订单在哪里 abcXYZ019"
                                                  ",.!?:;()，。！？：；（）、")),
                    max_size=40)
seeds = st.integers(0, 2**32)


@given(user_text, seeds)
def test_perturbation_is_deterministic(text: str, seed: int) -> None:
    assert perturb(text, seed) == perturb(text, seed)


@given(user_text | st.text(max_size=30), seeds, st.sets(st.sampled_from(PERTURBATIONS)))
def test_folded_text_is_unchanged_except_for_the_particle(text: str, seed: int, kinds: set[str]) -> None:
    p = perturb(text, seed, sorted(kinds))
    if p.particle is None:
        assert fold(p.text) == fold(text)
    else:
        assert p.particle in PARTICLES and "particle" in kinds
        assert fold(p.text) == fold(text) + p.particle
    assert set(p.kinds) <= kinds


@given(user_text, seeds)
def test_latin_words_and_numbers_are_never_split_or_changed(text: str, seed: int) -> None:
    words = re.compile(r"[A-Za-z0-9]+(?:[.,][0-9]+)*")
    assert words.findall(perturb(text, seed).text) == words.findall(text)


def test_particle_goes_before_the_final_punctuation_of_chinese_text() -> None:
    p = perturb("物流太慢了，再也不买了。", 3, ["particle"])
    assert p.particle in PARTICLES and p.text == f"物流太慢了，再也不买了{p.particle}。"
    assert perturb("Where is my order?", 3, ["particle"]).particle is None


def test_different_seeds_give_different_variants() -> None:
    text = "物流太慢了，再也不买了。我的订单在哪里？请尽快处理，谢谢！"
    assert len({perturb(text, s).text for s in range(20)}) > 5


def test_unknown_perturbation_raises() -> None:
    with pytest.raises(ValueError, match="typo"):
        perturb("x", 1, ["typo"])


def test_only_user_messages_are_perturbed() -> None:
    messages = [{"role": "system", "content": "只输出一个标签：正面、负面。"},
                {"role": "user", "content": "物流太慢了，再也不买了。"},
                {"role": "assistant", "content": "负面。"},
                {"role": "user", "content": "那这条呢：质量很好，下次还买！"}]
    out = perturb_messages(messages, seed=5)
    assert out[0] == messages[0] and out[2] == messages[2]
    assert [fold(m["content"])[:4] for m in out] == [fold(m["content"])[:4] for m in messages]
    assert out == perturb_messages(messages, seed=5) and out != perturb_messages(messages, seed=6)
    assert messages[1]["content"] == "物流太慢了，再也不买了。"  # the input is not mutated
