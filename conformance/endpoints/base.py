"""What every endpoint returns, and the protocol every endpoint implements.

A :class:`Response` is the unit everything downstream consumes: checks read ``text``/``tool_calls``, gates read
timings and faults, recordings and the run cache serialise it with :meth:`Response.to_dict`. Failures are data too
— a response with a ``fault`` class — so one endpoint being down never loses the other results of a run.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal, Protocol

from conformance.goldens.model import Case

Fault = Literal[
    "timeout",           # no complete answer within timeout_s
    "rate_limited",      # 429
    "server_error",      # 500/502/504 and other 5xx, or an error event inside the stream
    "unavailable_503",   # 503: overloaded, or the deployment has been retired
    "connection",        # refused / DNS / reset before any byte of the answer
    "bad_response",      # 200 but not a chat completion: invalid JSON, wrong content type, no choices
    "truncated_stream",  # the stream stopped before finish_reason / [DONE] (reset mid-stream)
    "auth",              # 401/403: the key in api_key_env was rejected
    "client_error",      # other 4xx: the request itself was refused (bad params, unknown model)
    "recording_missing", # --baseline recorded: no recording for this case
    "recording_stale",   # the case changed since it was recorded (prompt fingerprint differs)
    "recording_params",  # recorded with other sampling params: comparing would be meaningless
]

#: Faults worth another attempt. Timeouts are not retried: the request already used its whole budget.
RETRYABLE: frozenset[str] = frozenset(
    {"rate_limited", "server_error", "unavailable_503", "connection", "truncated_stream"}
)


def classify_status(status: int) -> str:
    """Fault class of an HTTP error status — one vocabulary for the SDK client, preflight and the load driver
    (this module imports no HTTP library, so the Locust process can use it too)."""
    if status == 429:
        return "rate_limited"
    if status == 503:
        return "unavailable_503"
    if status in (401, 403):
        return "auth"
    if status >= 500:
        return "server_error"
    return "client_error"


@dataclass
class Attempt:
    """One try at a request — every one is kept, so a flaky endpoint is visible even when a retry succeeded."""

    n: int
    elapsed_ms: float
    status: int | None = None
    fault: str | None = None
    error: str | None = None
    retry_after_s: float | None = None
    backoff_s: float | None = None


@dataclass
class Response:
    """One answer (or failure) of one endpoint to one case."""

    endpoint: str
    system: str
    case_id: str
    fingerprint: str
    prompt_fingerprint: str
    repeat: int = 0
    text: str | None = None
    reasoning: str | None = None
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    finish_reason: str | None = None
    usage: dict[str, Any] | None = None
    model: str | None = None
    server: str | None = None
    status: int | None = None
    fault: str | None = None
    error: str | None = None
    queue_ms: float = 0.0
    ttfc_ms: float | None = None
    ttft_ms: float | None = None
    e2e_ms: float | None = None
    n_chunks: int = 0
    params: dict[str, Any] = field(default_factory=dict)
    attempts: list[Attempt] = field(default_factory=list)
    created_at: str = ""
    source: str = "live"

    @property
    def ok(self) -> bool:
        return self.fault is None

    @property
    def key(self) -> tuple[str, str, int]:
        return (self.endpoint, self.fingerprint, self.repeat)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able data, deep-copied: safe to keep or modify."""
        return asdict(self)

    def to_json(self) -> str:
        """``json.dumps(self.to_dict(), ensure_ascii=False)``, byte for byte, without the deep copy.

        RunStore writes one line per answer; :func:`dataclasses.asdict` copies every nested list and dict only
        for ``json`` to read them once. A shallow mapping (attempts as mappings too) in field order serialises to
        the same keys, values and order.
        """
        data = {name: getattr(self, name) for name in _RESPONSE_FIELDS}
        data["attempts"] = [{name: getattr(a, name) for name in _ATTEMPT_FIELDS} for a in self.attempts]
        return _encode(data)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Response:
        data = dict(data)
        data["attempts"] = [Attempt(**a) for a in data.get("attempts", [])]
        known = cls.__dataclass_fields__
        return cls(**{k: v for k, v in data.items() if k in known})

    def describe_failure(self) -> str:
        """``server_error after 4 attempts: HTTP 500 ...`` — what a consuming team reads in a failed test."""
        tries = len(self.attempts)
        suffix = f" after {tries} attempt{'s' if tries != 1 else ''}" if tries else ""
        return f"{self.fault}{suffix}: {self.error or 'no detail'}"


_RESPONSE_FIELDS = tuple(f.name for f in fields(Response))
_ATTEMPT_FIELDS = tuple(f.name for f in fields(Attempt))
_encode = json.JSONEncoder(ensure_ascii=False).encode  # what json.dumps(obj, ensure_ascii=False) builds per call


class Endpoint(Protocol):
    """Anything that answers cases: the live OpenAI-compatible client, or recordings."""

    name: str

    async def complete(self, case: Case, repeat: int = 0) -> Response: ...

    async def aclose(self) -> None: ...


def new_response(endpoint: str, case: Case, repeat: int = 0) -> Response:
    return Response(
        endpoint=endpoint,
        system=case.system,
        case_id=case.id,
        fingerprint=case.fingerprint,
        prompt_fingerprint=case.prompt_fingerprint,
        repeat=repeat,
        params=dict(case.params),
    )
