from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conformance.checks import classification, extract, toolcall_parse
from conformance.checks.classification import LabelSet
from conformance.checks.extract import extract_json
from conformance.checks.think import ThinkSplit, split_think
from conformance.checks.toolcall_parse import parse_tool_calls


@pytest.mark.parametrize(("text", "split"), [
    ("answer", ThinkSplit("answer", 0)),
    ("<think>r</think>a", ThinkSplit("a", 16, "r")),
    ("  \n<THINK >r</think >a", ThinkSplit("a", 21, "r")),
    ("<think>r", ThinkSplit("", 8, "r", unclosed=True)),
    ("r</think>a", ThinkSplit("a", 9, "r", orphan=True)),
    ("<think>a</think>b</think>c", ThinkSplit("b</think>c", 16, "a")),  # the first closing tag ends it, as in vLLM
    ("x <think>", ThinkSplit("x <think>", 0)),
])
def test_split(text: str, split: ThinkSplit) -> None:
    assert split_think(text) == split


def test_orphan_close_can_be_vetoed_by_the_caller() -> None:
    assert split_think('{"a": "</think>"}', orphan_ok=lambda before: not before.startswith("{")).reasoning is None


def test_there_is_one_think_reader() -> None:
    # issue #12: the three readers share conformance.checks.think instead of keeping their own patterns
    from conformance.checks import think

    for module in (extract, classification, toolcall_parse):
        own = [v for v in vars(module).values() if isinstance(v, re.Pattern) and "think" in v.pattern.lower()]
        assert own == [] or all(v in (think.THINK_OPEN, think.THINK_CLOSE) for v in own), module.__name__


SENT = LabelSet(("正面", "负面"))
REASONING = st.text(max_size=30).filter(lambda t: "think" not in t.lower() and "<" not in t)
ANSWER = st.sampled_from(["正面", "负面", '{"a": 1}'])


@settings(max_examples=150, deadline=None)
@given(REASONING, ANSWER, st.booleans())
def test_callers_agree_on_where_the_answer_starts(reason: str, answer: str, orphan: bool) -> None:
    text = f"{reason}</think>{answer}" if orphan else f"<think>{reason}</think>{answer}"
    split = split_think(text)
    assert split.answer == answer and split.reasoning == reason and text[split.start:] == answer
    if answer.startswith("{") and (not orphan or not reason.lstrip().startswith(("{", "[", "`"))):
        assert extract_json(text).value == {"a": 1} and extract_json(text).think == reason
    elif not answer.startswith("{"):
        assert SENT.extract(text) == answer  # the reasoning never votes
    assert parse_tool_calls(text, None, None).content == answer.strip()


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60) | st.lists(st.sampled_from(["<think>", "</think>", "<THINK>", "x", " ", "{"]),
                                       max_size=12).map("".join))
def test_split_never_raises_and_keeps_its_offset(text: str) -> None:
    split = split_think(text)
    assert text[split.start:] == split.answer
    assert split.unclosed <= split.had_think and split.orphan <= split.had_think
