"""What the checks read about a suite and a case: the suite's files loaded once, a case's answers, its kind.

Checks are pure; this is the edge where a suite's glossary, label set and JSON Schemas are read (once per suite,
:class:`SuiteData`), and where a case's answers of one run are bundled (:class:`CaseView`). :func:`case_kind` says
what a case *is* — a tool call, a JSON document, a label or prose — from its own expectations and request, so one
suite can mix kinds and each gate applies only to the cases it can judge.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal

from conformance.checks import classification, text
from conformance.checks.glossary import Glossary, load_glossary
from conformance.goldens.model import Case
from conformance.goldens.yamlsource import read_yaml
from conformance.response import Response
from conformance.suite import Suite

Kind = Literal["tool", "json", "label", "text"]

#: ``response_format`` types that ask for a JSON document.
JSON_FORMATS = frozenset({"json_object", "json_schema"})


@dataclass(frozen=True)
class CaseView:
    """Everything known about one case in this run: both answers, and the optional second passes (a repeat of
    each endpoint for the noise floor, an answer to a perturbed prompt for robustness)."""

    case: Case
    baseline: Response
    candidate: Response
    baseline_repeat: Response | None = None
    candidate_repeat: Response | None = None
    baseline_perturbed: Response | None = None
    candidate_perturbed: Response | None = None


def answer_text(resp: Response | None) -> str | None:
    """The text of an answer, None when there is no usable answer."""
    return resp.text if resp is not None and resp.ok else None


def expects_json(case: Case) -> bool:
    """The case asks for a JSON document: a schema expectation, or a JSON ``response_format`` in its request."""
    if case.expect.json_schema:
        return True
    fmt = case.params.get("response_format")
    return isinstance(fmt, Mapping) and fmt.get("type") in JSON_FORMATS


def case_kind(case: Case, has_labels: bool) -> Kind:
    """What the case's answer is judged as. Tool use wins (a tool case's text is not prose to compare), then a
    JSON document, then a label (a gold label, or a suite with a label set), else prose."""
    if case.tools or case.expect.tool_calls is not None:
        return "tool"
    if expects_json(case):
        return "json"
    if case.expect.label is not None or has_labels:
        return "label"
    return "text"


@dataclass
class SuiteData:
    """A suite plus the files its checks need (glossary, label set, JSON Schemas), each read once."""

    suite: Suite
    _schemas: dict[str, Any] = field(default_factory=dict)

    @property
    def system(self) -> str:
        return self.suite.system

    @property
    def config(self) -> Mapping[str, Any]:
        return self.suite.config

    @property
    def gates(self) -> dict[str, dict[str, Any]]:
        return self.suite.gates

    def gate_config(self, key: str) -> dict[str, Any]:
        """``gates.<key>`` of suite.yaml (validated before the run), or {} for the defaults."""
        return dict(self.gates.get(key) or {})

    @cached_property
    def glossary(self) -> Glossary | None:
        rel = self.config.get("glossary")
        return load_glossary(read_yaml(self.suite.root / rel).data) if rel else None

    @cached_property
    def labels(self) -> classification.LabelSet | None:
        cfg = self.config.get("labels")
        return classification.LabelSet.from_config(cfg) if cfg else None

    @cached_property
    def text_config(self) -> text.TextConfig:
        return text.TextConfig.from_dict(self.gates.get("text"))

    def kind(self, case: Case) -> Kind:
        return case_kind(case, self.labels is not None)

    def schema(self, case: Case) -> dict[str, Any] | None:
        rel = case.expect.json_schema
        if not rel:
            return None
        if rel not in self._schemas:
            self._schemas[rel] = json.loads((case.path.parent / rel).read_text(encoding="utf-8"))
        return self._schemas[rel]
