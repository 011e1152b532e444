from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conformance.checks.result import CheckResult
from conformance.checks.text import DEFAULT_FAIL_ON, TextConfig, text_drift, text_gates
from conformance.gates import GateResult

CFG = TextConfig()

BASELINE = """## 定金条款
1. 买方应于本合同签订之日起三日内向卖方支付定金，定金为合同总价的20%。
2. 买方违约的，无权要求返还定金；卖方违约的，应当双倍返还定金。

## 风险提示
- 定金不得超过主合同标的额的20%，超过部分不产生定金效力。
- 注意区分“定金”与“订金”。"""

# A near-identical rerun: one character differs, as a repeat of the baseline itself might.
REPEAT = BASELINE.replace("三日内", "三天内")

ENGLISH = """## Deposit clause
1. The buyer shall pay the seller a deposit of 20% of the total price within three days of signing.
2. If the buyer defaults it forfeits the deposit; if the seller defaults it returns double the deposit.

## Risk notes
- The deposit may not exceed 20% of the contract value."""

REFUSAL = "抱歉，我无法提供具体的法律条款，请咨询专业律师。"

NO_RISK_SECTION = BASELINE.split("## 风险提示")[0].rstrip()


def drift(candidate: str, *, baseline_repeat: str | None = None) -> CheckResult:
    """The legal suite's case: the baseline above (its required phrases are conformance.checks.phrases')."""
    return text_drift(BASELINE, candidate, baseline_repeat=baseline_repeat, config=CFG)


def gates_by_name(results: dict[str, CheckResult], cfg: TextConfig = CFG) -> dict[str, GateResult]:
    return {g.gate: g for g in text_gates("legal", results, cfg)}


def kinds(result: CheckResult) -> set[str]:
    return {f.kind for f in result.findings}


# --- per case ---------------------------------------------------------------------------------------------

def test_identical_candidate_passes_with_no_findings() -> None:
    r = drift(BASELINE, baseline_repeat=REPEAT)
    assert r.passed and r.findings == () and r.score == 1.0
    assert r.details["similarity"]["cer"] == 0.0
    assert r.details["noise_floor"]["char"] < 1.0  # the repeat differs by one character
    assert r.details["baseline"] == r.details["candidate"]


def test_english_answer_to_a_chinese_prompt_is_a_language_switch() -> None:
    r = drift(ENGLISH)
    assert not r.passed and "language_switch" in kinds(r)
    assert r.details["language_switch"] is True
    assert r.details["baseline"]["script"] == "cjk" and r.details["candidate"]["script"] == "non_cjk"
    assert "English" in r.explanation


def test_similarity_below_the_noise_floor_is_a_finding() -> None:
    assert "similarity_drop" in kinds(drift(ENGLISH, baseline_repeat=REPEAT))
    # One character edited is as close as the baseline's own repeat: within the floor, no finding.
    assert "similarity_drop" not in kinds(drift(BASELINE.replace("卖方", "卖家", 1), baseline_repeat=REPEAT))


def test_new_refusal_fails_the_case() -> None:
    r = drift(REFUSAL)
    assert not r.passed and "refusal" in kinds(r)
    assert r.details["refusal"] == {"baseline": False, "candidate": True}
    assert "抱歉" in r.explanation


def test_lifted_refusal_is_reported_not_failed() -> None:
    r = text_drift(REFUSAL, BASELINE, config=CFG)
    assert "refusal_lifted" in kinds(r) and "refusal" not in kinds(r)
    assert r.passed


def test_dropped_section_shows_as_structure_change() -> None:
    r = drift(NO_RISK_SECTION)
    assert any(f.kind == "structure_change" and "风险提示" in f.message for f in r.findings)


def test_structure_and_length_fail_only_when_the_suite_asks() -> None:
    short = "## 定金条款\n买方支付定金。"
    relaxed = text_drift(BASELINE, short, config=CFG)
    assert relaxed.passed  # headings/lists/length are reported …
    assert {"structure_change", "length_change"} <= kinds(relaxed)
    strict = TextConfig(fail_on=DEFAULT_FAIL_ON | {"structure_change"})
    assert not text_drift(BASELINE, short, config=strict).passed  # … and fail when configured


