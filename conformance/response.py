"""The data every endpoint returns: :class:`Response`, its :class:`Attempt` s, and the :class:`Fault` vocabulary.

A neutral module on purpose: the SDK client, the recordings, the run cache, the Locust driver, the checks and the
report all speak it, and none of them should have to import an HTTP library (or each other) to do so. A failure is
data too — a response with a ``fault`` — so one endpoint being down never loses the other results of a run.

:class:`Fault` is a ``str`` enum: a fault read back from a JSONL file is the plain string, and compares equal to
the member. Whether a fault says something about the *candidate* or only about the *infrastructure* is decided here,
once (:attr:`Fault.infrastructure`), and the run outcome is computed from those structured counts — never by
scanning messages for words.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, fields
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from conformance.goldens.model import Case


class Fault(StrEnum):
    """Why an answer is missing or unusable. Values are what responses/*.jsonl and recordings store."""

    TIMEOUT = "timeout"                      # no complete answer within timeout_s
    RATE_LIMITED = "rate_limited"            # 429
    SERVER_ERROR = "server_error"            # 500/502/504 and other 5xx, or an error event inside the stream
    UNAVAILABLE_503 = "unavailable_503"      # 503: overloaded, or the deployment has been retired
    CONNECTION = "connection"                # refused / DNS / reset before any byte of the answer
    BAD_RESPONSE = "bad_response"            # 200 but not a chat completion: invalid JSON, no choices
    TRUNCATED_STREAM = "truncated_stream"    # the stream stopped before finish_reason / [DONE]
    AUTH = "auth"                            # 401/403: the key in api_key_env was rejected
    CLIENT_ERROR = "client_error"            # other 4xx: the request itself was refused (bad params)
    RESPONSE_TOO_LARGE = "response_too_large"  # the answer passed max_response_bytes and was cut off
    REDIRECT = "redirect"                    # a redirect to another origin (not followed: it would re-send the prompt)
    RECORDING_MISSING = "recording_missing"  # --baseline recorded: no recording for this case
    RECORDING_STALE = "recording_stale"      # the case changed since it was recorded
    RECORDING_PARAMS = "recording_params"    # recorded with other sampling params: comparing would be meaningless

    @property
    def infrastructure(self) -> bool:
        """True when the fault says nothing about what the model answers (see :data:`INFRASTRUCTURE`)."""
        return self in INFRASTRUCTURE

    @classmethod
    def of(cls, value: str | None) -> Fault | None:
        """The member for a stored value; None for None. An unknown string (a newer harness wrote it) is kept as
        a candidate-side fault: treating it as infrastructure would hide it."""
        if value is None:
            return None
        try:
            return cls(value)
        except ValueError:
            return None


#: Faults that say nothing about answer quality: the endpoint (or the network, or a recording) did not deliver.
#: ``client_error`` (the candidate refuses a request consumers send) and ``response_too_large`` (a runaway answer)
#: are deliberately *not* here — consumers would break on them after the cutover.
INFRASTRUCTURE: frozenset[Fault] = frozenset({
    Fault.TIMEOUT, Fault.RATE_LIMITED, Fault.SERVER_ERROR, Fault.UNAVAILABLE_503, Fault.CONNECTION,
    Fault.BAD_RESPONSE, Fault.TRUNCATED_STREAM, Fault.AUTH, Fault.REDIRECT, Fault.RECORDING_MISSING,
    Fault.RECORDING_STALE, Fault.RECORDING_PARAMS,
})

#: Faults worth another attempt. Timeouts are not retried: the request already used its whole budget.
RETRYABLE: frozenset[Fault] = frozenset({
    Fault.RATE_LIMITED, Fault.SERVER_ERROR, Fault.UNAVAILABLE_503, Fault.CONNECTION, Fault.TRUNCATED_STREAM,
})


def is_infrastructure(fault: str | None) -> bool:
    """Whether a stored fault value is an infrastructure fault (False for None and unknown values)."""
    member = Fault.of(fault)
    return member is not None and member.infrastructure


def classify_status(status: int) -> Fault:
    """Fault class of an HTTP error status — one vocabulary for the SDK client, preflight and the load driver."""
    if status == 429:
        return Fault.RATE_LIMITED
    if status == 503:
        return Fault.UNAVAILABLE_503
    if status in (401, 403):
        return Fault.AUTH
    if 300 <= status < 400:
        return Fault.REDIRECT
    if status >= 500:
        return Fault.SERVER_ERROR
    return Fault.CLIENT_ERROR


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
    """One answer (or failure) of one endpoint to one case.

    Timings (ms from the request's send time, monotonic clock): ``ttfc_ms`` the first chunk of any kind,
    ``ttft_ms`` the first token-bearing chunk, ``e2e_ms`` the last token-bearing chunk.
    """

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
    def infrastructure_fault(self) -> bool:
        """The answer is missing for a reason that says nothing about the model (see :data:`INFRASTRUCTURE`)."""
        return is_infrastructure(self.fault)

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
        data["attempts"] = [Attempt(**{k: v for k, v in a.items() if k in _ATTEMPT_FIELDS})
                            for a in data.get("attempts") or () if isinstance(a, dict)]
        return cls(**{k: v for k, v in data.items() if k in _RESPONSE_FIELD_SET})

    def describe_failure(self) -> str:
        """``server_error after 4 attempts: HTTP 500 ...`` — what a consuming team reads in a failed test."""
        tries = len(self.attempts)
        suffix = f" after {tries} attempt{'s' if tries != 1 else ''}" if tries else ""
        return f"{self.fault}{suffix}: {self.error or 'no detail'}"


_RESPONSE_FIELDS = tuple(f.name for f in fields(Response))
_RESPONSE_FIELD_SET = frozenset(_RESPONSE_FIELDS)
_ATTEMPT_FIELDS = tuple(f.name for f in fields(Attempt))
_encode = json.JSONEncoder(ensure_ascii=False).encode  # what json.dumps(obj, ensure_ascii=False) builds per call
_decode = json.JSONDecoder().decode


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


def read_response_lines(path: Path) -> Iterator[dict[str, Any]]:
    """The answer records of one ``responses/*.jsonl`` file — THE reader of that format (the run cache reloads
    with it, the report falls back to it). A line cut short by a kill, not JSON, or not an object is skipped: that
    request was in flight and ``--resume`` asks it again. ``errors="replace"``: a kill can cut the last line
    inside a multi-byte character (CJK text)."""
    with open(path, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            try:
                record = _decode(line)
            except ValueError:
                continue
            if isinstance(record, dict) and "endpoint" in record and "case_id" in record:
                yield record


def response_files(folder: Path) -> list[Path]:
    """The ``*.jsonl`` files of a run's ``responses/`` folder, in a stable order."""
    return sorted(folder.glob("*.jsonl")) if folder.is_dir() else []
