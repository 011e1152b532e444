"""yamlsource: safe YAML with a line for every key and item, duplicate keys, and only GoldenError on bad input."""

from __future__ import annotations

import re
import string
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from conformance.errors import GoldenError
from conformance.goldens.yamlsource import parse_yaml, read_yaml
from tests.conftest import GOOD_SET, line_no

# ---------------------------------------------------------------- strategies

# Keys PyYAML writes plain and reads back as strings (not `on`, `no`, `null` ... which it would quote).
_RESERVED = {"y", "n", "yes", "no", "on", "off", "true", "false", "null"}
plain_keys = st.text(string.ascii_lowercase, min_size=1, max_size=8).filter(lambda k: k not in _RESERVED)
scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(10**6), 10**6)
    | st.floats(allow_nan=False, allow_infinity=False, width=32)
    | st.text(st.characters(exclude_categories=("Cs", "Cc")), max_size=12)
)
json_like = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(plain_keys, inner, max_size=4),
    max_leaves=12,
)
documents = st.dictionaries(plain_keys, json_like, min_size=1, max_size=5)

# Characters that make YAML interesting: indicators, quotes, tabs, a control character, CJK.
yamlish = st.text(st.sampled_from(list("ab1 :-\n\n[]{},#&*!|>'\"%@`?\t\x07é定<")), max_size=120)


def _n_lines(text: str) -> int:
    return max(1, len(text.splitlines()))


def _walk_str_keys(data: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = []
    if isinstance(data, dict):
        for k, v in data.items():
            out.append((*path, k))
            out += _walk_str_keys(v, (*path, k))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            out += _walk_str_keys(v, (*path, i))
    return out


# ---------------------------------------------------------------- data and lines


@settings(max_examples=40, deadline=None)
@given(documents, st.booleans())
def test_data_is_what_safe_load_reads(data: dict[str, Any], flow: bool) -> None:
    text = yaml.safe_dump(data, allow_unicode=True, default_flow_style=flow, sort_keys=False)
    doc = parse_yaml(text, "x.yaml")
    assert doc.data == yaml.safe_load(text)
    assert doc.duplicates == []


@settings(max_examples=40, deadline=None)
@given(documents)
def test_every_key_maps_to_the_line_that_spells_it(data: dict[str, Any]) -> None:
    text = yaml.safe_dump(data, allow_unicode=True, default_flow_style=False, sort_keys=False)
    lines = text.splitlines()
    doc = parse_yaml(text, "x.yaml")
    for path in _walk_str_keys(data):
        line = doc.lines[path]
        key = path[-1]
        if isinstance(key, str):
            assert re.search(rf"(^|[\s\-{{,])'?{re.escape(key)}'?:", lines[line - 1]), (path, line, text)


def test_lines_of_cases_and_nested_keys_in_a_golden_set() -> None:
    doc = parse_yaml(GOOD_SET, "g.yaml")
    assert doc.lines[("cases", 0)] == line_no(GOOD_SET, "id: deposit-20pct")
    assert doc.lines[("cases", 1)] == line_no(GOOD_SET, "id: weather-paris")
    assert doc.lines[("cases", 2, "expect")] == line_no(GOOD_SET, "expect: {json_schema")
    assert doc.lines[("cases", 1, "tools", 0, "function", "name")] == line_no(GOOD_SET, "name: get_weather")
    # flow-style items keep their own line too
    assert doc.lines[("cases", 0, "messages", 0)] == line_no(GOOD_SET, "起草买卖合同")


def test_line_of_falls_back_to_the_nearest_ancestor() -> None:
    doc = parse_yaml(GOOD_SET, "g.yaml")
    case2 = line_no(GOOD_SET, "id: q3-summary")
    assert doc.line_of(("cases", 2, "no-such-key", 7)) == case2
    assert doc.line_of(("cases", 99)) == line_no(GOOD_SET, "cases:")
    assert doc.line_of(()) == 1
    assert parse_yaml("", "e.yaml").line_of(("anything",)) == 1


def test_empty_and_comment_only_documents_are_none() -> None:
    assert parse_yaml("", "e.yaml").data is None
    assert parse_yaml("# only a comment\n", "e.yaml").data is None


def test_byte_order_mark_is_accepted() -> None:
    assert parse_yaml("\ufeffset: x\n", "b.yaml").data == {"set": "x"}


# ---------------------------------------------------------------- duplicate keys


@settings(max_examples=80, deadline=None)
@given(st.lists(st.sampled_from(["set", "owner", "cases", "id", "label"]), min_size=1, max_size=8),
       st.booleans())
def test_duplicate_keys_are_reported_at_each_repetition(keys: list[str], nested: bool) -> None:
    prefix, indent = ("outer:\n", "  ") if nested else ("", "")
    text = prefix + "".join(f"{indent}{k}: {i}\n" for i, k in enumerate(keys))
    offset = 1 if nested else 0
    expected = [((*(("outer",) if nested else ()), k), i + 1 + offset)
                for i, k in enumerate(keys) if k in keys[:i]]
    doc = parse_yaml(text, "d.yaml")
    assert doc.duplicates == expected
    # YAML keeps the last value; the duplicate report is what makes that visible
    inner = doc.data["outer"] if nested else doc.data
    assert inner == {k: max(i for i, kk in enumerate(keys) if kk == k) for k in keys}


def test_duplicate_key_inside_a_case() -> None:
    text = "cases:\n  - id: a\n    prompt: x\n    id: b\n"
    doc = parse_yaml(text, "d.yaml")
    assert doc.duplicates == [(("cases", 0, "id"), 4)]


def test_merge_key_overrides_are_not_duplicates() -> None:
    text = (
        "base: &base {temperature: 0, max_tokens: 64}\n"
        "hot: &hot\n"
        "  <<: *base\n"
        "  temperature: 1\n"
        "again: *hot\n"
        "both: {<<: [*base, *hot], seed: 1}\n"
    )
    doc = parse_yaml(text, "m.yaml")
    assert doc.data == yaml.safe_load(text)
    assert doc.data["again"] == {"temperature": 1, "max_tokens": 64}
    assert doc.duplicates == []


def test_a_key_written_twice_next_to_a_merge_is_still_a_duplicate() -> None:
    text = "base: &b {a: 1}\nx:\n  <<: *b\n  a: 2\n  a: 3\n"
    assert parse_yaml(text, "m.yaml").duplicates == [(("x", "a"), 5)]


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("set: x\ncases: [1, 2\n", 3),              # unclosed flow sequence: reported where the stream ends
        ("set: x\n  owner: y\n", 2),                # bad indentation
        ("set: x\ncases:\n\t- id: a\n", 3),         # tab indentation
        ("a: 1\n---\nb: 2\n", 2),                   # two documents in one golden file
        ("set: 'unterminated\n", 2),
        ("a: *nowhere\n", 1),                       # undefined alias
    ],
)
def test_syntax_errors_carry_path_and_line(text: str, line: int) -> None:
    with pytest.raises(GoldenError) as info:
        parse_yaml(text, "goldens/legal/bad.yaml")
    assert info.value.path == "goldens/legal/bad.yaml"
    assert info.value.line == line
    assert str(info.value).startswith(f"goldens/legal/bad.yaml:{line}: ")


