"""Preflight: ask each selected endpoint what it really serves, and whether it still answers, before the run.

An audit once found the "retired" model name had never been registered at all: hundreds of tests failing with 404
teach nobody anything. One ``GET /v1/models`` per endpoint turns that into one message — what is served, and the
nearest names (rapidfuzz) to what was configured.

*Retired* means the chat endpoint answers 503, not that ``/v1/models`` does: a gateway may keep listing a model it
no longer serves. So after the model list, a **one-token probe** (``max_tokens: 1``, header
``X-Conformance-Probe: 1`` so gateways can tell it from traffic) asks the chat endpoint itself; a 503 there — after
the endpoint's own retry policy — is "retired", and the caller falls back to recordings.

Both requests use the endpoint's own ``timeout_s``, ``max_retries`` and backoff (honouring ``Retry-After``), so a
busy server is waited for as a replay would wait, not stopped after a fixed 30 s.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import openai
from rapidfuzz import fuzz, process, utils

from conformance.endpoints.config import EndpointConfig
from conformance.errors import ConfigError
from conformance.redact import Redactor
from conformance.response import RETRYABLE, Fault, classify_status

T = TypeVar("T")

#: The header the probe carries (conformance.testing.faultserver answers it from its probe script).
PROBE_HEADER = "X-Conformance-Probe"


@dataclass(frozen=True)
class PreflightResult:
    endpoint: str
    model: str
    ok: bool
    status: str  # ok | model_missing | retired | unreachable | auth | error | unchecked
    served: tuple[str, ...] = ()
    suggestions: tuple[str, ...] = ()
    server: str | None = None
    message: str = ""
    owned_by: dict[str, str] = field(default_factory=dict)
    probed: bool = False

    @property
    def outcome(self) -> str:
        """What a run that stops on this result reports: a wrong name or key is a config error, an endpoint that
        does not answer is infrastructure."""
        return "config_error" if self.status in ("model_missing", "auth") else "infrastructure"


def suggest(configured: str, served: list[str], limit: int = 3, cutoff: float = 50.0) -> list[str]:
    """Closest served names, case/punctuation-insensitive (``Qwen3-Next-80B-Local`` ~ ``qwen3_next_80b_optimized``)."""
    matches = process.extract(configured, served, scorer=fuzz.WRatio, processor=utils.default_process,
                              limit=limit, score_cutoff=cutoff)
    return [m[0] for m in matches]


async def _with_retries(cfg: EndpointConfig, call: Callable[[], Awaitable[T]]) -> T:
    """``call`` under the endpoint's retry policy: retryable HTTP statuses and connection errors are retried with
    bounded exponential backoff (``Retry-After`` honoured); timeouts are not (the budget is spent)."""
    for n in range(1, cfg.max_retries + 2):
        try:
            return await call()
        except openai.APIStatusError as exc:
            if classify_status(exc.status_code) not in RETRYABLE or n > cfg.max_retries:
                raise
            from conformance.endpoints.openai import parse_retry_after

            after = parse_retry_after(exc.response.headers.get("retry-after")) if exc.response else None
            delay = min(after, cfg.max_backoff_s) if after is not None else min(cfg.backoff_s * 2 ** (n - 1),
                                                                                 cfg.max_backoff_s)
        except openai.APIConnectionError as exc:
            if isinstance(exc, openai.APITimeoutError) or n > cfg.max_retries:
                raise
            delay = min(cfg.backoff_s * 2 ** (n - 1), cfg.max_backoff_s)
        await asyncio.sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover - the loop always returns or raises


def _status_result(cfg: EndpointConfig, exc: openai.APIStatusError, what: str, redact: Redactor) -> PreflightResult:
    where = cfg.base_url
    kind = classify_status(exc.status_code)
    if kind == Fault.UNAVAILABLE_503:
        return PreflightResult(cfg.name, cfg.model, False, "retired", probed=what != "/models",
                               message=f"{where} answers 503 on {what}: the deployment looks retired")
    if kind == Fault.AUTH:
        key = f"the key in ${cfg.api_key_env}" if cfg.api_key_env else "requests without a key"
        return PreflightResult(cfg.name, cfg.model, False, "auth",
                               message=f"{where} rejected {key} (HTTP {exc.status_code}); check api_key_env")
    return PreflightResult(cfg.name, cfg.model, False, "error",
                           message=redact(f"{where} {what} answered HTTP {exc.status_code}: {exc.message}"[:600]))


async def check(cfg: EndpointConfig, redactor: Redactor | None = None, *, probe: bool = True) -> PreflightResult:
    """Preflight one endpoint; never raises for endpoint problems — they are results."""
    redact = redactor or Redactor([cfg.secret() or ""])
    try:
        client = openai.AsyncOpenAI(base_url=cfg.base_url, api_key=cfg.api_key(), max_retries=0,
                                    timeout=openai.Timeout(cfg.timeout_s, connect=cfg.connect_timeout_s),
                                    http_client=openai.DefaultAsyncHttpxClient(follow_redirects=False))
    except ConfigError as exc:  # the key variable is not set
        return PreflightResult(cfg.name, cfg.model, False, "auth", message=str(exc))
    except openai.OpenAIError as exc:
        return PreflightResult(cfg.name, cfg.model, False, "error", message=redact(str(exc)))
    try:
        listed = await _list_models(cfg, client, redact)
        if not listed.ok or not probe:
            return listed
        probed = await _probe(cfg, client, redact)
        return probed if probed is not None else dataclasses.replace(listed, probed=True)
    finally:
        await client.close()


async def _list_models(cfg: EndpointConfig, client: openai.AsyncOpenAI, redact: Redactor) -> PreflightResult:
    where = cfg.base_url
    try:
        raw = await _with_retries(cfg, lambda: client.models.with_raw_response.list())
        page: Any = raw.parse()
        served = [m.id for m in page.data]
        owned = {m.id: str(getattr(m, "owned_by", "") or "") for m in page.data}
        server = raw.headers.get("server")
    except openai.APIStatusError as exc:
        if exc.status_code == 404:
            return PreflightResult(cfg.name, cfg.model, True, "unchecked",
                                   message=f"{where} has no /models route; the model name was not verified")
        return _status_result(cfg, exc, "/models", redact)
    except openai.APIConnectionError as exc:  # timeouts included
        return PreflightResult(cfg.name, cfg.model, False, "unreachable",
                               message=redact(f"cannot reach {where} ({type(exc).__name__}: {exc})"))
    except Exception as exc:  # invalid JSON, wrong shape: the server is not OpenAI-compatible
        detail = f"{type(exc).__name__}: {exc}"
        return PreflightResult(cfg.name, cfg.model, False, "error",
                               message=redact(f"{where}/models did not return a model list ({detail})"[:600]))
    if cfg.model in served:
        return PreflightResult(cfg.name, cfg.model, True, "ok", tuple(served), server=server, owned_by=owned)
    near = suggest(cfg.model, served)
    hint = f" — did you mean {' or '.join(repr(n) for n in near)}?" if near else ""
    listing = ", ".join(repr(s) for s in served[:20]) or "(nothing)"
    more = f" and {len(served) - 20} more" if len(served) > 20 else ""
    msg = f"model {cfg.model!r} is not served by {where}; it serves {listing}{more}{hint}"
    return PreflightResult(cfg.name, cfg.model, False, "model_missing", tuple(served), tuple(near), server, msg, owned)


async def _probe(cfg: EndpointConfig, client: openai.AsyncOpenAI, redact: Redactor) -> PreflightResult | None:
    """The one-token chat request; None when it was answered (any answer: the endpoint serves chat)."""
    try:
        await _with_retries(cfg, lambda: client.chat.completions.create(
            model=cfg.model, messages=[{"role": "user", "content": "ping"}], max_tokens=1, stream=False,
            extra_headers={PROBE_HEADER: "1"}, extra_body=dict(cfg.extra_body) or None))
    except openai.APIStatusError as exc:
        return _status_result(cfg, exc, "a one-token chat request", redact)
    except openai.APIConnectionError as exc:
        return PreflightResult(cfg.name, cfg.model, False, "unreachable", probed=True,
                               message=redact(f"{cfg.base_url} lists the model but a one-token chat request "
                                              f"failed ({type(exc).__name__}: {exc})"[:600]))
    except Exception:  # an answer we cannot parse is the replay's business (bad_response), not preflight's
        return None
    return None


def check_all(cfgs: list[EndpointConfig], redactor: Redactor | None = None, *,
              probe: bool = True) -> list[PreflightResult]:
    """Preflight several endpoints concurrently (from synchronous code)."""

    async def run() -> list[PreflightResult]:
        return list(await asyncio.gather(*(check(c, redactor, probe=probe) for c in cfgs)))

    return asyncio.run(run())
