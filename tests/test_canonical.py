from __future__ import annotations

import json
import math
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from conformance.canonical import canonical_json, digest
from conformance.goldens import model
from conformance.goldens.model import DEFAULT_PARAMS, Case


def _case() -> Case:
    return Case(system="legal", set_name="deposit", id="deposit-20pct",
                messages=({"role": "system", "content": "你是法务文书助手，只输出条款正文。"},
                          {"role": "user", "content": "起草买卖合同的定金条款，定金为总价的20%。"}),
                params={**DEFAULT_PARAMS, "temperature": 0.2},
                tools=({"type": "function", "function": {"name": "get_weather", "parameters": {
                    "type": "object", "properties": {"city": {"type": "string"}, 1: {"type": "integer"}},
                    "required": ["city"]}}},))


def test_fingerprints_of_existing_recordings_do_not_move() -> None:
    # values computed with goldens/model.py's own canonical_json at ab85db7, before it moved to conformance.canonical
    case = _case()
    assert (case.fingerprint, case.prompt_fingerprint) == ("9e4dd59c20522997", "419da8befa83dfd2")
    assert digest({"b": [1, 2.5, None, True], "a": "定金"}) == "cbdb6aaaee7874d0"
    assert canonical_json({"b": [1, 2.5, None, True], "a": "定金", "c": {"z": math.nan}}) == \
        '{"a":"定金","b":[1,2.5,null,true],"c":{"z":NaN}}'
    assert canonical_json({1: "x", "b": 2}) == '{"1":"x","b":2}'


def test_one_canonical_json_for_fingerprints_and_tool_calls() -> None:
    from conformance.checks import toolcall_parse, toolcalls

    assert model.canonical_json is canonical_json and model.digest is digest
    assert toolcall_parse.canonical_json is canonical_json and toolcalls.canonical_json is canonical_json


def test_values_json_cannot_hold_get_a_stable_form_instead_of_an_exception() -> None:
    assert canonical_json({"s": {3}, "k": (1, 2)}) == '{"k":[1,2],"s":"{3}"}'
    assert canonical_json({"b": b"x"}) == canonical_json({"b": b"x"})


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
                    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(), c, max_size=4), max_leaves=12)


@settings(max_examples=200, deadline=None)
@given(JSON)
def test_canonical_json_is_json_with_sorted_keys_and_no_spaces(value: Any) -> None:
    text = canonical_json(value)
    assert json.loads(text) == value
    assert text == json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    assert len(digest(value)) == 16 and digest(value) == digest(json.loads(text))
