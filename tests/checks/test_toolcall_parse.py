from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conformance.checks.toolcall_parse import (
    FATAL,
    FORMATS,
    Format,
    ParseResult,
    ToolCallStream,
    coerce_text,
    convert_xml_value,
    expected_calls,
    parse_tool_calls,
    render_hermes,
    render_native,
    render_xml,
)

ORDER_TOOLS: list[dict[str, Any]] = [
    {"type": "function", "function": {"name": "create_order", "parameters": {
        "type": "object", "required": ["sku", "quantity"],
        "properties": {"sku": {"type": "string"}, "quantity": {"type": "integer"},
                       "price": {"type": "number"}, "gift": {"type": "boolean"},
                       "note": {"type": "string", "nullable": True},
                       "lines": {"type": "array", "items": {"type": "object"}},
                       "meta": {"type": "object"},
                       "when": {"anyOf": [{"type": "integer"}, {"type": "string"}]},
                       "size": {"$ref": "#/$defs/size"}},
        "$defs": {"size": {"enum": ["S", "M", "L"]}}}}},
    {"type": "function", "function": {"name": "get_weather", "parameters": {
        "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}},
]


def names(res: ParseResult) -> list[str]:
    return [d.name for d in res.defects]


def canon(res: ParseResult) -> list[tuple[str, str]]:
    return [(c.name, json.dumps(c.arguments, sort_keys=True)) for c in res.calls]


# ------------------------------------------------------------------ the three shapes
def test_native_calls() -> None:
    native = [{"id": "call_9", "type": "function",
               "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}]
    res = parse_tool_calls(None, native, ORDER_TOOLS, finish_reason="tool_calls")
    assert res.ok and res.defects == () and res.finish_reason == "tool_calls"
    (call,) = res.calls
    assert (call.name, call.arguments, call.source, call.id) == ("get_weather", {"city": "Paris"}, "native", "call_9")
    assert call.canonical == '{"arguments":{"city":"Paris"},"name":"get_weather"}'


def test_hermes_many_calls_with_text_around_and_unclosed_final_tag() -> None:
    text = ('I will check both.\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>'
            '\nand\n<tool_call>{"name": "get_weather", "arguments": {"city": "北京"}}')
    res = parse_tool_calls(text, None, ORDER_TOOLS)
    assert [c.arguments["city"] for c in res.calls] == ["Paris", "北京"]
    assert {c.source for c in res.calls} == {"hermes"}
    assert names(res) == ["unclosed_tag"] and res.ok  # recovered, as vLLM's hermes parser does
    assert res.content == "I will check both."  # vLLM's content: the text before the first <tool_call>


def test_qwen3_coder_xml_values_converted_as_vllm_does() -> None:
    text = ("<tool_call>\n<function=create_order>\n"
            "<parameter=sku>\n007\n</parameter>\n<parameter=quantity>\n30\n</parameter>\n"
            "<parameter=price>\n12.50\n</parameter>\n<parameter=gift>\nTrue\n</parameter>\n"
            "<parameter=note>\nnull\n</parameter>\n<parameter=lines>\n[{\"a\": 1}]\n</parameter>\n"
            "<parameter=meta>\n{\"k\": [1, 2]}\n</parameter>\n<parameter=when>\n2024\n</parameter>\n"
            "<parameter=size>\nM\n</parameter>\n</function>\n</tool_call>")
    res = parse_tool_calls(text, None, ORDER_TOOLS)
    assert res.ok and res.defects == ()
    # vLLM knows no `nullable` (a string keeps "null"), reads anyOf by its first type and a $ref as a string
    assert res.calls[0].arguments == {"sku": "007", "quantity": 30, "price": 12.5, "gift": True, "note": "null",
                                      "lines": [{"a": 1}], "meta": {"k": [1, 2]}, "when": 2024, "size": "M"}
    assert res.calls[0].source == "xml"


def test_xml_without_schema_keeps_text_and_tolerates_missing_closers() -> None:
    text = "<tool_call><function=anything><parameter=a>1\n<parameter=b>\ntwo\n</function>"
    res = parse_tool_calls(text, None, None)
    assert res.calls[0].arguments == {"a": "1", "b": "two"}
    assert names(res).count("unclosed_tag") == 3  # </parameter> after a and b, </tool_call>


def test_xml_parameter_not_at_a_line_start_is_text_as_in_vllm() -> None:
    # vLLM's qwen3_coder parser takes <parameter= as structure only at a line start (or first in the body)
    text = "<tool_call><function=f><parameter=a>1</parameter><parameter=b>2</parameter></function></tool_call>"
    assert parse_tool_calls(text, None, None).calls[0].arguments == {"a": "1"}
    assert parse_tool_calls(text.replace("><parameter=b", ">\n<parameter=b"), None, None).calls[0].arguments == {
        "a": "1", "b": "2"}


@pytest.mark.parametrize(("text", "schema", "value", "fits"), [
    ("42", {"type": "integer"}, 42, True), ("-3.5e2", {"type": "number"}, -350.0, True),
    ("7", {"type": "number"}, 7, True), ("abc", {"type": "integer"}, "abc", False),
    ("false", {"type": "boolean"}, False, True), ("None", {"type": ["integer", "null"]}, None, True),
    ("30", {"oneOf": [{"type": "string"}, {"type": "integer"}]}, 30, True),
    ("x", {"oneOf": [{"type": "string"}, {"type": "integer"}]}, "x", True),
    ("[1,", {"type": "array"}, "[1,", False), (" spaced ", {"type": "string"}, " spaced ", True),
    ("2", None, "2", True), ("2", {"enum": [1, 2]}, 2, True)])
def test_coerce_text(text: str, schema: dict[str, Any] | None, value: Any, fits: bool) -> None:
    got, ok = coerce_text(text, schema)
    assert (got, ok) == (value, fits) and type(got) is type(value)


# ------------------------------------------------------------------ defects
@pytest.mark.parametrize(("text", "native", "defect"), [
    ('<tool_call>{"name": "get_weather", "arguments": {"city": "Paris"</tool_call>', None, "invalid_json"),
    ('<tool_call>{"name": "create_order", "arguments": {"sku": "a", "quantity": NaN}}</tool_call>', None, "nan"),
    ("<tool_call>\n<function=create_order>\n<parameter=price>\nInfinity\n</parameter>\n</function>\n</tool_call>",
     None, "unconvertible_value"),
    ("<tool_call>\n<function=create_order>\n<parameter=lines>\n{1, 2}\n</parameter>\n</function>\n</tool_call>",
     None, "unconvertible_value"),
    ('<tool_call>{"name": "get_weather", "parameters": {"city": "A"}}</tool_call>', None, "parameters_key"),
    ('<tool_call>{"name": "get_weather"}</tool_call>', None, "missing_arguments"),
    ('<tool_call>[{"name": "get_weather", "arguments": {"city": "A"}}]</tool_call>', None, "call_list"),
    ('<tool_call>{"name": "get_weather", "arguments": null}</tool_call>', None, "arguments_not_object"),
    ('<tool_call>{"name": "get_weather", "arguments": "Paris"}</tool_call>', None, "arguments_not_object"),
    (None, [{"function": {"name": "get_weather", "arguments": json.dumps(json.dumps({"city": "Paris"}))}}],
     "double_encoded_arguments"),
    (None, [{"function": {"name": "get_weather", "arguments": {"city": "Paris"}}}], "arguments_not_string"),
    (None, [{"function": {"arguments": "{}"}}], "missing_name"),
    (None, ["not a call"], "invalid_call"),
    ('<tool_call>{"arguments": {}}</tool_call>', None, "missing_name"),
    ('<tool_call>{"name": "get_weather", "arguments": [1]}</tool_call>', None, "arguments_not_object"),
    ("<tool_call>   </tool_call>", None, "empty_call"),
    ("<tool_call><parameter=x>1</parameter></tool_call>", None, "invalid_xml"),
])
def test_fatal_defects(text: str | None, native: list[Any] | None, defect: str) -> None:
    res = parse_tool_calls(text, native, ORDER_TOOLS)
    assert defect in names(res) and defect in FATAL and not res.ok


@pytest.mark.parametrize(("text", "native", "defect"), [
    ('<tool_call>{"name": "get_weather", "arguments": {"city": "A", "city": "B"}}</tool_call>', None,
     "duplicate_keys"),
    ('<tool_call>{"name": "get_weather", "arguments": "{\\"city\\": \\"Paris\\"}"}</tool_call>', None,
     "serialized_arguments"),
    ('<tool_call>{"name": "get_time", "arguments": {}}</tool_call>', None, "unknown_tool"),
    ('<tool_call>{"name": "get_weather", "arguments": {"city": "A", "unit": "C"}}</tool_call>', None,
     "unknown_parameter"),
    ('<tool_call>{"name": "get_weather", "arguments": {}}</tool_call>', None, "missing_required"),
    ("<tool_call>\n<function=create_order>\n<parameter=sku>\na\n</parameter>\n<parameter=quantity>\nlots\n"
     "</parameter>\n</function>\n</tool_call>", None, "coercion_failed"),
    ("<tool_call>\n<function=create_order>\n<parameter=gift>\nyes\n</parameter>\n</function>\n</tool_call>", None,
     "coercion_failed"),
    ("<function=get_weather>\n<parameter=city>\nA\n</parameter>\n</function>", None, "unwrapped_call"),
    ("<tool_call>\n<function=get_weather>\n<parameter=city>\nA\n</parameter>\n</function>\n</tool_call>\nthen\n"
     "<tool_call>\n<function=get_weather>\n<parameter=city>\nB\n</parameter>\n</function>\n</tool_call>", None,
     "hidden_call"),
    ('<think>I could use <tool_call>{"name": "get_weather", "arguments": {"city": "A"}}</tool_call></think>'
     '<tool_call>{"name": "get_weather", "arguments": {"city": "B"}}</tool_call>', None, "call_inside_think"),
    ('<tool_call>{"name": "get_weather", "arguments": {"city": "A"}}</tool_call>',
     [{"function": {"name": "get_weather", "arguments": '{"city": "B"}'}}], "mixed_formats"),
    (None, [{"function": {"name": "get_weather", "arguments": ""}}], "empty_arguments"),
])
def test_recoverable_defects(text: str | None, native: list[Any] | None, defect: str) -> None:
    res = parse_tool_calls(text, native, ORDER_TOOLS)
    assert defect in names(res) and defect not in FATAL
    assert res.calls, "a warning must not lose the call"


def test_duplicate_keys_last_wins_like_json_parse() -> None:
    res = parse_tool_calls('<tool_call>{"name": "get_weather", "arguments": {"city": "A", "city": "B"}}'
                           "</tool_call>", None, None)
    assert res.calls[0].arguments == {"city": "B"}


def test_orphan_closing_think_hides_reasoning_from_content_only() -> None:
    text = 'reasoning text</think>\n<tool_call>{"name": "get_weather", "arguments": {"city": "A"}}</tool_call>'
    res = parse_tool_calls(text, None, ORDER_TOOLS)
    assert res.content == "" and len(res.calls) == 1 and res.ok


def test_no_tools_means_no_schema_defects() -> None:
    res = parse_tool_calls('<tool_call>{"name": "whatever", "arguments": {}}</tool_call>', None, None)
    assert res.defects == ()


def test_expected_calls_accept_mappings_and_json_strings() -> None:
    res = expected_calls([{"name": "get_weather", "arguments": {"city": "Paris"}},
                          {"name": "get_weather", "arguments": '{"city": "Rome"}'}], ORDER_TOOLS)
    assert [c.arguments["city"] for c in res.calls] == ["Paris", "Rome"] and res.defects == ()
    assert {c.source for c in res.calls} == {"expected"}


# ------------------------------------------------------------------ properties
TAGS = ("<tool_call>", "</tool_call>", "<function=", "</function>", "<parameter=", "</parameter>", "<think>",
        "</think>")
NAMES = st.from_regex(r"[a-z][a-z0-9_]{0,7}", fullmatch=True)
SAFE_TEXT = st.text(max_size=12).filter(lambda s: not any(t in s for t in TAGS))
SCALAR = st.integers() | SAFE_TEXT | st.booleans()
KINDS: dict[str, tuple[dict[str, Any], st.SearchStrategy[Any]]] = {
    "string": ({"type": "string"}, SAFE_TEXT),
    "integer": ({"type": "integer"}, st.integers()),
    "number": ({"type": "number"}, st.floats(allow_nan=False, allow_infinity=False)),
    "boolean": ({"type": "boolean"}, st.booleans()),
    "nullable": ({"type": ["string", "null"]}, st.none()),
    "array": ({"type": "array"}, st.lists(SCALAR, max_size=3)),
    "object": ({"type": "object"}, st.dictionaries(NAMES, SCALAR, max_size=3)),
}


@st.composite
def tools_and_calls(draw: st.DrawFn, max_calls: int = 4) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """A tools array and calls whose arguments conform to it (so every shape can carry them exactly)."""
    spec = draw(st.dictionaries(NAMES, st.dictionaries(NAMES, st.sampled_from(sorted(KINDS)), max_size=4),
                                min_size=1, max_size=3))
    calls = []
    for _ in range(draw(st.integers(0, max_calls))):
        name = draw(st.sampled_from(sorted(spec)))
        keys = draw(st.lists(st.sampled_from(sorted(spec[name])), unique=True)) if spec[name] else []
        calls.append({"name": name, "arguments": {k: draw(KINDS[spec[name][k]][1]) for k in keys}})
    tools = [{"type": "function", "function": {"name": n, "parameters": {
        "type": "object", "properties": {k: KINDS[v][0] for k, v in ps.items()}}}} for n, ps in spec.items()]
    return tools, calls


def _expected(calls: list[dict[str, Any]], xml: bool = False) -> list[tuple[str, str]]:
    """The calls as parsed back; from XML a ``number`` parameter with no fraction is an integer, as in vLLM."""
    def param(v: Any) -> Any:
        return int(v) if xml and isinstance(v, float) and v.is_integer() else v
    return [(c["name"], json.dumps({k: param(v) for k, v in c["arguments"].items()}, sort_keys=True)) for c in calls]


@settings(max_examples=150, deadline=None)
@given(tools_and_calls(), st.sampled_from(["native", "hermes", "xml"]))
def test_render_parse_round_trip(tc: tuple[list[dict[str, Any]], list[dict[str, Any]]], shape: str) -> None:
    tools, calls = tc
    if shape == "native":
        res = parse_tool_calls(None, render_native(calls), tools)
    else:
        res = parse_tool_calls((render_hermes if shape == "hermes" else render_xml)(calls), None, tools)
    assert canon(res) == _expected(calls, xml=shape == "xml")
    assert res.ok and not [d for d in res.defects if d.name != "empty_arguments"]
    assert {c.source for c in res.calls} <= {shape}


FRAGMENTS = st.sampled_from([*TAGS, ">", "{", "}", '"name"', ":", '"arguments"', '"x"', "NaN", "[", "]", ",",
                             "\n", "<function=f>", "<parameter=p>", "null", "1"])
TAG_SOUP = st.lists(FRAGMENTS | st.text(max_size=4), max_size=30).map("".join)
JSONISH = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
                       lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=9), c, max_size=3),
                       max_leaves=8)
NATIVE = st.lists(JSONISH | st.fixed_dictionaries({"function": st.fixed_dictionaries(
    {}, optional={"name": JSONISH | NAMES, "arguments": JSONISH | TAG_SOUP})}), max_size=3)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200) | TAG_SOUP, st.none() | NATIVE, st.none() | st.just(ORDER_TOOLS), st.sampled_from(FORMATS))
