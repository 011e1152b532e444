from __future__ import annotations

import itertools
import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from conformance.checks.result import CheckResult
from conformance.checks.toolcalls import (
    ParseResult,
    ToolCall,
    compare_tool_calls,
    match_calls,
    normalize_arguments,
    parse_tool_calls,
    render_hermes,
    render_native,
    tool_call_gate,
)

TOOLS: list[dict[str, Any]] = [
    {"type": "function", "function": {"name": "create_order", "parameters": {
        "type": "object", "required": ["sku", "quantity"],
        "properties": {"sku": {"type": "string"}, "quantity": {"type": "integer"},
                       "express": {"type": "boolean", "default": False}, "zip": {"type": "string"},
                       "price": {"type": "number"}}}}},
    {"type": "function", "function": {"name": "get_weather", "parameters": {
        "type": "object", "required": ["city"], "properties": {"city": {"type": "string"}}}}},
]


def native(*calls: tuple[str, dict[str, Any]], finish: str = "tool_calls", content: str = "") -> ParseResult:
    return parse_tool_calls(content, render_native([{"name": n, "arguments": a} for n, a in calls]), TOOLS,
                            finish_reason=finish)


ORDER = ("create_order", {"sku": "A1", "quantity": 30})
PARIS = ("get_weather", {"city": "Paris"})


def kinds(res: CheckResult) -> list[str]:
    return [f.kind for f in res.findings]


def test_same_calls_in_any_order_match() -> None:
    res = compare_tool_calls(native(ORDER, PARIS), native(PARIS, ORDER), tools=TOOLS)
    assert res.passed and res.score == 1.0 and res.findings == () and res.details["outcome"] == "match"


def test_call_ids_are_never_compared() -> None:
    b = native(ORDER)
    c = ParseResult(tuple(ToolCall(x.name, x.arguments, x.source, "other-id") for x in b.calls),
                    finish_reason="tool_calls")
    assert compare_tool_calls(b, c, tools=TOOLS).passed


def test_string_for_integer_strict_vs_lenient() -> None:
    cand = native(("create_order", {"sku": "A1", "quantity": "30"}))
    strict = compare_tool_calls(native(ORDER), cand, tools=TOOLS)
    assert not strict.passed and strict.details["outcome"] == "semantic_mismatch"
    assert kinds(strict) == ["argument_type"]
    assert strict.findings[0].message == ('argument `quantity` of `create_order`: candidate sent string "30", the '
                                          'baseline sent integer 30, schema says integer (strict tier)')
    assert compare_tool_calls(native(ORDER), cand, tools=TOOLS, tier="lenient").passed


def test_schema_violation_without_a_baseline_difference_is_named() -> None:
    bad = ("create_order", {"sku": "A1", "quantity": "30"})
    res = compare_tool_calls(native(bad), native(bad), tools=TOOLS)
    assert res.passed  # not a regression: the baseline did the same
    assert res.findings[0].message == ('argument `quantity` of `create_order`: candidate sent string "30", schema '
                                       'says integer (strict tier) (the baseline too)')


def test_lenient_tier_integral_floats_and_defaults() -> None:
    b = native(ORDER)
    c = native(("create_order", {"sku": "A1", "quantity": 30.0, "express": False}))
    assert kinds(compare_tool_calls(b, c, tools=TOOLS)) == ["argument_extra", "argument_type"]
    assert compare_tool_calls(b, c, tools=TOOLS, tier="lenient").passed
    # numeric strings are *not* coerced where the schema wants a string (zip codes keep their zeros)
    assert normalize_arguments({"zip": "02134", "quantity": "7"}, TOOLS[0]["function"]["parameters"],
                               "lenient") == {"zip": "02134", "quantity": 7, "express": False}


