"""yamlsource bounds: alias bombs, merge-key bombs and deep nesting are refused with ``path:line`` after bounded
work; ordinary anchors, aliases and merge keys still load. Also through lint, suite.yaml and endpoints.yaml."""

from __future__ import annotations

import resource
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from conformance.errors import ConfigError, GoldenError
from conformance.goldens import yamlsource
from conformance.goldens.loader import load_set
from conformance.goldens.yamlsource import MAX_DEPTH, parse_yaml, value_budget
from tests.conftest import write_repo


def _alias_bomb(levels: int = 10, width: int = 9) -> str:
    """``levels`` anchors each holding ``width`` aliases of the one before: width**levels values, ~600 bytes."""
    lines = ["set: lol", "owner: '@x'", "cases: []", "a0: &a0 [" + ", ".join(['"lol"'] * width) + "]"]
    for i in range(1, levels):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * width) + "]")
    return "\n".join(lines) + "\n"


def _merge_bomb(levels: int = 10, width: int = 9) -> str:
    """The same with merge keys: each level merges ``width`` copies of the one before (flatten_mapping copies)."""
    lines = ["m0: &m0 {a: 1, b: 2}"]
    for i in range(1, levels + 1):
        lines.append(f"m{i}: &m{i} {{<<: [" + ", ".join([f"*m{i - 1}"] * width) + "]}")
    return "\n".join(lines) + "\n"


BOMB = _alias_bomb()


