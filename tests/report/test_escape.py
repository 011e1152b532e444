from __future__ import annotations

import html
import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conformance.report.escape import BIDI_CONTROLS, calls_text, esc, plain, text_html, visible_controls


def test_every_bidi_control_becomes_a_marker_naming_it() -> None:
    assert visible_controls("pay \u202eevil\u202c now") == "pay ⟨U+202E⟩evil⟨U+202C⟩ now"
    for ch in BIDI_CONTROLS:
        assert visible_controls(ch) == f"⟨U+{ord(ch):04X}⟩"
        assert unicodedata.bidirectional(ch) in {"LRE", "RLE", "PDF", "LRO", "RLO", "LRI", "RLI", "FSI", "PDI",
                                                  "L", "R", "AL"}
    # every explicit-formatting control Unicode defines is covered (UAX #9, table 4)
    explicit = {chr(c) for c in range(0x110000) if unicodedata.bidirectional(chr(c))
                in {"LRE", "RLE", "PDF", "LRO", "RLO", "LRI", "RLI", "FSI", "PDI"}}
    assert explicit <= set(BIDI_CONTROLS)
    assert visible_controls("شكرا لك 定金") == "شكرا لك 定金"  # right-to-left letters are text, not controls


@given(st.text())
def test_text_html_is_the_text_escaped_once(text: str) -> None:
    out = text_html(text)
    assert html.unescape(out) == visible_controls(text)
    assert not set("<>\"'") & set(out) and not set(BIDI_CONTROLS) & set(out)


@pytest.mark.parametrize(("value", "shown"), [
    (None, ""), ("a'b", "a'b"), (3, "3"), (0.5, "0.5"), (True, "True"),
    ({"text": "订金", "start": 11}, "text: 订金, start: 11"),
    (["a", "b"], "a, b"),
    ({"drift": {"定金": 1}, "cases": ["c1", "c2"]}, "drift: (定金: 1), cases: (c1, c2)"),
    ([{"a": 1}, {"b": 2}], "(a: 1), (b: 2)"),
])
def test_plain_reads_like_text(value: object, shown: str) -> None:
    assert plain(value) == shown
    assert html.unescape(esc(value)) == shown


def test_esc_of_a_dict_escapes_its_contents() -> None:
    assert esc({"<b>": "\u202ex"}) == "&lt;b&gt;: ⟨U+202E⟩x"


def test_tool_calls_read_as_calls() -> None:
    calls = [{"id": "1", "type": "function", "function": {"name": "get_weather",
                                                          "arguments": '{"city": "巴黎", "days": 3, "opts": {"unit": '
                                                                       '"C", "alerts": [true, null]}}'}},
             {"function": {"name": "noop", "arguments": ""}},
             {"function": {"name": "broken", "arguments": '{"city": "Par'}},
             {"function": {"name": "native", "arguments": {"q": "x"}}}]
    assert calls_text(calls).splitlines() == [
        'get_weather(city="巴黎", days=3, opts=(unit="C", alerts=[true, null]))',
        "noop()",
        'broken({"city": "Par)',  # not JSON: shown as it came
        'native(q="x")',
    ]