def test_integral_float_for_a_number_parameter_is_not_a_strict_mismatch() -> None:
    # `price` is a JSON-Schema number: 5 and 5.0 are one JSON number (vLLM turns the XML text "5.0" into 5)
    b = native(("create_order", {"sku": "A1", "quantity": 30, "price": 5}))
    c = native(("create_order", {"sku": "A1", "quantity": 30, "price": 5.0}))
    res = compare_tool_calls(b, c, tools=TOOLS)
    assert res.passed and res.details["outcome"] == "match" and kinds(res) == []
    # an integer parameter keeps them apart in the strict tier (a strict int field refuses 30.0)
    assert kinds(compare_tool_calls(b, native(("create_order", {"sku": "A1", "quantity": 30.0, "price": 5})),
                                    tools=TOOLS)) == ["argument_type"]
    # nested: array items declared as numbers
    props = {"xs": {"type": "array", "items": {"type": "number"}},
             "n": {"anyOf": [{"type": "number"}, {"type": "null"}]}}
    tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": props}}}]
    pr = parse_tool_calls(None, render_native([{"name": "f", "arguments": {"xs": [1.0, 2.5], "n": 3.0}}]), tools)
    pr2 = parse_tool_calls(None, render_native([{"name": "f", "arguments": {"xs": [1, 2.5], "n": 3}}]), tools)
    assert compare_tool_calls(pr, pr2, tools=tools).passed
    assert normalize_arguments({"xs": [1.0], "n": 3.5}, tools[0]["function"]["parameters"]) == {"xs": [1], "n": 3.5}


def test_vllm_baseline_and_xml_text_candidate_do_not_differ_spuriously() -> None:
    tools = [{"type": "function", "function": {"name": "ship", "parameters": {"type": "object", "properties": {
        "weight": {"type": "number"}, "tags": {"type": "array"}, "fragile": {"type": "boolean"},
        "count": {"type": "integer"}}}}}]
    baseline = parse_tool_calls(None, render_native([{"name": "ship", "arguments": {
        "weight": 5, "tags": ["x", "y"], "fragile": True, "count": 1000}}]), tools)  # what vLLM handed its consumer
    text = ("<tool_call>\n<function=ship>\n<parameter=weight>\n5.0\n</parameter>\n<parameter=tags>\n['x','y']\n"
            "</parameter>\n<parameter=fragile>\nTrue\n</parameter>\n<parameter=count>\n1_000\n</parameter>\n"
            "</function>\n</tool_call>")
    res = compare_tool_calls(baseline, parse_tool_calls(text, None, tools), tools=tools)
    assert res.details["classes"]["semantic"] == []  # same calls; only the shape (native → text) differs
    assert res.details["classes"]["format"] == ["shape_changed"]


def test_double_encoded_arguments_are_a_named_finding_not_a_crash() -> None:
    twice = [{"id": "c1", "type": "function", "function": {"name": "get_weather",
                                                          "arguments": json.dumps(json.dumps({"city": "Paris"}))}}]
    res = compare_tool_calls(native(PARIS), parse_tool_calls(None, twice, TOOLS), tools=TOOLS)
    assert not res.passed and res.details["format_regressions"] == ["double_encoded_arguments"]
    assert res.details["classes"]["semantic"] == []  # the inner object is still compared: same call
    other = [{"function": {"name": "get_weather", "arguments": json.dumps(json.dumps({"city": "Rome"}))}}]
    res = compare_tool_calls(native(PARIS), parse_tool_calls(None, other, TOOLS), tools=TOOLS)
    assert "argument_value" in kinds(res) and "double_encoded_arguments" in res.details["format_regressions"]
    listed = [{"function": {"name": "get_weather", "arguments": json.dumps(json.dumps(["Paris"]))}}]
    res = compare_tool_calls(native(PARIS), parse_tool_calls(None, listed, TOOLS), tools=TOOLS)
    assert res.details["format_regressions"] == ["double_encoded_arguments"]


def test_a_mention_of_tool_call_in_reasoning_does_not_fail_a_case() -> None:
    think = "<think>The user wants weather; I should answer with a <tool_call> block.</think>"
    cand = parse_tool_calls(think, render_native([{"name": "get_weather", "arguments": {"city": "Paris"}}]), TOOLS,
                            finish_reason="tool_calls")
    assert cand.defects == ()
    assert compare_tool_calls(native(PARIS), cand, tools=TOOLS).passed
    # a complete call inside the reasoning is a warning (a reasoning parser hides it), not a failure
    hidden = think.replace("a <tool_call> block", '<tool_call>{"name": "get_weather", "arguments": {}}</tool_call>')
    cand = parse_tool_calls(hidden, render_native([{"name": "get_weather", "arguments": {"city": "Paris"}}]), TOOLS,
                            finish_reason="tool_calls")
    res = compare_tool_calls(native(PARIS), cand, tools=TOOLS)
    assert res.passed and res.details["classes"]["format"] == ["format_warning"]


