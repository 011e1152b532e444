"""yamlsource's libyaml path: the same data, lines, duplicate keys and errors as the pure-Python loader.

``parse_yaml`` parses through libyaml when PyYAML has it and falls back to the pure-Python loader on any error
(conformance/goldens/yamlsource.py explains why). These tests run both paths on the same text and demand identical
results, so the fast path can never change what a golden file means or what an error says.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import conformance.goldens.yamlsource as ys
from conformance.errors import GoldenError
from conformance.goldens.yamlsource import YamlDoc, parse_yaml
from tests.conftest import GOOD_SET
from tests.goldens.test_yamlsource import documents, yamlish

pytestmark = pytest.mark.skipif(not yaml.__with_libyaml__, reason="PyYAML built without libyaml")

ROOT = Path(__file__).resolve().parents[2]
P = Path("goldens/legal/x.yaml")

Outcome = tuple[Any, ...]


def _outcome(parse: Any, text: str) -> Outcome:
    """What a caller can observe: the data (repr, so NaN compares and key order counts), lines and duplicates — or
    the GoldenError's path, line and message."""
    try:
        doc = parse(text, P)
    except GoldenError as exc:
        return ("error", exc.path, exc.line, exc.message)
    return ("ok", repr(doc.data), doc.lines, doc.duplicates)


def _libyaml_strict(text: str, path: Path) -> YamlDoc:
    """The libyaml path without its fallback, so its own conversion errors (tags, keys) can be compared."""
    assert ys._LibyamlLoader is not None
    doc = YamlDoc(path=path, data=None)
    loader = ys._LibyamlLoader(text)
    try:
        node = loader.get_single_node()
        if node is not None:
            doc.data = ys._convert(loader, node, (), doc)
    finally:
        loader.dispose()
    return doc


def _pure(text: str, path: Path) -> YamlDoc:
    return ys._parse_pure(text, path)


def _assert_same(text: str) -> Outcome:
    """Both paths agree, and ``parse_yaml`` reports exactly what the pure-Python loader reports."""
    pure = _outcome(_pure, text)
    assert _outcome(parse_yaml, text) == pure, text
    if pure[0] == "ok" or "tag" in pure[3] or "plain scalars" in pure[3]:
        assert _outcome(_libyaml_strict, text) == pure, text
    return pure


# ---------------------------------------------------------------- generated documents

_KEYS = ["id", "a", "b", "定金", "'q k'", '"d k"', "1", "true", "null", "x y"]
_SCALARS = ["a", "b1", "yes", "No", "null", "~", "12", "-7", "0x1f", "0o17", "1_000", "3.5e2", ".inf", "-.nan",
            "2024-05-01", "2024-05-01 10:00:00", "定金条款", "é", "'it''s'", '"q \\"x\\" \\u00e9"', "! 12", "!",
            '! "7"', "!!str 12", "!!int '7'", "!!float 1", "!!bool yes", "!!null ''", "a # comment", "", "'#x'",
            "http://x/y?z=1", "- not a list", "a: b"]  # the last two are only valid quoted; the paths must agree
_BLOCK_HEADERS = ["|", "|-", "|+", ">", ">-", "|2", ">+"]


@st.composite
def _flow(draw: st.DrawFn, depth: int = 0) -> str:
    n = draw(st.integers(0, 3))
    if depth < 2 and draw(st.booleans()):
        items = [draw(_flow(depth + 1)) for _ in range(n)]
    else:
        items = [draw(st.sampled_from(["a", "1", "定", "'x, y'", "null", "! 3"])) for _ in range(n)]
    if draw(st.booleans()):
        keys = draw(st.lists(st.sampled_from(_KEYS[:4]), min_size=n, max_size=n))
        return "{" + ", ".join(f"{k}: {v}" for k, v in zip(keys, items, strict=True)) + "}"
    return "[" + ", ".join(items) + "]"


