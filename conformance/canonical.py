"""Canonical JSON: the one text form a value is compared, cached and fingerprinted by.

Why one module: request fingerprints (:mod:`conformance.goldens.model`) key the response cache and the recordings
on disk, and tool-call comparison (:mod:`conformance.checks.toolcall_parse`) decides "same call" by the same text.
Two slightly different serialisers would make a recording look stale, or two equal calls look different, for
reasons nobody could see. The output is frozen: fingerprints of existing recordings depend on it byte for byte
(``tests/test_canonical.py`` pins known values).

The form: keys sorted, no whitespace, UTF-8 kept (CJK is not escaped), ``NaN``/``Infinity`` written as Python's
``json`` writes them (so a value always equals itself). Values JSON cannot hold are still given a stable form
instead of an exception — answers and goldens are untrusted input: non-string keys become strings (YAML allows
``1: x``), and anything else (a set, bytes) becomes its ``str()``.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

__all__ = ["canonical_json", "digest"]


def canonical_json(obj: Any) -> str:
    """Stable JSON: sorted keys, no whitespace, UTF-8 kept; never raises for a value it was handed."""
    try:
        return json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    except (TypeError, ValueError):
        # non-string keys (sort_keys cannot order 1 and "b") or values JSON has no form for: one round trip
        # through plain JSON makes the keys strings and the odd values text, then the same form as above
        return canonical_json(json.loads(json.dumps(obj, ensure_ascii=False, default=str)))


def digest(obj: Any) -> str:
    """First 16 hex chars of SHA-256 over :func:`canonical_json` — short enough for file names and ids."""
    return hashlib.sha256(canonical_json(obj).encode("utf-8")).hexdigest()[:16]