def test_hermes_parameters_key_is_a_format_regression_for_vllm_consumers() -> None:
    text = parse_tool_calls('<tool_call>{"name": "get_weather", "parameters": {"city": "Paris"}}</tool_call>', None,
                            TOOLS, finish_reason="tool_calls")
    good = parse_tool_calls(render_hermes([{"name": "get_weather", "arguments": {"city": "Paris"}}]), None, TOOLS,
                            finish_reason="tool_calls")
    res = compare_tool_calls(good, text, tools=TOOLS)
    assert not res.passed and res.details["format_regressions"] == ["parameters_key"]


def test_value_change_is_precise() -> None:
    res = compare_tool_calls(native(PARIS), native(("get_weather", {"city": "paris"})), tools=TOOLS)
    assert res.findings[0].message == ('argument `city` of `get_weather`: candidate sent string "paris", the '
                                       'baseline sent string "Paris" (strict tier)')


def test_parallel_calls_are_matched_not_greedily() -> None:
    one, two = ("get_weather", {"city": "A"}), ("get_weather", {"city": "B"})
    assert compare_tool_calls(native(one, two), native(two, one), tools=TOOLS).passed
    ref = native(("create_order", {"sku": "X", "quantity": 1}), ("create_order", {"sku": "Y", "quantity": 2}))
    cand = native(("create_order", {"sku": "Y", "quantity": 9}), ("create_order", {"sku": "X", "quantity": 1}))
    res = compare_tool_calls(ref, cand, tools=TOOLS)
    assert kinds(res) == ["argument_value"] and res.findings[0].path == "create_order.quantity"
    assert res.findings[0].baseline == 2 and res.findings[0].candidate == 9


def test_relevance_both_ways() -> None:
    text = parse_tool_calls("I cannot check the weather.", None, TOOLS, finish_reason="stop")
    res = compare_tool_calls(native(PARIS), text, tools=TOOLS)
    assert kinds(res) == ["relevance", "finish_reason"]
    assert res.findings[0].message == ("candidate made no tool call; the baseline called `get_weather` — it "
                                       "answered in text: 'I cannot check the weather.'")
    back = compare_tool_calls(text, native(PARIS), tools=TOOLS)
    assert not back.passed and back.findings[0].message == ("candidate called `get_weather`; the baseline made "
                                                            "no tool call")
    assert compare_tool_calls(text, text, tools=TOOLS).passed


def test_count_missing_extra_and_name_mismatch() -> None:
    res = compare_tool_calls(native(ORDER, PARIS), native(PARIS), tools=TOOLS)
    assert kinds(res) == ["call_count", "missing_call"]
    res = compare_tool_calls(native(PARIS), native(PARIS, ORDER), tools=TOOLS)
    assert kinds(res) == ["call_count", "extra_call"]
    res = compare_tool_calls(native(PARIS), native(("get_forecast", {"city": "Paris"})), tools=TOOLS)
    assert kinds(res) == ["name_mismatch", "unknown_tool"]
    assert res.findings[0].message == "candidate called `get_forecast` where the baseline called `get_weather`"


def test_required_and_unknown_parameters() -> None:
    res = compare_tool_calls(native(ORDER), native(("create_order", {"sku": "A1", "qty": 30})), tools=TOOLS)
    assert set(kinds(res)) == {"argument_missing", "argument_extra", "unknown_parameter", "missing_required"}
    messages = {f.kind: f.message for f in res.findings}
    assert messages["missing_required"] == "`create_order`: candidate omitted required argument `quantity`"
    assert messages["unknown_parameter"] == ("argument `qty` of `create_order`: candidate sent it, but the tool's "
                                             "schema has no such parameter")


def test_format_regression_is_its_own_class() -> None:
    broken = parse_tool_calls('<tool_call>{"name": "get_weather", "arguments": {"city": "Paris"}</tool_call>',
                              None, TOOLS, finish_reason="tool_calls")
    res = compare_tool_calls(native(PARIS), broken, tools=TOOLS)
    assert not res.passed and res.details["outcome"] == "format_regression"
    assert res.details["format_regressions"] == ["invalid_json"]
    assert res.details["classes"]["format"] == ["format_regression"]
    assert "relevance" in res.details["classes"]["semantic"]
    assert res.findings[0].message.startswith("candidate's tool-call output no longer parses — invalid_json:")
    again = compare_tool_calls(broken, broken, tools=TOOLS)
    assert again.passed and "format_regression" not in kinds(again)  # the baseline was broken the same way


