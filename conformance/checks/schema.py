"""Schema compatibility: is the candidate's JSON still what the consuming code expects?

Three questions, answered separately because they fail for different reasons:

1. **Valid?** :func:`validate` runs ``jsonschema`` (Draft 2020-12, format checker on) and reports *every*
   error with its JSON path (``$.items[2].amount``), not just the first — a team fixing a prompt wants the
   whole list.
2. **Same shape as before?** :func:`structural_diff` compares baseline and candidate even without a schema:
   teams tuned thousands of prompts to the old model's output, and a key that silently became a string is
   what breaks their nightly batch. ``int`` vs ``float`` count as the same JSON "number".
3. **Does *their* parser still work?** :func:`run_consumer_parser` runs the consuming team's own parsing
   function (an allow-listed one: :mod:`conformance.consumers`) on both outputs.

:func:`check_schema` combines 1 and 2 (plus :func:`~conformance.checks.extract.compare_envelopes`) into one
per-case :class:`CheckResult`; :func:`schema_gates` aggregates per-case results into suite gates.
"""

from __future__ import annotations

import dataclasses
import re
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError, best_match

from conformance.checks.extract import Extraction, compare_envelopes
from conformance.checks.params import MARGIN, gate_params, rate
from conformance.checks.result import CheckResult, Finding
from conformance.gates import GateResult, rate_gate

#: Findings that make a case fail by default: the consumer cannot use the answer as before.
# A `<think>` block, a fence or prose the baseline never emitted breaks a consumer that calls json.loads on the
# answer even when the JSON inside is perfect — so envelope changes that add wrapping fail by default too.
BREAKING: frozenset[str] = frozenset({"unparseable", "schema_error", "missing_key", "type_change",
                                      "think_appeared", "fence_appeared", "prose_appeared", "reasoning_moved"})
#: Findings that make a case count as *invalid* for the invalid-rate gate.
INVALID: frozenset[str] = frozenset({"unparseable", "schema_error"})

_IDENT = re.compile(r"\A[A-Za-z_][A-Za-z0-9_]*\Z")
_INDEX = re.compile(r"\[\d+\]")
Segment = str | int
Schema = Mapping[str, Any]


def json_path(segments: tuple[Segment, ...] | list[Segment]) -> str:
    """``("items", 2, "amount")`` → ``$.items[2].amount``; odd keys are quoted: ``$["first name"]``."""
    out = "$"
    for seg in segments:
        if isinstance(seg, int):
            out += f"[{seg}]"
        elif _IDENT.match(seg):
            out += f".{seg}"
        else:
            out += '["' + seg.replace("\\", "\\\\").replace('"', '\\"') + '"]'
    return out


def json_type(value: Any) -> str:
    """The JSON type name; ``bool`` is not a number and ``int``/``float`` are both ``number``."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list | tuple):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _short(value: Any, n: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= n else text[: n - 1] + "…"


def make_validator(schema: Mapping[str, Any]) -> Draft202012Validator:
    """A Draft 2020-12 validator with format checking; a broken schema is the golden's fault → ValueError."""
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        where = json_path(list(exc.absolute_path))
        raise ValueError(f"invalid JSON Schema at {where}: {exc.message}") from None
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


def schema_errors(value: Any, schema: Mapping[str, Any]) -> list[Finding]:
    """Every validation error as a ``schema_error`` finding, sorted by path."""
    errors = sorted(make_validator(schema).iter_errors(value),
                    key=lambda e: (json_path(list(e.absolute_path)), str(e.validator), e.message))
    out = []
    for err in errors:
        path = json_path(list(err.absolute_path))
        msg = err.message if len(err.message) <= 200 else err.message[:199] + "…"
        if err.context:  # anyOf/oneOf: name the closest branch failure too
            best = best_match(err.context)
            if best is not None:
                msg += f" (closest branch: {best.message[:120]})"
        out.append(Finding("schema_error", f"`{path}`: {msg}", path=path, candidate=err.instance
                           if not isinstance(err.instance, dict | list) else None))
    return out


def validate(value: Any, schema: Mapping[str, Any], *, check: str = "schema.validate") -> CheckResult:
    """Validate one JSON value against ``schema``; the result lists every error with its JSON path."""
    findings = tuple(schema_errors(value, schema))
    explanation = (f"{len(findings)} schema error{'s' if len(findings) != 1 else ''}: "
                   + "; ".join(f.message for f in findings[:3]) + (" …" if len(findings) > 3 else "")
                   ) if findings else "valid against the schema"
    return CheckResult(check, passed=not findings, explanation=explanation,
                       score=1.0 if not findings else 0.0, findings=findings)


