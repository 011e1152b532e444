from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from conformance.checks.result import CheckResult, Finding
from conformance.checks.terms import (
    drift_table,
    fold_with_offsets,
    load_glossary,
    near_misses,
    term_findings,
    terms_gates,
)

GLOSSARY_FILE = Path(__file__).resolve().parents[2] / "goldens" / "legal" / "glossary.yaml"
DATA: dict[str, Any] = yaml.safe_load(GLOSSARY_FILE.read_text(encoding="utf-8"))
G = load_glossary(DATA)
SURFACES = sorted({s for e in DATA["terms"] for s in (e["term"], *e["lookalikes"], *e.get("variants", []))})


def kinds(result: CheckResult) -> list[str]:
    return [f.kind for f in result.findings]


def only(result: CheckResult, kind: str) -> Finding:
    (f,) = [f for f in result.findings if f.kind == kind]
    return f


def assert_points_at(text: str, where: dict[str, Any]) -> None:
    start, end = where["start"], where["end"]
    assert text[start:end] == where["text"]
    offset = start - where["snippet_start"]
    assert where["snippet"][offset:offset + end - start] == where["text"]
    assert where["snippet"] == text[max(0, start - 10):end + 10]


# --- per-case findings --------------------------------------------------------------------------------------

def test_lookalike_replacement_is_reported_with_both_snippets() -> None:
    base = "甲方应于签约后三日内向乙方支付定金人民币5万元，乙方违约的应当双倍返还定金。"
    cand = "甲方应于签约后三日内向乙方支付订金人民币5万元，乙方违约的应当双倍返还定金。"
    r = term_findings(base, cand, G)
    f = only(r, "replaced")
    assert not r.passed and f.path == "定金" and "订金" in f.message and "定金罚则" in f.message
    assert f.candidate["text"] == "订金" and f.baseline["text"] == "定金"
    # aligned with the replaced occurrence, not the later one
    assert f.baseline["start"] == base.index("定金")
    assert_points_at(base, f.baseline)
    assert_points_at(cand, f.candidate)
    assert r.details["drift"] == {"定金": 1} and r.details["baseline_occurrences"]["定金"] == 2


def test_identical_outputs_and_accepted_variants_are_not_drift() -> None:
    text = "接收方应当对保密信息严格保密。因不可抗力不能履行的，部分或者全部免除责任。"
    assert term_findings(text, text, G).passed
    r = term_findings(text, text.replace("应当", "必须"), G)
    assert r.passed and r.details["drift"] == {}


def test_english_replacements_and_inflections() -> None:
    r = term_findings("The Supplier shall indemnify the Buyer.", "The Supplier may reimburse the Buyer.", G)
    assert sorted(f.path for f in r.findings if f.kind == "replaced") == ["indemnify", "shall"]
    r = term_findings("Either party may terminate this Agreement.",
                      "Either party may TERMINATE this Agreement; "
                      "the agreement is terminated.", G)
    assert r.passed


def test_substring_of_a_longer_glossary_term_is_not_counted() -> None:
    # 撤销 inside 可撤销 is not 撤销: replacing 无效 by 可撤销 is one drift, not two
    r = term_findings("该条款无效。", "该条款可撤销。", G)
    assert [(f.kind, f.path) for f in r.findings] == [("replaced", "无效")]
    assert term_findings("该条款可撤销。", "该条款可撤销。", G, forbidden=["撤销"]).passed