def test_shape_change_breaks_consumers_of_the_old_shape() -> None:
    text = parse_tool_calls(render_hermes([{"name": "get_weather", "arguments": {"city": "Paris"}}]), None, TOOLS,
                            finish_reason="tool_calls")
    res = compare_tool_calls(native(PARIS), text, tools=TOOLS)
    assert not res.passed and res.score == 1.0 and res.details["outcome"] == "format_regression"
    assert kinds(res) == ["shape_changed"] and "--tool-call-parser" in res.findings[0].message


def test_envelope_changes_are_reported_not_failed() -> None:
    res = compare_tool_calls(native(PARIS), native(PARIS, finish="stop", content="Checking now."), tools=TOOLS)
    assert res.passed and res.details["outcome"] == "envelope_change"
    assert kinds(res) == ["finish_reason", "content_appeared"]
    assert "finish_reason == 'tool_calls'" in res.findings[0].message
    gone = compare_tool_calls(native(PARIS, content="Checking now."), native(PARIS), tools=TOOLS)
    assert kinds(gone) == ["content_disappeared"]


def test_expected_calls_are_the_reference_when_given() -> None:
    expected = [{"name": "get_weather", "arguments": {"city": "Paris"}}]
    wrong_baseline = native(("get_weather", {"city": "London"}))
    res = compare_tool_calls(wrong_baseline, native(PARIS), tools=TOOLS, expected=expected)
    assert res.passed and res.details["reference"] == "expected calls"
    assert res.details["baseline_matches_expected"] is False
    miss = compare_tool_calls(native(PARIS), wrong_baseline, tools=TOOLS, expected=expected)
    assert "the expected calls sent string \"Paris\"" in miss.findings[0].message


# ------------------------------------------------------------------ properties
ARG_POOL = st.sampled_from([
    ("get_weather", {"city": "A"}), ("get_weather", {"city": "B"}), ("get_weather", {}),
    ("create_order", {"sku": "A", "quantity": 1}), ("create_order", {"sku": "A", "quantity": 1.0}),
    ("create_order", {"sku": "A", "quantity": "1"}), ("create_order", {"sku": "B", "quantity": 2}),
    ("create_order", {"sku": "A", "quantity": 1, "express": False}), ("nope", {"x": 1})])
CALLS = st.lists(ARG_POOL, max_size=5)
TIER = st.sampled_from(["strict", "lenient"])


@settings(max_examples=150, deadline=None)
@given(CALLS, TIER)
def test_comparison_is_reflexive(calls: list[tuple[str, dict[str, Any]]], tier: Any) -> None:
    pr = native(*calls)
    res = compare_tool_calls(pr, pr, tools=TOOLS, tier=tier)
    assert res.passed and res.score == 1.0 and res.details["outcome"] == "match"


@settings(max_examples=200, deadline=None)
@given(CALLS, CALLS, TIER)
def test_comparison_is_symmetric(a: list[Any], b: list[Any], tier: Any) -> None:
    ab = compare_tool_calls(native(*a), native(*b), tools=TOOLS, tier=tier)
    ba = compare_tool_calls(native(*b), native(*a), tools=TOOLS, tier=tier)
    assert ab.score == ba.score


@settings(max_examples=200, deadline=None)
@given(CALLS, CALLS, st.randoms(use_true_random=False), TIER)
def test_comparison_is_order_insensitive(a: list[Any], b: list[Any], rnd: Any, tier: Any) -> None:
    shuffled = list(b)
    rnd.shuffle(shuffled)
    one = compare_tool_calls(native(*a), native(*b), tools=TOOLS, tier=tier)
    two = compare_tool_calls(native(*a), native(*shuffled), tools=TOOLS, tier=tier)
    assert (one.score, one.passed, one.details["outcome"]) == (two.score, two.passed, two.details["outcome"])
    assert sorted(one.details["candidate_calls"]) == sorted(two.details["candidate_calls"])


