"""Quality under load (conformance.load.quality): sampling, comparability, checks against the at-rest answers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conformance.evaluate import SuiteData
from conformance.load.quality import (
    QualityConfig,
    assess_run,
    is_cut,
    quality_gates,
    same_text,
    sample_by_stage,
)
from conformance.response import Response
from conformance.suite import load_suite
from tests.plugin.conftest import make_suite_repo

GOLDEN = """
set: smoke
owner: "@team"
defaults:
  params: {max_tokens: 16}
cases:
  - id: c1
    prompt: 起草定金条款。
    expect: {terms: {required: [定金]}}
  - id: c2
    prompt: 起草定金罚则。
    expect: {terms: {required: [定金]}}
  - id: c3
    prompt: 起草违约金条款。
    expect: {terms: {required: [违约金]}}
  - id: free
    prompt: 你好。
"""
RIGHT = {"c1": "甲方支付定金五万元。", "c2": "收受定金一方违约的，双倍返还定金。", "c3": "乙方支付违约金。"}


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> SuiteData:
    root = make_suite_repo(tmp_path_factory.mktemp("repo"), "endpoints: {}\n", golden=GOLDEN)
    return SuiteData(load_suite(root / "suites" / "demo", root))


def resp(data: SuiteData, case_id: str, text: str, endpoint: str, finish: str = "stop") -> Response:
    case = next(c for c in data.suite.cases if c.id == case_id)
    return Response(endpoint=endpoint, system="demo", case_id=case_id, fingerprint=case.fingerprint,
                    prompt_fingerprint=case.prompt_fingerprint, text=text, finish_reason=finish)


def rest(data: SuiteData, candidate: dict[str, str] | None = None) -> dict[str, dict[str, Response]]:
    cand = candidate or RIGHT
    return {"baseline": {k: resp(data, k, v, "old") for k, v in RIGHT.items()},
            "candidate": {k: resp(data, k, cand[k], "new") for k in RIGHT}}


def rec(case_id: str, text: str, stage: int = 0, seq: int = 0, fault: str | None = None,
        finish: str = "stop", worker: int = 1) -> dict[str, Any]:
    return {"case_id": case_id, "text": text, "stage": stage, "seq": seq, "fault": fault, "finish_reason": finish,
            "worker": worker, "tool_calls": []}


def test_a_candidate_that_drifts_under_load_is_caught_per_stage(data: SuiteData) -> None:
    # at rest the candidate is right; in stage 2 (under more users) it writes 订金 for 定金
    records = [rec(c, RIGHT[c], 0, i) for i, c in enumerate(["c1", "c2", "c3"])]
    records += [rec("c1", "甲方支付订金五万元。", 1, 3), rec("c2", RIGHT["c2"], 1, 4), rec("c3", RIGHT["c3"], 1, 5)]
    got = assess_run(data, "candidate", "new", records, 2, rest(data), QualityConfig(sample=8))
    s1, s2 = got
    assert (s1.sampled, len(s1.checked), s1.conforming, s1.same_as_rest, s1.drop) == (3, 3, 3, 3, 0.0)
    assert (s2.conforming, s2.conforming_at_rest, s2.same_as_rest) == (2, 3, 2)
    assert s2.drop == pytest.approx(1 / 3)
    failing = [v for v in s2.verdicts if not v.passed]
    assert [v.case_id for v in failing] == ["c1"] and failing[0].failed_checks == ("terms",)
    assert "定金" in failing[0].explanation
    assert "2/3 conform (at rest 3/3)" in s2.line() and "c1 (terms)" in s2.line()

    gates = quality_gates("demo", got, None, QualityConfig(max_drop=0.0))
    # three samples per stage show the drift by name, but cannot show a rate: neither verdict is a pass
    assert [(g.gate, g.verdict, g.n) for g in gates] == [("load.stage1.quality_drop", "insufficient", 3),
                                                       ("load.stage2.quality_drop", "insufficient", 3)]
    assert "2/3 sampled answers conform under load, 3/3 of the same cases at rest" in gates[1].message


def _drifting_stage(data: SuiteData, role: str, label: str, drift: bool, n: int = 24) -> Any:
    text = {"c1": "甲方支付订金五万元。", "c2": "收受订金一方违约的，双倍返还订金。"} if drift else RIGHT
    records = [rec(c, text[c], 0, i) for i, c in enumerate(["c1", "c2"] * (n // 2))]
    (stage,) = assess_run(data, role, label, records, 1, rest(data), QualityConfig(sample=n))
    return stage


def test_a_candidate_that_drifts_under_load_fails_the_gate_when_the_baseline_does_not(data: SuiteData) -> None:
    cand = _drifting_stage(data, "candidate", "new", drift=True)
    base = _drifting_stage(data, "baseline", "old", drift=False)
    assert (cand.drop, base.drop) == (1.0, 0.0)
    (g,) = quality_gates("demo", [cand], [base], QualityConfig(max_drop=0.0))
    assert g.verdict == "regression" and g.statistic == 1.0 and g.baseline == 0.0
    assert g.interval is not None and g.interval[0] > 0


def test_a_drop_the_baseline_shows_under_the_same_load_is_not_blamed_on_the_candidate(data: SuiteData) -> None:
    """Finding 8 of the verdict-trust issue: on vLLM (not batch-invariant) the same server as baseline and
    candidate failed quality_drop at 0.077 while the line itself said the baseline's drop was 0.083."""
    cand = _drifting_stage(data, "candidate", "new", drift=True)
    base = _drifting_stage(data, "baseline", "old", drift=True)
    (g,) = quality_gates("demo", [cand], [base], QualityConfig(max_drop=0.0))
    assert g.statistic == 0.0 and g.verdict != "regression"
    assert "candidate drop 1.000 − baseline drop 1.000" in g.message


