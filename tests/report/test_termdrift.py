from __future__ import annotations

from conformance.checks.glossary import Span
from conformance.report.termdrift import snippet_html, terms_section
from tests.report.runfolder import legal_case


def test_a_snippet_marks_the_term_and_escapes_around_it() -> None:
    text = "<b>甲方应向乙方支付定金</b>壹万元整，逾期不付的"
    start = text.index("定金")
    side = Span("定金", start, start + 2).describe(text)
    assert snippet_html(side) == "…b&gt;甲方应向乙方支付<mark>定金</mark>&lt;/b&gt;壹万元整，逾"  # ±10 characters
    late = "前文" * 10 + "支付订金\u202e。"
    side = Span("订金", 22, 24).describe(late)
    assert snippet_html(side) == "…前文前文前文前文支付<mark>订金</mark>⟨U+202E⟩。"


def test_snippets_of_older_runs_and_odd_shapes_are_shown_as_text() -> None:
    assert snippet_html("…买方应支付定金20%…") == "…买方应支付定金20%…"
    assert snippet_html(None) == ""
    assert snippet_html({"snippet": "a<b", "start": "x"}) == "a&lt;b"  # offsets unusable: no mark
    assert snippet_html({"text": "x", "start": 1}) == "text: x, start: 1"  # no snippet: readable, not a dict repr


def test_no_section_without_term_findings() -> None:
    row, _ = legal_case("same", "支付定金。", "支付定金。")
    assert terms_section([row]) == ""
    drifted, _ = legal_case("drift", "支付定金。", "支付订金。")
    page = terms_section([drifted, row], limit=1)
    assert "Term drift (1 regression: look-alike 1; 0 shared with the baseline)" in page and "terms-shared" not in page