def resolve_branches(schema: Any, root: Schema, _depth: int = 0) -> list[Schema]:
    """A subschema with local ``$ref``s followed and ``anyOf``/``oneOf``/``allOf`` branches flattened.

    Depth-limited, so a recursive ``$ref`` cannot loop forever.
    """
    if not isinstance(schema, Mapping) or _depth > 20:
        return []
    out = [schema]
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#"):
        node: Any = root
        for part in [p for p in ref[1:].split("/") if p]:
            node = node.get(part.replace("~1", "/").replace("~0", "~")) if isinstance(node, Mapping) else None
        out += resolve_branches(node, root, _depth + 1)
    for key in ("anyOf", "oneOf", "allOf"):
        for branch in schema.get(key, ()) or ():
            out += resolve_branches(branch, root, _depth + 1)
    return out


def _child(schemas: list[Schema], seg: Segment, root: Mapping[str, Any]) -> list[Schema]:
    out: list[Schema] = []
    for s in schemas:
        if isinstance(seg, int):
            prefix = s.get("prefixItems") or []
            sub = prefix[seg] if seg < len(prefix) else s.get("items")
        else:
            sub = (s.get("properties") or {}).get(seg)
            if sub is None and isinstance(s.get("additionalProperties"), Mapping):
                sub = s["additionalProperties"]
        out += resolve_branches(sub, root)
    return out


def _enum_at(schemas: list[Schema]) -> list[Any] | None:
    values = [v for s in schemas for v in (s.get("enum") or ([s["const"]] if "const" in s else []))]
    return values or None


def structural_diff(baseline: Any, candidate: Any, schema: Mapping[str, Any] | None = None) -> list[Finding]:
    """Baseline vs candidate by JSON path: missing/extra keys, type changes, array lengths, value changes.

    String values that differ are ``enum_value`` where the schema declares an enum/const at that path (a
    label the consumer switches on), otherwise ``value_change`` (informational: free text drifts).
    """
    root = schema or {}
    return list(_diff(baseline, candidate, (), resolve_branches(root, root) if schema else [], root))


def _diff(b: Any, c: Any, path: tuple[Segment, ...], schemas: list[Schema],
          root: Mapping[str, Any]) -> Iterator[Finding]:
    p = json_path(path)
    tb, tc = json_type(b), json_type(c)
    if tb != tc:
        msg = f"`{p}` changed {tb} → {tc} (baseline {_short(b)}, candidate {_short(c)})"
        yield Finding("type_change", msg, path=p, baseline=tb, candidate=tc)
    elif tb == "object":
        for key in sorted(b.keys() - c.keys()):
            kp = json_path((*path, key))
            yield Finding("missing_key", f"`{kp}` is missing (baseline had {_short(b[key])})", path=kp,
                          baseline=b[key])
        for key in sorted(c.keys() - b.keys()):
            kp = json_path((*path, key))
            yield Finding("extra_key", f"`{kp}` is new (candidate added {_short(c[key])})", path=kp,
                          candidate=c[key])
        for key in sorted(b.keys() & c.keys()):
            yield from _diff(b[key], c[key], (*path, key), _child(schemas, key, root), root)
    elif tb == "array":
        if len(b) != len(c):
            yield Finding("array_length", f"`{p}` has {len(c)} items, baseline had {len(b)}", path=p,
                          baseline=len(b), candidate=len(c))
        for i, (bi, ci) in enumerate(zip(b, c, strict=False)):
            yield from _diff(bi, ci, (*path, i), _child(schemas, i, root), root)
    elif b != c:
        enum = _enum_at(schemas) if tb == "string" else None
        if enum is not None:
            msg = f"`{p}` is {c!r}, a value the baseline never gave here (baseline {b!r}; schema enum {enum})"
            yield Finding("enum_value", msg, path=p, baseline=b, candidate=c)
        else:
            msg = f"`{p}` changed {_short(b)} → {_short(c)}"
            yield Finding("value_change", msg, path=p, baseline=b, candidate=c)