def test_parser_never_raises(text: str, native: list[Any] | None, tools: list[dict[str, Any]] | None,
                             fmt: Format) -> None:
    res = parse_tool_calls(text, native, tools, format=fmt)
    assert isinstance(res, ParseResult)
    assert "parser_error" not in names(res)  # the last-resort guard is never needed
    for call in res.calls:
        assert isinstance(call.name, str) and call.name
        assert isinstance(call.canonical, str)


def _split(text: str, cuts: list[int]) -> list[str]:
    points = sorted({min(c, len(text)) for c in cuts})
    return [text[a:b] for a, b in zip([0, *points], [*points, len(text)], strict=True)]


def _stream(text: str, cuts: list[int], tools: list[dict[str, Any]] | None) -> tuple[list[Any], ParseResult]:
    stream = ToolCallStream(tools)
    emitted = [c for chunk in _split(text, cuts) for c in stream.feed(chunk)]
    return emitted, stream.finish(finish_reason="stop")


@settings(max_examples=150, deadline=None)
@given(tools_and_calls(), st.booleans(), SAFE_TEXT, st.lists(st.integers(0, 400), max_size=12))
def test_streaming_chunk_boundaries_do_not_matter(tc: tuple[list[dict[str, Any]], list[dict[str, Any]]],
                                                  xml: bool, prose: str, cuts: list[int]) -> None:
    tools, calls = tc
    text = prose + (render_xml if xml else render_hermes)(calls)
    emitted, final = _stream(text, cuts, tools)
    assert final == parse_tool_calls(text, None, tools, finish_reason="stop")
    assert [c.canonical for c in emitted] == [c.canonical for c in final.calls]  # every block was closed
    assert canon(final) == _expected(calls, xml=xml)


