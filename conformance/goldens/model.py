"""Golden cases as immutable values, and their request fingerprints.

A case's *request* (messages, tools, sampling params) is what goes on the wire; its fingerprint keys the response
cache and the recordings. Two fingerprints exist on purpose:

- ``fingerprint``: the whole request, params included — one response per (endpoint, fingerprint) per run;
- ``prompt_fingerprint``: the request without sampling params — a recording whose prompt fingerprint no longer
  matches its case is *stale*, while one whose params differ was made *with other sampling params*; the two are
  different mistakes and get different messages.

A case's ``extra_body`` (engine-specific fields such as vLLM's ``structured_outputs``) goes on the wire next to the
standard fields, so it is part of both fingerprints: it shapes the output like ``response_format`` does, and an
answer constrained one way must never stand in for one constrained another way.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# canonical_json is re-exported: callers (endpoints/recorded.py) compare recordings' params by it
from conformance.canonical import canonical_json as canonical_json
from conformance.canonical import digest

#: Applied under every set's ``defaults.params``: deterministic decoding so the noise floor is ~0.
DEFAULT_PARAMS: dict[str, Any] = {"temperature": 0, "max_tokens": 256, "seed": 42}

# Params that shape the *output format* rather than the sampling: they belong to the prompt fingerprint.
_FORMAT_PARAMS = ("response_format", "tool_choice", "parallel_tool_calls", "stop")


@dataclass(frozen=True)
class Expect:
    """Gold expectations of one case; all optional. ``raw`` keeps the YAML mapping for checks to read."""

    json_schema: str | None = None
    tool_calls: tuple[dict[str, Any], ...] | None = None
    label: str | None = None
    terms_required: tuple[str, ...] = ()
    terms_forbidden: tuple[str, ...] = ()
    reference: str | None = None
    must_include: tuple[str, ...] = ()
    must_not_include: tuple[str, ...] = ()
    raw: dict[str, Any] = field(default_factory=dict, compare=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Expect:
        data = dict(data or {})
        terms = data.get("terms") or {}
        calls = data.get("tool_calls")
        return cls(
            json_schema=data.get("json_schema"),
            tool_calls=tuple(calls) if calls is not None else None,
            label=data.get("label"),
            terms_required=tuple(terms.get("required", ())),
            terms_forbidden=tuple(terms.get("forbidden", ())),
            reference=data.get("reference"),
            must_include=tuple(data.get("must_include", ())),
            must_not_include=tuple(data.get("must_not_include", ())),
            raw=data,
        )


@dataclass(frozen=True)
class Case:
    """One golden case, with defaults already applied."""

    system: str
    set_name: str
    id: str
    messages: tuple[dict[str, Any], ...]
    params: dict[str, Any]
    tools: tuple[dict[str, Any], ...] = ()
    tags: tuple[str, ...] = ()
    expect: Expect = field(default_factory=Expect)
    path: Path = Path()
    line: int = 0
    extra_body: dict[str, Any] = field(default_factory=dict)

    @property
    def location(self) -> str:
        return f"{self.path}:{self.line}"

    def request(self) -> dict[str, Any]:
        """The body of /v1/chat/completions without ``model`` and ``stream`` (the endpoint adds those).

        ``extra_body`` fields sit at the top level, as the server receives them; the golden schema keeps their names
        apart from the standard fields', so neither overrides the other."""
        body: dict[str, Any] = {"messages": [dict(m) for m in self.messages], **self.params}
        if self.tools:
            body["tools"] = [dict(t) for t in self.tools]
        if self.extra_body:
            body.update(self.extra_body)
        return body

    @property
    def sampling_params(self) -> dict[str, Any]:
        """Params that change how the model samples (compared against recordings' provenance)."""
        return {k: v for k, v in self.params.items() if k not in _FORMAT_PARAMS}

    # Cached: a case is immutable, and a replayed answer reads both fingerprints several times (cache lookup,
    # Response, recordings) — ~5 µs of canonical JSON + SHA-256 each (docs/PERFORMANCE.md, F3). cached_property
    # writes the instance __dict__ directly, which a frozen dataclass allows; eq/repr/replace ignore it.
    @functools.cached_property
    def fingerprint(self) -> str:
        return digest(self.request())

    @functools.cached_property
    def prompt_fingerprint(self) -> str:
        body = self.request()
        for k in self.sampling_params:
            body.pop(k, None)
        return digest(body)


@dataclass(frozen=True)
class GoldenSet:
    """One ``goldens/<system>/<file>.yaml``."""

    system: str
    name: str
    owner: str
    path: Path
    cases: tuple[Case, ...]
    description: str = ""
