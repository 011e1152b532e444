"""The product path end to end: the openai SDK against real llama.cpp servers on 127.0.0.1."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from conformance.endpoints.config import EndpointsFile
from conformance.endpoints.openai import OpenAIEndpoint
from conformance.endpoints.preflight import check_all
from conformance.goldens.model import Case
from conformance.local.models import model_path, shipped_gguf

pytestmark = pytest.mark.live

CASE = Case(system="legal", set_name="t", id="shall", params={"temperature": 0, "max_tokens": 16, "seed": 42},
            messages=({"role": "user", "content": "Rewrite with 'shall': The buyer must pay in 30 days."},))


def _complete(eps: EndpointsFile, name: str, case: Case = CASE):  # type: ignore[no-untyped-def]
    async def run():  # type: ignore[no-untyped-def]
        async with OpenAIEndpoint(eps.get(name)) as ep:
            return await ep.complete(case)

    return asyncio.run(run())


def test_streamed_answer_has_timings_and_text(live_servers: EndpointsFile) -> None:
    resp = _complete(live_servers, "test-baseline")
    assert resp.ok, resp.describe_failure()
    assert resp.text and resp.finish_reason in ("stop", "length")
    assert 0 < resp.ttfc_ms <= resp.ttft_ms <= resp.e2e_ms  # type: ignore[operator]
    assert resp.n_chunks >= 2 and resp.server == "uvicorn" and len(resp.attempts) == 1


def test_deterministic_at_temperature_zero(live_servers: EndpointsFile) -> None:
    first, second = _complete(live_servers, "test-baseline"), _complete(live_servers, "test-baseline")
    assert first.text == second.text


def test_candidate_is_a_different_quantization(live_servers: EndpointsFile) -> None:
    """Q4_0 re-quantized from Q4_1 really is another model: over a few prompts, some answer differs."""
    prompts = ["起草买卖合同的定金条款。", "What is a force majeure clause?", "列出劳动合同的必备条款。",
               "Explain 'joint and several liability' in one sentence."]
    diffs = 0
    for i, p in enumerate(prompts):
        case = dataclasses.replace(CASE, id=f"p{i}", messages=({"role": "user", "content": p},),
                                   params={**CASE.params, "max_tokens": 24})
        base, cand = _complete(live_servers, "test-baseline", case), _complete(live_servers, "test-candidate", case)
        assert base.ok and cand.ok
        diffs += base.text != cand.text
    assert diffs >= 1


def test_preflight_suggests_the_served_name(live_servers: EndpointsFile) -> None:
    wrong = dataclasses.replace(live_servers.get("test-candidate"), model="SmolLM2-135M-Q4_0-Local")
    (result,) = check_all([wrong])
    assert result.status == "model_missing"
    assert result.suggestions[0] == "smollm2-135m-instruct-q4_0"
    assert "did you mean 'smollm2-135m-instruct-q4_0'" in result.message


def test_requantized_models_are_cached_and_distinct() -> None:
    src = shipped_gguf()
    q8 = model_path("Q8_0")
    assert q8.exists() and q8 != src and q8.stat().st_size > src.stat().st_size
    assert model_path("Q8_0") == q8  # second call reuses the cached file
    assert model_path("Q4_1") == src
