"""Write a run-folder file so that a reader only ever sees the old content or the whole new one.

Why: ``summary.json`` is read by the next run (the gate trend), by ``conformance report`` and by CI. Written in
place, a process killed half-way, or a full disk, left it cut short — and a cut-short summary used to stop the next
run's report. Writing a temporary file beside it and renaming it over the old one is atomic on POSIX (and
replaces on Windows); on failure the temporary file is removed and the old file stays as it was. No fsync: the
threat is a killed process or a full disk, not a power cut, and the report files are written at every session end.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def write_text_atomic(path: Path, text: str, encoding: str = "utf-8") -> None:
    """Write ``text`` to ``path`` through a temporary file in the same folder and a rename."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        with open(tmp, "w", encoding=encoding) as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