def test_non_scalar_mapping_keys_are_rejected_with_their_line() -> None:
    with pytest.raises(GoldenError, match="plain scalars") as info:
        parse_yaml("a: 1\n? [x, y]\n: 2\n", "k.yaml")
    assert info.value.line == 2


@pytest.mark.parametrize(
    "value",
    [
        "!!python/object/apply:os.system ['touch {marker}']",   # on a sequence: converted by yamlsource itself
        "!!python/object/apply:os.system {{args: ['touch {marker}']}}",
        "!!python/name:os.system ''",                            # on a scalar: PyYAML's safe constructor refuses
        "!!set {{x, y}}",
        "!custom [1]",
    ],
)
def test_unsafe_and_unknown_tags_are_refused_not_executed(tmp_path: Path, value: str) -> None:
    marker = tmp_path / "pwned"
    text = "ok: 1\na: " + value.format(marker=marker) + "\n"
    with pytest.raises(GoldenError, match="tag") as info:
        parse_yaml(text, "u.yaml")
    assert info.value.line == 2
    assert not marker.exists()


def test_control_characters_are_a_golden_error_with_a_line() -> None:
    with pytest.raises(GoldenError) as info:
        parse_yaml("set: x\nowner: \x07\n", "c.yaml")
    assert info.value.line == 2


@pytest.mark.parametrize("text", ["a: &x [*x]\n", "a: &x {b: *x}\n", "[" * 600 + "]" * 600])
def test_recursive_aliases_and_absurd_nesting_are_golden_errors(text: str) -> None:
    with pytest.raises(GoldenError):
        parse_yaml(text, "r.yaml")


