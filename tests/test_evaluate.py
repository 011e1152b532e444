"""conformance.evaluate + registry: which checks judge which case, each computed once, gates from those results."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from conformance.evaluate import evaluate, not_comparable
from conformance.registry import BY_NAME, CHECKS, applicable
from conformance.response import Response
from conformance.suite import load_suite
from conformance.suitedata import CaseView, SuiteData
from tests.plugin.conftest import make_suite_repo

GOLDEN = """
set: smoke
owner: "@team"
cases:
  - id: c1
    prompt: 起草定金条款。
    expect: {terms: {required: [定金], forbidden: [订金]}}
"""

#: One suite mixing every kind of case: a JSON answer, a label, a tool call and prose with a phrase.
MIXED = """
set: mixed
owner: "@team"
cases:
  - id: summary
    prompt: Summarise Q3 as JSON.
    params: {response_format: {type: json_object}}
    expect: {json_schema: schemas/s.json}
  - id: review
    prompt: 物流太慢了。
    expect: {label: 负面}
  - id: weather
    prompt: Weather in Paris?
    tools: [{type: function, function: {name: get_weather, parameters: {type: object,
             properties: {city: {type: string}}}}}]
    expect: {tool_calls: [{name: get_weather, arguments: {city: Paris}}]}
  - id: reply
    prompt: Apologise for the delay.
    expect: {must_include: [sorry]}
"""


def _data(tmp_path: Path, golden: str, suite_yaml: str = "system: demo\n") -> SuiteData:
    root = make_suite_repo(tmp_path, "endpoints: {}\n", golden=golden)
    (root / "suites" / "demo" / "suite.yaml").write_text(textwrap.dedent(suite_yaml))
    (root / "goldens" / "demo" / "schemas").mkdir(exist_ok=True)
    (root / "goldens" / "demo" / "schemas" / "s.json").write_text('{"type": "object", "required": ["q"]}')
    return SuiteData(load_suite(root / "suites" / "demo", root))


def _answer(case_id: str, text: str, *, fault: str | None = None, calls: list[dict] | None = None) -> Response:
    return Response("e", "demo", case_id, "f", "p", text=text, finish_reason="stop", fault=fault,
                    tool_calls=calls or [])


def test_required_terms_work_without_a_glossary(tmp_path: Path) -> None:
    data = _data(tmp_path, GOLDEN)
    assert data.glossary is None
    (case,) = data.suite.cases
    terms = BY_NAME["terms"]
    assert terms.applies(data, case)
    ok = terms.run(data, CaseView(case, _answer("c1", "支付定金。"), _answer("c1", "支付定金。")))
    bad = terms.run(data, CaseView(case, _answer("c1", "支付定金。"), _answer("c1", "支付订金。")))
    assert ok.passed and not bad.passed
    assert {f.kind for f in bad.findings} == {"forbidden_present", "required_missing"}


def test_each_case_is_judged_by_the_checks_of_its_kind(tmp_path: Path) -> None:
    data = _data(tmp_path, MIXED, "system: demo\nlabels: {values: [正面, 负面]}\ngates: {schema: {}}\n")
    got = {c.id: [s.name for s in applicable(data, c)] for c in data.suite.cases}
    assert got == {"summary": ["answered", "schema"], "review": ["answered", "label"],
                   "weather": ["answered", "tool_calls"], "reply": ["answered", "label", "phrases"]}


def test_every_applicable_check_is_computed_exactly_once_and_gates_read_those_results(tmp_path: Path) -> None:
    data = _data(tmp_path, MIXED, "system: demo\nlabels: {values: [正面, 负面]}\n")
    cases = {c.id: c for c in data.suite.cases}
    calls = [{"id": "1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}]
    answers = {"summary": '{"q": 3}', "review": "负面", "weather": "", "reply": "sorry, 负面"}
    views = [CaseView(c, _answer(cid, answers[cid], calls=calls if cid == "weather" else None),
                      _answer(cid, answers[cid], calls=calls if cid == "weather" else None))
             for cid, c in cases.items()]
    runs: list[str] = []
    counted = [dataclass_with_counter(spec, runs) for spec in CHECKS]
    ev = evaluate(data, views, checks=counted)
    expected = sum(len(applicable(data, c)) for c in cases.values())
    assert ev.calls == len(runs) == expected == len(ev.results)
    assert sorted(runs) == sorted(f"{cid}:{name}" for cid, names in ev.checks.items() for name in names)
    gates = {g.gate: g.verdict for g in ev.gates}
    assert gates["schema.invalid_rate"] == "pass" and gates["tool_calls.match_rate"] == "pass"
    assert gates["phrases.missing_rate"] == "pass" and "classification.agreement" in gates
    assert not any(g.startswith("text.") or g.startswith("terms.") for g in gates)  # no case of those kinds


def dataclass_with_counter(spec, runs):  # type: ignore[no-untyped-def]
    import dataclasses

    def run(data, view):  # type: ignore[no-untyped-def]
        runs.append(f"{view.case.id}:{spec.name}")
        return spec.run(data, view)

    return dataclasses.replace(spec, run=run)


@pytest.mark.parametrize(("baseline_fault", "candidate_fault", "compared"), [
    (None, None, True),
    (None, "timeout", False),          # an outage says nothing about the model
    (None, "client_error", True),      # the candidate refused the request: consumers would break
    ("recording_stale", None, False),  # nothing to compare against
    ("client_error", None, False),
])
def test_which_answers_are_compared(tmp_path: Path, baseline_fault: str | None, candidate_fault: str | None,
                                    compared: bool) -> None:
    data = _data(tmp_path, GOLDEN)
    (case,) = data.suite.cases
    view = CaseView(case, _answer("c1", "支付定金。", fault=baseline_fault),
                    _answer("c1", "支付订金。", fault=candidate_fault))
    assert (not_comparable(view) is None) is compared
    ev = evaluate(data, [view])
    assert (("c1", "terms") in ev.results) is compared
    assert ("c1", "answered") in ev.results
    if not compared:
        assert "not compared" in ev.skipped[("c1", "terms")]
