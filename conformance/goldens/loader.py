"""Load golden sets into :class:`Case` values, validating as we go.

The loader is strict (it raises the first :class:`GoldenError`); ``conformance lint`` uses the same building
blocks but collects every problem instead of stopping at the first.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Iterator
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
from rapidfuzz import fuzz, process

from conformance.errors import GoldenError
from conformance.goldens import validcache
from conformance.goldens.model import DEFAULT_PARAMS, Case, Expect, GoldenSet
from conformance.goldens.yamlsource import YamlDoc, link_outside, paused_gc, read_yaml

#: Files inside goldens/<system>/ that are not golden sets.
NON_SET_FILES = frozenset({"glossary.yaml", "glossary.yml"})


@cache
def packaged_schema(name: str) -> dict[str, Any]:
    """A JSON Schema shipped in ``conformance/goldens/schema/`` (also usable by editors)."""
    text = resources.files("conformance.goldens").joinpath("schema", name).read_text(encoding="utf-8")
    return json.loads(text)


@cache
def _validator(name: str) -> jsonschema.Draft202012Validator:
    """The validator of a packaged schema, built once, on the schema with its local ``$ref`` references inlined.

    Why inlined: the golden-set schema reaches every case, tag list and expectation through ``#/$defs/...``, and
    jsonschema resolves each such reference again for every case (a lookup plus a new resolver scope): a quarter of
    the validation time of a 10,000-case suite. An inlined ``$ref`` that stood alone in its object validates the
    same keywords in the same order, so the errors — instance paths, validators, messages — are the same ones;
    only ``schema_path`` loses its ``$ref`` steps, which nothing here reads."""
    schema = packaged_schema(name)
    return jsonschema.Draft202012Validator(_inline_local_refs(schema, schema.get("$defs", {}), ()))


def _inline_local_refs(node: Any, defs: dict[str, Any], active: tuple[str, ...]) -> Any:
    """``node`` with every lone ``{"$ref": "#/$defs/NAME"}`` replaced by that definition (recursively). A reference
    back into a definition being inlined (a recursive schema) is left to jsonschema; ``$defs`` stays in place."""
    if isinstance(node, list):
        return [_inline_local_refs(v, defs, active) for v in node]
    if not isinstance(node, dict):
        return node
    ref = node.get("$ref")
    if len(node) == 1 and isinstance(ref, str) and ref.startswith("#/$defs/"):
        name = ref.removeprefix("#/$defs/")
        if name in defs and "/" not in name and name not in active:
            return _inline_local_refs(defs[name], defs, (*active, name))
        return node
    return {k: _inline_local_refs(v, defs, active) for k, v in node.items()}


def schema_errors(doc: YamlDoc, schema_name: str) -> list[GoldenError]:
    """Every schema violation of ``doc``, as ``path:line: message`` errors, in file order.

    A large document that passed before is not walked again (see :mod:`conformance.goldens.validcache`); one with
    errors always is."""
    digest = validcache.key(doc.data, schema_name, packaged_schema(schema_name))
    if digest is not None and validcache.known(digest):
        return []
    out = [GoldenError(doc.path, doc.line_of(where), f"{'.'.join(map(str, where)) or '(document)'}: {value!r} is "
                       "not a finite number (NaN and infinities are not allowed)")
           for where, value in nonfinite(doc.data)]
    for err in _validator(schema_name).iter_errors(doc.data):
        where = tuple(err.absolute_path)
        extra = _extra_keys(err)
        if extra:  # point at the offending key itself, and suggest the key that was probably meant
            for key in extra:
                out.append(GoldenError(doc.path, doc.line_of((*where, key)), _unknown_key(err, where, key)))
            continue
        if where and where[-1] == "extra_body" and "propertyNames" in err.absolute_schema_path:  # point at the key
            out.append(GoldenError(doc.path, doc.line_of((*where, err.instance)), _bad_key(err, where)))
            continue
        out.append(GoldenError(doc.path, doc.line_of(where), _humanise(err, where)))
    out.sort(key=lambda e: e.line or 0)
    if digest is not None and not out:
        validcache.remember(digest)
    return out


def nonfinite(data: Any, where: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], float]]:
    """Paths of NaN/±infinity values (YAML's ``.nan``/``.inf``): JSON Schema's ``number`` accepts them and every
    ``minimum``/``maximum`` comparison with NaN is false, so a NaN threshold would pass validation silently."""
    if isinstance(data, float):
        if not math.isfinite(data):
            yield where, data
    elif isinstance(data, dict):
        for k, v in data.items():
            yield from nonfinite(v, (*where, k))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            yield from nonfinite(v, (*where, i))


def _extra_keys(err: jsonschema.ValidationError) -> list[str]:
    if err.validator != "additionalProperties" or not isinstance(err.instance, dict):
        return []
    known = set(err.schema.get("properties", {}))
    patterns = [re.compile(p) for p in err.schema.get("patternProperties", {})]
    return [k for k in err.instance if k not in known and isinstance(k, str)
            and not any(p.search(k) for p in patterns)]


def _unknown_key(err: jsonschema.ValidationError, where: tuple[Any, ...], key: str) -> str:
    known = sorted(err.schema.get("properties", {}))
    if err.schema.get("patternProperties"):
        known += [f"/{p}/" for p in err.schema["patternProperties"]]
    candidates = {k: k for k in known}
    if "expect" in known:  # a case-level `label:` most likely belongs under `expect:`
        expect_keys = packaged_schema("golden-set.schema.json")["$defs"]["expect"]["properties"]
        candidates.update({k: f"expect.{k}" for k in expect_keys if k not in candidates})
    match = process.extractOne(key, list(candidates), scorer=fuzz.ratio, score_cutoff=60)
    hint = f" (did you mean `{candidates[match[0]]}`?)" if match else f" (known keys: {', '.join(known)})"
    what = "expectation key" if where and where[-1] == "expect" else "key"
    dotted = ".".join(str(p) for p in where) or "(document)"
    return f"{dotted}: unknown {what} `{key}`{hint}"


def _bad_key(err: jsonschema.ValidationError, where: tuple[Any, ...]) -> str:
    dotted = ".".join(str(p) for p in where)
    if err.validator == "not":
        return (f"{dotted}: `{err.instance}` is a standard request field: set it under `params` "
                "(`extra_body` is for engine-specific fields)")
    return f"{dotted}: `{err.instance}` is not a valid key here ({err.message})"


def _humanise(err: jsonschema.ValidationError, where: tuple[Any, ...]) -> str:
    dotted = ".".join(str(p) for p in where) or "(document)"
    if where == ("consumer_parser",):
        from conformance.consumers import parser_problem

        return f"{dotted}: {parser_problem(err.instance)}"
    if err.validator == "oneOf" and isinstance(err.instance, dict) and "id" in err.instance:
        return f"{dotted}: a case needs exactly one of `messages` or `prompt`"
    if err.validator == "minItems" and where and where[-1] == "cases":
        return "empty set: `cases` has no cases"
    return f"{dotted}: {err.message}"


def is_set_file(path: Path) -> bool:
    return path.suffix in (".yaml", ".yml") and path.name not in NON_SET_FILES


def set_files(system_dir: Path) -> list[Path]:
    """Golden set files of one system folder, sorted (deterministic test order)."""
    return sorted(p for p in system_dir.iterdir() if p.is_file() and is_set_file(p))


def build_set(doc: YamlDoc, system: str) -> GoldenSet:
    """Turn a schema-valid document into a :class:`GoldenSet` (defaults applied)."""
    data = doc.data
    defaults = data.get("defaults") or {}
    base_params = {**DEFAULT_PARAMS, **(defaults.get("params") or {})}
    default_tags = tuple(defaults.get("tags") or ())
    default_tools = tuple(defaults.get("tools") or ())
    default_extra = defaults.get("extra_body") or {}
    system_prompt = defaults.get("system")
    cases = []
    for i, raw in enumerate(data["cases"]):
        messages = list(raw.get("messages") or [{"role": "user", "content": raw.get("prompt")}])
        if system_prompt and not any(m.get("role") in ("system", "developer") for m in messages):
            messages.insert(0, {"role": "system", "content": system_prompt})
        tags = tuple(dict.fromkeys((*default_tags, *(raw.get("tags") or ()))))
        cases.append(
            Case(
                system=system,
                set_name=data["set"],
                id=raw["id"],
                messages=tuple(messages),
                params={**base_params, **(raw.get("params") or {})},
                tools=tuple(raw.get("tools", default_tools)),  # an explicit `tools: []` opts out
                tags=tags,
                expect=Expect.from_dict(raw.get("expect")),
                path=doc.path,
                line=doc.line_of(("cases", i)),
                extra_body={**default_extra, **(raw.get("extra_body") or {})},
            )
        )
    return GoldenSet(
        system=system,
        name=data["set"],
        owner=data["owner"],
        path=doc.path,
        cases=tuple(cases),
        description=data.get("description", ""),
    )


def read_validated(path: Path, schema_name: str, root: Path | None = None) -> YamlDoc:
    """Read a YAML file and raise its first problem (duplicate key, then schema violation) as a GoldenError.
    ``root``: refuse a file that a symlink leads out of the repository (see :func:`read_yaml`)."""
    doc = read_yaml(path, root)
    if doc.duplicates:
        where, line = doc.duplicates[0]
        raise GoldenError(path, line, f"duplicate key `{where[-1]}`")
    errors = schema_errors(doc, schema_name)
    if errors:
        raise errors[0]
    return doc


def load_set(path: Path, system: str | None = None, root: Path | None = None) -> GoldenSet:
    """Load and validate one golden file; raise the first problem. ``root``: see :func:`read_validated`."""
    return build_set(read_validated(path, "golden-set.schema.json", root), system or path.parent.name)


def load_system(system_dir: Path, root: Path | None = None) -> list[GoldenSet]:
    """All sets of one system, with case ids checked for uniqueness across the system's files. ``root``: the
    repository, which neither the folder nor any of its files may leave through a symlink."""
    if root is not None and (target := link_outside(system_dir, root)) is not None:
        raise GoldenError(system_dir, None, f"golden folder is a symlink to {target}, outside the repository: refused")
    if not system_dir.is_dir():
        raise GoldenError(system_dir, None, "golden folder not found")
    with paused_gc():  # bulk allocation, no cycles: see paused_gc
        sets = [load_set(p, system_dir.name, root) for p in set_files(system_dir)]
    if not sets:
        raise GoldenError(system_dir, None, "no golden sets (*.yaml) in this folder")
    check_unique_ids(sets)
    return sets


def check_unique_ids(sets: Iterable[GoldenSet]) -> None:
    seen: dict[str, Case] = {}
    for case in iter_cases(sets):
        if case.id in seen:
            first = seen[case.id]
            raise GoldenError(case.path, case.line, f"duplicate case id {case.id!r} (first at {first.location})")
        seen[case.id] = case


def iter_cases(sets: Iterable[GoldenSet]) -> Iterator[Case]:
    for s in sets:
        yield from s.cases
