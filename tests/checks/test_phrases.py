"""Required and forbidden phrases: their own check, on any kind of answer, judged next to the baseline."""

from __future__ import annotations

from conformance.checks.phrases import phrase_check, phrase_gates

BASE = "## 定金条款\n买方支付定金。\n\n## 风险提示\n- 注意区分“定金”与“订金”。"
NO_RISK = "## 定金条款\n买方支付定金。"


def test_a_dropped_required_phrase_fails_and_says_the_baseline_had_it() -> None:
    r = phrase_check(BASE, NO_RISK, must_include=("风险提示",))
    assert not r.passed
    (f,) = r.findings
    assert f.kind == "missing_phrase" and "baseline had it" in f.message
    assert r.details["missing"] == ["风险提示"] and r.details["baseline_missing"] == []


def test_a_new_forbidden_phrase_fails() -> None:
    r = phrase_check(BASE, BASE.replace("注意区分", "订金可退，注意区分"), must_not_include=["订金可退"])
    assert not r.passed and r.findings[0].kind == "forbidden_phrase" and "new in the candidate" in r.explanation


def test_a_phrase_the_baseline_misses_too_is_shared_not_a_regression() -> None:
    both = phrase_check("报销需在30日内提交。", "报销需在30日内提交。", must_include=("风险提示",))
    assert both.passed and both.details["shared_expectation_failures"] == 1
    assert [f.kind for f in both.findings] == ["missing_phrase_shared"]


def test_phrases_in_a_json_answer_are_checked_too() -> None:
    """The finance suite's must_include on JSON answers was silently ignored when phrases belonged to prose."""
    r = phrase_check('{"profit": 270.2}', '{"profit": 270}', must_include=("270.2",))
    assert not r.passed and r.details["missing"] == ["270.2"]


def test_gates_count_cases_next_to_the_baseline() -> None:
    results = {f"c{i}": phrase_check(BASE, BASE, must_include=("风险提示",)) for i in range(9)}
    assert {g.gate: g.verdict for g in phrase_gates("legal", results)} == {"phrases.missing_rate": "pass"}
    results["c9"] = phrase_check(BASE, NO_RISK, must_include=("风险提示",))
    (g,) = phrase_gates("legal", results)
    assert g.verdict == "regression" and "c9" in g.message and g.baseline == 0.0
    shared = {f"c{i}": phrase_check(NO_RISK, NO_RISK, must_include=("风险提示",)) for i in range(5)}
    assert phrase_gates("legal", shared)[0].verdict == "baseline_fails"


def test_no_gate_without_cases_that_carry_the_expectation() -> None:
    assert phrase_gates("legal", {"c": phrase_check("a", "a")}) == []
