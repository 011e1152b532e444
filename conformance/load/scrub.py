"""Keys out of everything a load run writes: redaction inside the Locust process, and a backstop after it.

Why both: an endpoint may echo the key it was sent — in an answer, an error body, a response header that ends up in
an error message — and the Locust process writes those into ``raw/records-*.jsonl``, its failure messages
(``locust_failures.csv``, ``locust.html``) and its log (``locust.log``). The Locust process redacts them itself,
before anything is written (:func:`locust_redactor`, :class:`RedactingStream`); the runner then scrubs every file
in the run folder once the process has ended (:func:`scrub_folder`), for whatever Locust itself wrote that we
do not control (its exception tables, a traceback).

The secrets reach the Locust process through its environment (:data:`SECRETS_ENV`, a JSON list), never its
command line, which every user of the machine can read in ``ps``; the key it sends is read from the variable the
plan names, as before. Patterns (``Bearer …``, ``sk-…``) are those of :class:`conformance.redact.Redactor`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import IO, Any

from conformance.redact import Redactor

#: Environment variable holding the exact secrets (a JSON list of strings) the Locust process must never write.
SECRETS_ENV = "CONFORMANCE_LOAD_SECRETS"


def secrets_env(secrets: Iterable[str | None]) -> dict[str, str]:
    """The environment entry that hands ``secrets`` (empty ones dropped) to the Locust process."""
    return {SECRETS_ENV: json.dumps(sorted({s for s in secrets if s}))}


def locust_redactor(environ: Mapping[str, str], api_key_env: str | None) -> Redactor:
    """Inside the Locust process: a Redactor for the key it sends (``api_key_env``) and every secret the runner
    handed over in :data:`SECRETS_ENV`. A malformed list is ignored: the patterns and the own key still apply."""
    try:
        given = json.loads(environ.get(SECRETS_ENV) or "[]")
    except ValueError:
        given = []
    secrets = [s for s in given if isinstance(s, str)] if isinstance(given, list) else []
    if api_key_env and environ.get(api_key_env):
        secrets.append(environ[api_key_env])
    return Redactor(secrets)


class RedactingStream:
    """A text stream that redacts every ``write`` before passing it on (the Locust process' stdout and stderr).

    Installed before Locust configures logging, so its handlers, its summary tables, gevent's error reports and
    Python's tracebacks all go through it. A secret split across two writes would pass; log records and lines are
    written whole."""

    def __init__(self, stream: IO[str], redact: Redactor) -> None:
        self._stream = stream
        self._redact = redact

    def write(self, text: str) -> int:
        self._stream.write(self._redact(text))
        return len(text)

    def writelines(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.write(line)

    def __getattr__(self, name: str) -> Any:  # flush, fileno, isatty, encoding …
        return getattr(self._stream, name)


def scrub_file(path: Path, redact: Redactor) -> bool:
    """Redact ``path`` in place, line by line: read once, and rewritten (atomically, through a temporary file) only
    when a line changes. Bytes that are not UTF-8 pass through unchanged. Returns whether the file was rewritten."""
    with open(path, encoding="utf-8", errors="surrogateescape", newline="") as src:
        if all(redact(line) == line for line in src):
            return False
    tmp = path.with_name(f".{path.name}.scrub{os.getpid()}")
    try:
        with open(path, encoding="utf-8", errors="surrogateescape", newline="") as src, \
                open(tmp, "w", encoding="utf-8", errors="surrogateescape", newline="") as dst:
            for line in src:
                dst.write(redact(line))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return True


def scrub_folder(folder: Path, redact: Redactor) -> list[Path]:
    """:func:`scrub_file` every regular file under ``folder`` (symlinks are left alone); the files rewritten."""
    if not folder.is_dir():
        return []
    return [p for p in sorted(folder.rglob("*")) if p.is_file() and not p.is_symlink() and scrub_file(p, redact)]
