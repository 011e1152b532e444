"""Remember which large golden documents already passed schema validation, so an unchanged file is not validated
again at every ``pytest`` run, ``conformance lint`` and xdist worker.

Why: jsonschema walks every case of every file at every load — about 0.8 s of CPU for 10,000 cases, the largest
cost of collection left once YAML is parsed by libyaml (docs/PERFORMANCE.md, F6). Validation is a pure function of
the data, the schema and the validating code, so a pass is remembered under a digest of all of them: the data's
``repr`` (exact for JSON-like values: it tells ``1`` from ``True``, ``"1"`` and ``1.0``), the schema as packaged,
and the versions of jsonschema, referencing and Python. Any change to one of them is a new key.

Only passes are remembered, so no error is ever skipped: a document with errors is validated (and reported) every
time. Each pass is an empty file named by its digest under ``<cache>/valid-goldens/`` (the cache folder of
:func:`conformance.local.models.cache_dir`, ``$CONFORMANCE_CACHE``); creating one is atomic, so concurrent xdist
workers race harmlessly, and any file-system error turns the cache off for the process (a read-only home). Entries
are never wrong, only possibly unused (one per version of a large file that passed); deleting the folder is safe.

Documents under :data:`MIN_CHARS` are not remembered: they validate faster than a file-system round trip, and
the test suite's thousands of small temporary goldens would otherwise pile up in the user's cache.
"""

from __future__ import annotations

import hashlib
import json
import sys
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any

#: Size of a document's ``repr`` from which a pass is worth remembering (≈ 400 typical cases).
MIN_CHARS = 65_536
#: Bump to forget every remembered pass (e.g. if the loader's idea of a schema error changes).
FORMAT = "1"

_state: dict[str, Path | None] = {}


def key(data: Any, schema_name: str, schema: dict[str, Any]) -> str | None:
    """The digest a pass of ``data`` against ``schema`` is remembered under, or None for a small document."""
    text = repr(data)
    if len(text) < MIN_CHARS:
        return None
    h = hashlib.sha256()
    for part in (FORMAT, schema_name, _environment(), json.dumps(schema, sort_keys=True), text):
        h.update(part.encode("utf-8", "surrogatepass"))
        h.update(b"\0")
    return h.hexdigest()


def known(digest: str) -> bool:
    """Did a document with this digest pass before?"""
    folder = _folder()
    try:
        return folder is not None and (folder / digest).is_file()
    except OSError:
        return False


def remember(digest: str) -> None:
    """Record a pass (best effort: a failure only costs a validation next time)."""
    folder = _folder()
    if folder is None:
        return
    try:
        (folder / digest).touch()
    except OSError:
        _state["folder"] = None


def _folder() -> Path | None:
    if "folder" not in _state:
        from conformance.local.models import cache_dir

        try:
            folder = cache_dir() / "valid-goldens"
            folder.mkdir(parents=True, exist_ok=True)
            _state["folder"] = folder
        except OSError:
            _state["folder"] = None
    return _state["folder"]


@cache
def _environment() -> str:
    versions = [metadata.version(dist) for dist in ("jsonschema", "referencing")]
    return " ".join([*versions, sys.version.split()[0]])