def check_schema(baseline: Extraction, candidate: Extraction, schema: Mapping[str, Any] | None = None, *,
                 fail_on: frozenset[str] = BREAKING) -> CheckResult:
    """The per-case schema check: candidate extractable and valid, same shape as the baseline, same envelope.

    The case fails on any finding whose kind is in ``fail_on`` (default :data:`BREAKING`). A baseline that
    itself did not parse leaves no shape to compare against; that is reported, not blamed on the candidate.
    """
    findings: list[Finding] = compare_envelopes(baseline, candidate)
    if not candidate.ok:
        findings.append(Finding("unparseable", f"candidate output is not usable JSON: {candidate.error}",
                                candidate=candidate.error))
    else:
        if schema is not None:
            findings += schema_errors(candidate.value, schema)
        if baseline.ok:
            findings += structural_diff(baseline.value, candidate.value, schema)
        else:
            msg = f"baseline output was not usable JSON either ({baseline.error}); nothing to compare against"
            findings.append(Finding("baseline_unparseable", msg, baseline=baseline.error))
    # Invalid output the baseline produced too is not a migration regression (the golden's schema, or the old
    # model, was already failing): reported as *_shared and marked xfail by the pytest layer, still counted by the
    # invalid-rate gate. Envelope changes and shape drift stay regressions.
    baseline_invalid = not baseline.ok or (schema is not None and bool(schema_errors(baseline.value, schema)))
    if baseline_invalid:
        findings = [dataclasses.replace(f, kind=f.kind + "_shared",
                                        message=f.message + " (the baseline's output is invalid too)")
                    if f.kind in ("unparseable", "schema_error") else f for f in findings]
    shared = sum(f.kind.endswith("_shared") for f in findings)
    failing = [f for f in findings if f.kind in fail_on]
    if failing:
        explanation = "; ".join(f.message for f in failing[:3]) + (" …" if len(failing) > 3 else "")
    elif findings:
        explanation = f"compatible ({len(findings)} non-breaking finding{'s' if len(findings) != 1 else ''})"
    else:
        explanation = "compatible"
    return CheckResult("schema", passed=not failing, explanation=explanation, score=0.0 if failing else 1.0,
                       findings=tuple(findings),
                       details={"invalid": any(f.kind.removesuffix("_shared") in INVALID for f in findings),
                                "baseline_invalid": baseline_invalid,
                                "shared_expectation_failures": shared,
                                "baseline": baseline.to_dict(), "candidate": candidate.to_dict()})


def _list_cases(ids: list[str], n: int = 5) -> str:
    return ", ".join(ids[:n]) + (", …" if len(ids) > n else "")


PARAMS = gate_params("JSON output: invalid answers and changed field types.", {
    "max_invalid_rate": rate("Highest share of JSON cases whose answer may be unparseable or invalid against its "
                             "schema, judged next to the baseline's share on the same cases.", 0.0),
    "max_type_change_rate": rate("Highest share of cases where a field changed its JSON type from the baseline's "
                                 "answer.", 0.0),
    "margin": MARGIN,
})


def schema_gates(suite: str, results: Mapping[str, CheckResult], cfg: Mapping[str, Any] | None = None,
                 ) -> list[GateResult]:
    """Suite gates from per-case results keyed by case id (``gates.schema``, see :data:`PARAMS`):
    ``schema.invalid_rate`` (candidate next to baseline, paired) and ``schema.type_changes`` (share of cases with
    a field whose type changed, named by field)."""
    cfg = dict(cfg or {})
    min_n = int(cfg.get("min_n", 1))
    ids = sorted(results)
    n = len(ids)

    def is_invalid(f: Finding) -> bool:  # shared or not: the gate counts every unusable candidate answer
        return f.kind.removesuffix("_shared") in INVALID

    cand = [any(is_invalid(f) for f in results[cid].findings) for cid in ids]
    base = [bool(results[cid].details.get("baseline_invalid")) for cid in ids]
    invalid = [cid for cid, bad in zip(ids, cand, strict=True) if bad]
    first = {cid: next(f.message for f in results[cid].findings if is_invalid(f)) for cid in invalid}
    msg = (f"{len(invalid)}/{n} cases invalid (baseline {sum(base)}/{n}): "
           + "; ".join(f"{c} ({first[c]})" for c in invalid[:5]) + ("; …" if len(invalid) > 5 else "")
           ) if invalid else ""
    gates = [rate_gate(suite, "schema.invalid_rate", cand, base, float(cfg.get("max_invalid_rate", 0.0)), "<=",
                       min_n=min_n, margin=float(cfg.get("margin", 0.0)), message=msg)]
    groups: dict[tuple[str, str, str], list[str]] = defaultdict(list)
    changed: set[str] = set()
    for cid in ids:
        for f in results[cid].findings:
            if f.kind == "type_change":
                changed.add(cid)
                field = _INDEX.sub("[*]", f.path).removeprefix("$.").removeprefix("$") or "$"
                key = (field, str(f.baseline), str(f.candidate))
                if cid not in groups[key]:
                    groups[key].append(cid)
    parts = [f"field `{field}` changed {tb} → {tc} in {len(cids)}/{n} cases: {_list_cases(cids)}"
             for (field, tb, tc), cids in sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0]))]
    gates.append(rate_gate(suite, "schema.type_changes", [cid in changed for cid in ids], None,
                           float(cfg.get("max_type_change_rate", 0.0)), "<=", min_n=min_n,
                           message="; ".join(parts)))
    return gates


