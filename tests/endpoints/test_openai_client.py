"""The openai-SDK client against a fault-injecting server: every fault classified, retried per policy, recorded;
timings run from the moment the request is sent."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Iterator
from typing import Any

import openai
import pytest

from conformance.endpoints.config import EndpointConfig
from conformance.endpoints.openai import OpenAIEndpoint, parse_retry_after
from conformance.goldens.model import Case
from conformance.response import Response
from conformance.testing.faultserver import Behaviour, FaultServer, ToolCallScript, unused_port

CASE = Case(system="s", set_name="t", id="c1", messages=({"role": "user", "content": "hi"},),
            params={"temperature": 0, "max_tokens": 32, "seed": 42, "top_k": 1})


@pytest.fixture
def server() -> Iterator[FaultServer]:
    with FaultServer(models=["m"]) as srv:
        yield srv


def run(cfg: EndpointConfig, case: Case = CASE) -> Response:
    async def go() -> Response:
        async with OpenAIEndpoint(cfg) as ep:
            return await ep.complete(case)

    return asyncio.run(go())


def cfg_for(srv: FaultServer | str, **kw: Any) -> EndpointConfig:
    base = srv if isinstance(srv, str) else srv.base_url
    defaults: dict[str, Any] = {"timeout_s": 5.0, "max_retries": 2, "backoff_s": 0.01, "max_backoff_s": 2.0}
    return EndpointConfig(name="ep", base_url=base, model="m", **{**defaults, **kw})


def test_stream_records_text_timings_usage(server: FaultServer) -> None:
    server.set_behaviour(Behaviour(text="Hello world, twice.", ttft_ms=60, itl_ms=5,
                                   usage={"prompt_tokens": 3, "completion_tokens": 5, "total_tokens": 8}))
    r = run(cfg_for(server))
    assert r.ok and r.text == "Hello world, twice." and r.finish_reason == "stop"
    assert r.usage and r.usage["completion_tokens"] == 5
    assert r.ttfc_ms is not None and r.ttft_ms is not None and r.e2e_ms is not None
    assert 60 <= r.ttft_ms <= r.e2e_ms  # the injected delay is inside TTFT...
    assert r.ttfc_ms < r.ttft_ms  # ...and the role-only chunk that precedes it is a chunk, not a token
    assert [a.n for a in r.attempts] == [1] and r.attempts[0].fault is None
    body = server.requests[-1].body
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert body["top_k"] == 1 and body["model"] == "m"  # non-SDK params travel in extra_body


def test_non_stream_mode(server: FaultServer) -> None:
    r = run(cfg_for(server, stream=False))
    assert r.ok and r.text == "Hello from the fault server." and server.requests[-1].body.get("stream") in (None, False)


def test_tool_call_deltas_and_reasoning_are_merged(server: FaultServer) -> None:
    server.set_behaviour(Behaviour(text="", reasoning=["think ", "hard"], tool_calls=[
        ToolCallScript(name="get_order_status", arguments={"order_id": 30}, chunk_chars=4)]))
    r = run(cfg_for(server))
    assert r.ok and r.reasoning == "think hard"
    assert [c["function"]["name"] for c in r.tool_calls] == ["get_order_status"]
    assert r.tool_calls[0]["function"]["arguments"].replace(" ", "") == '{"order_id":30}'


def test_429_honours_retry_after_then_succeeds(server: FaultServer) -> None:
    server.set_behaviour([Behaviour(status=429, retry_after="1"), Behaviour()])
    r = run(cfg_for(server, backoff_s=5.0))
    assert r.ok
    first, second = r.attempts
    assert (first.fault, first.status, first.retry_after_s, first.backoff_s) == ("rate_limited", 429, 1.0, 1.0)
    assert second.fault is None


@pytest.mark.parametrize(("status", "fault", "tries"), [
    (503, "unavailable_503", 3), (500, "server_error", 3), (502, "server_error", 3),
    (401, "auth", 1), (400, "client_error", 1), (404, "client_error", 1),
])
def test_status_faults_are_classified_and_bounded(server: FaultServer, status: int, fault: str, tries: int) -> None:
    server.set_behaviour(Behaviour(status=status))
    r = run(cfg_for(server))
    assert (r.fault, r.status, len(r.attempts)) == (fault, status, tries)
    assert all(a.fault == fault for a in r.attempts)
    assert len(server.requests) == tries
    assert f"HTTP {status}" in (r.error or "")


def test_backoff_is_exponential_and_capped(server: FaultServer) -> None:
    server.set_behaviour(Behaviour(status=500))
    r = run(cfg_for(server, max_retries=4, backoff_s=0.01, max_backoff_s=0.03))
    assert [a.backoff_s for a in r.attempts] == [0.01, 0.02, 0.03, 0.03, None]


@pytest.mark.parametrize(("behaviour", "fault"), [
    (Behaviour(truncate_after_chunks=3), "truncated_stream"),
    (Behaviour(reset_after_chunks=3), "truncated_stream"),
    (Behaviour(invalid_json=True), "bad_response"),
    (Behaviour(content_type="text/html", body="<html>gateway</html>"), "bad_response"),
    (Behaviour(empty_choices=True), "bad_response"),
])
def test_stream_faults(server: FaultServer, behaviour: Behaviour, fault: str) -> None:
    server.set_behaviour(behaviour)
    r = run(cfg_for(server, max_retries=1))
    assert r.fault == fault, r.error
    assert r.attempts[0].fault == fault


def test_truncated_then_ok_is_retried_and_partial_text_discarded(server: FaultServer) -> None:
    server.set_behaviour([Behaviour(text="partial answer that breaks", truncate_after_chunks=2), Behaviour(text="ok")])
    r = run(cfg_for(server))
    assert r.ok and r.text == "ok" and [a.fault for a in r.attempts] == ["truncated_stream", None]


def test_slow_first_byte_beyond_timeout_is_a_timeout_not_retried(server: FaultServer) -> None:
    server.set_behaviour(Behaviour(headers_delay_ms=3000))
    r = run(cfg_for(server, timeout_s=0.5))
    assert r.fault == "timeout" and len(r.attempts) == 1
    assert 400 <= r.attempts[0].elapsed_ms < 2500


def test_stall_mid_stream_is_bounded_by_timeout(server: FaultServer) -> None:
    server.set_behaviour(Behaviour(stall_after_chunks=2))
    r = run(cfg_for(server, timeout_s=0.5))
    assert r.fault == "timeout" and r.attempts[0].elapsed_ms < 2500


def test_connection_refused_is_retried_then_reported() -> None:
    r = run(cfg_for(f"http://127.0.0.1:{unused_port()}/v1", max_retries=1))
    assert r.fault == "connection" and len(r.attempts) == 2


def test_api_key_is_sent_and_redacted_from_errors(server: FaultServer, monkeypatch: pytest.MonkeyPatch) -> None:
    key = "sk-test-PLANTED-0123456789abcdef"
    monkeypatch.setenv("FAULT_KEY", key)
    server.set_behaviour(Behaviour(status=500, error_message=f"upstream rejected key {key}"))
    r = run(cfg_for(server, api_key_env="FAULT_KEY", max_retries=0))
    assert server.requests[-1].headers.get("authorization") == f"Bearer {key}"
    assert r.fault == "server_error" and key not in str(r.to_dict()) and "***REDACTED***" in (r.error or "")


def test_concurrency_is_bounded_and_queue_time_recorded(server: FaultServer) -> None:
    server.set_behaviour(Behaviour(ttft_ms=100))
    cases = [dataclasses.replace(CASE, id=f"c{i}") for i in range(4)]

    async def go() -> list[Response]:
        async with OpenAIEndpoint(cfg_for(server, max_concurrency=2)) as ep:
            return list(await asyncio.gather(*(ep.complete(c) for c in cases)))

    results = asyncio.run(go())
    queued = sorted(r.queue_ms for r in results)
    assert queued[0] < 50 and queued[-1] >= 80  # two waited for a slot, and the wait is not hidden in TTFT
    assert all(r.ttft_ms is not None and r.ttft_ms < 400 for r in results)


# ---------------------------------------------------------------- what TTFT is timed from
# Bounds are generous on purpose (a busy CI machine stalls for tens of ms); bench/run.py --only ttft has the figures.

SLOW_BUILD_S = 0.3  # client-side work before the request is sent, made slow on purpose


def _slow_build(ep: OpenAIEndpoint) -> None:
    """Make building the request body take SLOW_BUILD_S: work after the attempt's start, before the send."""
    split = ep._split_body

    def slow(case: Case) -> tuple[dict[str, Any], dict[str, Any]]:
        time.sleep(SLOW_BUILD_S)
        return split(case)

    ep._split_body = slow  # type: ignore[method-assign]


