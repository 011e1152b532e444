"""The protocol every endpoint implements, and the factory that builds one from its ``endpoints.yaml`` entry.

An endpoint answers cases; what it returns is the neutral :class:`~conformance.response.Response`. Which class
answers is chosen by the entry's ``kind:`` (``openai`` — any OpenAI-compatible ``/v1/chat/completions``, the product
path — is the only kind today); recordings are the other implementation, chosen by ``--baseline recorded``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from conformance.errors import ConfigError

if TYPE_CHECKING:
    from conformance.endpoints.config import EndpointConfig
    from conformance.goldens.model import Case
    from conformance.redact import Redactor
    from conformance.response import Response


class Endpoint(Protocol):
    """Anything that answers cases: the live OpenAI-compatible client, or recordings."""

    name: str

    async def complete(self, case: Case, repeat: int = 0) -> Response: ...

    async def aclose(self) -> None: ...


def _openai(cfg: EndpointConfig, redactor: Redactor) -> Endpoint:
    from conformance.endpoints.openai import OpenAIEndpoint

    return OpenAIEndpoint(cfg, redactor)


#: ``kind:`` → constructor. A new protocol (a gRPC gateway, a batch API) is one entry here and one module.
KINDS: dict[str, Callable[[EndpointConfig, Redactor], Endpoint]] = {"openai": _openai}


def make_endpoint(cfg: EndpointConfig, redactor: Redactor) -> Endpoint:
    """A fresh endpoint object for ``cfg`` (clients are bound to the event loop that uses them)."""
    try:
        build = KINDS[cfg.kind]
    except KeyError:
        raise ConfigError(f"endpoint {cfg.name!r}: unknown kind {cfg.kind!r}; known kinds: "
                          + ", ".join(sorted(KINDS))) from None
    return build(cfg, redactor)
