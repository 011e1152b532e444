from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conformance.checks.extract import extract_json
from conformance.checks.result import CheckResult
from conformance.checks.schema import (
    check_schema,
    consumer_parser_gates,
    json_path,
    run_consumer_parser,
    schema_gates,
    structural_diff,
    validate,
)

FINANCE: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["period", "profit", "items"],
    "properties": {
        "period": {"type": "string", "format": "date"},
        "profit": {"type": "number"},
        "status": {"$ref": "#/$defs/status"},
        "currency": {"anyOf": [{"enum": ["CNY", "USD"]}, {"type": "null"}]},
        "items": {"type": "array", "items": {"type": "object", "required": ["amount"],
                                             "properties": {"amount": {"type": "number"}}}},
    },
    "$defs": {"status": {"enum": ["draft", "final"]}},
}
GOOD = {"period": "2024-09-30", "profit": 1200.5, "status": "final", "currency": "CNY",
        "items": [{"amount": 1}, {"amount": 2.5}]}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=6),
    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=4), c, max_size=3), max_leaves=10)


def test_valid_document_passes() -> None:
    res = validate(GOOD, FINANCE)
    assert res.passed and res.findings == () and res.score == 1.0


def test_every_error_is_reported_with_its_json_path() -> None:
    doc = {**GOOD, "period": "30/09/2024", "profit": "1,200.50",
           "items": [{"amount": 1}, {"amount": 2}, {"amount": "3"}, {}]}
    res = validate(doc, FINANCE)
    assert not res.passed
    paths = [f.path for f in res.findings]
    assert paths == ["$.items[2].amount", "$.items[3]", "$.period", "$.profit"]
    assert all(f.kind == "schema_error" and f.message.startswith(f"`{f.path}`") for f in res.findings)
    assert "is not a 'date'" in res.findings[2].message  # format checker is on
    assert res.explanation.startswith("4 schema errors")


def test_union_error_names_closest_branch() -> None:
    res = validate({**GOOD, "currency": "EUR"}, FINANCE)
    assert [f.path for f in res.findings] == ["$.currency"]
    assert "closest branch" in res.findings[0].message


def test_broken_schema_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="invalid JSON Schema"):
        validate({}, {"type": "objekt"})


@pytest.mark.parametrize(("segments", "path"), [
    ((), "$"), (("items", 2, "amount"), "$.items[2].amount"), (("first name",), '$["first name"]'),
    (("a\"b",), '$["a\\"b"]'), ((0, 1), "$[0][1]")])
def test_json_path(segments: tuple[Any, ...], path: str) -> None:
    assert json_path(segments) == path


def _kinds(b: Any, c: Any, schema: dict[str, Any] | None = None) -> list[tuple[str, str]]:
    return [(f.kind, f.path) for f in structural_diff(b, c, schema)]


def test_structural_diff_without_schema() -> None:
    b = {"profit": 1200.5, "region": "east", "items": [{"amount": 1}], "note": "x"}
    c = {"profit": "1200.5", "region": "east", "items": [{"amount": 1.0}, {"amount": 2}], "extra": True,
         "note": "y"}
    found = structural_diff(b, c)
    assert {(f.kind, f.path) for f in found} == {
        ("type_change", "$.profit"), ("array_length", "$.items"), ("extra_key", "$.extra"),
        ("value_change", "$.note")}
    tc = next(f for f in found if f.kind == "type_change")
    assert (tc.baseline, tc.candidate) == ("number", "string")
    assert "`$.profit` changed number → string" in tc.message


def test_int_and_float_are_the_same_json_number() -> None:
    assert structural_diff({"n": 3}, {"n": 3.0}) == []
    assert _kinds({"n": 3}, {"n": 3.5}) == [("value_change", "$.n")]
    assert _kinds({"n": True}, {"n": 1}) == [("type_change", "$.n")]


def test_missing_key_and_nested_paths() -> None:
    b = {"a": {"b": [{"c": 1, "d": 2}]}}
    c = {"a": {"b": [{"c": None}]}}
    assert _kinds(b, c) == [("missing_key", "$.a.b[0].d"), ("type_change", "$.a.b[0].c")]


def test_enum_values_use_the_schema_through_refs_and_unions() -> None:
    b = {**GOOD, "status": "final", "currency": "CNY", "period": "2024-09-30"}
    c = {**GOOD, "status": "draft", "currency": "USD", "period": "2024-10-31"}
    kinds = dict((p, k) for k, p in _kinds(b, c, FINANCE))
    assert kinds == {"$.status": "enum_value", "$.currency": "enum_value", "$.period": "value_change"}
    assert dict((p, k) for k, p in _kinds(b, c)) == {
        "$.status": "value_change", "$.currency": "value_change", "$.period": "value_change"}


