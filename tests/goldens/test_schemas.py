"""The packaged JSON Schemas: valid Draft 2020-12, shipped with the package, and they say what the docs say."""

from __future__ import annotations

import copy
import json
import re
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from conformance.goldens.loader import packaged_schema
from tests.conftest import ENDPOINTS_YAML, GOOD_SET, SUITE_YAML

REPO = Path(__file__).resolve().parents[2]
SCHEMAS = ["golden-set.schema.json", "suite.schema.json", "endpoints.schema.json"]


def _validator(name: str) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(packaged_schema(name))


def _valid(name: str, instance: Any) -> bool:
    return _validator(name).is_valid(instance)


@pytest.mark.parametrize("name", SCHEMAS)
def test_schemas_are_valid_draft_2020_12_and_packaged(name: str) -> None:
    schema = packaged_schema(name)
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$schema"].endswith("/draft/2020-12/schema")
    assert schema["$id"].endswith("/" + name)
    # shipped as package data (editors and the loader read the same file)
    on_disk = resources.files("conformance.goldens").joinpath("schema", name).read_text(encoding="utf-8")
    assert json.loads(on_disk) == schema


@pytest.mark.parametrize("name", SCHEMAS)
def test_every_ref_resolves(name: str) -> None:
    schema = packaged_schema(name)
    refs = re.findall(r'"\$ref":\s*"#/\$defs/([^"]+)"', json.dumps(schema))
    assert set(refs) <= set(schema.get("$defs", {}))
    assert "$ref" not in json.dumps(schema).replace('"$ref": "#/$defs/', "")  # no remote references


# ---------------------------------------------------------------- golden sets

GOLDEN = yaml.safe_load(GOOD_SET)


def _golden(**changes: Any) -> dict[str, Any]:
    doc = copy.deepcopy(GOLDEN)
    for dotted, value in changes.items():
        *parents, last = [int(p) if p.isdigit() else p for p in dotted.split("__")]
        node = doc
        for p in parents:
            node = node[p]
        if value is _DROP:
            del node[last]
        else:
            node[last] = value
    return doc


_DROP = object()


def test_the_shared_good_set_is_valid() -> None:
    assert list(_validator("golden-set.schema.json").iter_errors(GOLDEN)) == []


@pytest.mark.parametrize(
    "changes",
    [
        {"set": _DROP}, {"owner": _DROP}, {"cases": _DROP}, {"cases": []}, {"owner": ""},
        {"set": "Deposit Clauses"}, {"extra": 1},
        {"cases__0__id": _DROP}, {"cases__0__id": "-leading-dash"}, {"cases__0__id": "has space"},
        {"cases__0__messages": []}, {"cases__0__prompt": "and messages too"}, {"cases__1__prompt": ""},
        {"cases__0__messages__0__role": "robot"}, {"cases__0__messages__0__extra": 1},
        {"cases__0__params": {"temperature": 2.5}}, {"cases__0__params": {"top_p": 0}},
        {"cases__0__params": {"max_tokens": 0}}, {"cases__0__params": {"seed": 1.5}},
        {"cases__0__params": {"stop": ["a", "b", "c", "d", "e"]}}, {"cases__0__params": {"unknown_param": 1}},
        {"cases__0__params": {"response_format": {}}}, {"cases__0__params": {"tool_choice": "sometimes"}},
        {"cases__1__tools__0__type": "retrieval"}, {"cases__1__tools__0__function__name": "has space"},
        {"cases__1__tools__0__function__name": "x" * 65},
        {"cases__0__expect__lable": "x"}, {"cases__0__expect__label": ""},
        {"cases__0__expect__terms__required": [""]}, {"cases__0__expect__terms__optional": ["x"]},
        {"cases__1__expect__tool_calls__0__name": _DROP}, {"cases__1__expect__tool_calls__0__args": {}},
        {"cases__0__tags": ["has space"]}, {"cases__0__tags": ["a", "a"]},
        {"defaults__model": "x"}, {"defaults__system": 5},
    ],
    ids=lambda c: ",".join(f"{k}={'DROP' if v is _DROP else v!r}"[:40] for k, v in c.items()),
)
def test_golden_set_rejects(changes: dict[str, Any]) -> None:
    assert not _valid("golden-set.schema.json", _golden(**changes))


@pytest.mark.parametrize(
    "changes",
    [
        {"cases__0__expect": _DROP},  # expectations are optional
        {"defaults": _DROP, "description": _DROP},
        {"cases__0__params": {"stop": "。", "tool_choice": {"type": "function"}, "parallel_tool_calls": False}},
        {"cases__0__messages__0__content": None},  # assistant messages with only tool calls
        {"cases__0__expect": {"label": "负面", "reference": "r", "must_include": ["a"], "must_not_include": ["b"]}},
        {"cases__1__tools__0__function__strict": True},
        {"set": "v2.deposit_clauses-zh"},
    ],
)
def test_golden_set_accepts(changes: dict[str, Any]) -> None:
    assert _valid("golden-set.schema.json", _golden(**changes))


# ---------------------------------------------------------------- suites