def test_required_and_forbidden_terms() -> None:
    r = term_findings("保证人承担连带责任。", "保证人承担按份责任。", G,
                      required=["连带"], forbidden=["按份"])
    assert sorted(kinds(r)) == ["forbidden_present", "replaced", "required_missing"]
    assert "baseline" not in only(r, "required_missing").message
    assert_points_at("保证人承担按份责任。", only(r, "forbidden_present").candidate)
    # a plain (non-glossary) required term is found inside a longer glossary term
    assert term_findings("", "保证人承担连带责任。", G, required=["连带"]).passed
    # a required glossary term is satisfied by its accepted variant
    assert term_findings("", "丙方承担连带清偿责任。", G, required=["连带责任"]).passed
    r = term_findings("", "", G, required=["定金"])
    assert "the baseline misses it too" in only(r, "required_missing_shared").message
    assert r.passed  # both miss it: reported, but not a migration regression
    r = term_findings("定金为总价的20%。", "订金为总价的20%。", G, forbidden=["订金"], required=["定金"])
    assert not r.passed and {"required_missing", "forbidden_present"} <= set(kinds(r))


# --- look-alikes inside longer terms (issue #12, finding 7) -------------------------------------------------

def test_lookalike_swapped_inside_a_longer_glossary_term_is_drift() -> None:
    base, cand = "保证人对全部债务承担连带责任保证。", "保证人对全部债务承担按份责任保证。"
    r = term_findings(base, cand, G)
    f = only(r, "replaced")
    assert not r.passed and f.path == "连带责任保证"
    assert "'连带责任' inside '连带责任保证'" in f.message and "'按份责任保证'" in f.message
    assert "按份责任各按份额" in f.message  # the note of the inner pair
    assert f.baseline["text"] == "连带责任保证" and f.candidate["text"] == "按份责任保证"
    assert_points_at(base, f.baseline)
    assert_points_at(cand, f.candidate)
    assert r.details["drift"] == {"连带责任保证": 1} and r.details["baseline_occurrences"] == {"连带责任保证": 1}
    # the other way round, the drift is counted against the baseline's occurrence (按份责任 + 保证)
    back = term_findings(cand, base, G)
    assert only(back, "replaced").path == "按份责任" and back.details["drift"] == {"按份责任": 1}
    assert only(back, "replaced").baseline["text"] == "按份责任保证"


def test_a_longer_glossary_term_is_one_occurrence_and_an_unlisted_one_leaves_the_inner_term() -> None:
    r = term_findings("承担连带责任保证。", "承担连带责任保证。", G)
    assert r.passed and r.details["baseline_occurrences"] == {"连带责任保证": 1}
    r = term_findings("由连带责任人承担。", "由按份责任人承担。", G)  # 连带责任人 is not in the glossary
    assert r.details["baseline_occurrences"] == {"连带责任": 1}
    assert [(f.kind, f.path) for f in r.findings] == [("replaced", "连带责任")]


def test_a_swap_inside_a_longer_term_needs_the_rest_of_it_unchanged() -> None:
    # 诉讼时效 dropped while 仲裁 appears elsewhere is not 诉讼 → 仲裁 …
    assert "replaced" not in kinds(term_findings("诉讼时效为三年。", "争议提交仲裁。", G))
    # … 仲裁时效 in its place is
    assert only(term_findings("诉讼时效为三年。", "仲裁时效为三年。", G), "replaced").path == "诉讼时效"


def test_english_compounds_respect_word_boundaries() -> None:
    r = term_findings("The guarantors are jointly and severally liable.", "The guarantors are severally liable.", G)
    assert r.details["baseline_occurrences"] == {"jointly and severally": 1}
    assert [(f.kind, f.path) for f in r.findings] == [("replaced", "jointly and severally")]
    r = term_findings("The cap does not apply to gross negligence.", "The cap does not apply to negligence.", G)
    assert [(f.kind, f.path) for f in r.findings] == [("replaced", "gross negligence")]
    # a hyphenated compound is the multi-word term
    r = term_findings("Seller shall use best-efforts to deliver.", "Seller shall use reasonable efforts to deliver.", G,
                      required=["best efforts"])
    assert [(f.kind, f.path) for f in r.findings] == [("required_missing", "best efforts"),
                                                      ("replaced", "best efforts")]
    assert only(r, "replaced").baseline["text"] == "best-efforts"
    assert term_findings("", "liable jointly-and-severally", G, required=["jointly and severally"]).passed
    # a glossary word inside a longer word is not that word: voidable is not void
    assert term_findings("It is voidable.", "It is void.", G).details["baseline_occurrences"] == {"voidable": 1}


