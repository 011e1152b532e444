from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conformance.checks.extract import Extraction, compare_envelopes, extract_json, loads_strict

json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) \
    | st.text(max_size=20)
json_values = st.recursive(json_scalars, lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c,
                                                                                               max_size=4),
                           max_leaves=12)
containers = st.lists(json_values, max_size=4) | st.dictionaries(st.text(max_size=8), json_values, max_size=4)
# prose a model might put around JSON: no brackets, fences or tags
prose = st.text(alphabet=st.characters(blacklist_characters="{}[]`<>\\\"", blacklist_categories=("Cs",)),
                max_size=30)
reasoning_text = st.text(max_size=40).filter(lambda t: "</think>" not in t.lower())


def test_plain_json_needs_no_step() -> None:
    ex = extract_json('{"a": [1, 2.5, "x"]}')
    assert ex.ok and ex.value == {"a": [1, 2.5, "x"]} and ex.steps == () and not ex.had_think
    assert ex.reasoning_place == "none"


def test_think_block_is_stripped_and_recorded() -> None:
    ex = extract_json('<think>\nthe user wants JSON\n</think>\n\n{"ok": true}')
    assert ex.value == {"ok": True}
    assert ex.steps == ("think_stripped",)
    assert ex.had_think and ex.think is not None and "user wants" in ex.think
    assert ex.reasoning_place == "content"


def test_orphan_closing_think_tag_from_template_opened_block() -> None:
    ex = extract_json('the prompt opened the block</think>{"n": 1}')
    assert ex.value == {"n": 1} and ex.had_think and ex.steps == ("think_stripped",)


def test_closing_think_inside_a_json_string_is_not_a_think_block() -> None:
    ex = extract_json('{"text": "</think>"}')
    assert ex.ok and ex.value == {"text": "</think>"} and not ex.had_think


def test_unclosed_think_is_an_error_not_a_crash() -> None:
    ex = extract_json('<think>still thinking when max_tokens hit {"a":')
    assert not ex.ok and ex.error is not None and "unclosed <think>" in ex.error
    assert ex.had_think


@pytest.mark.parametrize("fence", ["```json\n{}\n```", "```JSON\n{}\n```", "```\n{}\n```", "  ```json\n{}```  "])
def test_single_fence_is_unwrapped(fence: str) -> None:
    ex = extract_json(fence.replace("{}", '{"k": "v"}'))
    assert ex.value == {"k": "v"} and ex.steps == ("fence_unwrapped",)


def test_fence_whose_json_contains_backticks() -> None:
    inner = json.dumps({"md": "```py\nprint(1)\n```"})
    ex = extract_json(f"```json\n{inner}\n```")
    assert ex.ok and ex.value == {"md": "```py\nprint(1)\n```"}


def test_prose_is_an_error_unless_allowed() -> None:
    text = 'Sure! Here is the summary: {"profit": 12.5} Let me know.'
    strict = extract_json(text)
    assert not strict.ok and strict.error is not None
    assert "allow_prose" in strict.error and "Sure! Here is the summary:" in strict.error
    lenient = extract_json(text, allow_prose=True)
    assert lenient.value == {"profit": 12.5} and lenient.steps == ("prose_trimmed",)
    assert lenient.prose == "Sure! Here is the summary: Let me know."


def test_fence_with_prose_needs_allow_prose() -> None:
    text = 'Here you go:\n```json\n{"a": 1}\n```\nAnything else?'
    assert "code fence" in (extract_json(text).error or "")
    ex = extract_json(text, allow_prose=True)
    assert ex.value == {"a": 1} and ex.steps == ("prose_trimmed", "fence_unwrapped")


def test_two_fences_are_ambiguous_without_allow_prose() -> None:
    text = '```json\n{"a": 1}\n```\nor\n```json\n{"a": 2}\n```'
    assert "2 code fences" in (extract_json(text).error or "")
    assert extract_json(text, allow_prose=True).value == {"a": 1}


def test_trailing_prose_is_named() -> None:
    ex = extract_json('{"a": 1}\nHope this helps')
    assert ex.error is not None and ex.error.startswith("trailing prose") and "Hope this helps" in ex.error


def test_longest_embedded_json_wins() -> None:
    ex = extract_json('See [1]: {"a": [1, 2, 3]}', allow_prose=True)
    assert ex.value == {"a": [1, 2, 3]}


