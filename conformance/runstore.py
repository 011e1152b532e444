"""The run folder ``reports/<run-id>/`` and its append-only response cache.

Every response is appended to ``responses/<endpoint>.<writer>.jsonl`` and flushed the moment it arrives, so a run
stopped by Ctrl-C (or killed) keeps everything already received, and xdist workers — each with its own writer file,
so no two processes append to one file — reuse each other's answers: one response per
(endpoint, fingerprint, repeat) per run.

Durability, and its one trade-off: ``flush()`` after every answer hands it to the kernel, which keeps it when the
*process* dies (Ctrl-C, SIGKILL, an OOM kill). Only a crash of the *machine* (power loss, kernel panic) can lose
data the kernel has not written to disk yet; ``fsync`` waits for that, and costs 0.3 ms on a quiet disk and 5–6 ms
when other tenants do I/O — on the event loop, where no other response in flight is read meanwhile
(docs/PERFORMANCE.md, F2). So :meth:`RunStore.put` fsyncs when :data:`FSYNC_INTERVAL_S` has passed since the
last fsync, and :meth:`RunStore.close` always. A machine crash can then lose the answers received since the last
fsync — at most about a second's worth (the next answer after that second is synced together with them) — and
``--resume`` asks those again like any answer that never arrived.
"""

from __future__ import annotations

import json
import os
import secrets
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from conformance.redact import Redactor
from conformance.response import Response

Key = tuple[str, str, int]

#: Seconds between two fsyncs of the response files while answers arrive (see the module docstring).
FSYNC_INTERVAL_S = 1.0


def new_run_id() -> str:
    """Sortable and unique: ``20261123-142501-a3f9``."""
    return datetime.now(UTC).strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(2)


class RunStore:
    """Responses of one run, in memory and on disk."""

    def __init__(self, run_dir: Path, writer: str = "main", redactor: Redactor | None = None) -> None:
        self.dir = run_dir
        self.writer = writer
        self.redact = redactor or Redactor()
        self._lock = threading.Lock()
        self._files: dict[str, IO[str]] = {}
        self._unsynced: set[str] = set()  # endpoints whose file has answers written since its last fsync
        self._last_fsync = float("-inf")  # the first answer is synced at once; then at most once per interval
        self._cache: dict[Key, Response] = {}
        (run_dir / "responses").mkdir(parents=True, exist_ok=True)
        self.reload()

    def reload(self) -> int:
        """Read every writer's files (other workers', or an earlier process of a resumed run)."""
        n = 0
        for path in sorted((self.dir / "responses").glob("*.jsonl")):
            # errors="replace": a kill can cut the last line inside a multi-byte character (CJK text)
            with open(path, encoding="utf-8", errors="replace") as fh:
                for line in fh:
                    try:
                        resp = Response.from_dict(json.loads(line))
                    except (ValueError, TypeError):
                        continue  # a line cut short by a kill: that request was in flight, ask again
                    prev = self._cache.get(resp.key)
                    if prev is None or (resp.ok and not prev.ok):
                        self._cache[resp.key] = resp
                        n += 1
        return n

    def get(self, endpoint: str, fingerprint: str, repeat: int = 0) -> Response | None:
        """A cached answer; failed answers are not reused so a resumed run asks again."""
        resp = self._cache.get((endpoint, fingerprint, repeat))
        return resp if resp is not None and resp.ok else None

    def put(self, resp: Response) -> None:
        """Keep ``resp`` and append it to its endpoint's file: written and flushed now, fsynced within about
        :data:`FSYNC_INTERVAL_S` (or at :meth:`close`)."""
        line = self.redact(resp.to_json()) + "\n"
        with self._lock:
            self._cache[resp.key] = resp
            fh = self._files.get(resp.endpoint)
            if fh is None:
                fh = self._open(resp.endpoint)
            fh.write(line)
            fh.flush()
            self._unsynced.add(resp.endpoint)
            if time.monotonic() - self._last_fsync >= FSYNC_INTERVAL_S:
                self._fsync()

    def _open(self, endpoint: str) -> IO[str]:
        safe = endpoint.replace("/", "_")
        path = self.dir / "responses" / f"{safe}.{self.writer}.jsonl"
        fh = open(path, "a", encoding="utf-8")  # noqa: SIM115 - kept open for the run, closed in close()
        if fh.tell() and not _ends_with_newline(path):
            fh.write("\n")  # after a kill the file ends mid-line: never glue a new answer onto it
        self._files[endpoint] = fh
        return fh

    def _fsync(self) -> None:
        """fsync every file written since the last fsync (caller holds the lock; the files are flushed)."""
        for endpoint in self._unsynced:
            os.fsync(self._files[endpoint].fileno())
        self._unsynced.clear()
        self._last_fsync = time.monotonic()

    def all(self) -> list[Response]:
        return list(self._cache.values())

    def close(self) -> None:
        """fsync what is not on disk yet, and close the files; ``put`` reopens them if called again."""
        with self._lock:
            self._fsync()
            for fh in self._files.values():
                fh.close()
            self._files.clear()


def _ends_with_newline(path: Path) -> bool:
    with open(path, "rb") as fh:
        fh.seek(-1, os.SEEK_END)
        return fh.read(1) == b"\n"