@settings(max_examples=300, deadline=None)
@given(TAG_SOUP, st.lists(st.integers(0, 120), max_size=10))
def test_streamed_calls_are_a_prefix_of_the_final_calls(text: str, cuts: list[int]) -> None:
    emitted, final = _stream(text, cuts, None)
    assert final == parse_tool_calls(text, None, None, finish_reason="stop")
    assert [c.canonical for c in emitted] == [c.canonical for c in final.calls[: len(emitted)]]


def test_stream_emits_a_call_as_soon_as_its_block_closes() -> None:
    stream = ToolCallStream(ORDER_TOOLS)
    assert stream.feed('<think>plan <tool_call>{"name": "get_weather"') == []
    assert stream.feed(', "arguments": {"city": "X"}}</tool_call></think>\n<tool_call>{"name": "get_') == []
    assert stream.feed('weather", "arguments": {"city": "Paris"}}</tool_') == []
    (call,) = stream.feed("call>")
    assert call.arguments == {"city": "Paris"}
    assert stream.feed(" done") == []
    final = stream.finish()
    assert len(final.calls) == 1 and "call_inside_think" in names(final)


PROPS = st.sampled_from([{"type": t} for t in ("string", "integer", "number", "boolean", "object", "array", "float",
                                                "null", "dict[str, int]", "anything")]
                        + [{"type": ["integer", "null"]}, {"anyOf": [{"type": "array"}, {"type": "null"}]}, {}, None])