class _Counted:
    """Counts the values yamlsource converts (its recursive _convert, both parse paths)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = 0
        real = yamlsource._convert

        def counting(*args: Any) -> Any:
            self.calls += 1
            return real(*args)

        monkeypatch.setattr(yamlsource, "_convert", counting)


def test_the_bomb_is_small_and_would_expand_to_billions() -> None:
    assert len(BOMB) < 700 and 9**10 > 3 * 10**9  # what the test below refuses: no fixture inflates it


def test_alias_bomb_is_refused_with_its_line_after_bounded_work(monkeypatch: pytest.MonkeyPatch) -> None:
    counted = _Counted(monkeypatch)
    with pytest.raises(GoldenError, match=r"too many values.*alias") as info:
        parse_yaml(BOMB, "goldens/x/bomb.yaml")
    assert info.value.path == "goldens/x/bomb.yaml" and info.value.line is not None
    assert 1 <= info.value.line <= BOMB.count("\n")
    assert str(info.value).startswith(f"goldens/x/bomb.yaml:{info.value.line}: ")
    # libyaml's attempt and the pure-Python one that words the error: each stops at the budget
    assert counted.calls <= 2 * (value_budget(len(BOMB)) + 1)


@pytest.mark.parametrize("where", ["value", "key"])
def test_merge_key_bomb_copies_a_bounded_number_of_entries(monkeypatch: pytest.MonkeyPatch, where: str) -> None:
    """PyYAML before 6.0.4 (which pyproject allows) copies every merged entry, so nested merges grow geometrically;
    6.0.4 de-duplicates them. Either way the entries copied stay within the budget: the bomb is refused, or loads
    small. As a mapping key, the merge would be constructed by PyYAML itself: refused before that."""
    copied: list[int] = []
    real = yaml.constructor.SafeConstructor.flatten_mapping

    def flatten(self: Any, node: yaml.MappingNode) -> None:
        real(self, node)
        copied.append(len(node.value))

    monkeypatch.setattr(yaml.constructor.SafeConstructor, "flatten_mapping", flatten)
    text = _merge_bomb() if where == "value" else _merge_bomb().replace("m10: &m10 ", "? ") + ": x\n"
    try:
        doc = parse_yaml(text, "m.yaml")
    except GoldenError as exc:
        assert exc.line is not None and ("too many values" in exc.message or "plain scalars" in exc.message)
    else:
        assert where == "value" and doc.data["m10"] == {"a": 1, "b": 2}
    assert sum(copied) <= 2 * value_budget(len(text))


@pytest.mark.parametrize(("text", "line"), [
    ("a: 1\nb: &x [*x]\n", 2),
    ("a: 1\nb: &x {c: *x}\n", 2),
    ("a: 1\nb: &x {<<: *x}\n", 2),
    ("a: 1\nb: " + "[" * (MAX_DEPTH + 5) + "]" * (MAX_DEPTH + 5) + "\n", 2),
])
def test_recursion_and_deep_nesting_are_refused_with_a_line(text: str, line: int) -> None:
    with pytest.raises(GoldenError, match=r"nested deeper|into itself") as info:
        parse_yaml(text, "r.yaml")
    assert info.value.line == line


def test_nesting_up_to_the_limit_loads() -> None:
    depth = MAX_DEPTH - 1  # the document mapping is one level
    doc = parse_yaml("a: " + "[" * depth + "1" + "]" * depth + "\n", "d.yaml")
    value = doc.data["a"]
    for _ in range(depth - 1):
        value = value[0]
    assert value == [1]


def test_ordinary_anchors_aliases_and_merges_still_load(tmp_path: Path) -> None:
    """A large golden set that reuses an anchored tool list and merged params in every case: far more alias uses
    than the bomb, and all of it loads."""
    n = 3000
    head = ("set: tools\nowner: '@t'\n"
            "x-tools: &tools [{type: function, function: {name: get_weather, parameters: {type: object, "
            "properties: {city: {type: string}, unit: {type: string, enum: [c, f]}}, required: [city]}}}]\n"
            "x-params: &params {temperature: 0, max_tokens: 32}\n"
            "cases:\n")
    cases = "".join(f"  - {{id: c{i}, prompt: 'weather {i}', tools: *tools, params: {{<<: *params, seed: {i}}}}}\n"
                    for i in range(n))
    path = tmp_path / "tools.yaml"
    path.write_text(head + cases, encoding="utf-8")
    doc = yamlsource.read_yaml(path)
    assert len(doc.data["cases"]) == n
    last = doc.data["cases"][-1]
    assert last["tools"][0]["function"]["parameters"]["required"] == ["city"]
    assert last["params"] == {"temperature": 0, "max_tokens": 32, "seed": n - 1}
    assert doc.data == yaml.safe_load(head + cases)
    # the schema has no `x-` keys: validate the cases alone as a golden set
    path.write_text(head.replace("x-tools:", "defaults:\n  tools:").replace("x-params:", "  params:") + cases,
                    encoding="utf-8")
    gset = load_set(path, "sys")
    assert len(gset.cases) == n and gset.cases[5].tools[0]["function"]["name"] == "get_weather"


def test_lint_refuses_the_bomb_quickly_in_bounded_memory(tmp_path: Path) -> None:
    """End to end, as the issue reported it: `conformance lint FILE` used to print nothing and grow past 2 GB.
    Run under an address-space cap well below that, with a timeout far above the expected milliseconds."""
    repo = write_repo(tmp_path)
    bomb = repo.root / "goldens" / "bomb" / "lol.yaml"
    bomb.parent.mkdir(parents=True)
    bomb.write_text(BOMB, encoding="utf-8")
    cap = 1 << 30  # 1 GiB of address space: the interpreter and its imports need a fraction of it

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))

    proc = subprocess.run([sys.executable, "-m", "conformance.cli", "--root", str(repo.root), "lint", str(bomb)],
                          capture_output=True, text=True, timeout=120, preexec_fn=limit)
    assert proc.returncode == 1, proc.stderr
    assert f"{bomb}:" in proc.stdout or "lol.yaml:" in proc.stdout
    assert "too many values" in proc.stdout and "1 errors" in proc.stdout


def test_suite_and_endpoints_files_go_through_the_same_limits(tmp_path: Path) -> None:
    from conformance.endpoints.config import load_endpoints
    from conformance.suite import load_suite

    repo = write_repo(tmp_path)
    suite_dir = repo.root / "suites" / "lol"
    suite_dir.mkdir(parents=True)
    (suite_dir / "suite.yaml").write_text("system: lol\n" + _alias_bomb().split("cases: []\n", 1)[1])
    with pytest.raises(GoldenError, match="too many values") as info:
        load_suite(suite_dir, repo.root)
    assert info.value.path.endswith("suite.yaml") and info.value.line
    endpoints = repo.root / "bomb-endpoints.yaml"
    endpoints.write_text("endpoints: {}\n" + _alias_bomb().split("cases: []\n", 1)[1])
    with pytest.raises(ConfigError, match=r"bomb-endpoints\.yaml:\d+: .*too many values"):
        load_endpoints(endpoints)