CONSUMER_PARAMS = gate_params("The consuming system's own parser (suite.yaml consumer_parser).", {
    "max_failure_rate": rate("Highest share of cases where the parser raises on the candidate's answer or returns "
                             "something else than for the baseline's.", 0.0),
    "margin": MARGIN,
})


def consumer_parser_gates(suite: str, results: Mapping[str, CheckResult], cfg: Mapping[str, Any] | None = None,
                          ) -> list[GateResult]:
    """``consumer_parser.failure_rate``: cases where the parser breaks on the candidate, next to the cases where
    it raises on the baseline's own answer."""
    cfg = dict(cfg or {})
    ids = sorted(results)
    cand = [any(f.kind in ("parser_error", "parser_output_change") for f in results[cid].findings) for cid in ids]
    base = [any(f.kind == "baseline_parser_error" or (f.kind == "parser_error" and f.baseline is not None)
                for f in results[cid].findings) for cid in ids]
    bad = [cid for cid, b in zip(ids, cand, strict=True) if b]
    msg = f"breaks on {len(bad)}/{len(ids)} cases: {_list_cases(bad)}" if bad else ""
    return [rate_gate(suite, "consumer_parser.failure_rate", cand, base, float(cfg.get("max_failure_rate", 0.0)),
                      "<=", min_n=int(cfg.get("min_n", 1)), margin=float(cfg.get("margin", 0.0)), message=msg)]


def _call(func: Callable[[str], Any], text: str) -> tuple[bool, Any]:
    try:
        return True, func(text)
    except Exception as exc:  # the consumer's code may raise anything; that is the finding
        return False, f"{type(exc).__name__}: {exc}"


def _same(a: Any, b: Any) -> bool:
    try:
        return bool(a == b)
    except Exception:  # e.g. numpy arrays / pandas frames refuse bool(); fall back to their repr
        return repr(a) == repr(b)


def run_consumer_parser(func: Callable[[str], Any], baseline_text: str, candidate_text: str, *,
                        name: str | None = None) -> CheckResult:
    """Run the consumer's own parser on both outputs: it must not raise, and must return the same value."""
    label = name or (f"{getattr(func, '__module__', '?')}:{func.__qualname__}" if hasattr(func, "__qualname__")
                     else repr(func))
    b_ok, b_val = _call(func, baseline_text)
    c_ok, c_val = _call(func, candidate_text)
    findings: list[Finding] = []
    if not c_ok:
        tail = "the baseline's output parsed fine" if b_ok else f"it raised on the baseline's too ({b_val})"
        msg = f"consumer parser `{label}` raises {c_val} on the candidate's output — {tail}"
        findings.append(Finding("parser_error", msg, baseline=None if b_ok else b_val, candidate=c_val))
    elif not b_ok:
        findings.append(Finding("baseline_parser_error", f"consumer parser `{label}` raises {b_val} on the "
                                "baseline's output but not on the candidate's", baseline=b_val))
    elif not _same(b_val, c_val):
        msg = (f"consumer parser `{label}` returns {_short(c_val, 120)} for the candidate, "
               f"{_short(b_val, 120)} for the baseline")
        findings.append(Finding("parser_output_change", msg, baseline=_short(b_val, 400),
                                candidate=_short(c_val, 400)))
    failed = any(f.kind != "baseline_parser_error" for f in findings)
    explanation = findings[0].message if findings else f"`{label}` parses both outputs the same"
    return CheckResult("consumer_parser", passed=not failed, explanation=explanation,
                       score=0.0 if failed else 1.0, findings=tuple(findings))
