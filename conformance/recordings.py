"""Recordings: the format, and the rule that says whether a recording still stands for its case.

Baseline answers are captured before cutover and replayed after the old endpoint answers 503. This is the one
module that knows the file format and the staleness rule; ``conformance record`` writes with it, the recorded
endpoint (:mod:`conformance.endpoints.recorded`) and ``conformance lint`` read with it.

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

from conformance.errors import RecordingError
from conformance.goldens.model import Case, canonical_json
from conformance.redact import Redactor
from conformance.response import Fault, Response

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


def recording_problem(rec: Recording | None, case: Case, path: Path) -> tuple[Fault, str] | None:
    """Why ``rec`` cannot stand for ``case`` (missing, stale, other sampling params), or None when it can — the
    one staleness rule, for replay and lint alike."""
    if rec is None:
        return Fault.RECORDING_MISSING, (f"case {case.id!r} has no recording in {path}; re-record the baseline "
                                         "before cutover")
    if rec.prompt_fingerprint != case.prompt_fingerprint:
        return Fault.RECORDING_STALE, (f"recording of {case.id!r} in {path} is stale: the case's "
                                       f"messages/tools/extra_body changed since {rec.recorded_at} "
                                       f"(fingerprint {rec.prompt_fingerprint} ≠ {case.prompt_fingerprint})")
    if canonical_json(rec.params) != canonical_json(case.sampling_params):
        return Fault.RECORDING_PARAMS, (f"recording of {case.id!r} was made with sampling params "
                                        f"{canonical_json(rec.params)}, the case now uses "
                                        f"{canonical_json(case.sampling_params)}; refusing to compare")
    return None


def stale_cases(recordings: dict[str, Recording], cases: list[Case], path: Path) -> list[str]:
    """Case ids whose recording is stale or made with other params; plus recordings whose case is gone."""
    ids = {c.id for c in cases}
    out = [c.id for c in cases if c.id in recordings
           and recording_problem(recordings[c.id], c, path) is not None]
    out += [f"{cid} (orphan: case deleted)" for cid in sorted(set(recordings) - ids)]
    return out

