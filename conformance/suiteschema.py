"""suite.schema.json, generated from the check registry — the one place every suite.yaml key is typed.

Why generated: each check declares the parameters of its ``gates.<key>`` next to its code
(:mod:`conformance.registry`); a hand-written schema would drift from them, and ``gates.*: {type: object}`` is how
``max_eror_rate`` used to disable a gate silently. The committed file (``conformance/goldens/schema/``) is what
editors (yaml-language-server) and ``conformance lint`` validate against; a test fails when it is out of date::

    python -m conformance.suiteschema          # rewrite the committed file
    python -m conformance.suiteschema --check  # exit 1 when it differs

Bounds that cost real time or memory (``noise_floor.repeats``, latency samples, load users and durations) have a
ceiling a suite can only pass with ``allow_large: true`` next to the knob — which lint and the run report as a
warning (docs/SECURITY.md).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from conformance.checks import latency
from conformance.checks.params import integer, number, rate
from conformance.consumers import NAME as PARSER_NAME

SCHEMA_PATH = Path(__file__).with_name("goldens") / "schema" / "suite.schema.json"

#: Ceilings without ``allow_large: true`` (see the module docstring).
MAX_REPEATS = 10
MAX_USERS = 1000
MAX_STAGE_S = 3600
MAX_STAGES = 20
MAX_LOAD_SAMPLE = 1000


def _bounded(schema: dict[str, Any], limits: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """``schema`` plus ``allow_large`` and the ``limits`` (extra keywords per property) unless it is true."""
    schema["properties"]["allow_large"] = {"type": "boolean", "description": "Lift this section's ceilings (a "
                                           "warning is printed): each request costs real time and memory."}
    schema["if"] = {"not": {"properties": {"allow_large": {"const": True}}, "required": ["allow_large"]}}
    schema["then"] = {"properties": limits}
    return schema


def _stage() -> dict[str, Any]:
    return {"type": "object", "additionalProperties": False, "required": ["users", "duration_s"],
            "properties": {
                "users": integer("Users in flight (closed loop), or the pool serving rate_rps (open loop).",
                                 minimum=1),
                "spawn_rate": number("Users started per second (default: all at once).", exclusive_minimum=True),
                "duration_s": number("Length of the stage; every stage is time-bounded.", exclusive_minimum=True,
                                     maximum=86_400),
                "rate_rps": number("Open loop: arrivals per second.", exclusive_minimum=True),
            }}


def load_schema() -> dict[str, Any]:
    """``load:`` — Locust stages (bounded), their gates and quality under load."""
    gates = {"type": "object", "additionalProperties": False, "description": "Per-stage load gates.",
             "properties": {
                 "max_error_rate": rate("Highest failed share of a stage's requests, next to the baseline's."),
                 "min_throughput_ratio": number("Lowest candidate/baseline output tokens per second, per stage."),
                 "min_slo_attainment": rate("Lowest share of issued requests meeting every `slo` objective."),
                 "min_capacity_ratio": number("Lowest candidate/baseline best goodput under the SLO."),
                 "slo": latency.PARAMS["properties"]["slo"],
                 "seed": integer("Bootstrap seed.", default=0),
                 "bootstrap_resamples": latency.PARAMS["properties"]["bootstrap_resamples"],
             },
             "patternProperties": latency.PARAMS["patternProperties"]}
    quality = {"type": "object", "additionalProperties": False,
               "description": "Quality under load: a seeded sample of each stage's answers through the checks.",
               "properties": {
                   "sample": integer("Answers sampled per stage and endpoint (0: off).", default=8),
                   "seed": integer("Sampling seed.", default=0),
                   "max_drop": rate("Highest drop in conforming answers under load beyond the baseline's drop "
                                    "under the same load."),
               }}
    schema = {"type": "object", "additionalProperties": False, "required": ["stages"],
              "description": "Locust load stages (`--load`), run against baseline then candidate with one schedule.",
              "properties": {
                  "stages": {"type": "array", "minItems": 1, "items": _stage()},
                  "gates": gates,
                  "slo": latency.PARAMS["properties"]["slo"],
                  "seed": integer("Prompt order and arrival schedule seed.", default=0),
                  "open_loop": {"type": "object", "additionalProperties": False, "properties": {
                      "arrival": {"enum": ["poisson", "gamma"]},
                      "burstiness": number("Gamma shape (1 = Poisson, < 1 burstier).", exclusive_minimum=True)}},
                  "max_tokens": integer("max_tokens of every load request (use the goldens' cap for quality "
                                        "under load).", minimum=1),
                  "ignore_eos": {"type": "boolean"},
                  "processes": integer("Locust worker processes.", minimum=1, maximum=64),
                  "deadline_s": number("Hard limit for one endpoint's whole load run.", exclusive_minimum=True),
                  "quality": quality,
              }}
    return _bounded(schema, {
        "stages": {"maxItems": MAX_STAGES, "items": {"properties": {
            "users": {"maximum": MAX_USERS}, "duration_s": {"maximum": MAX_STAGE_S}}}},
        "quality": {"properties": {"sample": {"maximum": MAX_LOAD_SAMPLE}}},
    })


def suite_schema() -> dict[str, Any]:
    """The whole suite.yaml schema (see the module docstring)."""
    from conformance.registry import CHECKS

    gates = {spec.gate_key: spec.params for spec in CHECKS}
    gates["latency"] = latency.PARAMS
    noise = _bounded({"type": "object", "additionalProperties": False,
                      "description": "Replay each endpoint again to measure its own noise (self-agreement).",
                      "properties": {"repeats": integer("Passes per endpoint (2: one repeat).", minimum=1,
                                                        default=1)}},
                     {"repeats": {"maximum": MAX_REPEATS}})
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://llm-conformance.invalid/schema/suite.schema.json",
        "title": "llm-conformance suite config (suites/<system>/suite.yaml)",
        "description": "Generated by `python -m conformance.suiteschema` from the check registry; do not edit.",
        "type": "object",
        "additionalProperties": False,
        "required": ["system"],
        "properties": {
            "system": {"type": "string", "pattern": "^[a-z0-9][a-z0-9_]*$"},
            "description": {"type": "string"},
            "goldens": {"type": "string", "description": "Golden folder, relative to the repo root "
                                                         "(default goldens/<system>)."},
            "glossary": {"type": "string", "description": "Glossary file, relative to the repo root."},
            "labels": {
                "type": "object", "additionalProperties": False, "required": ["values"],
                "properties": {
                    "values": {"type": "array", "minItems": 2, "items": {"type": "string", "minLength": 1},
                               "uniqueItems": True},
                    "aliases": {"type": "object", "additionalProperties": {"type": "string", "minLength": 1}},
                },
            },
            "require_gold": {"type": "boolean", "description": "Every case must carry an expectation."},
            "consumer_parser": {"type": "string", "pattern": PARSER_NAME.pattern.replace("\\A", "^")
                                .replace("\\Z", "$"),
                                "description": "Registered name of the consuming system's parser (entry point "
                                               "group llm_conformance.consumer_parsers)."},
            "extraction": {"type": "object", "additionalProperties": False, "properties": {
                "allow_prose": {"type": "boolean", "description": "Find JSON inside prose (a fenced block)."}}},
            "noise_floor": noise,
            "perturbation": {"type": "object", "additionalProperties": False,
                             "description": "Replay prompts with seeded typos/width/punctuation changes.",
                             "properties": {"seed": integer("Perturbation seed.", default=0)}},
            "gates": {"type": "object", "additionalProperties": False, "properties": gates},
            "load": load_schema(),
        },
    }


def render() -> str:
    return json.dumps(suite_schema(), ensure_ascii=False, indent=1) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="exit 1 when the committed file is out of date")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        current = SCHEMA_PATH.read_text(encoding="utf-8") if SCHEMA_PATH.is_file() else ""
        if current != text:
            print(f"{SCHEMA_PATH} is out of date: run `python -m conformance.suiteschema`", file=sys.stderr)
            return 1
        return 0
    SCHEMA_PATH.write_text(text, encoding="utf-8")
    print(f"wrote {SCHEMA_PATH}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
