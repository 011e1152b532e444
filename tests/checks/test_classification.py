from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conformance.checks.classification import (
    INVALID,
    LabelRow,
    LabelSet,
    agreement,
    classification_gates,
    classification_stats,
    compare_labels,
)
from conformance.checks.normalize import fold

SENTIMENT = LabelSet.from_config({"values": ["正面", "负面"],
                                  "aliases": {"positive": "正面", "negative": "负面"}})
SAFETY = LabelSet.from_config({"values": ["违规", "合规", "不合规", "需复核"]})
CFG = {"min_agreement": 0.95, "min_kappa": 0.8, "noninferiority_margin": 0.02,
       "critical_flips": [{"from": "违规", "to": "合规"}], "max_noise_excess": 0.02}

# text around a label that contains no label, alias or word character a Latin alias could glue to
noise = st.text(alphabet=st.sampled_from(list("，。！？ \n\t:：*“”()（）的了是这条评论结论为")), max_size=12)


def gate(gates: list, name: str):  # type: ignore[no-untyped-def]
    return next(g for g in gates if g.gate == f"classification.{name}")


def rows_from(pairs: list[tuple[str, str]], gold: bool = True, **extra: list[str]) -> list[LabelRow]:
    return [LabelRow(f"c{i:02d}", b if gold else None, b, c, **{k: v[i] for k, v in extra.items()})
            for i, (b, c) in enumerate(pairs)]


# --- label extraction ---------------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "label"), [
    ("正面", "正面"),
    ("这条评论是负面的。", "负面"),
    ("**负面**", "负面"),
    ("Positive!", "正面"),
    ("ＰＯＳＩＴＩＶＥ", "正面"),           # full-width Latin
    ("NEGATIVE.", "负面"),
    ("正 面", "正面"),                      # whitespace inside a CJK label
    ("“正，面”", "正面"),                   # punctuation inside a CJK label
    ("负面，不是正面", "负面"),              # first by position
    ("<think>正面还是负面？</think>\n负面", "负面"),  # reasoning is skipped
])
def test_extracts_the_first_label(text: str, label: str) -> None:
    assert SENTIMENT.extract(text) == label


@pytest.mark.parametrize("text", ["", None, "还行吧", "positively", "<think>正面", "neg"])
def test_unparseable_answers_are_invalid_not_dropped(text: str | None) -> None:
    assert SENTIMENT.extract(text) == INVALID


def test_a_label_inside_a_longer_label_does_not_win() -> None:
    # 合规 is a substring of 不合规: the longer one starting earlier wins, in either order of the config
    assert SAFETY.extract("该内容不合规。") == "不合规"
    assert LabelSet(("不合规", "合规")).extract("不合规") == "不合规"
    assert SAFETY.extract("结论：合规。此前曾被判为不合规") == "合规"


def test_a_negated_label_can_be_aliased_to_its_meaning() -> None:
    labels = LabelSet.from_config({"values": ["违规", "合规", "需复核"], "aliases": {"不合规": "违规"}})
    assert labels.extract("该内容不合规。") == "违规"
    assert labels.extract("合规") == "合规"


def test_same_start_longest_wins() -> None:
    labels = LabelSet(("合规", "合规存疑"))
    assert labels.extract("合规存疑") == "合规存疑"
    assert labels.extract("合规") == "合规"


def test_match_reports_original_offsets() -> None:
    text = "答：ＮＥＧＡＴＩＶＥ"
    m = SENTIMENT.match(text)
    assert m is not None and m.label == "负面"
    assert text[m.start:m.end] == m.surface == "ＮＥＧＡＴＩＶＥ"


def test_label_set_rejects_inconsistent_config() -> None:
    with pytest.raises(ValueError, match="not one of"):
        LabelSet.from_config({"values": ["正面", "负面"], "aliases": {"pos": "中性"}})
    with pytest.raises(ValueError, match="same text"):
        LabelSet.from_config({"values": ["正面", "负面"], "aliases": {"正面!": "负面"}})
    with pytest.raises(ValueError, match="empty"):
        LabelSet(("正面", "！！"))