SUITE = yaml.safe_load(SUITE_YAML)


def test_suite_examples_are_valid() -> None:
    assert _valid("suite.schema.json", SUITE)
    full = {
        **SUITE, "description": "d", "glossary": "goldens/legal/glossary.yaml", "require_gold": True,
        "labels": {"values": ["正面", "负面"], "aliases": {"positive": "正面"}},
        "consumer_parser": "json-strict",
        "gates": {g: {} for g in ("schema", "tool_calls", "classification", "terms", "text", "latency",
                                  "availability", "phrases", "consumer_parser")},
        "load": {"stages": [{"users": 1, "duration_s": 5}]},
    }
    assert list(_validator("suite.schema.json").iter_errors(full)) == []


@pytest.mark.parametrize(
    "change",
    [
        {"system": "Legal"}, {"system": "legal-team"}, {"unknown": 1}, {"gates": {"vibes": {}}},
        {"labels": {"values": ["only-one"]}}, {"labels": {"values": ["a", "a"]}},
        {"labels": {"values": ["a", "b"], "aliases": {"x": 1}}}, {"consumer_parser": "os:system"},
        {"require_gold": "yes"}, {"gates": {"availability": {"max_eror_rate": 0.0}}},
        {"gates": {"schema": {"max_invalid_rate": -1}}}, {"gates": {"terms": {"max_drift_rate": "low"}}},
        {"gates": {"latency": {"p99_msec": 10}}}, {"noise_floor": {"repeats": 100000}},
        {"load": {"stages": [{"users": 10000, "duration_s": 3600}]}}, {"load": {"stages": []}},
    ],
)
def test_suite_rejects(change: dict[str, Any]) -> None:
    assert not _valid("suite.schema.json", {**SUITE, **change})


def test_suite_requires_system() -> None:
    assert not _valid("suite.schema.json", {"goldens": "goldens/legal"})


def test_repository_suites_are_valid() -> None:
    suites = sorted((REPO / "suites").glob("*/suite.yaml"))
    for path in suites:
        assert _valid("suite.schema.json", yaml.safe_load(path.read_text(encoding="utf-8"))), path


# ---------------------------------------------------------------- endpoints

ENDPOINTS = yaml.safe_load(ENDPOINTS_YAML)


def test_endpoint_examples_are_valid() -> None:
    assert _valid("endpoints.schema.json", ENDPOINTS)
    assert _valid("endpoints.schema.json", yaml.safe_load((REPO / "endpoints.yaml").read_text(encoding="utf-8")))


def _endpoint(**fields: Any) -> dict[str, Any]:
    return {"endpoints": {"x": {"base_url": "https://h.example/v1", "model": "m", **fields}}}


@pytest.mark.parametrize(
    "doc",
    [
        {"endpoints": {}},
        {"endpoints": {"recorded": {"base_url": "http://h/v1", "model": "m"}}},  # reserved for --baseline recorded
        {"endpoints": {"-bad": {"base_url": "http://h/v1", "model": "m"}}},
        {"endpoints": {"x": {"model": "m"}}},
        _endpoint(base_url="ftp://h/v1"), _endpoint(base_url="http:// spaces/v1"), _endpoint(model=""),
        _endpoint(api_key="sk-secret-in-the-file"), _endpoint(api_key_env="lower_case"),
        _endpoint(timeout_s=0), _endpoint(max_concurrency=0), _endpoint(max_retries=11),
        _endpoint(local={"quant": "Q9_9"}), _endpoint(local={}), _endpoint(metrics_url="h/metrics"),
        {**_endpoint(), "defaults": {"baseline": "x", "judge": "x"}},
        {**_endpoint(), "extra": True},
    ],
)
def test_endpoints_rejects(doc: dict[str, Any]) -> None:
    assert not _valid("endpoints.schema.json", doc)


def test_endpoint_accepts_every_documented_field() -> None:
    doc = _endpoint(
        api_key_env="LLM_GATEWAY_KEY", description="d", timeout_s=1.5, connect_timeout_s=0.5, max_concurrency=16,
        max_retries=0, backoff_s=0, max_backoff_s=1, stream=False, extra_body={"top_k": 20},
        metrics_url="https://h.example/metrics", local={"quant": "Q8_0", "n_ctx": 2048, "n_threads": 2},
    )
    assert list(_validator("endpoints.schema.json").iter_errors(doc)) == []
    assert _valid("endpoints.schema.json", _endpoint(api_key_env=None))


@pytest.mark.parametrize("path", ["endpoints.yaml", "suites/legal/suite.yaml"])
def test_editor_modelines_point_at_the_packaged_schemas(path: str) -> None:
    file = REPO / path
    if not file.is_file():
        pytest.skip(f"{path} not in this checkout")
    match = re.search(r"yaml-language-server: \$schema=(\S+)", file.read_text(encoding="utf-8"))
    assert match, "no `# yaml-language-server: $schema=...` line"
    target = (file.parent / match.group(1)).resolve()
    assert target.is_file() and target.parent == (REPO / "conformance" / "goldens" / "schema")
