"""``endpoints.yaml``: named OpenAI-compatible endpoints and the default baseline/candidate.

Keys are never stored in the file — only the *name* of the environment variable that holds one
(``api_key_env``), read when a client is built.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from conformance.errors import ConfigError, GoldenError
from conformance.goldens.loader import schema_errors
from conformance.goldens.yamlsource import read_yaml

#: The pseudo-endpoint name that selects recordings instead of a live server.
RECORDED = "recorded"


@dataclass(frozen=True)
class EndpointConfig:
    """One named endpoint."""

    name: str
    base_url: str
    model: str
    kind: str = "openai"
    api_key_env: str | None = None
    timeout_s: float = 120.0
    connect_timeout_s: float = 5.0
    max_concurrency: int = 4
    max_retries: int = 3
    backoff_s: float = 0.5
    max_backoff_s: float = 20.0
    stream: bool = True
    extra_body: dict[str, Any] = field(default_factory=dict)
    metrics_url: str | None = None
    local: dict[str, Any] | None = None
    description: str = ""

    @property
    def is_loopback(self) -> bool:
        host = urlsplit(self.base_url).hostname or ""
        try:
            return ipaddress.ip_address(host).is_loopback
        except ValueError:  # a name: only `localhost` is sure to stay on this machine (not `127.0.0.1.example.com`)
            return host == "localhost"

    def api_key(self) -> str:
        """The key from the named environment variable; servers without auth get a placeholder."""
        if not self.api_key_env:
            return "none"
        value = os.environ.get(self.api_key_env)
        if not value:
            raise ConfigError(
                f"endpoint {self.name!r} needs an API key in environment variable {self.api_key_env}, "
                "which is not set"
            )
        return value

    def secret(self) -> str | None:
        """The key if one is configured and set — used only to redact it from everything we write."""
        return os.environ.get(self.api_key_env) if self.api_key_env else None


@dataclass(frozen=True)
class EndpointsFile:
    path: Path
    endpoints: dict[str, EndpointConfig]
    default_baseline: str | None = None
    default_candidate: str | None = None

    def get(self, name: str, role: str = "endpoint") -> EndpointConfig:
        if name not in self.endpoints:
            known = ", ".join(sorted(self.endpoints)) or "(none)"
            raise ConfigError(f"unknown {role} endpoint {name!r} in {self.path}; known endpoints: {known}")
        return self.endpoints[name]

    def secrets(self) -> list[str]:
        return [s for e in self.endpoints.values() if (s := e.secret())]


def load_endpoints(path: Path) -> EndpointsFile:
    """Load and validate endpoints.yaml; every problem is a :class:`ConfigError` naming file and line."""
    try:
        doc = read_yaml(path)
    except GoldenError as exc:
        raise ConfigError(str(exc)) from None
    if doc.duplicates:
        where, line = doc.duplicates[0]
        raise ConfigError(f"{path}:{line}: duplicate key `{where[-1]}`")
    errors = schema_errors(doc, "endpoints.schema.json")
    if errors:
        raise ConfigError("\n".join(str(e) for e in errors))
    data = doc.data
    endpoints = {name: EndpointConfig(name=name, **raw) for name, raw in data["endpoints"].items()}
    defaults = data.get("defaults") or {}
    for role in ("baseline", "candidate"):
        name = defaults.get(role)
        if name and name != RECORDED and name not in endpoints:
            line = doc.line_of(("defaults", role))
            raise ConfigError(f"{path}:{line}: default {role} {name!r} is not defined under `endpoints`")
    return EndpointsFile(path, endpoints, defaults.get("baseline"), defaults.get("candidate"))
