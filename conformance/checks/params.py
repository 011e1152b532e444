"""JSON Schema fragments for gate parameters — each check declares its ``gates.<key>`` with these.

Why in the checks: a check knows its own knobs; the registry collects them, suite.schema.json is generated from
them (``python -m conformance.suiteschema``), and lint validates suite.yaml against that file, so a misspelt key
(``max_eror_rate``) or a NaN threshold is a ``path:line`` error before any request — never a gate quietly
disabled. ``default`` documents what an absent key means (the checks apply the same defaults).
"""

from __future__ import annotations

from typing import Any


def rate(description: str, default: float | None = None) -> dict[str, Any]:
    """A share between 0 and 1."""
    out: dict[str, Any] = {"type": "number", "minimum": 0, "maximum": 1, "description": description}
    if default is not None:
        out["default"] = default
    return out


def number(description: str, *, minimum: float | None = 0, maximum: float | None = None,
           exclusive_minimum: bool = False, default: float | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "number", "description": description}
    if minimum is not None:
        out["exclusiveMinimum" if exclusive_minimum else "minimum"] = minimum
    if maximum is not None:
        out["maximum"] = maximum
    if default is not None:
        out["default"] = default
    return out


def integer(description: str, *, minimum: int = 0, maximum: int | None = None,
            default: int | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "integer", "minimum": minimum, "description": description}
    if maximum is not None:
        out["maximum"] = maximum
    if default is not None:
        out["default"] = default
    return out


MIN_N = integer("Fewer cases than this → the gate says `insufficient`.", minimum=1, maximum=1_000_000, default=1)
MARGIN = rate("How much worse than the baseline (candidate − baseline, on the same cases) still counts as not "
              "worse.", 0.0)


def gate_params(description: str, properties: dict[str, Any]) -> dict[str, Any]:
    """The schema of one ``gates.<key>`` mapping: the given keys plus ``min_n``, nothing else."""
    return {"type": "object", "additionalProperties": False, "description": description,
            "properties": {**properties, "min_n": MIN_N}}