def test_ttft_is_the_injected_delay_within_generous_bounds(server: FaultServer) -> None:
    server.set_behaviour(Behaviour(ttft_ms=80, itl_ms=2))

    async def go() -> list[Response]:
        async with OpenAIEndpoint(cfg_for(server)) as ep:
            return [await ep.complete(dataclasses.replace(CASE, id=f"c{i}")) for i in range(5)]

    results = asyncio.run(go())
    ttfts = sorted(r.ttft_ms or 0.0 for r in results)
    assert all(r.ok for r in results) and ttfts[0] >= 80  # never less than the server's own delay...
    assert ttfts[2] < 80 + 150  # ...and, at the median, not a multiple of it


def test_ttft_and_e2e_run_from_the_send_not_from_building_the_request(server: FaultServer) -> None:
    server.set_behaviour(Behaviour(ttft_ms=50, itl_ms=2))

    async def go() -> Response:
        async with OpenAIEndpoint(cfg_for(server)) as ep:
            _slow_build(ep)
            return await ep.complete(CASE)

    r = asyncio.run(go())
    assert r.ok and r.ttft_ms is not None and r.e2e_ms is not None and r.ttfc_ms is not None
    assert 50 <= r.ttft_ms <= r.e2e_ms < SLOW_BUILD_S * 1000  # the slow build is not the endpoint's latency...
    assert r.attempts[0].elapsed_ms >= SLOW_BUILD_S * 1000 + 50  # ...but still part of the attempt, as recorded
    assert r.queue_ms < 50  # and no slot was waited for