@st.composite
def _block(draw: st.DrawFn, indent: int, depth: int, anchors: list[str]) -> list[str]:
    """A block mapping (or, one level down, sometimes a block sequence) at ``indent``, as lines."""
    pad = " " * indent
    seq = depth > 0 and draw(st.booleans())
    out: list[str] = []
    for _ in range(draw(st.integers(1, 4))):
        lead = f"{pad}- " if seq else f"{pad}{draw(st.sampled_from(_KEYS))}:"
        kind = draw(st.sampled_from(["scalar", "flow", "nested", "block", "anchor", "alias", "merge", "gap"]))
        if kind == "gap":
            out.append(draw(st.sampled_from(["", f"{pad}# a comment", "  # indented comment"])))
            kind = "scalar"
        if kind == "merge" and anchors and not seq:
            out.append(f"{pad}<<: *{draw(st.sampled_from(anchors))}")
        elif kind == "alias" and anchors:
            out.append(f"{lead} *{draw(st.sampled_from(anchors))}")
        elif kind == "flow":
            out.append(f"{lead} {draw(_flow())}")
        elif kind == "block":
            out.append(f"{lead} {draw(st.sampled_from(_BLOCK_HEADERS))}")
            out += [f"{pad}  {line}" if line else "" for line in draw(st.lists(
                st.sampled_from(["text", "定金 # not a comment", "", "  more", "- x"]), min_size=1, max_size=3))]
        elif kind in ("nested", "anchor") and depth < 3:
            name = f"a{len(anchors)}{draw(st.sampled_from(['', 'x', '定']))}"
            out.append(f"{lead} &{name}" if kind == "anchor" else lead)
            out += draw(_block(indent + 2, depth + 1, anchors))
            if kind == "anchor":
                anchors.append(name)  # usable only after its node: an alias inside it would be recursive
        else:
            scalar = draw(st.sampled_from(_SCALARS))
            out.append(f"{lead} {scalar}".rstrip() if scalar else lead.rstrip())
    return out


@st.composite
def hand_written(draw: st.DrawFn) -> str:
    """YAML as people write golden files: comments, anchors, merges, block scalars, tags, CJK, CRLF, `---`."""
    lines = [draw(st.sampled_from(["", "---", "# header", "%YAML 1.1\n---", "--- # start"])),
             *draw(_block(0, 0, [])),
             *draw(st.lists(st.sampled_from(["...", "# trailer", ""]), max_size=1))]
    eol = draw(st.sampled_from(["\n", "\r\n"]))
    return eol.join(lines) + draw(st.sampled_from([eol, ""]))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(hand_written())
def test_hand_written_documents_load_identically(text: str) -> None:
    _assert_same(text)


@settings(max_examples=150, deadline=None)
@given(documents, st.sampled_from([False, True, None]), st.sampled_from([None, '"', "'", "|", ">"]),
       st.integers(2, 6), st.sampled_from([20, 80, 1000]), st.booleans())
def test_dumped_documents_load_identically(data: dict[str, Any], flow: bool | None, style: str | None, indent: int,
                                           width: int, explicit: bool) -> None:
    text = yaml.safe_dump(data, allow_unicode=True, default_flow_style=flow, default_style=style, indent=indent,
                          width=width, explicit_start=explicit, sort_keys=False)
    assert _assert_same(text)[0] == "ok"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(yamlish, st.text(max_size=60)))
def test_any_text_gives_the_pure_python_result_whenever_libyaml_defers(text: str) -> None:
    """On garbage the paths may disagree only one way (libyaml accepting what PyYAML refuses, the documented risk);
    whatever PyYAML accepts loads identically, and every error is the pure-Python one."""
    pure = _outcome(_pure, text)
    fast = ys._parse_libyaml(ys._LibyamlLoader, text, P) if ys._LibyamlLoader else None
    if pure[0] == "ok" or fast is None or "\t" in text:
        assert _outcome(parse_yaml, text) == pure, text


# ---------------------------------------------------------------- files we ship, and what a test run uses


@pytest.mark.parametrize("path", sorted((ROOT / "goldens").glob("**/*.yaml")) + sorted((ROOT / "suites").glob(
    "*/suite.yaml")), ids=lambda p: str(p.relative_to(ROOT)))
def test_shipped_goldens_and_suites_load_identically(path: Path) -> None:
    assert _assert_same(path.read_text(encoding="utf-8"))[0] == "ok"


