"""Exceptions a user can act on.

Hierarchy::

    ConformanceError            base: print ``str(exc)`` and stop — never a traceback for bad input
    ├── GoldenError             a golden set / suite.yaml / glossary problem; carries ``path:line``
    ├── ConfigError             endpoints.yaml or command-line selection problem (unknown --baseline ...)
    ├── EndpointError           an endpoint cannot be used (unreachable, 401, model not served, retired)
    │   └── RetiredEndpoint     the endpoint answers 503 on /v1/models: replay recordings instead
    └── RecordingError          recordings missing, stale, or made with other sampling params

Every message names the file or endpoint it is about, and says what to do next. ``outcome`` says what a run that
stops on the error reports (docs/VERDICTS.md): ``config_error`` for what a person must fix in a file or on the
command line, ``infrastructure`` for an endpoint that is down, retired or unreachable.
"""

from __future__ import annotations

from pathlib import Path


class ConformanceError(Exception):
    """Base class; ``str()`` is a complete, actionable message."""

    outcome = "config_error"


class GoldenError(ConformanceError):
    """A problem in a golden file, formatted as ``path:line: message`` like a compiler error."""

    def __init__(self, path: str | Path, line: int | None, message: str) -> None:
        self.path = str(path)
        self.line = line
        self.message = message
        super().__init__(self.location + ": " + message)

    @property
    def location(self) -> str:
        return f"{self.path}:{self.line}" if self.line else self.path


class ConfigError(ConformanceError):
    """endpoints.yaml or a command-line selection is wrong."""


class EndpointError(ConformanceError):
    """An endpoint cannot be used for this run."""

    def __init__(self, endpoint: str, message: str, outcome: str = "infrastructure") -> None:
        self.endpoint = endpoint
        self.outcome = outcome
        super().__init__(f"endpoint {endpoint!r}: {message}")


class RetiredEndpoint(EndpointError):
    """The endpoint answers 503: it has been retired (or is down for maintenance)."""


class RecordingError(ConformanceError):
    """Recordings cannot be used as asked (missing, stale, or different sampling params)."""