def test_failures_at_rest_are_not_blamed_on_load(data: SuiteData) -> None:
    # the candidate is wrong on c3 at rest and under load alike: conformance is low, the drop is zero
    wrong = {**RIGHT, "c3": "乙方支付罚款。"}
    records = [rec(c, wrong[c], 0, i) for i, c in enumerate(RIGHT)]
    (stage,) = assess_run(data, "candidate", "new", records, 1, rest(data, wrong), QualityConfig())
    assert (stage.conforming, stage.conforming_at_rest, stage.drop) == (2, 2, 0.0)
    assert quality_gates("demo", [stage], None, QualityConfig(max_drop=0.0))[0].verdict == "insufficient"


def test_answers_cut_by_a_lower_load_cap_are_not_judged_as_answers(data: SuiteData) -> None:
    records = [rec("c1", "甲方", 0, 0, finish="length"), rec("c2", "收受", 0, 1, finish="length")]
    (stage,) = assess_run(data, "candidate", "new", records, 1, rest(data), QualityConfig(),
                          load_max_tokens=4)
    assert (stage.sampled, len(stage.checked), stage.cut, stage.same_as_rest) == (2, 0, 2, 2)
    (gate,) = quality_gates("demo", [stage], None, QualityConfig(max_drop=0.1), load_max_tokens=4)
    assert gate.verdict == "insufficient" and "load.max_tokens=4" in gate.message
    assert "cut at the load max_tokens" in stage.line()


def test_cut_rules() -> None:
    from conformance.goldens.model import Case

    case = Case("demo", "s", "c", ({"role": "user", "content": "x"},), {"max_tokens": 64})
    assert not is_cut({"finish_reason": "stop"}, case, 8, False)
    assert is_cut({"finish_reason": "length"}, case, 8, False)
    assert not is_cut({"finish_reason": "length"}, case, 64, False)  # the same cap as the replay: comparable
    assert is_cut({"finish_reason": "stop"}, case, 64, True)  # ignore_eos: generated past the answer


