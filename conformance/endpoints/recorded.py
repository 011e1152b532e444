"""The recorded baseline: answers from a recordings file, each checked against its current case.

The format and the staleness rule live in :mod:`conformance.recordings`; a recording that no longer stands for its
case is a per-case fault (missing, stale, other params), never silently replayed.
"""

from __future__ import annotations

from pathlib import Path

from conformance.goldens.model import Case
from conformance.recordings import read_recordings, recording_problem, stale_cases
from conformance.response import Response, new_response


class RecordedEndpoint:
    """Answers from a recordings file, checking each against the current case."""

    def __init__(self, path: Path, name: str) -> None:
        self.path = path
        self.name = name
        self.meta, self.recordings = read_recordings(path)

    async def complete(self, case: Case, repeat: int = 0) -> Response:
        rec = self.recordings.get(case.id)
        problem = recording_problem(rec, case, self.path)
        if problem is None and rec is not None:
            recorded = Response.from_dict(rec.response)
            recorded.endpoint, recorded.repeat, recorded.source = self.name, repeat, "recorded"
            recorded.fingerprint = case.fingerprint
            return recorded
        resp = new_response(self.name, case, repeat)
        resp.source = "recorded"
        if problem is not None:
            resp.fault, resp.error = problem
        return resp

    async def aclose(self) -> None:
        return None

    def stale(self, cases: list[Case]) -> list[str]:
        """Case ids whose recording no longer matches; plus recordings whose case is gone (orphans)."""
        return stale_cases(self.recordings, cases, self.path)
