from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Callable
from pathlib import Path

from hypothesis import assume, given
from hypothesis import strategies as st

from conformance.goldens.loader import load_set, load_system
from conformance.goldens.pii import (
    SYNTHETIC_TAG,
    PiiHit,
    find_pii,
    id_card_check_char,
    id_card_valid,
    lint_pii,
    luhn_valid,
)
from tests.conftest import Repo

DIGITS = "0123456789"
# Text around a value that cannot extend it: no digits, no X (an ID's last character), no word characters.
AROUND = st.text(st.sampled_from(list("，。：号码是的 \n身份证电话卡abc,;:()")), max_size=6)


def _luhn_digit(body: str) -> str:
    for d in DIGITS:
        if luhn_valid(body + d):
            return d
    raise AssertionError("unreachable: one digit always completes a Luhn number")


@st.composite
def id_numbers(draw: st.DrawFn) -> str:
    region = draw(st.sampled_from("12345678")) + draw(st.text(DIGITS, min_size=5, max_size=5))
    born = draw(st.dates(dt.date(1900, 1, 1), dt.date(2099, 12, 31))).strftime("%Y%m%d")
    seq = draw(st.text(DIGITS, min_size=3, max_size=3))
    body = region + born + seq
    return body + id_card_check_char(body)


@st.composite
def luhn_numbers(draw: st.DrawFn) -> str:
    body = draw(st.text(DIGITS, min_size=12, max_size=18))
    number = body + _luhn_digit(body)
    assume(len(set(number)) > 1 and not id_card_valid(number))
    return number


def kinds(text: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for h in find_pii(text):
        out.setdefault(h.kind, []).append(h.value)
    return out


@given(id_numbers(), AROUND, AROUND)
def test_valid_id_numbers_are_found(number: str, before: str, after: str) -> None:
    assert id_card_valid(number)
    assert kinds(before + number + after).get("id_card") == [number]


@given(id_numbers(), st.integers(1, 10))
def test_a_wrong_check_character_is_not_an_id_number(number: str, shift: int) -> None:
    wrong = "10X98765432"[("10X98765432".index(number[-1]) + shift) % 11]
    bad = number[:-1] + wrong
    assert not id_card_valid(bad)
    assert "id_card" not in kinds(f"证件号{bad}。")


@given(luhn_numbers(), AROUND, AROUND)
def test_luhn_card_numbers_are_found(number: str, before: str, after: str) -> None:
    assert kinds(before + number + after).get("bank_card") == [number]


@given(luhn_numbers(), st.integers(1, 9))
def test_an_off_by_one_luhn_digit_is_not_a_card(number: str, shift: int) -> None:
    bad = number[:-1] + str((int(number[-1]) + shift) % 10)
    assert not luhn_valid(bad)
    assert "bank_card" not in kinds(f"卡号{bad}。")


@given(st.sampled_from("3456789"), st.text(DIGITS, min_size=9, max_size=9), AROUND, AROUND)
def test_mobile_numbers_are_found_only_with_digit_boundaries(second: str, rest: str, before: str, after: str) -> None:
    number = "1" + second + rest
    assert kinds(before + number + after).get("mobile") == [number]
    assert "mobile" not in kinds(f"订单{number}7号")
    assert "mobile" not in kinds(f"订单9{number}号")


@given(st.text(max_size=200))
def test_never_raises_and_hits_point_at_their_text(text: str) -> None:
    hits = find_pii(text, include_synthetic=True)
    for h in hits:
        assert isinstance(h, PiiHit)
        assert 0 <= h.start < h.end <= len(text) and text[h.start:h.end] == h.value
        assert h.value not in h.masked or len(h.value) <= 2
    spans = sorted((h.start, h.end) for h in hits)
    assert all(a_end <= b_start for (_, a_end), (b_start, _) in itertools.pairwise(spans))


def test_formats_seen_in_real_text() -> None:
    text = ("身份证 11010519491231002X，电话 138-1234-5678 或 +86 13912345678，邮箱 zhang.san@corp.cn，"
            "卡号 6222 0212 3456 7890 128，全角 １３８１２３４５６７８")
    got = kinds(text)
    assert got["id_card"] == ["11010519491231002X"]
    assert got["mobile"] == ["138-1234-5678", "+86 13912345678", "１３８１２３４５６７８"]
    assert got["email"] == ["zhang.san@corp.cn"]
    assert got["bank_card"] == ["6222 0212 3456 7890 128"]
    assert kinds("13812345678@qq.com") == {"email": ["13812345678@qq.com"]}
    assert kinds("86 13812345678")["mobile"] == ["86 13812345678"]


@given(st.text(DIGITS, min_size=9, max_size=9))
def test_a_13_digit_run_starting_86_is_never_a_mobile(rest: str) -> None:
    assert "mobile" not in kinds(f"86 13{rest}".replace(" ", ""))


def test_placeholders_and_reserved_domains_are_not_personal_data() -> None:
    assert kinds("卡号 0000000000000，邮件 li.si@example.com 或 ops@mail.example.org 或 a@b.test") == {}
    hits = find_pii("li.si@example.com", include_synthetic=True)
    assert [h.synthetic for h in hits] == [True]
    assert kinds("li.si@example.com.cn") == {"email": ["li.si@example.com.cn"]}  # not reserved


def test_masked_values_do_not_leak() -> None:
    hit = find_pii("11010519491231002X")[0]
    assert hit.masked == "110105********002X"
    assert find_pii("zhang.san@corp.cn")[0].masked == "z***@corp.cn"


SET_WITH_PII = """\
set: intake
owner: "@med-informatics"
cases:
  - id: real-patient
    messages:
      - {role: user, content: "患者张三，身份证11010519491231002X，联系电话13812345678。"}
    expect: {must_include: [zhang.san@hospital.cn]}
  - id: synthetic
    tags: [synthetic-pii]
    prompt: 患者身份证11010519491231002X。
  - id: clean
    prompt: "联系 nurse@example.com 预约复诊。"
"""


def test_lint_reports_each_value_masked_with_its_case(make_repo: Callable[..., Repo]) -> None:
    repo = make_repo(system="medical_summary", sets={"intake.yaml": SET_WITH_PII}, suite=None)
    gset = load_set(repo.goldens / "intake.yaml")
    problems = lint_pii(gset)
    assert {c.id for c, _ in problems} == {"real-patient"}
    messages = [m for _, m in problems]
    assert len(messages) == 3
    assert any("resident ID number 110105********002X in messages[0].content" in m for m in messages)
    assert any("mobile number 138******78" in m for m in messages)
    assert any("e-mail address z***@hospital.cn in expect.must_include[0]" in m for m in messages)
    assert not any("11010519491231002X" in m or "13812345678" in m for m in messages)
    assert all(c.line > 0 for c, _ in problems)


def test_a_set_level_tag_covers_every_case(make_repo: Callable[..., Repo]) -> None:
    text = SET_WITH_PII.replace('owner: "@med-informatics"\n',
                                f'owner: "@med-informatics"\ndefaults: {{tags: [{SYNTHETIC_TAG}]}}\n')
    repo = make_repo(system="medical_summary", sets={"intake.yaml": text}, suite=None)
    assert lint_pii(load_set(repo.goldens / "intake.yaml")) == []


def test_the_repository_goldens_carry_no_personal_data() -> None:
    root = Path(__file__).resolve().parents[2] / "goldens"
    for system in sorted(d for d in root.iterdir() if d.is_dir() and d.name != "schema"):
        for gset in load_system(system):
            assert lint_pii(gset) == [], gset.path
