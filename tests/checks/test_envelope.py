from __future__ import annotations

import textwrap

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conformance.checks.envelope import (
    DEFAULT_REFUSAL_PHRASES,
    MarkdownStructure,
    Script,
    cjk_letter_share,
    contains_phrase,
    describe,
    detect_refusal,
    language_switched,
    length_ratio,
    markdown_structure,
    missing_phrases,
    present_phrases,
    script_of,
    structure_changes,
)

_HALF = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"


def swap_width(text: str) -> str:
    """ASCII punctuation → full-width, full-width punctuation → ASCII, CJK 、。 → ASCII , and ."""
    out = []
    for c in text:
        if c in _HALF:
            out.append(chr(ord(c) + 0xFEE0))
        elif "\uff01" <= c <= "\uff5e" and chr(ord(c) - 0xFEE0) in _HALF:
            out.append(chr(ord(c) - 0xFEE0))
        else:
            out.append(c)
    return "".join(out)


prose = st.text(alphabet=st.sampled_from(list("ab IcAnot定金我不能抱歉，。！？,.!?'’()（）\n")), max_size=40)


# --- refusals ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("answer", [
    "抱歉，我无法提供这方面的法律意见。",
    "作为一个AI，我没有权限访问您的合同。",
    "I can't help with that request.",
    "I’m sorry, but I can’t draft this clause.",  # curly apostrophes, as many models emit them
    "As an AI language model, I cannot give legal advice.",
])
def test_default_phrases_catch_chinese_and_english_refusals(answer: str) -> None:
    assert detect_refusal(answer) is not None


@pytest.mark.parametrize("answer", [
    "买卖双方应于合同签订之日起三日内支付定金。",
    "This clause has an aim: to secure performance.",  # "as an AI" would match without word boundaries
    "Our firm has an AI review step before signing.",  # … at either end
    "I cannotate nothing here.",  # a phrase must end on a word boundary too
])
def test_ordinary_answers_are_not_refusals(answer: str) -> None:
    assert detect_refusal(answer) is None


def test_refusals_are_looked_for_in_the_opening_only() -> None:
    answer = "定金条款如下：" + "买方应按约定支付定金。" * 30 + "我不能保证该条款在所有地区有效。"
    assert detect_refusal(answer) is None
    assert detect_refusal(answer, window=0) == "我不能"


def test_custom_phrases_replace_the_defaults() -> None:
    assert detect_refusal("恕我无法协助。", ("恕我无法",)) == "恕我无法"
    assert detect_refusal("抱歉，我无法协助。", ("恕我无法",)) is None


@given(prose, st.sampled_from(DEFAULT_REFUSAL_PHRASES), prose)
def test_refusal_detection_is_invariant_to_punctuation_width(before: str, phrase: str, after: str) -> None:
    for text in (before + after, phrase + " " + after, before + " " + phrase + " " + after):
        assert detect_refusal(swap_width(text)) == detect_refusal(text)
    assert detect_refusal(swap_width(phrase + " " + after)) is not None


# --- script / language -----------------------------------------------------------------------------------

def test_script_is_measured_on_letters_only() -> None:
    zh = "## 1. 定金条款\n- 定金为总价的20%（人民币）。"
    assert script_of(cjk_letter_share(zh)) == "cjk"
    assert script_of(cjk_letter_share("The deposit is 20% of the price.")) == "non_cjk"
    assert script_of(cjk_letter_share("请调用 get_weather API 查询 Paris")) == "mixed"
    assert cjk_letter_share("12.5%, ---") is None and script_of(None) == "none"


def test_only_a_clear_flip_is_a_language_switch() -> None:
    assert language_switched("cjk", "non_cjk") and language_switched("non_cjk", "cjk")
    pairs: list[tuple[Script, Script]] = [("cjk", "mixed"), ("mixed", "non_cjk"), ("cjk", "none"),
                                          ("cjk", "cjk")]
    for a, b in pairs:
        assert not language_switched(a, b)