def test_non_stream_ttft_runs_from_the_send(server: FaultServer) -> None:
    server.set_behaviour(Behaviour(ttft_ms=50))

    async def go() -> Response:
        async with OpenAIEndpoint(cfg_for(server, stream=False)) as ep:
            _slow_build(ep)
            return await ep.complete(CASE)

    r = asyncio.run(go())
    assert r.ok and r.ttft_ms is not None and 50 <= r.ttft_ms < SLOW_BUILD_S * 1000


def test_a_client_without_the_send_hook_times_from_the_attempt_start(server: FaultServer) -> None:
    """A client swapped in from outside (bench/ttft_bench.py's diagnostic does this) has no hook: timings then run
    from the attempt's start, as before the hook existed, rather than from nothing."""
    server.set_behaviour(Behaviour(ttft_ms=50))

    async def go() -> Response:
        async with OpenAIEndpoint(cfg_for(server)) as ep:
            await ep._client.close()
            ep._client = openai.AsyncOpenAI(base_url=server.base_url, api_key="none", max_retries=0)
            _slow_build(ep)
            return await ep.complete(CASE)

    r = asyncio.run(go())
    assert r.ok and r.ttft_ms is not None and r.ttft_ms >= SLOW_BUILD_S * 1000 + 50


@pytest.mark.parametrize(("value", "expected"), [("3", 3.0), ("0.5", 0.5), ("-1", 0.0), ("soon", None), (None, None)])
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value) == expected


def test_parse_retry_after_http_date() -> None:
    got = parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT")
    assert got == 0.0  # a date in the past means "now"