def test_width_and_spacing_changes_are_not_drift() -> None:
    candidate = BASELINE.replace("20%", "２０％").replace("，", ", ")
    r = drift(candidate)
    assert r.passed and r.score == 1.0 and r.findings == ()


def test_reference_cer_is_reported_for_both_models() -> None:
    reference = "今天下午三点在三号会议室开会，请准时参加。"
    baseline = "今天下午三点在三号会议室开会，请准时参加。"
    candidate = "今天下午3点在3号会议室开会请准时参加"
    r = text_drift(baseline, candidate, reference=reference, config=CFG)
    ref = r.details["reference"]
    assert ref["baseline"]["cer"] == 0.0 and ref["candidate"]["cer"] > 0.0
    assert "reference_drift" in kinds(r)
    assert text_drift(baseline, candidate, config=CFG).details["reference"] is None


def test_token_set_metric_forgives_reordering() -> None:
    a = "买方支付定金。卖方违约双倍返还。"
    b = "卖方违约双倍返还。买方支付定金。"
    assert text_drift(a, b, config=TextConfig(metric="token_set")).score == 1.0
    assert (text_drift(a, b, config=CFG).score or 0.0) < 1.0


@given(st.text(max_size=80))
def test_identical_text_always_passes(text: str) -> None:
    r = text_drift(text, text, baseline_repeat=text, config=CFG)
    assert r.passed and r.score == 1.0 and r.findings == ()


# --- config -----------------------------------------------------------------------------------------------

def test_config_from_suite_yaml_mapping() -> None:
    cfg = TextConfig.from_dict({"metric": "token_set", "max_similarity_drop": 0.1,
                                "extra_refusal_phrases": ["恕我无法"], "fail_on": ["refusal"]})
    assert cfg.metric == "token_set" and cfg.max_similarity_drop == 0.1
    assert cfg.fail_on == frozenset({"refusal"})
    assert cfg.refusal_phrases[-1] == "恕我无法" and len(cfg.refusal_phrases) > 1
    assert "refusal" in kinds(text_drift(BASELINE, "恕我无法协助此事。", config=cfg))
    assert TextConfig.from_dict(None) == TextConfig()


