"""The plugin end to end, in a subprocess, with a vLLM baseline (Q4_1) and a vLLM candidate (Q4_0).

A small suite of the kinds vLLM serves differently from llama.cpp: labels constrained with
``extra_body: {structured_outputs: {choice: …}}`` and forced tool calls (``tool_choice`` required and named, strict
schemas). The model is tiny, so the suite's verdicts are not asserted — what is: the run completes with no endpoint
fault, every answer reached the report constrained as the goldens asked, and the checks read vLLM's native calls.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.vllm import VLLM_YAML

pytestmark = pytest.mark.vllm

GOLDEN = """\
set: vllm-features
owner: "@cs-platform"
defaults:
  system: 你是客户满意度分析助手。判断用户评价的整体情感倾向，只输出一个标签：正面 或 负面。
  params: {temperature: 0, max_tokens: 8, seed: 42}
cases:
  - id: label-positive
    prompt: 物流很快，第二天就到了，包装也很仔细，好评！
    extra_body: &labels {structured_outputs: {choice: [正面, 负面]}}
    expect: {label: 正面}
  - id: label-negative
    prompt: 物流太慢了，再也不买了。
    extra_body: *labels
    expect: {label: 负面}
  - id: tool-required
    messages:
      - {role: system, content: 你是电商客服助手。查询订单进度时调用 get_order_status。}
      - {role: user, content: 我的订单 DD2405130001 到哪了？}
    params: {max_tokens: 96, tool_choice: required}
    tools: &tools
      - type: function
        function:
          name: get_order_status
          strict: true
          parameters:
            type: object
            additionalProperties: false
            required: [order_id]
            properties: {order_id: {type: string, pattern: "^DD[0-9]{10}$"}}
      - type: function
        function:
          name: search_kb
          strict: true
          parameters:
            type: object
            additionalProperties: false
            required: [topic]
            properties: {topic: {type: string, enum: [退换货政策, 发票]}}
    expect:
      tool_calls: [{name: get_order_status, arguments: {order_id: DD2405130001}}]
  - id: tool-named
    messages:
      - {role: system, content: 你是电商客服助手。}
      - {role: user, content: 发票怎么开？}
    params: {max_tokens: 96, tool_choice: {type: function, function: {name: search_kb}}}
    tools: *tools
    expect:
      tool_calls: [{name: search_kb, arguments: {topic: 发票}}]
"""

SUITE = """\
system: vllmdemo
labels: {values: [正面, 负面]}
gates:
  availability: {max_error_rate: 0.0}
  tool_calls: {min_match_rate: 0.5}
  classification: {min_agreement: 0.5}
"""

@pytest.fixture
def vllm_repo(pytester: pytest.Pytester, vllm_servers: object) -> Path:
    root = pytester.path
    (root / "pyproject.toml").write_text('[tool.pytest.ini_options]\naddopts = "-p no:locust -p no:cacheprovider"\n')
    (root / "endpoints.yaml").write_text(VLLM_YAML)
    (root / "goldens" / "vllmdemo").mkdir(parents=True)
    (root / "goldens" / "vllmdemo" / "features.yaml").write_text(GOLDEN)
    (root / "suites" / "vllmdemo").mkdir(parents=True)
    (root / "suites" / "vllmdemo" / "suite.yaml").write_text(SUITE)
    return root


def _responses(root: Path, endpoint: str) -> dict[str, dict]:  # type: ignore[type-arg]
    lines = (root / "reports" / "latest" / "responses" / f"{endpoint}.main.jsonl").read_text().splitlines()
    return {r["case_id"]: r for r in map(json.loads, lines)}


def test_vllm_baseline_vs_vllm_candidate_through_the_plugin(pytester: pytest.Pytester, vllm_repo: Path) -> None:
    result = pytester.runpytest_subprocess("suites/vllmdemo", "-v", "-p", "no:randomly")
    # a tiny model on CPU: the verdicts may say anything but "the run could not be made"
    assert result.ret in (0, 1), result.stdout.str() + result.stderr.str()
    result.stdout.fnmatch_lines([
        "*baseline test-vllm-baseline vs candidate test-vllm-candidate*",
        "*answered?label-positive? PASSED*", "*answered?tool-named? PASSED*",
        "*missing answers: none*",
    ])
    summary = json.loads((vllm_repo / "reports" / "latest" / "summary.json").read_text())
    assert summary["preflight"]["test-vllm-candidate"]["served"] == ["smollm2-135m-instruct-q4_0"]
    for endpoint in ("test-vllm-baseline", "test-vllm-candidate"):
        answers = _responses(vllm_repo, endpoint)
        assert sorted(answers) == ["label-negative", "label-positive", "tool-named", "tool-required"]
        # the set's extra_body reached vLLM: every label answer is exactly one of the choices
        assert {answers[c]["text"] for c in ("label-negative", "label-positive")} <= {"正面", "负面"}
        # forced calls arrive as native tool calls whose arguments follow the strict schemas
        (named,) = answers["tool-named"]["tool_calls"]
        assert named["function"]["name"] == "search_kb"
        assert json.loads(named["function"]["arguments"])["topic"] in ("退换货政策", "发票")
        (required,) = answers["tool-required"]["tool_calls"]
        assert answers["tool-required"]["finish_reason"] == "tool_calls"
        assert required["function"]["name"] in ("get_order_status", "search_kb")
    # the tool-call check compared the native calls: both cases judged, with no format defect on either side
    checks = [p for line in (vllm_repo / "reports" / "latest" / "results.jsonl").read_text().splitlines()
              for p in json.loads(line).get("props", []) if p.get("kind") == "check" and p.get("check") == "tool_calls"]
    assert sorted(c["case_id"] for c in checks) == ["tool-named", "tool-required"]
    for check in checks:
        assert check["details"]["classes"]["format"] == [] and check["details"]["format_regressions"] == []
        assert len(check["details"]["candidate_calls"]) == 1
