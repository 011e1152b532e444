"""The product path against a real vLLM OpenAI server (the vLLM lane): what vLLM sends and what the harness makes of it.

Every request goes through the harness's :class:`OpenAIEndpoint` (the ``openai`` SDK, streaming with usage) unless
the test is about the bytes themselves. The model is a 135M one: tests assert what vLLM guarantees (layout, forced
and constrained decoding, metrics), never that an answer is *right*. Facts measured here are in docs/VLLM.md.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
import urllib.request
from typing import Any

import jsonschema
import openai
import pytest

from conformance.checks.toolcall_parse import parse_tool_calls
from conformance.endpoints.config import EndpointsFile
from conformance.endpoints.openai import OpenAIEndpoint
from conformance.endpoints.preflight import check_all
from conformance.goldens.model import Case
from conformance.load.plan import build_body
from conformance.load.sse import StreamTrace
from conformance.load.vllm_metrics import TTFT, fetch, parse_prometheus, snapshot
from conformance.response import Response

pytestmark = pytest.mark.vllm

ORDER_ARGS = {"type": "object", "additionalProperties": False, "required": ["order_id"],
              "properties": {"order_id": {"type": "string", "pattern": "^DD[0-9]{10}$"}}}
KB_ARGS = {"type": "object", "additionalProperties": False, "required": ["topic"],
           "properties": {"topic": {"type": "string", "enum": ["退换货政策", "配送时效", "发票", "保修"]}}}
TOOLS = (
    {"type": "function", "function": {"name": "get_order_status", "description": "查询订单的支付、发货和物流状态。",
                                      "strict": True, "parameters": ORDER_ARGS}},
    {"type": "function", "function": {"name": "search_kb", "description": "按主题检索客服知识库。",
                                      "strict": True, "parameters": KB_ARGS}},
)
SENTIMENT = "你是客户满意度分析助手。判断用户评价的整体情感倾向，只输出一个标签：正面 或 负面。不要输出任何其他文字。"
LABELS = ["正面", "负面"]
REVIEWS = ["物流很快，第二天就到了，包装也很仔细，好评！", "物流太慢了，再也不买了。",
           "收到就是坏的，屏幕有一条裂痕，太失望了。"]


def _case(cid: str, user: str, *, system: str | None = None, tools: tuple[dict[str, Any], ...] = (),
          extra_body: dict[str, Any] | None = None, **params: Any) -> Case:
    messages = ({"role": "system", "content": system},) if system else ()
    return Case(system="vllm", set_name="live", id=cid, messages=(*messages, {"role": "user", "content": user}),
                params={"temperature": 0, "max_tokens": 32, "seed": 42, **params}, tools=tools,
                extra_body=dict(extra_body or {}))


def _complete(eps: EndpointsFile, name: str, case: Case) -> Response:
    async def go() -> Response:
        async with OpenAIEndpoint(eps.get(name)) as ep:
            return await ep.complete(case)

    return asyncio.run(go())


def _args(resp: Response) -> list[tuple[str, Any]]:
    return [(c["function"]["name"], json.loads(c["function"]["arguments"])) for c in resp.tool_calls]


ORDER = _case("order", "我的订单 DD2405130001 到哪了？", system="你是电商客服助手。", tools=TOOLS, max_tokens=128)


def test_preflight_sees_the_served_name_and_vllm(vllm_servers: EndpointsFile) -> None:
    base, cand = check_all([vllm_servers.get("test-vllm-baseline"), vllm_servers.get("test-vllm-candidate")])
    assert base.ok and base.served == ("smollm2-135m-instruct-q4_1",) and base.server == "uvicorn"
    assert cand.ok and cand.served == ("smollm2-135m-instruct-q4_0",)
    assert base.owned_by == {"smollm2-135m-instruct-q4_1": "vllm"}
    with urllib.request.urlopen("http://127.0.0.1:8461/version", timeout=5) as resp:
        assert json.loads(resp.read())["version"] == "0.32.0"


def _chunks(eps: EndpointsFile, case: Case) -> list[Any]:
    client = openai.OpenAI(base_url=eps.get("test-vllm-baseline").base_url, api_key="none")
    try:
        return list(client.chat.completions.create(model="smollm2-135m-instruct-q4_1", stream=True,
                                                   stream_options={"include_usage": True}, **case.request()))
    finally:
        client.close()


def _token_chunks(resp: Response) -> int:
    """Chunks carrying text in a vLLM stream: all but the role chunk, the usage chunk and — unless the answer was
    cut by max_tokens, where the finish reason rides on the last token — the empty finish chunk."""
    return resp.n_chunks - 2 - (resp.finish_reason != "length")


@pytest.mark.parametrize(("prompt", "max_tokens", "finish"), [
    ("Answer with one word: what colour is the sky?", 32, "stop"),
    ("Describe a force majeure clause.", 8, "length"),
])
def test_stream_layout_role_tokens_finish_then_usage_without_choices(
    vllm_servers: EndpointsFile, prompt: str, max_tokens: int, finish: str
) -> None:
    """vLLM's layout, read with the SDK the product path uses; the harness's Response agrees chunk for chunk."""
    case = _case("layout", prompt, max_tokens=max_tokens)
    first, *tokens, last = _chunks(vllm_servers, case)
    assert first.choices[0].delta.role == "assistant" and first.choices[0].delta.content == ""
    assert first.choices[0].finish_reason is None and first.usage is None
    if finish == "stop":  # the end-of-sequence token gets a chunk of its own, with no text
        *tokens, end = tokens
        assert end.choices[0].finish_reason == "stop" and end.choices[0].delta.content is None
    assert all(c.choices[0].delta.content for c in tokens)
    assert [c.choices[0].finish_reason for c in tokens] == [None] * (len(tokens) - 1) + [
        "length" if finish == "length" else None]
    assert last.choices == [] and last.usage is not None and last.system_fingerprint.startswith("vllm-0.32.0")
    # the end-of-sequence token is counted in usage but sent as no text
    assert last.usage.completion_tokens == len(tokens) + (finish == "stop")

    resp = _complete(vllm_servers, "test-vllm-baseline", case)
    assert resp.ok and resp.text == "".join(c.choices[0].delta.content for c in tokens)
    assert resp.finish_reason == finish and resp.n_chunks == len(tokens) + 2 + (finish == "stop")
    assert _token_chunks(resp) == len(tokens) and resp.server == "uvicorn"
    assert resp.usage is not None and resp.usage["completion_tokens"] == last.usage.completion_tokens
    assert 0 < resp.ttfc_ms < resp.ttft_ms <= resp.e2e_ms  # type: ignore[operator]  # role chunk: no token


def test_load_drivers_stream_parser_reads_vllms_bytes_like_the_client(vllm_servers: EndpointsFile) -> None:
    """The Locust driver's SSE parser (shapes/templates on and off) on vLLM's raw bytes = the client's answer."""
    case = _case("bytes", "Answer with one word: what colour is grass?", max_tokens=24)
    ep = vllm_servers.get("test-vllm-baseline")
    body = json.dumps(build_body(case.request(), ep.model)).encode()
    req = urllib.request.Request(ep.base_url + "/chat/completions", data=body,
                                 headers={"Content-Type": "application/json"})
    t0 = time.monotonic()
    fast, plain = StreamTrace(t0=t0), StreamTrace(t0=t0, templates=False)
    with urllib.request.urlopen(req, timeout=60) as raw:
        while piece := raw.read1(512):
            now = time.monotonic()
            fast.feed(piece, now)
            plain.feed(piece, now)
    resp = _complete(vllm_servers, "test-vllm-baseline", case)
    for trace in (fast, plain):
        rec = trace.record()
        assert trace.done and trace.error is None and trace.bad is None
        assert (rec["text"], rec["finish_reason"]) == (resp.text, resp.finish_reason)
        assert rec["usage"]["completion_tokens"] == resp.usage["completion_tokens"]  # type: ignore[index]
        assert len(rec["tok_us"]) == _token_chunks(resp)
    assert fast.record()["tok_us"] == plain.record()["tok_us"]


