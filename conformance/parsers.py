"""The harness's own consumer parsers (registered as ``llm_conformance.consumer_parsers`` entry points).

Stand-ins for the two things most consuming systems do with an answer, so a suite can ask "does a strict consumer
still read it?" without shipping code: ``json-strict`` — ``json.loads`` of the whole answer, as a batch job that
never expected wrapping does; ``json-extract`` — the first JSON value after ``<think>``/fences/prose are removed, as
a tolerant consumer does. Both return the parsed value; a raise is what the check reports.
"""

from __future__ import annotations

from typing import Any

from conformance.checks.extract import extract_json, loads_strict


def json_strict(text: str) -> Any:
    """The whole answer must be one JSON value (no NaN/Infinity, no wrapping)."""
    return loads_strict(text)


def json_extract(text: str) -> Any:
    """The JSON value inside the answer, after the harness's own extraction (think blocks, fences, prose)."""
    got = extract_json(text, allow_prose=True)
    if not got.ok:
        raise ValueError(got.error or "no JSON value found")
    return got.value