@settings(max_examples=150, deadline=None)
@given(json_values)
def test_diff_is_empty_for_identical_values(value: Any) -> None:
    assert structural_diff(value, json.loads(json.dumps(value))) == []


@settings(max_examples=150, deadline=None)
@given(json_values, json_values)
def test_diff_mirrors_when_sides_swap(b: Any, c: Any) -> None:
    swap = {"missing_key": "extra_key", "extra_key": "missing_key"}
    forward = sorted((swap.get(f.kind, f.kind), f.path) for f in structural_diff(b, c))
    backward = sorted((f.kind, f.path) for f in structural_diff(c, b))
    assert forward == backward


def test_check_schema_passes_with_non_breaking_findings() -> None:
    res = check_schema(extract_json(json.dumps(GOOD)), extract_json(json.dumps({**GOOD, "status": "draft"})),
                       FINANCE)
    assert res.passed and [f.kind for f in res.findings] == ["enum_value"]
    assert res.details["invalid"] is False


def test_check_schema_fails_on_type_change_and_invalid() -> None:
    res = check_schema(extract_json(json.dumps(GOOD)), extract_json(json.dumps({**GOOD, "profit": "1200.5"})),
                       FINANCE)
    assert not res.passed and res.details["invalid"] is True
    assert {f.kind for f in res.findings} == {"schema_error", "type_change"}
    assert "changed number → string" in res.explanation


def test_check_schema_reports_envelope_and_unparseable() -> None:
    res = check_schema(extract_json('{"a": 1}'), extract_json('<think>hm</think>{"a": 1'))
    assert not res.passed
    assert [f.kind for f in res.findings] == ["think_appeared", "unparseable"]
    assert res.details["candidate"]["steps"] == ["think_stripped"]


def test_check_schema_when_baseline_did_not_parse() -> None:
    res = check_schema(extract_json("not json"), extract_json('{"a": 1}'))
    assert res.passed and [f.kind for f in res.findings] == ["baseline_unparseable"]


def test_check_schema_custom_fail_on() -> None:
    b, c = extract_json('{"a": 1}'), extract_json('{"a": 1, "b": 2}')
    assert check_schema(b, c).passed
    assert not check_schema(b, c, fail_on=frozenset({"extra_key"})).passed


def _case(profit: Any) -> CheckResult:
    return check_schema(extract_json(json.dumps(GOOD)), extract_json(json.dumps({**GOOD, "profit": profit})),
                        FINANCE)


def test_gates_name_fields_and_cases() -> None:
    results = {"q3-summary": _case("1200.5"), "q2-summary": _case("9"), "q1-summary": _case(7), "m-01": _case(8.0)}
    invalid, types = schema_gates("finance_summary", results)
    assert invalid.verdict == "regression" and invalid.statistic == 0.5 and invalid.n == 4
    assert invalid.interval is not None and invalid.interval[0] < 0.5 < invalid.interval[1]
    assert invalid.baseline == 0.0  # the baseline's own answers were valid
    assert invalid.message.startswith("2/4 cases invalid (baseline 0/4): q2-summary (")
    assert types.verdict == "regression" and types.statistic == 0.5
    assert types.message == "field `profit` changed number → string in 2/4 cases: q2-summary, q3-summary"


def test_gates_group_array_indices() -> None:
    b = {"items": [{"amount": 1}, {"amount": 2}]}
    c = {"items": [{"amount": "1"}, {"amount": "2"}]}
    res = check_schema(extract_json(json.dumps(b)), extract_json(json.dumps(c)))
    _, types = schema_gates("s", {"case-1": res})
    assert types.message == "field `items[*].amount` changed number → string in 1/1 cases: case-1"
    assert types.statistic == 1.0  # the share of cases with a changed type


def test_gates_pass_and_threshold() -> None:
    results = {f"c{i}": _case(float(i)) for i in range(19)} | {"bad": _case("x")}
    invalid, types = schema_gates("s", results, {"max_invalid_rate": 0.1})
    # 1/20 invalid against a 10% limit: the interval (0.009–0.236) cannot show ≤ 10%, nor > 10%
    assert invalid.verdict == "insufficient" and invalid.statistic == pytest.approx(0.05)
    assert types.verdict == "regression"
    clean = schema_gates("s", {f"c{i}": _case(float(i)) for i in range(5)})
    assert [g.verdict for g in clean] == ["pass", "pass"] and clean[1].message == ""
    assert [g.verdict for g in schema_gates("s", {})] == ["insufficient", "insufficient"]


