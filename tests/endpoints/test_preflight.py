"""Preflight: what does each endpoint really serve? One message instead of hundreds of 404s."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conformance.endpoints.config import EndpointConfig
from conformance.endpoints.preflight import check_all, suggest
from conformance.testing.faultserver import Behaviour, FaultServer, unused_port

SERVED = ["qwen3_next_80b_optimized", "qwen2.5-72b-instruct", "llama-3.1-8b-instruct", "bge-m3"]


@pytest.fixture
def server() -> Iterator[FaultServer]:
    with FaultServer(models=SERVED) as srv:
        yield srv


def cfg(base_url: str, model: str = "qwen3_next_80b_optimized", **kw: object) -> EndpointConfig:
    return EndpointConfig(name="prod", base_url=base_url, model=model, **kw)  # type: ignore[arg-type]


def test_served_model_passes(server: FaultServer) -> None:
    (r,) = check_all([cfg(server.base_url)])
    assert r.ok and r.status == "ok" and r.served == tuple(SERVED)


def test_unregistered_name_lists_served_and_suggests_nearest(server: FaultServer) -> None:
    (r,) = check_all([cfg(server.base_url, "Qwen3-Next-80B-Local")])
    assert not r.ok and r.status == "model_missing"
    assert r.suggestions[0] == "qwen3_next_80b_optimized"
    assert "did you mean 'qwen3_next_80b_optimized'" in r.message
    assert all(repr(m) in r.message for m in SERVED)


def test_503_means_retired(server: FaultServer) -> None:
    with FaultServer(models_behaviour=Behaviour(status=503)) as srv:
        (r,) = check_all([cfg(srv.base_url)])
    assert r.status == "retired" and "503" in r.message


def test_401_names_the_key_variable(server: FaultServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROD_KEY", "wrong-key-123456")
    with FaultServer(models_behaviour=Behaviour(status=401)) as srv:
        (r,) = check_all([cfg(srv.base_url, api_key_env="PROD_KEY")])
    assert r.status == "auth" and "$PROD_KEY" in r.message and "wrong-key-123456" not in r.message


def test_unreachable_and_not_openai_compatible() -> None:
    with FaultServer(models_behaviour=Behaviour(invalid_json=True)) as srv:
        unreachable, garbage = check_all([cfg(f"http://127.0.0.1:{unused_port()}/v1"), cfg(srv.base_url)])
    assert unreachable.status == "unreachable" and "cannot reach" in unreachable.message
    assert garbage.status == "error" and "did not return a model list" in garbage.message


def test_no_models_route_is_a_warning_not_a_failure() -> None:
    with FaultServer(models_behaviour=Behaviour(status=404)) as srv:
        (r,) = check_all([cfg(srv.base_url)])
    assert r.ok and r.status == "unchecked"


def test_missing_key_variable_is_reported() -> None:
    (r,) = check_all([cfg("http://127.0.0.1:9/v1", api_key_env="SURELY_UNSET_CONFORMANCE_KEY")])
    assert not r.ok and "SURELY_UNSET_CONFORMANCE_KEY" in r.message


@given(st.text(max_size=40), st.lists(st.text(max_size=40), max_size=8))
def test_suggest_never_raises_and_only_returns_served(configured: str, served: list[str]) -> None:
    got = suggest(configured, served)
    assert set(got) <= set(served) and len(got) <= 3


# --- retirement is the chat endpoint answering 503; the endpoint's own timeout and retry policy ---------------


def test_a_gateway_that_lists_the_model_but_answers_503_to_chat_is_retired() -> None:
    """Finding 6 of the verdict-trust issue: /v1/models still listed the model, every chat request got 503."""
    with FaultServer(Behaviour(status=503), models=["m"]) as gateway:
        (r,) = check_all([cfg(gateway.base_url, "m", max_retries=1, backoff_s=0.01)])
        probes = list(gateway.probes)
    assert r.status == "retired" and r.probed and "one-token chat request" in r.message
    assert len(probes) == 2 and probes[0].body["max_tokens"] == 1  # the probe, and one retry by the policy


def test_a_served_model_is_probed_once_without_touching_the_scripted_requests() -> None:
    with FaultServer([Behaviour(text="first scripted answer")], models=["m"]) as srv:
        (r,) = check_all([cfg(srv.base_url, "m")])
        assert r.ok and r.probed and len(srv.probes) == 1 and srv.requests[-1].path.endswith("/models")
    assert check_all([cfg("http://127.0.0.1:9/v1", "m", max_retries=0)], probe=False)[0].probed is False


def test_preflight_waits_as_long_as_the_endpoint_says_not_a_fixed_30_s() -> None:
    """Finding 6: a fixed 30 s /v1/models timeout stopped runs (exit 4) against a busy server; preflight now uses
    the endpoint's timeout_s and its retry policy, like the replay."""
    slow = Behaviour(headers_delay_ms=600)
    with FaultServer(models=["m"], models_behaviour=slow) as srv:
        (patient,) = check_all([cfg(srv.base_url, "m", timeout_s=5.0)])
        (hasty,) = check_all([cfg(srv.base_url, "m", timeout_s=0.2, max_retries=0)])
    assert patient.ok and hasty.status == "unreachable"
    with FaultServer(models=["m"], models_behaviour=[Behaviour(status=503), Behaviour(status=429)]) as busy:
        (r,) = check_all([cfg(busy.base_url, "m", max_retries=2, backoff_s=0.01)])
    assert r.ok  # a 503 and a 429 on /models are retried as a replay would retry them