def test_gold_labels_are_canonicalised() -> None:
    assert SENTIMENT.canonical("positive") == "正面"
    assert SENTIMENT.canonical("正面！") == SENTIMENT.canonical(" Positive ") == "正面"
    assert SENTIMENT.canonical("正面还是负面") == "正面还是负面"  # only a whole label is canonicalised
    assert SENTIMENT.canonical("中性") == "中性"
    assert SENTIMENT.canonical(None) is None


@given(st.text(max_size=60))
def test_extract_never_raises_and_offsets_point_at_a_label(text: str) -> None:
    label = SENTIMENT.extract(text)
    assert label in (*SENTIMENT.values, INVALID)
    m = SENTIMENT.match(text)
    if m is not None:
        assert text[m.start:m.end] == m.surface
        assert fold(m.surface) in {fold(s) for s in ("正面", "负面", "positive", "negative")}


@given(noise, st.sampled_from(["正面", "负面", "positive", "Negative", "ＮＥＧＡＴＩＶＥ", "负，面"]), noise)
def test_label_is_found_whatever_surrounds_it(before: str, surface: str, after: str) -> None:
    expected = "正面" if fold(surface) in ("正面", "positive") else "负面"
    assert SENTIMENT.extract(before + surface + after) == expected


@given(noise, st.sampled_from(["违规", "合规", "不合规", "需复核"]), noise)
def test_label_is_folding_invariant(before: str, label: str, after: str) -> None:
    text = before + label + after
    full = text.translate(str.maketrans(",.!?:()", "，。！？：（）"))
    assert SAFETY.extract(text) == SAFETY.extract(full) == label


def test_rows_from_texts() -> None:
    row = LabelRow.from_texts("r1", SENTIMENT, gold="positive", baseline="正面。", candidate="我认为是负面",
                              candidate_repeat="嗯")
    assert row == LabelRow("r1", "正面", "正面", "负面", candidate_repeat=INVALID)


# --- suite statistics ---------------------------------------------------------------------------------------

def test_confusion_matrix_includes_invalid_and_flips_name_cases() -> None:
    rows = rows_from([("正面", "正面"), ("正面", "负面"), ("负面", INVALID), ("负面", "负面")])
    a = agreement(rows, "baseline", "candidate", SENTIMENT.values)
    assert list(a.confusion.index) == ["正面", "负面", INVALID] == list(a.confusion.columns)
    assert a.confusion.at["负面", INVALID] == 1 and a.confusion.at["正面", "负面"] == 1
    assert int(a.confusion.to_numpy().sum()) == 4
    assert [(f.case_id, f.source, f.target) for f in a.flips] == [("c01", "正面", "负面"),
                                                                  ("c02", "负面", INVALID)]
    assert a.flip_counts() == {("正面", "负面"): 1, ("负面", INVALID): 1}
    per = a.per_label()
    assert per.loc["正面", "flips_out"] == 1 and per.loc[INVALID, "flips_in"] == 1
    assert per.loc["负面", "n"] == 2
    assert a.rate == 0.5


def test_stats_pair_every_available_column() -> None:
    rows = rows_from([("正面", "正面"), ("负面", "负面")], baseline_repeat=["正面", "正面"])
    stats = classification_stats(rows, SENTIMENT.values)
    assert set(stats.pairs) == {"baseline~candidate", "baseline~gold", "candidate~gold",
                                "baseline~baseline_repeat"}
    assert stats.self_disagreement() == {"baseline": 0.5}
    assert stats.noise_floor() == ("baseline", 0.5)
    assert any("baseline↔candidate 1.000" in line for line in stats.lines())


def test_rows_without_gold_skip_the_gold_pairs() -> None:
    stats = classification_stats(rows_from([("正面", "负面")], gold=False))
    assert set(stats.pairs) == {"baseline~candidate"}
    assert stats.noise_floor() is None


# --- gates --------------------------------------------------------------------------------------------------

