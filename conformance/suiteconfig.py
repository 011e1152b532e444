"""Cross-field rules of a suite: what its schema alone cannot say, checked before any request.

The JSON Schema (generated from the registry, :mod:`conformance.suiteschema`) types every key. These rules relate
keys to each other and to the suite's cases — each one a way a gate used to be disabled silently, or a case judged
by the wrong check:

- ``gates.classification`` or a case's ``expect.label`` without a ``labels`` set (no label could be read);
- a declared ``gates.<key>`` that no case of the suite can be judged by (``gates.schema`` in a suite without a JSON
  case judged every label answer as broken JSON before; now it would silently judge nothing);
- ``critical_flips`` naming a label that is not in the set; aliases pointing outside the set;
- a ``consumer_parser`` that is not a registered parser (:mod:`conformance.consumers`);
- ``min_slo_attainment`` / ``min_capacity_ratio`` without an ``slo`` to attain;
- ``allow_large: true`` is allowed, and reported as a warning.

Errors and warnings are :class:`~conformance.errors.GoldenError` s with ``path:line`` (in suite.yaml, or in the
golden file for a case), the form lint prints and the run stops with (as ``config_error``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from conformance.consumers import parser_problem
from conformance.errors import GoldenError
from conformance.goldens.model import Case
from conformance.goldens.yamlsource import YamlDoc


def suite_problems(doc: YamlDoc, cases: Sequence[Case]) -> tuple[list[GoldenError], list[GoldenError]]:
    """(errors, warnings) of a schema-valid suite.yaml (``doc``) with its cases."""
    from conformance.checks.classification import LabelSet
    from conformance.registry import BY_GATE
    from conformance.suite import Suite
    from conformance.suitedata import SuiteData

    data: dict[str, Any] = doc.data
    path: Path = doc.path
    errors: list[GoldenError] = []
    warnings: list[GoldenError] = []

    def err(where: tuple[Any, ...], message: str) -> None:
        errors.append(GoldenError(path, doc.line_of(where), message))

    gates = data.get("gates") or {}
    labels = data.get("labels")
    if labels:
        try:
            LabelSet.from_config(labels)
        except ValueError as exc:
            err(("labels",), f"labels: {exc}")
    if "classification" in gates and not labels:
        err(("gates", "classification"), "gates.classification needs a `labels: {values: [...]}` set: without it "
                                         "no answer can be read as a label")
    if not labels:
        for case in cases:
            if case.expect.label is not None:
                errors.append(GoldenError(case.path, case.line, f"{case.id}: expect.label {case.expect.label!r}, but "
                                          f"suite {data.get('system')!r} declares no `labels` set ({path})"))
    values = set((labels or {}).get("values") or ())
    for i, flip in enumerate((gates.get("classification") or {}).get("critical_flips") or ()):
        for end in ("from", "to"):
            label = flip.get(end)
            if values and label not in values and not (end == "to" and label == "*"):
                err(("gates", "classification", "critical_flips", i, end),
                    f"critical_flips[{i}].{end}: {label!r} is not one of the labels {sorted(values)}")
    if "consumer_parser" in data and (problem := parser_problem(data["consumer_parser"])):
        err(("consumer_parser",), problem)
    for section, where in ((gates.get("latency") or {}, ("gates", "latency")),
                           ((data.get("load") or {}).get("gates") or {}, ("load", "gates"))):
        has_slo = bool(section.get("slo") or (where[0] == "load" and (data.get("load") or {}).get("slo")))
        for key in ("min_slo_attainment", "min_capacity_ratio"):
            if key in section and not has_slo:
                err((*where, key), f"{'.'.join(where)}.{key} needs `slo: {{ttft_ms, tpot_ms, e2el_ms}}` to attain")
    if not errors and cases:
        suite = Suite(system=str(data["system"]), dir=path.parent, root=path.parent, config=data)
        suite_data = SuiteData(suite)
        for key in gates:
            spec = BY_GATE.get(key)
            if spec is None or key == "availability":
                continue
            if not any(spec.applies(suite_data, c) for c in cases):
                err(("gates", key), f"gates.{key} is declared, but no case of suite {data['system']!r} can be judged "
                                    f"by it ({spec.summary}) — add such cases or remove the gate")
    for where in _large(data):
        warnings.append(GoldenError(path, doc.line_of(where), f"{'.'.join(map(str, where))}: allow_large lifts the "
                                    "ceilings on this section (requests cost real time and memory)"))
    return errors, warnings


def _large(data: dict[str, Any]) -> list[tuple[Any, ...]]:
    out = []
    for where in (("noise_floor",), ("gates", "latency"), ("load",)):
        node: Any = data
        for key in where:
            node = node.get(key) if isinstance(node, dict) else None
        if isinstance(node, dict) and node.get("allow_large") is True:
            out.append((*where, "allow_large"))
    return out
