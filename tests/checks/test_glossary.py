from __future__ import annotations

import copy
import itertools
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from conformance.checks.glossary import (
    fold_term,
    fold_with_offsets,
    glossary_problems,
    load_glossary,
    scan,
    validate_glossary,
)
from conformance.checks.normalize import fold_width

GLOSSARY_FILE = Path(__file__).resolve().parents[2] / "goldens" / "legal" / "glossary.yaml"
DATA: dict[str, Any] = yaml.safe_load(GLOSSARY_FILE.read_text(encoding="utf-8"))
G = load_glossary(DATA)


# --- glossary -----------------------------------------------------------------------------------------------

def test_the_shipped_glossary_is_valid_and_covers_the_required_pairs() -> None:
    assert validate_glossary(DATA) == []
    pairs = [("定金", "订金"), ("应当", "可以"), ("连带责任", "按份责任"), ("连带责任", "补充责任"),
             ("抵押", "质押"), ("撤销", "撤回"), ("无效", "可撤销"), ("法定代表人", "法人代表"),
             ("以上", "超过"), ("仲裁", "诉讼"),
             ("shall", "may"), ("indemnify", "reimburse"), ("terminate", "suspend"),
             ("jointly and severally", "severally"), ("void", "voidable"), ("terminate", "rescind"),
             ("liquidated damages", "penalty"), ("warranty", "guarantee"), ("best efforts", "reasonable efforts"),
             ("arbitration", "mediation"), ("gross negligence", "negligence")]
    for term, other in pairs:
        assert other in G.lookalikes_of(term) and term in G.lookalikes_of(other), (term, other)
        assert G.lookalikes_of(term)[other]  # every relation carries its note
    # an indemnity and a promise to hold harmless are read as one obligation: not look-alikes
    assert G.group("hold harmless") is None


def test_new_pairs_carry_their_own_note_both_ways() -> None:
    # terminate's note is about suspension; the rescission entry's note must explain terminate/rescind
    assert "Rescission" in G.lookalikes_of("terminate")["rescind"]
    assert "Rescission" in G.lookalikes_of("rescind")["terminate"]
    assert "mediator" in G.lookalikes_of("arbitration")["mediation"]


def test_compounds_swap_an_inner_term_for_its_lookalikes() -> None:
    swaps = {(c.inner, c.lookalike, c.swapped) for c in G.compounds_of("连带责任保证")}
    assert swaps == {("连带责任", "按份责任", "按份责任保证"), ("连带责任", "补充责任", "补充责任保证")}
    assert all("连带责任中权利人" in c.note for c in G.compounds_of("连带责任保证"))
    # an inner surface that is the longer term's own look-alike (negligence in gross negligence) is no swap
    assert G.compounds_of("gross negligence") == () and G.compounds_of("连带责任") == ()
    # Latin inner surfaces only at word boundaries
    assert {c.swapped for c in G.compounds_of("commercially reasonable efforts")} >= {"commercially best efforts"}


def _glossary(**entry: Any) -> dict[str, Any]:
    base = {"term": "定金", "lookalikes": ["订金"], "note": "担保 vs 预付款"}
    return {"terms": [{**base, **entry}]}


@pytest.mark.parametrize(("data", "problem"), [
    ({"terms": [{"term": "定金", "lookalikes": ["订金"], "note": "x"}] * 2}, "duplicate term '定金'"),
    (_glossary(lookalikes=["定金", "订金"]), "'定金' is listed as its own lookalike"),
    (_glossary(lookalikes=[]), "'lookalikes' must be a non-empty list"),
    (_glossary(variants=["订金"]), "cannot be both a variant and a look-alike"),
    (_glossary(colour="red"), "unknown key 'colour'"),
    (_glossary(note=""), "'note' must say"),
    (_glossary(lookalikes=["订金", "订金"]), "listed twice"),
    (_glossary(near_miss="yes"), "'near_miss' must be true or false"),
    ({**_glossary(), "glossary": 1}, "unknown key 'glossary'"),
    ({**_glossary(), "near_miss_threshold": {"cjk": 200}}, "near_miss_threshold"),
    ({"terms": []}, "non-empty list"),
    ([1, 2], "a glossary is a mapping"),
    ({"terms": ["定金"]}, "must be a mapping"),
    ({"terms": [{"term": "", "lookalikes": ["x"], "note": "n"}]}, "non-empty string"),
])
def test_validation_names_each_problem(data: Any, problem: str) -> None:
    problems = validate_glossary(data)
    assert any(problem in p for p in problems), problems
    with pytest.raises(ValueError, match="invalid glossary"):
        load_glossary(data)