def test_one_new_lookalike_explains_one_lost_term() -> None:
    # two terms sharing a look-alike, both gone, the look-alike once: one drift, not two
    g = load_glossary({"terms": [{"term": "甲方案", "lookalikes": ["丙方案"], "note": "甲 vs 丙"},
                                 {"term": "乙方案", "lookalikes": ["丙方案"], "note": "乙 vs 丙"}]})
    r = term_findings("采用甲方案或乙方案。", "采用丙方案。", g)
    assert sum(r.details["drift"].values()) == 1 and kinds(r) == ["replaced"]


def test_near_miss_fires_on_a_misspelt_term_only() -> None:
    base = "因不可抗力不能履行合同的，根据不可抗力的影响免除责任。"
    cand = "因不可抗拒力不能履行合同的，根据不可抗力的影响免除责任。"
    r = term_findings(base, cand, G)
    f = only(r, "near_miss")
    assert f.path == "不可抗力" and f.candidate["text"] == "不可抗拒力"
    assert_points_at(cand, f.candidate)
    assert_points_at(base, f.baseline)
    assert r.details["drift"] == {"不可抗力": 1}
    # the same odd wording in the baseline is not drift
    assert "near_miss" not in kinds(term_findings(cand, cand, G))


def test_near_miss_thresholds_spare_real_neighbours() -> None:
    assert [h[1].surface for h in near_misses("The Supplier shall indemnfy the Buyer.", G)] == ["indemnfy"]
    assert near_misses("The indemnity survives termination; it was terminated.", G) == []
    assert near_misses("本合同由法定代理人签署。", G) == []  # a substitution that is another real term
    assert near_misses("根据不可抗辩条款", G) == []  # 不可抗 would be a 3-character window: too short
    assert [h[1].surface for h in near_misses("由法定代人签字", G)] == ["法定代人"]  # deletion, 5-char term


def test_near_miss_threshold_can_be_tuned_in_the_glossary() -> None:
    strict = load_glossary({**DATA, "near_miss_threshold": {"cjk": 95}})
    assert near_misses("因不可抗拒力", strict) == [] and near_misses("因不可抗拒力", G) != []


@given(st.lists(st.sampled_from(SURFACES), max_size=8),
       st.lists(st.sampled_from(["，", "。", " ", "; ", "、", "\n"]), min_size=8, max_size=8))
def test_near_miss_never_fires_on_exact_terms_variants_or_lookalikes(terms: list[str],
                                                                     seps: list[str]) -> None:
    text = "".join(t + s for t, s in zip(terms, seps, strict=False))
    assert near_misses(text, G) == []


cjk_prose = st.text(alphabet=st.sampled_from(list("甲乙方应当可以支付定订金押抵质撤销回无效"
                                                  "不可抗拒力法定代表人以上超过仲裁诉讼，。 ")),
                    max_size=60)
any_text = st.text(max_size=60) | cjk_prose


@given(any_text, any_text, st.lists(st.sampled_from(["定金", "连带", "shall", "力"]), max_size=2))
def test_findings_never_raise_and_offsets_point_at_the_snippets(base: str, cand: str,
                                                                required: list[str]) -> None:
    r = term_findings(base, cand, G, required=required, forbidden=required)
    for f in r.findings:
        assert f.path
        if f.candidate is not None:
            assert_points_at(cand, f.candidate)
        if f.baseline is not None:
            assert_points_at(base, f.baseline)
    assert r.passed == all(f.kind.endswith("_shared") for f in r.findings)


COMPOUNDS = sorted({c.swapped for s in SURFACES for c in G.compounds_of(G.group(s) or "")})
glossary_prose = st.lists(st.sampled_from([*SURFACES, *COMPOUNDS, "保证", "人", "时效", " liable", "，", " "]),
                          max_size=12).map("".join)
