"""Recordings: baseline answers captured before cutover, replayed after the old endpoint answers 503.

File format (``goldens/<system>/recordings/<endpoint>.jsonl``, reviewed in the PR diff like any golden): the first
line is ``{"_meta": {...}}`` (endpoint, model served, server, harness version, time); then one line per case, sorted
by case id, each provenance-stamped: case id, request fingerprint, prompt fingerprint, sampling params (seed
included), the case's engine-specific ``extra_body`` when it has one, served model id, server, timestamp, and the
response.

A recording is used only when it still matches its case: a changed prompt makes it *stale*, other sampling params
make it *incomparable* — both are reported per case, never silently replayed.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from conformance.endpoints.base import Response, new_response
from conformance.errors import RecordingError
from conformance.goldens.model import Case, canonical_json
from conformance.redact import Redactor

FORMAT = 1


@dataclass(frozen=True)
class Recording:
    case_id: str
    fingerprint: str
    prompt_fingerprint: str
    params: dict[str, Any]
    model: str | None
    server: str | None
    recorded_at: str
    response: dict[str, Any]


def entry(resp: Response, case: Case, served_model: str | None) -> dict[str, Any]:
    """One provenance-stamped recordings line."""
    return {
        "case_id": case.id,
        "fingerprint": case.fingerprint,
        "prompt_fingerprint": case.prompt_fingerprint,
        "params": case.sampling_params,
        "seed": case.params.get("seed"),
        **({"extra_body": case.extra_body} if case.extra_body else {}),
        "endpoint": resp.endpoint,
        "model": served_model or resp.model,
        "server": resp.server,
        "recorded_at": resp.created_at or datetime.now(UTC).isoformat(timespec="seconds"),
        "response": resp.to_dict(),
    }


def write_recordings(path: Path, meta: dict[str, Any], entries: list[dict[str, Any]], redactor: Redactor) -> None:
    """Write-then-rename: a crash mid-write never leaves a half recordings file behind."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    lines = [json.dumps({"_meta": {"format": FORMAT, **meta}}, ensure_ascii=False, sort_keys=True)]
    lines += [json.dumps(e, ensure_ascii=False, sort_keys=True) for e in sorted(entries, key=lambda e: e["case_id"])]
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(redactor("\n".join(lines)) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def read_recordings(path: Path) -> tuple[dict[str, Any], dict[str, Recording]]:
    """Meta and recordings by case id; a corrupt line is an error naming ``path:line``."""
    if not path.is_file():
        raise RecordingError(f"no recordings at {path}")
    meta: dict[str, Any] = {}
    out: dict[str, Recording] = {}
    with open(path, "rb") as fh:  # bytes: json.loads decodes them, so bad UTF-8 is a corrupt line, not a crash
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                data = json.loads(line)
                if "_meta" in data:
                    meta = data["_meta"]
                    continue
                rec = Recording(
                    case_id=data["case_id"], fingerprint=data["fingerprint"],
                    prompt_fingerprint=data["prompt_fingerprint"], params=data["params"],
                    model=data.get("model"), server=data.get("server"), recorded_at=data["recorded_at"],
                    response=data["response"],
                )
            except (ValueError, KeyError, TypeError) as exc:
                raise RecordingError(f"{path}:{lineno}: corrupt recording line ({exc})") from None
            out[rec.case_id] = rec
    return meta, out


class RecordedEndpoint:
    """Answers from a recordings file, checking each against the current case."""

    def __init__(self, path: Path, name: str) -> None:
        self.path = path
        self.name = name
        self.meta, self.recordings = read_recordings(path)

    async def complete(self, case: Case, repeat: int = 0) -> Response:
        rec = self.recordings.get(case.id)
        resp = new_response(self.name, case, repeat)
        resp.source = "recorded"
        if rec is None:
            resp.fault = "recording_missing"
            resp.error = f"case {case.id!r} has no recording in {self.path}; re-record the baseline before cutover"
        elif rec.prompt_fingerprint != case.prompt_fingerprint:
            resp.fault = "recording_stale"
            resp.error = (f"recording of {case.id!r} in {self.path} is stale: the case's messages/tools/extra_body "
                          f"changed since {rec.recorded_at} "
                          f"(fingerprint {rec.prompt_fingerprint} ≠ {case.prompt_fingerprint})")
        elif canonical_json(rec.params) != canonical_json(case.sampling_params):
            resp.fault = "recording_params"
            resp.error = (f"recording of {case.id!r} was made with sampling params {canonical_json(rec.params)}, "
                          f"the case now uses {canonical_json(case.sampling_params)}; refusing to compare")
        else:
            recorded = Response.from_dict(rec.response)
            recorded.endpoint, recorded.repeat, recorded.source = self.name, repeat, "recorded"
            recorded.fingerprint = case.fingerprint
            return recorded
        return resp

    async def aclose(self) -> None:
        return None

    def stale(self, cases: list[Case]) -> list[str]:
        """Case ids whose recording no longer matches; plus recordings whose case is gone (orphans)."""
        ids = {c.id for c in cases}
        out = [c.id for c in cases if c.id in self.recordings
               and self.recordings[c.id].prompt_fingerprint != c.prompt_fingerprint]
        out += [f"{cid} (orphan: case deleted)" for cid in sorted(set(self.recordings) - ids)]
        return out
