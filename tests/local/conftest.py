"""The vLLM lane's live tests (``@pytest.mark.vllm``): real vLLM servers, one xdist group (tests/support/vllm.py)."""

from __future__ import annotations

import pytest

from tests.support.vllm import mark_vllm_items, vllm_endpoints, vllm_servers

__all__ = ["vllm_endpoints", "vllm_servers"]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "vllm: needs the vLLM lane (scripts/setup-vllm.sh); real vLLM servers on "
                                       "127.0.0.1:8461-8463, started once per session")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    mark_vllm_items(items)