def test_perfect_agreement_on_twenty_cases_shows_its_uncertainty() -> None:
    labels = ["违规"] * 10 + ["合规"] * 10
    rows = rows_from(list(zip(labels, labels, strict=True)), baseline_repeat=labels, candidate_repeat=labels)
    gates = classification_gates("content_safety", rows, CFG)
    agree = gate(gates, "agreement")
    # 20/20 only shows agreement ≥ 0.84: not a pass against 0.95, and not a regression either
    assert agree.verdict == "insufficient" and agree.statistic == 1.0 and agree.n == 20
    assert agree.interval is not None and 0.83 < agree.interval[0] < 0.85 and agree.interval[1] == 1.0
    assert "0.839–1.000" in agree.line() and agree.baseline == 1.0  # the baseline's self-agreement next to it
    assert gate(gates, "kappa").verdict == "insufficient"
    ni = gate(gates, "noninferiority")
    assert ni.verdict == "insufficient" and "cannot show non-inferiority" in ni.message
    crit = gate(gates, "critical_flips")
    assert crit.passed and crit.n == 10 and "upper bound on the critical-flip rate: 27.8%" in crit.message
    for g in gates:
        assert g.n == (10 if g is crit else 20) and g.threshold is not None


def test_a_critical_flip_fails_even_when_every_rate_passes() -> None:
    pairs = [("违规", "违规")] * 99 + [("合规", "合规")] * 100 + [("违规", "合规")]
    gates = classification_gates("content_safety", rows_from(pairs, gold=False),
                                 {"min_agreement": 0.95, "min_kappa": 0.8,
                                  "critical_flips": CFG["critical_flips"]})
    assert gate(gates, "agreement").passed and gate(gates, "kappa").passed
    crit = gate(gates, "critical_flips")
    assert crit.verdict == "regression"
    assert not crit.passed and crit.statistic == 1 and "c199 (违规→合规)" in crit.message


def test_critical_flip_fails_even_below_min_n_and_wildcard_target() -> None:
    rows = rows_from([("违规", INVALID)], gold=False)
    cfg = {"critical_flips": [{"from": "违规", "to": "*"}], "min_n": 30}
    crit = gate(classification_gates("s", rows, cfg), "critical_flips")
    assert crit.verdict == "regression"


def test_disagreement_within_the_noise_floor_is_not_a_regression() -> None:
    # the baseline disagrees with itself on 2 of 20 cases; the candidate differs from it on the same 2
    base = ["正面"] * 10 + ["负面"] * 10
    cand = ["负面", "负面", *base[2:]]
    rep = list(cand)
    rows = rows_from(list(zip(base, cand, strict=True)), gold=False, baseline_repeat=rep)
    noise = gate(classification_gates("s", rows, {"max_noise_excess": 0.02}), "noise_excess")
    assert noise.verdict == "insufficient" and noise.statistic == 0.0  # not a regression; 20 cases show no more
    assert "self-disagreement 2/20" in noise.message
    # a candidate that flips 6 other cases exceeds the noise floor
    worse = ["负面"] * 8 + base[8:14] + ["正面"] * 6
    rows = rows_from(list(zip(base, worse, strict=True)), gold=False, baseline_repeat=rep)
    noise = gate(classification_gates("s", rows, {"max_noise_excess": 0.02}), "noise_excess")
    assert noise.verdict == "regression" and noise.statistic is not None and noise.statistic > 0.02
    assert noise.interval is not None and noise.interval[0] <= noise.statistic <= noise.interval[1]


def test_noise_gate_without_self_replay_is_insufficient() -> None:
    noise = gate(classification_gates("s", rows_from([("正面", "正面")] * 5), {"max_noise_excess": 0.02}),
                 "noise_excess")
    assert noise.verdict == "insufficient" and "noise floor is unknown" in noise.message


def test_noninferiority_on_a_large_golden_set() -> None:
    pairs = [("正面", "正面")] * 1000 + [("负面", "负面")] * 1000
    ni = gate(classification_gates("s", rows_from(pairs), {"noninferiority_margin": 0.02}), "noninferiority")
    assert ni.passed and ni.interval is not None and ni.interval[0] > -0.02
    worse = [("正面", "负面")] * 100 + pairs[100:]
    ni = gate(classification_gates("s", rows_from(worse), {"noninferiority_margin": 0.02}), "noninferiority")
    assert ni.verdict == "regression" and "inferior" in ni.message and "McNemar" in ni.message