def test_script_thresholds_are_configurable() -> None:
    share = cjk_letter_share("请调用 get_weather API 查询 Paris")
    assert share is not None
    assert script_of(share, high=share, low=0.0) == "cjk"
    assert script_of(share, high=1.0, low=share) == "non_cjk"


# --- markdown -----------------------------------------------------------------------------------------------

DOC = textwrap.dedent("""\
    # 周报
    ＃＃ 本周进展
    1. 完成接口迁移
    2) 修复两个缺陷
    3、上线灰度
    （一）风险
    - 延期风险
    * 依赖风险
    ---
    ```python
    # not a heading
    - not a bullet
    ```
    | 指标 | 数值 |
    |:---|---:|
    | P99 | 1850 |
    ~~~
    unclosed fence hides this
    # not a heading either
    """)


def test_markdown_elements_are_counted_outside_code_fences() -> None:
    s = markdown_structure(DOC)
    assert s.heading_titles == ("周报", "本周进展")
    assert (s.headings, s.numbered, s.bullets, s.code_blocks, s.tables) == (2, 4, 2, 2, 1)


def test_plain_prose_has_no_structure() -> None:
    assert markdown_structure("买方应支付定金。#话题 不是标题，1.5 倍也不是列表。") == MarkdownStructure()


@given(st.text(alphabet=st.sampled_from(list("#-*+|:`~ \t\n1.)、一（）abc定金>_")), max_size=120) | st.text())
def test_markdown_counter_never_raises(text: str) -> None:
    s = markdown_structure(text)
    assert s.headings == len(s.heading_titles)
    assert min(s.bullets, s.numbered, s.code_blocks, s.tables) >= 0
    assert set(s.to_dict()) == {"headings", "bullets", "numbered", "code_blocks", "tables", "heading_titles"}


def test_structure_changes_name_what_changed() -> None:
    base = markdown_structure("## 背景\n## 方案\n## 风险提示\n- a\n- b\n| x |\n|---|\n")
    cand = markdown_structure("## 背景\n## 方案\n- a\n- b\n- c\n```\ncode\n```\n")
    by_path = {f.path: f for f in structure_changes(base, cand)}
    assert by_path["headings"].kind == "structure_change" and "风险提示" in by_path["headings"].message
    assert by_path["tables"].kind == "structure_change" and "dropped" in by_path["tables"].message
    assert by_path["code_blocks"].kind == "structure_change" and "added" in by_path["code_blocks"].message
    assert by_path["bullets"].kind == "list_change"
    assert structure_changes(base, base) == []


def test_renamed_headings_are_reported_softly() -> None:
    found = structure_changes(markdown_structure("## 风险提示\n"), markdown_structure("## 风险说明\n"))
    assert [f.kind for f in found] == ["headings_renamed"]
    assert "风险提示" in found[0].message


# --- phrases and length -------------------------------------------------------------------------------------

def test_phrase_matching_is_folded() -> None:
    text = "## 风险 提示\n本条款适用 ＡＰＩ 调用。"
    assert contains_phrase(text, "风险提示")
    assert contains_phrase(text, "api调用")
    assert missing_phrases(text, ["风险提示", "违约责任"]) == ["违约责任"]
    assert present_phrases(text, ["订金", "API"]) == ["API"]


def test_punctuation_only_phrase_does_not_match_everything() -> None:
    assert not contains_phrase("买方应支付定金", "```")
    assert contains_phrase("```json\n{}\n```", "```")


def test_length_ratio() -> None:
    assert length_ratio("定金条款", "定金条款定金条款") == 2.0
    assert length_ratio("", "任何") is None
    assert length_ratio("abc", "ＡＢＣ") == 1.0


def test_describe_collects_the_envelope() -> None:
    env = describe("抱歉，我无法回答。")
    assert env.refusal == "抱歉，我无法" and env.script == "cjk"
    assert env.to_dict()["markdown"] == MarkdownStructure().to_dict()