def test_valid_documents_take_the_libyaml_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """The speed-up is real: a valid golden set never reaches the pure-Python loader."""
    def refuse(text: str, path: Path) -> YamlDoc:
        raise AssertionError("pure-Python loader used")

    monkeypatch.setattr(ys, "_parse_pure", refuse)
    assert parse_yaml(GOOD_SET, P).data["set"] == "deposit-clauses"


def test_text_with_a_tab_takes_the_pure_python_path() -> None:
    """`key:<TAB>value` is an error for PyYAML but loads under libyaml; lint must keep reporting it."""
    text = "set: x\nowner:\ty\n"
    assert ys._parse_libyaml(ys._LibyamlLoader, text, P) is not None  # libyaml alone would accept it
    with pytest.raises(GoldenError, match="found character '\\\\t' that cannot start any token") as info:
        parse_yaml(text, P)
    assert info.value.line == 2


# ---------------------------------------------------------------- errors: the pure-Python wording, always


@pytest.mark.parametrize(
    "text",
    [
        "set: x\ncases: [1, 2\n",
        "set: x\n  owner: y\n",
        "a: 1\n---\nb: 2\n",
        "set: 'unterminated\n",
        "a: *nowhere\n",
        "a: &x 1\nb: &x 2\nc: *x\nd: {<<: *x}\n",   # merging a scalar: a constructor error
        "set: x\nowner: \x07\n",                    # libyaml: "control characters are not allowed"
        "set: x\nowner: \x00\n",
        "a: \ud800\n",                              # libyaml: UnicodeEncodeError before it even starts
        "a: &x [*x]\n",
        "[" * 600 + "]" * 600,
    ],
)
def test_errors_come_from_the_pure_python_loader(text: str) -> None:
    assert ys._parse_libyaml(ys._LibyamlLoader, text, P) is None  # the fast path gave up ...
    pure = _assert_same(text)  # ... and parse_yaml said exactly what the pure-Python loader says
    assert pure[0] == "error"


def test_control_character_message_is_pyyamls_not_libyamls() -> None:
    with pytest.raises(GoldenError) as info:
        parse_yaml("set: x\nowner: \x07\n", P)
    assert info.value.message == "YAML syntax error: special character #x0007 is not allowed"
    assert info.value.line == 2


@pytest.mark.parametrize(
    "text",
    [
        "ok: 1\na: !!python/object/apply:os.system ['true']\n",
        "ok: 1\na: !!set {x, y}\n",
        "ok: 1\na: !custom [1]\n",
        "ok: 1\nv: !!binary aGVsbG8=\n",
        "ok: 1\nv: !!timestamp 2024-05-01\n",
        "a: 1\n? [x, y]\n: 2\n",
    ],
)
def test_tag_and_key_refusals_are_identical_on_both_paths(text: str) -> None:
    assert _assert_same(text)[0] == "error"


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(["set", "owner", "cases", "id", "<<"]), min_size=1, max_size=8), st.booleans())
def test_duplicate_keys_are_identical_on_both_paths(keys: list[str], nested: bool) -> None:
    prefix, indent = ("base: &b {id: 0}\nouter:\n", "  ") if nested else ("", "")
    text = prefix + "".join(f"{indent}{k}: {'*b' if k == '<<' else i}\n" for i, k in enumerate(keys))
    _assert_same(text)


@pytest.mark.parametrize(("text", "data"), [("a: ! 12\n", {"a": 12}), ("a: !\n", {"a": None}),
                                            ("a: ! '7'\n", {"a": 7}), ("a: !!str 12\n", {"a": "12"})])
def test_the_non_specific_tag_resolves_as_pyyaml_does(text: str, data: dict[str, Any]) -> None:
    """libyaml reports ``!`` as not implicit (so ``! 12`` would be "12"); PyYAML's parser resolves it. We side
    with PyYAML, quirks included."""
    assert _assert_same(text)[1] == repr(data)


def test_absurd_nesting_is_a_golden_error_not_a_crash() -> None:
    """libyaml's own C composer segfaults on ~100,000 nested brackets; ours is PyYAML's Python composer."""
    code = ("from conformance.goldens.yamlsource import parse_yaml\n"
            "from conformance.errors import GoldenError\n"
            "try:\n    parse_yaml('[' * 200000 + ']' * 200000, 'r.yaml')\n"
            "except GoldenError as exc:\n    print(exc.message)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert "nested too deeply" in proc.stdout