def test_accuracy_and_kappa_gates() -> None:
    rows = [LabelRow(f"c{i}", "正面" if i % 2 else "负面", "正面" if i % 2 else "负面",
                     "正面" if i % 2 or i % 10 == 0 else "负面") for i in range(40)]
    gates = classification_gates("s", rows, {"min_accuracy": 0.95, "min_kappa": 0.95})
    acc = gate(gates, "accuracy")
    assert not acc.passed and acc.statistic == pytest.approx(36 / 40)
    assert "baseline accuracy 1.000" in acc.message
    assert not gate(gates, "kappa").passed


def test_single_label_suite_reports_kappa_as_insufficient() -> None:
    kappa = gate(classification_gates("s", rows_from([("违规", "违规")] * 5), {"min_kappa": 0.8}), "kappa")
    assert kappa.verdict == "insufficient" and "undefined" in kappa.message


def test_perturbation_gate_compares_flip_rates() -> None:
    base = ["正面"] * 20
    same = rows_from(list(zip(base, base, strict=True)), gold=False,
                     baseline_perturbed=["负面"] * 2 + base[2:], candidate_perturbed=["负面"] * 2 + base[2:])
    cfg = {"max_perturbation_excess": 0.0}
    assert gate(classification_gates("s", same, cfg), "perturbation_excess").verdict == "insufficient"
    brittle = rows_from(list(zip(base, base, strict=True)), gold=False,
                        baseline_perturbed=base, candidate_perturbed=["负面"] * 5 + base[5:])
    g = gate(classification_gates("s", brittle, cfg), "perturbation_excess")
    assert g.verdict == "regression" and "5/20" in g.message


def test_without_any_key_agreement_is_still_gated() -> None:
    """A suite that only names its labels must not lose its classification gate (config errors such as
    `min_agrement` are refused by suite validation before any request: tests/test_suiteconfig.py)."""
    (g,) = classification_gates("s", rows_from([("正面", "正面")] * 3), None)
    assert g.gate == "classification.agreement" and g.threshold == 0.95


def test_empty_suite_is_insufficient_not_pass() -> None:
    cfg = {"min_agreement": 0.95, "min_kappa": 0.8, "noninferiority_margin": 0.02}
    gates = classification_gates("s", [], cfg)
    assert [g.verdict for g in gates] == ["insufficient"] * 3


# --- per case -----------------------------------------------------------------------------------------------

def test_compare_labels_per_case() -> None:
    assert compare_labels("正面", "正面").passed
    flip = compare_labels("正面", "负面")
    assert not flip.passed and flip.findings[0].kind == "flip"
    assert compare_labels("正面", "负面", gold="负面").passed  # the candidate fixed a baseline error
    invalid = compare_labels("正面", INVALID)
    assert not invalid.passed and invalid.findings[0].kind == "invalid"
    crit = compare_labels("违规", "合规", gold="违规", critical=[{"from": "违规", "to": "合规"}])
    assert not crit.passed and crit.details["critical"]
    assert {f.kind for f in crit.findings} == {"flip", "critical_flip"}


def test_same_wrong_answer_as_the_baseline_is_shared_not_a_regression() -> None:
    from conformance.checks.classification import compare_labels

    both_wrong = compare_labels("负面", "负面", gold="正面")
    assert both_wrong.passed and both_wrong.score == 0.0
    assert [f.kind for f in both_wrong.findings] == ["flip_shared"]
    assert both_wrong.details["shared_expectation_failures"] == 1
    both_invalid = compare_labels(INVALID, INVALID, gold="正面")
    assert both_invalid.passed and [f.kind for f in both_invalid.findings] == ["invalid_shared"]
    regressed = compare_labels("正面", INVALID, gold="正面")
    assert not regressed.passed and [f.kind for f in regressed.findings] == ["invalid"]
    flipped = compare_labels("正面", "负面", gold="正面")
    assert not flipped.passed and flipped.details["shared_expectation_failures"] == 0