@settings(max_examples=200, deadline=None)
@given(CALLS, CALLS)
def test_matching_maximises_exact_pairs(a: list[Any], b: list[Any]) -> None:
    ref = [ToolCall(n, args) for n, args in a]
    cand = [ToolCall(n, args) for n, args in b]
    pairs, lost, added = match_calls(ref, cand)
    exact = sum(1 for i, j in pairs if ref[i].canonical == cand[j].canonical)
    small, big = (ref, cand) if len(ref) <= len(cand) else (cand, ref)
    best = max((sum(1 for x, y in zip(small, perm, strict=False) if x.canonical == y.canonical)
                for perm in itertools.permutations(big, len(small))), default=0)
    assert exact == best
    assert len(pairs) + len(lost) == len(ref) and len(pairs) + len(added) == len(cand)


# ------------------------------------------------------------------ gate
def test_gate_names_format_regressions_and_mismatches() -> None:
    broken = parse_tool_calls("<tool_call>{oops</tool_call>", None, TOOLS, finish_reason="tool_calls")
    results = {f"ok-{i:02d}": compare_tool_calls(native(PARIS), native(PARIS), tools=TOOLS) for i in range(18)}
    results["weather-paris"] = compare_tool_calls(native(PARIS), broken, tools=TOOLS)
    results["order-3"] = compare_tool_calls(native(ORDER), native(("create_order", {"sku": "A1", "quantity": 3})),
                                            tools=TOOLS)
    gate = tool_call_gate("shop", results, {"min_match_rate": 0.98})
    # 18/20: even the upper end of its interval (0.97) is below 0.98, which the baseline (20/20) is not shown to miss
    assert gate.verdict == "regression" and gate.statistic == 0.9 and gate.n == 20
    assert gate.interval is not None and gate.interval[0] < 0.9 < gate.interval[1]
    assert gate.message == ("format regressions in 1/20 cases: weather-paris (invalid_json); "
                            "calls differ in 2/20 cases: order-3, weather-paris")
    assert tool_call_gate("shop", results, {"min_match_rate": 0.5}).verdict == "pass"
    assert gate.baseline == 1.0  # the baseline is the reference here: it matches itself


def test_a_format_regression_is_not_a_match() -> None:
    text = parse_tool_calls(render_hermes([{"name": "get_weather", "arguments": {"city": "Paris"}}]), None, TOOLS,
                            finish_reason="stop")
    gate = tool_call_gate("s", {"c1": compare_tool_calls(native(PARIS), text, tools=TOOLS)})
    # the calls themselves match, but a consumer reading native tool_calls finds none: not a match
    assert gate.verdict == "regression"
    assert gate.message.startswith("format regressions in 1/1 cases: c1 (shape_changed)")
    assert "envelope changes in 1/1 cases: c1 (finish_reason)" in gate.message


def test_gate_without_cases_is_insufficient() -> None:
    assert tool_call_gate("s", {}).verdict == "insufficient"


def test_check_result_is_json_serialisable() -> None:
    res = compare_tool_calls(native(ORDER), native(("create_order", {"sku": "A1", "quantity": "30"})), tools=TOOLS)
    json.dumps(res.to_dict())


def test_schema_violations_beyond_type_are_named_with_paths() -> None:
    tools = [{"type": "function", "function": {"name": "ship", "parameters": {
        "type": "object", "properties": {"size": {"enum": ["S", "M"]}, "addr": {
            "type": "object", "required": ["zip"], "properties": {"zip": {"type": "string"}}}}}}}]
    base = parse_tool_calls(None, render_native([{"name": "ship", "arguments": {"size": "S", "addr": {"zip": "1"}}}]),
                            tools)
    cand = parse_tool_calls(None, render_native([{"name": "ship", "arguments": {"size": "XL", "addr": {}}}]), tools)
    messages = {f.kind: f.message for f in compare_tool_calls(base, cand, tools=tools).findings}
    assert messages["schema_violation"] == "argument `size` of `ship` from candidate: 'XL' is not one of ['S', 'M']"
    assert messages["missing_required"] == "`ship`: candidate omitted required argument `addr.zip`"


def test_broken_tool_schema_is_reported_not_raised() -> None:
    tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "objekt"}}}]
    pr = parse_tool_calls('<tool_call>{"name": "f", "arguments": {}}</tool_call>', None, tools)
    res = compare_tool_calls(pr, pr, tools=tools)
    assert res.passed and kinds(res) == ["tool_schema_invalid"]
