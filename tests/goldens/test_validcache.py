"""validcache: a large golden document that passed validation is not validated again — and errors never vanish."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import conformance.goldens.loader as loader
from conformance.goldens import validcache
from conformance.goldens.lint import lint_paths
from conformance.goldens.loader import packaged_schema, schema_errors
from conformance.goldens.yamlsource import parse_yaml

SCHEMA = "golden-set.schema.json"


def big_set(n: int = 600, bad: int | None = None) -> str:
    lines = ["set: big", 'owner: "@team"', "cases:"]
    for i in range(n):
        prompt = f"起草买卖合同的定金条款，定金为合同总价的{i % 30 + 1}%。" + "x" * 60
        lines += [f"  - id: case-{i:04d}", f"    prompt: {prompt}"]
        if i == bad:
            lines.append("    labell: typo")
    return "\n".join(lines) + "\n"


@pytest.fixture(autouse=True)
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv("CONFORMANCE_CACHE", str(folder))
    monkeypatch.setattr(validcache, "_state", {})
    return folder / "valid-goldens"


def _no_validation(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(name: str) -> Any:
        raise AssertionError("validated again")

    monkeypatch.setattr(loader, "_validator", refuse)


def test_a_pass_is_remembered_and_not_validated_again(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    doc = parse_yaml(big_set(), "goldens/x/big.yaml")
    assert schema_errors(doc, SCHEMA) == []
    assert len(list(cache.iterdir())) == 1
    _no_validation(monkeypatch)
    assert schema_errors(parse_yaml(big_set(), "elsewhere/big.yaml"), SCHEMA) == []  # the content is the key


def test_errors_are_reported_every_time_and_never_remembered(cache: Path) -> None:
    doc = parse_yaml(big_set(bad=417), "goldens/x/big.yaml")
    first = [str(e) for e in schema_errors(doc, SCHEMA)]
    assert first and "unknown key `labell`" in first[0]
    assert [str(e) for e in schema_errors(doc, SCHEMA)] == first
    assert not cache.exists() or not list(cache.iterdir())


def test_an_edit_is_validated_afresh() -> None:
    assert schema_errors(parse_yaml(big_set(), "big.yaml"), SCHEMA) == []
    broken = parse_yaml(big_set(bad=3), "big.yaml")
    assert [e.line for e in schema_errors(broken, SCHEMA)] == [12]  # the `labell:` line of the fourth case


def test_small_documents_are_not_remembered(cache: Path) -> None:
    doc = parse_yaml(big_set(n=3), "small.yaml")
    assert validcache.key(doc.data, SCHEMA, packaged_schema(SCHEMA)) is None
    assert schema_errors(doc, SCHEMA) == []
    assert not cache.exists()


def test_the_key_tells_json_values_and_their_context_apart(monkeypatch: pytest.MonkeyPatch) -> None:
    pad = "p" * validcache.MIN_CHARS
    schema = packaged_schema(SCHEMA)
    keys = {validcache.key({"x": v, "pad": pad}, SCHEMA, schema) for v in (1, True, "1", 1.0, None, [1], {"1": 1})}
    assert len(keys) == 7
    data = {"x": 1, "pad": pad}
    base = validcache.key(data, SCHEMA, schema)
    assert validcache.key(data, "suite.schema.json", schema) != base
    assert validcache.key(data, SCHEMA, {**schema, "required": ["set"]}) != base
    monkeypatch.setattr(validcache, "_environment", lambda: "jsonschema 0.0")
    assert validcache.key(data, SCHEMA, schema) != base


def test_an_unusable_cache_folder_only_costs_a_validation(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("", encoding="utf-8")
    monkeypatch.setenv("CONFORMANCE_CACHE", str(blocker))
    doc = parse_yaml(big_set(), "big.yaml")
    assert schema_errors(doc, SCHEMA) == []
    assert schema_errors(parse_yaml(big_set(bad=0), "big.yaml"), SCHEMA)


def test_lint_output_is_the_same_cold_and_warm(tmp_path: Path) -> None:
    system = tmp_path / "goldens" / "big"
    system.mkdir(parents=True)
    (system / "ok.yaml").write_text(big_set(), encoding="utf-8")
    (system / "bad.yaml").write_text(big_set(bad=5).replace("set: big", "set: big2").replace("case-", "other-"),
                                     encoding="utf-8")
    runs = [lint_paths([tmp_path / "goldens"], tmp_path) for _ in range(2)]
    assert [str(e) for e in runs[0].errors] == [str(e) for e in runs[1].errors]
    assert len(runs[0].errors) == 1 and runs[0].summary() == runs[1].summary()