def test_problems_carry_the_yaml_path() -> None:
    data = copy.deepcopy(DATA)
    data["terms"][3]["lookalikes"] = []
    assert tuple(path for path, _ in glossary_problems(data)) == (("terms", 3, "lookalikes"), )


def test_a_variant_duplicating_another_term_is_reported() -> None:
    data = {"terms": [{"term": "应当", "lookalikes": ["可以"], "note": "n", "variants": ["必须"]},
                      {"term": "必须", "lookalikes": ["可以"], "note": "n"}]}
    assert any("duplicate term '必须'" in p for p in validate_glossary(data))


@given(st.text(max_size=40))
def test_fold_with_offsets_maps_every_character_back(text: str) -> None:
    folded, index = fold_with_offsets(text)
    assert len(folded) == len(index) and list(index) == sorted(index)
    assert all(0 <= i < len(text) for i in index)


@given(st.text(max_size=40))
def test_folded_characters_come_from_their_source_character(text: str) -> None:
    folded, index = fold_with_offsets(text)
    for ch, i in zip(folded, index, strict=True):
        assert ch == " " or ch in fold_width(text[i]).casefold()


SURFACES = sorted({s for e in DATA["terms"] for s in (e["term"], *e["lookalikes"], *e.get("variants", []))})


@given(st.text(max_size=40) | st.lists(st.sampled_from(SURFACES)).map(" ".join))
def test_scan_never_raises_and_spans_point_into_the_text(text: str) -> None:
    spans = scan(text, G.pattern)
    for a, b in itertools.pairwise(spans):
        assert a.end <= b.start
    for s in spans:
        assert 0 <= s.start < s.end <= len(text) and G.group(s.surface) is not None
        assert s.surface in fold_with_offsets(text[s.start:s.end])[0]


@given(st.text(max_size=30), st.sampled_from(SURFACES), st.text(max_size=30), st.sampled_from(["，", "。", "; ", "\n"]))
def test_a_term_inserted_into_random_text_is_found(left: str, term: str, right: str, sep: str) -> None:
    text = left + sep + term + sep + right
    start = len(left) + len(sep)
    found = [s for s in scan(text, G.pattern) if s.start == start and s.end == start + len(term)]
    assert [G.group(s.surface) for s in found] == [G.group(term)]


def test_counting_is_leftmost_longest_and_latin_is_whole_words() -> None:
    text = "该条款可撤销，不是撤销。The Mayor may sign."
    spans = scan(text, G.pattern)
    assert [s.surface for s in spans] == ["可撤销", "撤销", "may"]
    assert [text[s.start:s.end] for s in spans] == ["可撤销", "撤销", "may"]
    assert G.group("Indemnified") == "indemnify" and G.group("订金") == "订金" and G.group("合同") is None


def test_a_hyphen_between_latin_words_is_a_space_but_not_inside_cjk() -> None:
    text = "on a Best-Efforts basis"
    (span,) = scan(text, G.pattern)
    assert text[span.start:span.end] == "Best-Efforts" and G.group(span.surface) == "best efforts"
    assert fold_term("定金-押金") == "定金-押金" and fold_term("Non-Exclusive") == "non exclusive"
    assert any("duplicate term" in p for p in validate_glossary(
        {"terms": [{"term": "non-exclusive", "lookalikes": ["exclusive"], "note": "n"},
                   {"term": "non exclusive", "lookalikes": ["sole"], "note": "n"}]}))


def test_offsets_survive_full_width_and_case_folding() -> None:
    text = "Ｔｈｅ　ｐａｒｔｙ　ＳＨＡＬＬ　ｐａｙ"
    (span,) = scan(text, G.pattern)
    assert span.surface == "shall" and text[span.start:span.end] == "ＳＨＡＬＬ"
