"""The loader validates against its packaged schemas with local ``$ref`` references inlined (a speed-up): it must find
exactly the errors the schema as written finds, in the same order, with the same paths and messages."""

from __future__ import annotations

import copy
from typing import Any

import jsonschema
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conformance.goldens.loader import _inline_local_refs, _validator, packaged_schema
from tests.conftest import ENDPOINTS_YAML, GOOD_SET, SUITE_YAML

SCHEMAS = {"golden-set.schema.json": GOOD_SET, "suite.schema.json": SUITE_YAML,
           "endpoints.schema.json": ENDPOINTS_YAML}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 300) | st.floats(-1, 3) | st.sampled_from(
        ["", "x", "bad id!", "user", "system", "function", "a" * 70, "定金", "@team"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
        st.sampled_from(["id", "role", "content", "prompt", "name", "type", "labell", "terms", "x"]), inner,
        max_size=3),
    max_leaves=6,
)


def _paths(node: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [path]
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*path, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, (*path, i))
    return out


def _observed(validator: jsonschema.Draft202012Validator, instance: Any, defs: dict[str, Any]) -> list[Any]:
    """Everything the loader's error messages are made of, in iteration order. The failing (sub)schema is compared
    with its own references inlined: the loader reads its ``properties`` names, never a ``$ref``."""
    return [(tuple(e.absolute_path), e.validator, e.validator_value, e.message, _inline_local_refs(e.schema, defs, ()),
             repr(e.instance)) for e in validator.iter_errors(instance)]


@st.composite
def mutated(draw: st.DrawFn) -> tuple[str, Any]:
    name = draw(st.sampled_from(sorted(SCHEMAS)))
    doc = copy.deepcopy(yaml.safe_load(SCHEMAS[name]))
    for _ in range(draw(st.integers(1, 4))):
        path = draw(st.sampled_from(_paths(doc)))
        if not path:
            continue
        *parents, last = path
        parent = doc
        for p in parents:
            parent = parent[p]
        op = draw(st.sampled_from(["replace", "delete", "add"]))
        if op == "replace":
            parent[last] = draw(json_values)
        elif op == "delete":
            del parent[last]
        elif isinstance(parent, dict):
            parent[draw(st.sampled_from(["labell", "promt", "x", "tags"]))] = draw(json_values)
        else:
            parent.append(draw(json_values))
    return name, doc


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_inlined_schema_reports_what_the_written_schema_reports(case: tuple[str, Any]) -> None:
    name, doc = case
    schema = packaged_schema(name)
    written = jsonschema.Draft202012Validator(schema)
    defs = schema.get("$defs", {})
    assert _observed(_validator(name), doc, defs) == _observed(written, doc, defs)


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_examples_stay_valid_and_the_written_schema_is_untouched(name: str) -> None:
    before = copy.deepcopy(packaged_schema(name))
    assert _validator(name).is_valid(yaml.safe_load(SCHEMAS[name]))
    assert packaged_schema(name) == before  # editors and error hints read the schema as written


def test_inlining_replaces_lone_local_refs_only() -> None:
    defs = {"a": {"type": "string"}, "loop": {"items": {"$ref": "#/$defs/loop"}}}
    schema = {"$defs": defs, "properties": {
        "x": {"$ref": "#/$defs/a"},
        "y": {"$ref": "#/$defs/a", "description": "siblings: kept as a reference"},
        "z": {"$ref": "#/$defs/loop"},
        "r": {"$ref": "https://example.invalid/s.json"},
    }}
    out = _inline_local_refs(schema, defs, ())
    assert out["properties"]["x"] == {"type": "string"}
    assert out["properties"]["y"] == schema["properties"]["y"]
    assert out["properties"]["z"] == {"items": {"$ref": "#/$defs/loop"}}  # recursion left to jsonschema
    assert out["properties"]["r"] == schema["properties"]["r"]
    assert out["$defs"]["a"] == defs["a"]
