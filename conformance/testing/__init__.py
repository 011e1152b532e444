"""Test doubles for the harness's own tests and benchmarks (never imported by the product path).

``FaultServer`` is a scriptable, fault-injecting OpenAI-compatible server on 127.0.0.1::

    from conformance.testing import Behaviour, FaultServer

    with FaultServer(Behaviour(text="bonjour", ttft_ms=50)) as srv:
        ...  # point a client at srv.base_url
"""

from __future__ import annotations

from conformance.testing.faultserver import (
    Behaviour,
    FaultServer,
    RecordedRequest,
    Script,
    ToolCallScript,
    unused_port,
)

__all__ = ["Behaviour", "FaultServer", "RecordedRequest", "Script", "ToolCallScript", "unused_port"]