def _strict_parser(text: str) -> dict[str, Any]:
    data = json.loads(text)
    return {"profit": float(data["profit"])}


def test_consumer_parser_raising_on_candidate() -> None:
    res = run_consumer_parser(_strict_parser, '{"profit": 1}', '```json\n{"profit": 1}\n```')
    assert not res.passed
    (f,) = res.findings
    assert f.kind == "parser_error" and "JSONDecodeError" in f.message and "baseline's output parsed fine" in f.message
    assert "test_schema:_strict_parser" in f.message


def test_consumer_parser_output_change_and_equal() -> None:
    assert run_consumer_parser(_strict_parser, '{"profit": 1}', '{"profit": 1.0, "x": 2}').passed
    res = run_consumer_parser(_strict_parser, '{"profit": 1}', '{"profit": "2"}', name="finance-etl")
    assert not res.passed and res.findings[0].kind == "parser_output_change"
    assert res.findings[0].message.startswith("consumer parser `finance-etl` returns {'profit': 2.0}")


def test_consumer_parser_baseline_failure_is_not_blamed_on_candidate() -> None:
    res = run_consumer_parser(_strict_parser, "garbage", '{"profit": 3}')
    assert res.passed and res.findings[0].kind == "baseline_parser_error"
    both = run_consumer_parser(_strict_parser, "garbage", "garbage")
    assert not both.passed and "raised on the baseline's too" in both.findings[0].message


class _NoBool:
    def __eq__(self, other: object) -> bool:
        raise ValueError("truth value is ambiguous")

    def __repr__(self) -> str:
        return "NoBool()"


def test_consumer_parser_with_uncomparable_results() -> None:
    assert run_consumer_parser(lambda _t: _NoBool(), "a", "b").passed


def test_a_json_suite_both_endpoints_fail_alike_is_baseline_fails_not_a_regression() -> None:
    """Finding 1 of the verdict-trust issue: finance_summary failed its invalid-rate gate 17/17 against an
    identical candidate, because the baseline's answers miss the golden's schema too."""
    bad = extract_json('{"summary": "no fields the schema wants"}')
    results = {f"m-{i:02d}": check_schema(bad, bad, FINANCE) for i in range(17)}
    invalid, types = schema_gates("finance_summary", results)
    assert invalid.statistic == 1.0 and invalid.baseline == 1.0 and invalid.verdict == "baseline_fails"
    assert types.verdict == "pass"
    assert all(r.passed and r.details["shared_expectation_failures"] for r in results.values())


def test_consumer_parser_gate_counts_breakage_next_to_the_baseline() -> None:
    ok = {f"c{i}": run_consumer_parser(_strict_parser, '{"profit": 1}', '{"profit": 1}') for i in range(4)}
    assert consumer_parser_gates("s", ok)[0].verdict == "pass"
    broken = {**ok, "c9": run_consumer_parser(_strict_parser, '{"profit": 1}', "garbage")}
    (g,) = consumer_parser_gates("s", broken)
    assert g.verdict == "regression" and "c9" in g.message


def test_invalid_output_the_baseline_shares_is_not_a_regression() -> None:
    schema = {"type": "object", "required": ["profit"], "properties": {"profit": {"type": "number"}}}
    garbage, valid = extract_json("sure! here it is"), extract_json('{"profit": 1.5}')
    shared = check_schema(garbage, extract_json("no json either"), schema)
    assert shared.passed and shared.details["shared_expectation_failures"] == 1
    assert [f.kind for f in shared.findings if f.kind.startswith("unparseable")] == ["unparseable_shared"]
    assert shared.details["invalid"]  # the invalid-rate gate still counts it
    broke = check_schema(valid, extract_json("no json"), schema)
    assert not broke.passed and broke.details["shared_expectation_failures"] == 0
    both_wrong_schema = check_schema(extract_json('{"p": 1}'), extract_json('{"p": 2}'), schema)
    assert both_wrong_schema.passed and any(f.kind == "schema_error_shared" for f in both_wrong_schema.findings)
    think = check_schema(garbage, extract_json("<think>x</think>no json"), schema)
    assert not think.passed  # a new <think> block is a regression even when the JSON was already broken