@pytest.mark.parametrize("choice", ["required", {"type": "function", "function": {"name": "search_kb"}}],
                         ids=["required", "named"])
def test_forced_tool_call_comes_back_as_native_calls_that_follow_the_strict_schema(
    vllm_servers: EndpointsFile, choice: Any
) -> None:
    resp = _complete(vllm_servers, "test-vllm-baseline", dataclasses.replace(ORDER, params={
        **ORDER.params, "tool_choice": choice}))
    assert resp.ok and resp.text in ("", None)
    ((name, args),) = _args(resp)
    schema = {t["function"]["name"]: t["function"]["parameters"] for t in TOOLS}
    jsonschema.validate(args, schema[name])  # strict: xgrammar forced the arguments into the schema
    if choice == "required":
        assert resp.finish_reason == "tool_calls" and name in schema
    else:  # the named function, even though the question is about an order
        assert resp.finish_reason == "stop" and name == "search_kb"
    parsed = parse_tool_calls(resp.text, resp.tool_calls, list(TOOLS), finish_reason=resp.finish_reason)
    assert [c.name for c in parsed.calls] == [name] and parsed.defects == ()


def test_a_forced_call_cut_by_max_tokens(vllm_servers: EndpointsFile) -> None:
    """Not streamed: the raw ``<tool_call>`` text comes back as content, no native call, finish ``length`` — the
    harness's parser names the defects. Streamed: vLLM's streaming tool parser swallows the unfinished call, so
    the answer is empty (still ``length``): a consumer sees no call at all."""
    cut = dataclasses.replace(ORDER, params={**ORDER.params, "tool_choice": "required", "max_tokens": 8})
    whole = _complete(vllm_servers, "test-vllm-baseline-unstreamed", cut)
    assert whole.ok and whole.finish_reason == "length" and whole.tool_calls == []
    assert whole.text is not None and whole.text.startswith("<tool_call>")
    parsed = parse_tool_calls(whole.text, whole.tool_calls, list(TOOLS), finish_reason=whole.finish_reason)
    assert parsed.calls == () and {d.name for d in parsed.defects} >= {"unclosed_tag", "invalid_json"}

    streamed = _complete(vllm_servers, "test-vllm-baseline", cut)
    assert streamed.ok and streamed.finish_reason == "length" and streamed.tool_calls == []
    assert streamed.text == "" and streamed.usage is not None and streamed.usage["completion_tokens"] == 8


