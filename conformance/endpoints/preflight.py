"""Preflight: ask each selected endpoint what it really serves before replaying anything.

An audit once found the "retired" model name had never been registered at all: hundreds of tests failing with 404
teach nobody anything. One ``GET /v1/models`` per endpoint turns that into one message — what is served, and the
nearest names (rapidfuzz) to what was configured. A 503 means the deployment is retired (or down): the caller then
falls back to recordings.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import openai
from rapidfuzz import fuzz, process, utils

from conformance.endpoints.base import classify_status
from conformance.endpoints.config import EndpointConfig
from conformance.errors import ConfigError
from conformance.redact import Redactor


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


def suggest(configured: str, served: list[str], limit: int = 3, cutoff: float = 50.0) -> list[str]:
    """Closest served names, case/punctuation-insensitive (``Qwen3-Next-80B-Local`` ~ ``qwen3_next_80b_optimized``)."""
    matches = process.extract(configured, served, scorer=fuzz.WRatio, processor=utils.default_process,
                              limit=limit, score_cutoff=cutoff)
    return [m[0] for m in matches]


async def check(cfg: EndpointConfig, redactor: Redactor | None = None) -> PreflightResult:
    """Preflight one endpoint; never raises for endpoint problems — they are results."""
    redact = redactor or Redactor([cfg.secret() or ""])
    where = f"{cfg.base_url}"
    try:
        client = openai.AsyncOpenAI(base_url=cfg.base_url, api_key=cfg.api_key(), max_retries=0,
                                    timeout=openai.Timeout(min(cfg.timeout_s, 30.0), connect=cfg.connect_timeout_s))
    except ConfigError as exc:  # the key variable is not set
        return PreflightResult(cfg.name, cfg.model, False, "auth", message=str(exc))
    except openai.OpenAIError as exc:
        return PreflightResult(cfg.name, cfg.model, False, "error", message=redact(str(exc)))
    try:
        raw = await client.models.with_raw_response.list()
        page = raw.parse()
        served = [m.id for m in page.data]
        owned = {m.id: str(getattr(m, "owned_by", "") or "") for m in page.data}
        server = raw.headers.get("server")
    except openai.APIStatusError as exc:
        kind = classify_status(exc.status_code)
        if kind == "unavailable_503":
            return PreflightResult(cfg.name, cfg.model, False, "retired",
                                   message=f"{where} answers 503 on /models: the deployment looks retired")
        if kind == "auth":
            key = f"the key in ${cfg.api_key_env}" if cfg.api_key_env else "requests without a key"
            return PreflightResult(cfg.name, cfg.model, False, "auth",
                                   message=f"{where} rejected {key} (HTTP {exc.status_code}); check api_key_env")
        if exc.status_code == 404:
            return PreflightResult(cfg.name, cfg.model, True, "unchecked",
                                   message=f"{where} has no /models route; the model name was not verified")
        return PreflightResult(cfg.name, cfg.model, False, "error",
                               message=redact(f"{where}/models answered HTTP {exc.status_code}: {exc.message}"))
    except (openai.APIConnectionError, openai.APITimeoutError) as exc:
        return PreflightResult(cfg.name, cfg.model, False, "unreachable",
                               message=redact(f"cannot reach {where} ({type(exc).__name__}: {exc})"))
    except Exception as exc:  # invalid JSON, wrong shape: the server is not OpenAI-compatible
        detail = f"{type(exc).__name__}: {exc}"
        return PreflightResult(cfg.name, cfg.model, False, "error",
                               message=redact(f"{where}/models did not return a model list ({detail})"))
    finally:
        await client.close()
    if cfg.model in served:
        return PreflightResult(cfg.name, cfg.model, True, "ok", tuple(served), server=server, owned_by=owned)
    near = suggest(cfg.model, served)
    hint = f" — did you mean {' or '.join(repr(n) for n in near)}?" if near else ""
    listing = ", ".join(repr(s) for s in served[:20]) or "(nothing)"
    more = f" and {len(served) - 20} more" if len(served) > 20 else ""
    msg = f"model {cfg.model!r} is not served by {where}; it serves {listing}{more}{hint}"
    return PreflightResult(cfg.name, cfg.model, False, "model_missing", tuple(served), tuple(near), server, msg, owned)


def check_all(cfgs: list[EndpointConfig], redactor: Redactor | None = None) -> list[PreflightResult]:
    """Preflight several endpoints concurrently (from synchronous code)."""

    async def run() -> list[PreflightResult]:
        return list(await asyncio.gather(*(check(c, redactor) for c in cfgs)))

    return asyncio.run(run())