def test_read_yaml_missing_file(tmp_path: Path) -> None:
    with pytest.raises(GoldenError, match="file not found") as info:
        read_yaml(tmp_path / "nope.yaml")
    assert info.value.path == str(tmp_path / "nope.yaml")


def test_read_yaml_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes("owner: é\n".encode("latin-1"))
    with pytest.raises(GoldenError, match="UTF-8"):
        read_yaml(path)


def test_read_yaml_folder_named_like_a_file(tmp_path: Path) -> None:
    (tmp_path / "dir.yaml").mkdir()
    with pytest.raises(GoldenError):
        read_yaml(tmp_path / "dir.yaml")


def test_read_yaml_reads_utf8_cjk(tmp_path: Path) -> None:
    path = tmp_path / "g.yaml"
    path.write_text(GOOD_SET, encoding="utf-8")
    doc = read_yaml(path)
    assert doc.path == path
    assert doc.data["cases"][0]["expect"]["terms"]["forbidden"] == ["订金"]


# ---------------------------------------------------------------- never anything but GoldenError


def _check_parse_never_crashes(text: str) -> None:
    n = _n_lines(text)
    try:
        doc = parse_yaml(text, "fuzz.yaml")
    except GoldenError as exc:
        assert exc.path == "fuzz.yaml"
        # a syntax error may point at the end of the stream, one past the last line
        assert exc.line is None or 1 <= exc.line <= n + 1, (exc.line, n)
        return
    for line in doc.lines.values():
        assert 1 <= line <= n, (line, n, text)
    for _, line in doc.duplicates:
        assert 1 <= line <= n


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(yamlish)
def test_random_yamlish_text_only_raises_golden_error(text: str) -> None:
    _check_parse_never_crashes(text)


@settings(max_examples=100, deadline=None)
@given(st.data())
def test_line_mutations_of_a_golden_set_only_raise_golden_error(data: st.DataObject) -> None:
    lines = GOOD_SET.splitlines(keepends=True)
    for _ in range(data.draw(st.integers(1, 4), label="n_mutations")):
        i = data.draw(st.integers(0, len(lines) - 1), label="line")
        op = data.draw(st.sampled_from(["drop", "dup", "indent", "dedent", "cut", "insert"]), label="op")
        if op == "drop" and len(lines) > 1:
            del lines[i]
        elif op == "dup":
            lines.insert(i, lines[i])
        elif op == "indent":
            lines[i] = "  " + lines[i]
        elif op == "dedent":
            lines[i] = lines[i].lstrip(" ")
        elif op == "cut":
            lines[i] = lines[i][: data.draw(st.integers(0, len(lines[i])))]
        else:
            lines.insert(i, data.draw(yamlish, label="inserted"))
    _check_parse_never_crashes("".join(lines))


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=60))
def test_agrees_with_safe_load_whenever_safe_load_succeeds(text: str) -> None:
    try:
        expected = yaml.safe_load(text)
    except (yaml.YAMLError, RecursionError):
        _check_parse_never_crashes(text)
        return
    try:
        doc = parse_yaml(text, "any.yaml")
    except GoldenError as exc:  # only for keys safe_load accepts but golden files must not use
        assert "plain scalars" in exc.message
        return
    assume(not doc.duplicates and _json_only(expected))  # safe_load makes dates of `2024-05-01`; we keep strings
    assert doc.data == expected or (expected != expected)  # NaN never equals itself


def _json_only(data: Any) -> bool:
    if isinstance(data, dict):
        return all(_json_only(k) and _json_only(v) for k, v in data.items())
    if isinstance(data, list):
        return all(map(_json_only, data))
    return data is None or isinstance(data, str | int | float)


def test_unquoted_dates_stay_strings_as_in_json() -> None:
    text = "arguments: {date: 2024-05-01, at: 2024-05-01 10:00:00}\nkeys: {2024-05-01: x}\n"
    doc = parse_yaml(text, "d.yaml")
    assert doc.data == {"arguments": {"date": "2024-05-01", "at": "2024-05-01 10:00:00"}, "keys": {"2024-05-01": "x"}}


@pytest.mark.parametrize("value", ["!!timestamp 2024-05-01", "!!binary aGVsbG8="])
def test_explicit_non_json_scalars_are_refused(value: str) -> None:
    with pytest.raises(GoldenError, match="unsupported YAML value") as info:
        parse_yaml(f"ok: 1\nv: {value}\n", "t.yaml")
    assert info.value.line == 2