@pytest.mark.parametrize("bad", [{"max_similarity_dorp": 0.1}, {"metric": "bleu"}, {"cjk_low": 0.9}])
def test_config_rejects_typos_and_nonsense(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        TextConfig.from_dict(bad)


# --- suite gates --------------------------------------------------------------------------------------------

def suite_results(**bad: str) -> dict[str, CheckResult]:
    """Ten cases answered identically by both models, except the ``bad`` ones (case id → candidate)."""
    ids = [f"deposit-{i:02d}" for i in range(10)]
    return {cid: drift(bad.get(cid, BASELINE), baseline_repeat=REPEAT) for cid in ids}


def test_identical_suite_passes_every_gate() -> None:
    gates = gates_by_name(suite_results())
    assert set(gates) == {"text.similarity_median", "text.similarity_p10", "text.refusal_increase",
                          "text.language_switches"}
    assert all(g.passed for g in gates.values()), [g.line() for g in gates.values()]


@pytest.mark.parametrize(("candidate", "gate", "shown"), [
    (ENGLISH, "text.language_switches", "CJK share"),
    (REFUSAL, "text.refusal_increase", "抱歉，我无法"),
])
def test_each_drift_fails_its_gate_and_names_the_case(candidate: str, gate: str, shown: str) -> None:
    gates = gates_by_name(suite_results(**{"deposit-07": candidate}))
    g = gates[gate]
    assert g.verdict == "regression"
    assert "deposit-07" in g.message and shown in g.message
    assert "deposit-03" not in g.message


def test_refusal_gate_is_paired_and_carries_a_wilson_interval() -> None:
    # One case newly refuses, another stops refusing: the net rate is unchanged, the new refusal still counts.
    # A case both models refuse is not new.
    results = suite_results(**{"deposit-01": REFUSAL})
    results["deposit-02"] = text_drift(REFUSAL, BASELINE, config=CFG)
    results["deposit-03"] = text_drift(REFUSAL, REFUSAL, config=CFG)
    g = gates_by_name(results)["text.refusal_increase"]
    assert g.verdict == "regression" and g.statistic == pytest.approx(0.1)
    assert g.interval is not None and g.interval[0] < 0.1 < g.interval[1]
    newly = g.message.split("newly refusing")[1]
    assert "deposit-01" in newly and "deposit-02" not in newly and "deposit-03" not in newly
    assert "candidate refuses 2/10, baseline 2/10" in g.message


def test_similarity_gates_show_the_noise_floor() -> None:
    g = gates_by_name(suite_results())["text.similarity_median"]
    floor = drift(BASELINE, baseline_repeat=REPEAT).details["noise_floor"]["char"]
    assert g.threshold == pytest.approx(floor - CFG.max_similarity_drop)
    assert f"noise floor {floor:.3f}" in g.message and "10/10 baseline repeats" in g.message


def test_gate_lists_only_cases_beyond_the_margin_as_below_the_floor() -> None:
    slight = BASELINE.replace("卖方", "卖家", 1)
    results = {f"c{i}": text_drift(BASELINE, slight if i == 0 else BASELINE, config=CFG) for i in range(5)}
    g = gates_by_name(results)["text.similarity_p10"]
    assert g.passed and "lowest: c0" in g.message and "below their noise floor" not in g.message
    results["c9"] = text_drift(BASELINE, ENGLISH, config=CFG)
    g = gates_by_name(results)["text.similarity_p10"]
    assert "1/6 cases below their noise floor: c9" in g.message


def test_unmeasured_noise_floor_is_assumed_perfect_and_said_so() -> None:
    results = {f"c{i}": text_drift(BASELINE, BASELINE, config=CFG) for i in range(3)}
    g = gates_by_name(results)["text.similarity_median"]
    assert g.threshold == pytest.approx(1.0 - CFG.max_similarity_drop) and "not measured" in g.message


def test_p10_catches_a_tail_the_median_hides() -> None:
    # One very different answer among ten drags the 10th percentile (linear interpolation) far down,
    # while the median stays at 1.0; among twenty cases the same single outlier sits below p10.
    ten = gates_by_name(suite_results(**{"deposit-05": ENGLISH}))
    assert ten["text.similarity_median"].passed and not ten["text.similarity_p10"].passed
    assert "deposit-05" in ten["text.similarity_p10"].message
    twenty = {f"case-{i:02d}": drift(ENGLISH if i == 5 else BASELINE) for i in range(20)}
    p10 = gates_by_name(twenty)["text.similarity_p10"]
    assert p10.statistic == 1.0 and p10.verdict == "insufficient"  # the bootstrap interval still reaches the outlier


def test_reference_cer_gate_compares_with_the_baseline_by_default() -> None:
    reference = "今天下午三点在三号会议室开会，请准时参加。"
    good = {f"asr-{i}": text_drift(reference, reference, reference=reference, config=CFG) for i in range(2)}
    bad = dict(good, **{"asr-9": text_drift(reference, "下午开会", reference=reference, config=CFG),
                        "asr-8": text_drift(reference, "下午3点开会", reference=reference, config=CFG),
                        "asr-7": text_drift(reference, "3点开会", reference=reference, config=CFG)})
    assert gates_by_name(good)["text.reference_cer_increase"].passed
    g = gates_by_name(bad)["text.reference_cer_increase"]
    assert g.verdict in ("regression", "insufficient") and g.threshold == pytest.approx(CFG.max_cer_increase)
    assert g.statistic is not None and g.statistic > CFG.max_cer_increase
    assert "asr-9" in g.message and "baseline 0.000" in g.message
    absolute = gates_by_name(bad, TextConfig(max_median_cer=0.9))["text.reference_cer"]
    assert absolute.passed and absolute.threshold == 0.9


def test_reference_gate_without_references_is_insufficient_only_when_configured() -> None:
    results = suite_results()
    assert "text.reference_cer" not in gates_by_name(results)
    configured = gates_by_name(results, TextConfig(max_median_cer=0.1))
    assert configured["text.reference_cer"].verdict == "insufficient"


def test_empty_suite_is_insufficient_never_a_silent_pass() -> None:
    gates = text_gates("legal", {}, CFG)
    assert gates and all(g.verdict == "insufficient" for g in gates)


def test_results_without_text_details_are_left_out() -> None:
    results = dict(suite_results(), broken=CheckResult("text", passed=False, explanation="request failed"))
    gates = gates_by_name(results)
    assert all(g.n == 10 for g in gates.values())
