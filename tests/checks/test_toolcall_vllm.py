"""vLLM's own tool-parser test vectors, run through the harness's parser (issue #14).

The fixtures (``fixtures/vllm_qwen3coder.yaml``, ``fixtures/vllm_hermes.yaml``) transcribe what vLLM's tests
assert, with the repository, paths and commits in their headers. Every vector must agree with vLLM — the same
calls a vLLM consumer receives, in the same order — through the explicit format *and* through ``auto`` (what the
replay uses), non-streaming and streamed. Where the harness differs on purpose the vector is listed in
:data:`DIVERGENCES` under the name ``docs/TOOLCALLS.md`` gives it, and the test asserts the documented behaviour
instead (never an xfail).

Agreement, from a consumer's side: vLLM returning no calls (``tools_called`` false) corresponds to a result with no
usable call — no calls, or a fatal defect (vLLM drops *every* call of an answer its parser raised on).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from conformance.checks.toolcall_parse import FORMATS, Format, ParseResult, ToolCallStream, parse_tool_calls

FIXTURES = Path(__file__).parent / "fixtures"
QWEN: dict[str, Any] = yaml.safe_load((FIXTURES / "vllm_qwen3coder.yaml").read_text(encoding="utf-8"))
HERMES: dict[str, Any] = yaml.safe_load((FIXTURES / "vllm_hermes.yaml").read_text(encoding="utf-8"))

#: (fixture, vector id) → the named divergence of docs/TOOLCALLS.md.
DIVERGENCES: dict[tuple[str, str], str] = {
    ("hermes", "bare_string_arguments"): "D1 non-object arguments",
    ("hermes", "string_arguments[hello]"): "D1 non-object arguments",
    ("hermes", "string_arguments[{hello world}]"): "D1 non-object arguments",
    ("hermes", "string_arguments[[oops]"): "D1 non-object arguments",
    ("hermes", 'string_arguments[{"a": 1} tail text]'): "D1 non-object arguments",
}


def _cases(doc: dict[str, Any], name: str, fmt: Format) -> list[Any]:
    return [pytest.param(name, fmt, v, id=f"{name}:{v['id']}") for v in doc["vectors"]]


def _tools(doc: dict[str, Any], vector: Mapping[str, Any]) -> list[dict[str, Any]] | None:
    return doc["tools"][vector["tools"]] if "tools" in vector else None


def mismatches(vector: Mapping[str, Any], res: ParseResult) -> list[str]:
    """How ``res`` differs from what vLLM returns for ``vector`` ([] = agreement)."""
    expect = vector["expect"]
    out = []
    usable = list(res.calls) if res.ok else []
    if "parser_error" in {d.name for d in res.defects}:
        out.append("the parser crashed")
    if "calls" in expect:
        want = expect["calls"]
        if [c.name for c in usable] != [w["name"] for w in want]:
            out.append(f"calls {[c.name for c in usable]} (defects {[d.name for d in res.defects]}), vLLM "
                       f"{[w['name'] for w in want]}")
        else:
            for got, w in zip(usable, want, strict=True):
                if "arguments" in w and got.arguments != w["arguments"]:
                    out.append(f"`{got.name}` arguments {got.arguments!r}, vLLM {w['arguments']!r}")
                elif "arguments" in w and isinstance(w["arguments"], dict) and any(
                        type(got.arguments[k]) is not type(v) for k, v in w["arguments"].items()):
                    out.append(f"`{got.name}` argument types {got.arguments!r}, vLLM {w['arguments']!r}")
                elif expect.get("keys_in_order") and list(got.arguments) != list(w["arguments"]):
                    out.append(f"`{got.name}` keys {list(got.arguments)}, vLLM {list(w['arguments'])}")
    if "content" in expect and res.content.strip() != (expect["content"] or "").strip():
        out.append(f"content {res.content!r}, vLLM {expect['content']!r}")
    out += [f"content lacks {s!r}" for s in expect.get("content_contains", ()) if s not in res.content]
    return out


def run(doc: dict[str, Any], vector: Mapping[str, Any], fmt: Format) -> tuple[ParseResult, list[str]]:
    """Parse one vector (streamed in its chunks when it has them); the result and what differs from vLLM."""
    tools = _tools(doc, vector)
    if "chunks" not in vector:
        res = parse_tool_calls(vector["output"], None, tools, format=fmt)
        return res, mismatches(vector, res)
    stream = ToolCallStream(tools, format=fmt)
    emitted = [c for chunk in vector["chunks"] for c in stream.feed(chunk)]
    res = stream.finish()
    problems = mismatches(vector, res)
    if emitted != list(res.calls[:len(emitted)]):
        problems.append(f"streamed {emitted}, final {res.calls}")
    if "<tool_call>" in "".join(vector["chunks"]) and res.ok and len(emitted) != len(res.calls):
        problems.append(f"only {len(emitted)} of {len(res.calls)} complete calls were streamed before the end")
    return res, problems


@pytest.mark.parametrize(("name", "fmt", "vector"), _cases(QWEN, "qwen3coder", "qwen3_xml") + _cases(
    QWEN, "qwen3coder", "auto") + _cases(HERMES, "hermes", "hermes") + _cases(HERMES, "hermes", "auto"))
def test_vllm_vector(name: str, fmt: Format, vector: dict[str, Any]) -> None:
    doc = QWEN if name == "qwen3coder" else HERMES
    res, problems = run(doc, vector, fmt)
    divergence = DIVERGENCES.get((name, vector["id"]))
    if divergence is None:
        assert problems == [], f"{vector['id']} ({vector['source']}: {vector['test']}): " + "; ".join(problems)
    elif divergence.startswith("D1"):
        # vLLM hands a non-object on as the arguments; a consumer's json.loads gets no mapping: fatal, no call
        assert [d.name for d in res.defects if d.fatal] == ["arguments_not_object"] and res.calls == ()
        assert problems, "a listed divergence that agrees with vLLM must leave DIVERGENCES"


def test_every_divergence_names_a_vector_and_the_docs() -> None:
    ids = {("qwen3coder", v["id"]) for v in QWEN["vectors"]} | {("hermes", v["id"]) for v in HERMES["vectors"]}
    assert set(DIVERGENCES) <= ids
    docs = (Path(__file__).parents[2] / "docs" / "TOOLCALLS.md").read_text(encoding="utf-8")
    assert all(f"**{name}**" in docs for name in set(DIVERGENCES.values()))


def test_fixtures_name_their_source() -> None:
    for doc in (QWEN, HERMES):
        assert doc["repository"] == "vllm-project/vllm"
        for ref in doc["sources"].values():
            path, _, commit = ref.partition("@")
            assert path and len(commit) == 40
        assert {v["source"] for v in doc["vectors"]} <= set(doc["sources"])
        assert len({v["id"] for v in doc["vectors"]}) == len(doc["vectors"])
    assert "auto" in FORMATS


def _vector(doc: dict[str, Any], vid: str) -> dict[str, Any]:
    return next(v for v in doc["vectors"] if v["id"] == vid)


def test_divergences_d2_to_d4_as_documented() -> None:
    # D2: vLLM drops every call of an answer with one broken block; the harness lists what it read, not ok
    res, _ = run(HERMES, _vector(HERMES, "one_bad_block_loses_every_call"), "hermes")
    assert [c.name for c in res.calls] == ["a"] and not res.ok
    res, _ = run(QWEN, _vector(QWEN, "number_infinity_loses_every_call"), "qwen3_xml")
    assert [d.name for d in res.defects if d.fatal] == ["unconvertible_value"] and len(res.calls) == 1
    # D3: Python-literal text beyond the bound stays text
    from conformance.checks.toolcall_values import MAX_LITERAL_CHARS, convert_xml_value

    huge = "{'a': '" + "x" * MAX_LITERAL_CHARS + "'}"
    assert convert_xml_value(huge, {"type": "object"}, True).value == huge
    assert convert_xml_value(huge[:40] + "'}", {"type": "object"}, True).value == {"a": "x" * 33}
    # D4: text after the calls is not content (vLLM's non-streaming rule)
    res, _ = run(QWEN, _vector(QWEN, "streaming_two_tool_calls_plus_trailing_text_one_delta"), "qwen3_xml")
    assert len(res.calls) == 2 and res.content == ""