LITERALISH = st.lists(st.sampled_from(["[", "]", "{", "}", "'", '"', ",", ":", "1", "1_0", ".5", "e9", "inf", "nan",
                                       "None", "True", "null", "(", ")", "...", "b'", "j", "-", " ", "\n"]),
                      max_size=20).map("".join)


@settings(max_examples=400, deadline=None)
@given(st.text(max_size=40) | LITERALISH, PROPS, st.booleans())
def test_xml_value_conversion_never_raises_and_stays_json(text: str, prop: Any, declared: bool) -> None:
    conv = convert_xml_value(text, prop, declared)
    if conv.breaks_vllm:
        assert conv.value == text and conv.note
    else:
        json.dumps(conv.value)  # a consumer can receive it (NaN aside, which the parser names separately)
    if not declared or (isinstance(prop, dict) and prop.get("type") == "string"):
        assert conv.value == text


def test_xml_values_are_python_literals_never_code() -> None:
    prop = {"type": "object"}
    assert convert_xml_value("__import__('os').getcwd()", prop, True).value == "__import__('os').getcwd()"
    assert convert_xml_value("{'a': (1, 2)}", prop, True).value == {"a": [1, 2]}



def test_xml_built_to_make_the_structure_rules_quadratic_is_given_up_on(monkeypatch: pytest.MonkeyPatch) -> None:
    from conformance.checks import toolcall_xml

    # n structural opens and one close: each parameter's end is searched across all later ones (n² steps in vLLM)
    text = "<tool_call>\n<function=f>\n<parameter=b>\n" + "\n<parameter=a>x" * 300 + "</parameter>x</function>"
    assert parse_tool_calls(text, None, None).calls  # within the bound: read
    monkeypatch.setattr(toolcall_xml, "MAX_STEPS", 10_000)
    res = parse_tool_calls(text, None, None)
    assert res.calls == () and names(res) == ["too_complex"] and not res.ok
    assert parse_tool_calls(render_xml([{"name": "f", "arguments": {"a": 1}}] * 50), None, None).ok  # linear: fine