EXACT_ONLY = load_glossary({**DATA, "terms": [{**e, "near_miss": False} for e in DATA["terms"]]})


@given(glossary_prose, glossary_prose)
def test_a_term_never_drifts_more_often_than_it_occurs(base: str, cand: str) -> None:
    r = term_findings(base, cand, EXACT_ONLY)  # near misses count against terms the baseline may lack
    occurrences = r.details["baseline_occurrences"]
    assert all(k <= occurrences.get(term, 0) for term, k in r.details["drift"].items()), r.details
    for f in r.findings:
        assert_points_at(cand, f.candidate)
        assert_points_at(base, f.baseline)


@given(any_text)
def test_near_miss_spans_point_into_the_text(text: str) -> None:
    for term, span, score in near_misses(text, G):
        assert text[span.start:span.end] and score >= 85
        assert fold_with_offsets(text[span.start:span.end])[0] == span.surface
        assert G.group(term) is not None


def test_none_outputs_are_empty_text() -> None:
    assert term_findings(None, None, G).passed
    both_miss = term_findings(None, None, G, required=["定金"])
    assert kinds(both_miss) == ["required_missing_shared"]
    assert both_miss.passed and both_miss.details["shared_expectation_failures"] == 1


# --- suite gate ---------------------------------------------------------------------------------------------

def _suite(n_clean: int, drifted: dict[str, tuple[str, str]]) -> dict[str, CheckResult]:
    clean = "乙方应当支付定金。"
    results = {f"clean-{i:03d}": term_findings(clean, clean, G) for i in range(n_clean)}
    results.update({cid: term_findings(b, c, G) for cid, (b, c) in drifted.items()})
    return results


def test_drift_rate_gate_names_the_most_drifted_terms() -> None:
    results = _suite(20, {"d1": ("支付定金。", "支付订金。"), "d2": ("应当支付定金", "应当支付订金"),
                          "d3": ("应当通知", "可以通知")})
    table = drift_table(results)
    assert list(table["term"])[:2] == ["定金", "应当"]
    assert table.iloc[0]["drifted"] == 2 and table.iloc[0]["cases"] == "d1, d2"
    (g,) = terms_gates("legal", results, {"max_drift_rate": 0.001})
    n = 2 * 20 + 1 + 2 + 1
    assert g.verdict == "regression" and g.n == n and g.statistic == pytest.approx(3 / n)
    assert "定金 ×2 (d1, d2)" in g.message and g.interval is not None


def test_zero_drift_on_few_occurrences_is_insufficient_and_says_how_little_it_proves() -> None:
    (g,) = terms_gates("legal", _suite(10, {}), {"max_drift_rate": 0.001})
    assert g.verdict == "insufficient" and g.statistic == 0.0 and g.n == 20
    assert g.interval is not None and g.interval[1] > 0.1 and "too few to demonstrate" in g.message


def test_terms_gate_edge_cases() -> None:
    assert terms_gates("legal", {}, {"max_drift_rate": 0.001}) == []  # no case the check applied to
    results = {"ok": term_findings("定金", "定金", G, required=["定金"]),
               "bad": term_findings("定金", "定金", G, forbidden=["定金"])}
    gates = terms_gates("legal", results, {"max_drift_rate": 0.001, "max_expectation_failure_rate": 0.0})
    # the baseline says the forbidden term too: the expectation gate is baseline_fails, never the candidate's
    assert [g.verdict for g in gates] == ["insufficient", "baseline_fails"] and "bad" in gates[1].message
    lost = {"ok": term_findings("定金", "定金", G, required=["定金"]),
            "lost": term_findings("支付定金", "支付订金", G, required=["定金"])}
    exp = terms_gates("legal", lost, {})[1]
    assert exp.verdict == "regression" and exp.baseline == 0.0