def test_failed_requests_and_empty_stages_are_never_sampled(data: SuiteData) -> None:
    records = [rec("c1", "", 0, 0, fault="server_error"), rec("c2", RIGHT["c2"], 0, 1)]
    s1, s2 = assess_run(data, "baseline", "old", records, 2, rest(data), QualityConfig())
    assert (s1.answered, s1.sampled, s2.answered, s2.sampled) == (1, 1, 0, 0)
    gates = quality_gates("demo", [s1, s2], None, QualityConfig(max_drop=0.0))
    assert gates[1].verdict == "insufficient" and "no answer" in gates[1].message


def test_no_gate_without_max_drop(data: SuiteData) -> None:
    (stage,) = assess_run(data, "candidate", "new", [rec("c1", RIGHT["c1"])], 1, rest(data), QualityConfig())
    assert quality_gates("demo", [stage], None, QualityConfig()) == []


@pytest.mark.parametrize("bad", [{"sample": -1}, {"sample": "all"}, {"max_drop": 2}, {"max_drop": True},
                                 {"samples": 3}])
def test_config_errors_name_the_key(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=r"load\.quality"):
        QualityConfig.from_dict(bad)


records_st = st.lists(st.tuples(st.integers(0, 3), st.integers(0, 50), st.sampled_from([None, None, "timeout"]),
                                st.integers(1, 3)), max_size=60)


@given(records_st, st.integers(0, 10), st.integers(0, 2**32 - 1))
def test_sampling_is_seeded_bounded_and_order_free(spec: list[tuple[int, int, str | None, int]], n: int,
                                                   seed: int) -> None:
    records = [rec(f"c{seq}", "t", stage, seq, fault, worker=w) for stage, seq, fault, w in spec]
    picked = sample_by_stage(records, n, seed)
    assert picked == sample_by_stage(list(reversed(records)), n, seed)
    for stage, recs in picked.items():
        answered = [r for r in records if r["stage"] == stage and r["fault"] is None]
        assert len(recs) == min(n, len(answered)) and all(r["fault"] is None for r in recs)
        assert len({id(r) for r in recs}) == len(recs)


@given(st.text(max_size=20), st.text(max_size=20), st.sampled_from(["stop", "length"]),
       st.sampled_from(["stop", "length"]))
def test_same_text_is_symmetric_and_prefix_aware(a: str, b: str, fa: str, fb: str) -> None:
    def r(text: str, finish: str) -> Response:
        return Response("e", "demo", "c", "f", "p", text=text, finish_reason=finish)

    assert same_text(r(a, fa), r(b, fb)) == same_text(r(b, fb), r(a, fa))
    assert same_text(r(a, fa), r(a, fb)) is True
    if "length" in (fa, fb):
        assert same_text(r(a + b, fa), r(a, fb)) is True
    elif b:
        assert same_text(r(a + b, fa), r(a, fb)) is False


def test_no_reference_no_verdict(tmp_path: Path, data: SuiteData) -> None:
    load = resp(data, "c1", "x", "new")
    assert same_text(load, None) is None
    failed = Response("e", "demo", "c1", "f", "p", fault="timeout")
    assert same_text(load, failed) is None


def test_a_case_no_check_applies_to_is_not_a_vacuous_pass(data: SuiteData) -> None:
    base = rest(data)
    case = next(c for c in data.suite.cases if c.id == "free")
    base["baseline"]["free"] = resp(data, "free", "你好！", "old")
    base["candidate"]["free"] = resp(data, "free", "你好！", "new")
    (stage,) = assess_run(data, "candidate", "new", [rec(case.id, "您好。")], 1, base, QualityConfig())
    assert (len(stage.checked), stage.unchecked("no_check"), stage.same_as_rest) == (0, 1, 0)
    assert "1 not checked: no per-case check applies" in stage.line() and "0/1 same text" in stage.line()


def test_no_at_rest_answer_is_reported_not_guessed(data: SuiteData) -> None:
    (stage,) = assess_run(data, "candidate", "new", [rec("c1", RIGHT["c1"])], 1, {"baseline": {}},
                          QualityConfig())
    assert (len(stage.checked), stage.unchecked("no_reference"), stage.compared) == (0, 1, 0)