@pytest.mark.parametrize("text", ['{"a": NaN}', '[Infinity]', '{"a": -Infinity}'])
def test_non_standard_constants_are_rejected(text: str) -> None:
    ex = extract_json(text)
    assert not ex.ok and ex.error is not None and "non-standard JSON constant" in ex.error
    with pytest.raises(ValueError):
        loads_strict(text)


def test_invalid_json_error_says_where() -> None:
    ex = extract_json('{"a": 1,\n "b": }')
    assert ex.error is not None and "line 2" in ex.error and "column" in ex.error


def test_missing_content() -> None:
    assert extract_json(None).error == "no content (the answer had no text at all)"
    assert "empty" in (extract_json("   ").error or "")


def test_json_null_is_a_value_not_an_error() -> None:
    ex = extract_json("null")
    assert ex.ok and ex.value is None


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200), st.booleans(), st.none() | st.text(max_size=10))
def test_extraction_never_raises(text: str, allow_prose: bool, reasoning: str | None) -> None:
    ex = extract_json(text, reasoning, allow_prose=allow_prose)
    assert isinstance(ex, Extraction)
    assert (ex.error is None) == (ex.json_text is not None)
    if ex.ok:
        assert loads_strict(ex.json_text or "") == ex.value


@settings(max_examples=150, deadline=None)
@given(json_values, st.booleans(), st.booleans(), reasoning_text)
def test_wrappers_round_trip(value: Any, think: bool, fence: bool, reason: str) -> None:
    text = json.dumps(value)
    if fence:
        text = f"```json\n{text}\n```"
    if think:
        text = f"<think>{reason}</think>\n{text}"
    ex = extract_json(text)
    assert ex.ok, ex.error
    assert ex.value == value
    assert ("think_stripped" in ex.steps) == think and ex.had_think == think
    assert ("fence_unwrapped" in ex.steps) == fence
    assert "prose_trimmed" not in ex.steps


@settings(max_examples=150, deadline=None)
@given(containers, prose, prose)
def test_prose_round_trip(value: Any, before: str, after: str) -> None:
    text = f"{before} {json.dumps(value)} {after}"
    ex = extract_json(text, allow_prose=True)
    assert ex.ok and ex.value == value
    assert ("prose_trimmed" in ex.steps) == bool((before + after).strip())
    if (before + after).strip():
        assert not extract_json(text).ok


def _kinds(b: Extraction, c: Extraction) -> list[str]:
    return [f.kind for f in compare_envelopes(b, c)]


def test_envelope_think_appeared_breaks_naive_consumers() -> None:
    findings = compare_envelopes(extract_json('{"a":1}'), extract_json('<think>x</think>{"a":1}'))
    assert [f.kind for f in findings] == ["think_appeared"]
    assert "parses the content as-is will break" in findings[0].message


def test_envelope_reasoning_moves_between_field_and_content() -> None:
    field = extract_json('{"a":1}', reasoning="thinking")
    content = extract_json('<think>thinking</think>{"a":1}')
    assert _kinds(field, content) == ["reasoning_moved"]
    assert compare_envelopes(field, content)[0].baseline == "field"
    assert _kinds(content, field) == ["reasoning_moved"]
    assert _kinds(extract_json('{"a":1}'), field) == ["reasoning_appeared"]
    assert _kinds(field, extract_json('{"a":1}')) == ["reasoning_disappeared"]
    assert _kinds(content, extract_json('{"a":1}')) == ["think_disappeared"]
    assert _kinds(extract_json('{"a":1}', reasoning="   "), extract_json('{"a":1}')) == []


def test_envelope_fence_and_prose() -> None:
    plain = extract_json('{"a":1}')
    fenced = extract_json('```json\n{"a":1}\n```')
    chatty = extract_json('Here: {"a":1}', allow_prose=True)
    assert _kinds(plain, fenced) == ["fence_appeared"]
    assert _kinds(fenced, plain) == ["fence_disappeared"]
    assert _kinds(plain, chatty) == ["prose_appeared"]
    assert _kinds(chatty, plain) == ["prose_disappeared"]


@given(st.sampled_from(['{"a":1}', '<think>t</think>{"a":1}', '```json\n{"a":1}\n```', 'x {"a":1}']),
       st.none() | st.just("r"))
def test_envelope_of_identical_answers_is_empty(text: str, reasoning: str | None) -> None:
    ex = extract_json(text, reasoning, allow_prose=True)
    assert compare_envelopes(ex, ex) == []