def test_labels_constrained_by_structured_outputs_choice(vllm_servers: EndpointsFile) -> None:
    """``extra_body: {structured_outputs: {choice: [...]}}`` — every answer is exactly one label (valid, not
    necessarily right); unconstrained, the same prompts wander off the label set."""
    for name in ("test-vllm-baseline", "test-vllm-candidate"):
        free, constrained = [], []
        for i, review in enumerate(REVIEWS):
            case = _case(f"r{i}", review, system=SENTIMENT, max_tokens=8)
            free.append(_complete(vllm_servers, name, case).text)
            resp = _complete(vllm_servers, name, dataclasses.replace(
                case, extra_body={"structured_outputs": {"choice": LABELS}}))
            assert resp.ok and resp.finish_reason == "stop"
            constrained.append(resp.text)
        assert set(constrained) <= set(LABELS), constrained
        assert not set(free) <= set(LABELS), free  # the constraint did something


def test_response_format_json_schema(vllm_servers: EndpointsFile) -> None:
    schema = {"type": "object", "additionalProperties": False, "required": ["month", "revenue_wan", "trend"],
              "properties": {"month": {"type": "string", "pattern": "^[0-9]{4}-[0-9]{2}$"},
                             "revenue_wan": {"type": "number"}, "trend": {"enum": ["上升", "下降", "持平"]}}}
    case = _case("fin", "2024年5月营收1280万元，环比增长5%。用JSON总结。", max_tokens=96, response_format={
        "type": "json_schema", "json_schema": {"name": "monthly_summary", "schema": schema, "strict": True}})
    for name in ("test-vllm-baseline", "test-vllm-candidate"):
        resp = _complete(vllm_servers, name, case)
        assert resp.ok and resp.finish_reason == "stop", resp.text
        jsonschema.validate(json.loads(resp.text or ""), schema)


def test_metrics_expose_what_the_load_summary_reads(vllm_servers: EndpointsFile) -> None:
    ep = vllm_servers.get("test-vllm-candidate")
    assert _complete(vllm_servers, "test-vllm-candidate", _case("m", "Say hi.", max_tokens=4)).ok
    samples = parse_prometheus(fetch(ep.metrics_url or ""))
    snap = snapshot(samples)
    assert snap.running is not None and snap.waiting is not None and snap.preemptions is not None
    assert snap.kv_metric == "vllm:kv_cache_usage_perc" and snap.kv_cache_usage is not None
    assert snap.ttft_count is not None and snap.ttft_count >= 1 and snap.ttft_buckets[-1][1] == snap.ttft_count
    names = {s.name for s in samples}
    for family in (TTFT, "vllm:inter_token_latency_seconds", "vllm:e2e_request_latency_seconds"):
        assert f"{family}_count" in names and f"{family}_bucket" in names
    assert {s.label("model_name") for s in samples if s.name == "vllm:num_requests_running"} == {ep.model}
