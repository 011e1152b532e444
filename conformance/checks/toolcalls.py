"""Tool calls: does the candidate still call the same tools with the same arguments as before?

Parsing (three shapes → one canonical form, named defects, streaming) lives in
:mod:`conformance.checks.toolcall_parse` and is re-exported here; this module compares and gates.

Comparison tiers (argument ``tier``):

``strict`` (default)
    arguments must be equal as JSON values *and* types: ``30`` ≠ ``30.0`` ≠ ``"30"``, and an omitted
    optional argument ≠ its default. What a strictly typed consumer (Pydantic strict, Java, Go) sees. One
    exception: where the schema declares ``number``, ``30`` and ``30.0`` are one JSON number (a ``float`` field
    takes both, and vLLM itself turns the XML text ``30.0`` into ``30``); an ``integer`` or undeclared parameter
    keeps them apart.
``lenient``
    before comparing, each side is normalised on its own (so the tier stays symmetric): integral floats
    become integers; numeric / ``"true"``/``"false"`` strings become numbers / booleans where the schema
    allows a number / boolean but not a string; omitted arguments that have a schema ``default`` are filled
    in. What a coercing consumer (Pydantic lax mode, JavaScript) sees.

Three outcome classes are kept apart in ``details["classes"]``:

**format** — the candidate's output stopped parsing where the baseline's parsed (a new *fatal* defect), or
the calls changed shape (native ``tool_calls`` ↔ text, hermes ↔ XML), which breaks a consumer reading the
old shape. **semantic** — different calls: relevance (called vs not), count, names, arguments (values and
types), schema violations. **envelope** — ``finish_reason`` changed, text next to the calls appeared or
disappeared. Format and semantic outcomes fail the case; envelope changes are reported, not failed.

Finding kinds — format: ``format_regression``, ``shape_changed``, ``format_warning``; semantic:
``relevance``, ``call_count``, ``name_mismatch``, ``missing_call``, ``extra_call``, ``argument_missing``,
``argument_extra``, ``argument_type``, ``argument_value``, ``unknown_tool``, ``unknown_parameter``,
``missing_required``, ``schema_type``, ``schema_violation``, ``tool_schema_invalid``; envelope:
``finish_reason``, ``content_appeared``, ``content_disappeared``.

Parallel calls are paired order-insensitively by a maximum-weight bipartite assignment (exact matches
weigh more than any sum of partial ones, so the number of exact matches is maximal), never greedily.
The reference is the golden's expected calls when given, else the baseline. Call ids are never compared.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

from jsonschema import Draft202012Validator

from conformance.canonical import canonical_json
from conformance.checks.params import MARGIN, gate_params, rate
from conformance.checks.result import CheckResult, Finding
from conformance.checks.schema import Schema, json_path, resolve_branches
from conformance.checks.toolcall_parse import (
    FATAL,
    Defect,
    ParseResult,
    ToolCall,
    ToolCallStream,
    coerce_text,
    expected_calls,
    parse_tool_calls,
    property_schema,
    render_hermes,
    render_native,
    render_xml,
    schema_types,
    tool_schemas,
    value_type,
)
from conformance.gates import GateResult, rate_gate

__all__ = [
    "FATAL", "Defect", "ParseResult", "Tier", "ToolCall", "ToolCallStream", "canonical_json",
    "compare_tool_calls", "expected_calls", "match_calls", "normalize_arguments", "parse_tool_calls",
    "render_hermes", "render_native", "render_xml", "tool_call_gate",
]

Tier = Literal["strict", "lenient"]
FORMAT_KINDS = frozenset({"format_regression", "shape_changed", "format_warning"})
ENVELOPE_KINDS = frozenset({"finish_reason", "content_appeared", "content_disappeared"})
_FAILING_FORMAT = frozenset({"format_regression", "shape_changed"})
_EXACT = 1000.0
_DP_LIMIT = 10


def _clip(text: str, n: int = 60) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def _desc(v: Any) -> str:
    """``string "30"``, ``integer 30``, ``number 30.0`` … — type and value, as a team needs to read them."""
    return f"{value_type(v)} {_clip(canonical_json(v))}" if v is not None else "null"


def _normal(v: Any, schema: Any, root: Schema, tier: Tier) -> Any:
    if isinstance(v, float) and v.is_integer() and (tier == "lenient" or "number" in schema_types(schema, root)):
        return int(v)
    if tier == "lenient" and isinstance(v, str):
        types = schema_types(schema, root)
        if types & {"integer", "number", "boolean"} and "string" not in types:
            coerced, fits = coerce_text(v, schema, root)
            return _normal(coerced, None, root, tier) if fits else v
    if isinstance(v, list):
        items = [s.get("items") for s in resolve_branches(schema, root) if isinstance(s.get("items"), Mapping)]
        return [_normal(x, items[0] if items else None, root, tier) for x in v]
    if isinstance(v, dict):
        return normalize_arguments(v, schema if isinstance(schema, Mapping) else None, tier, root)
    return v


def normalize_arguments(args: Any, params: Schema | None, tier: Tier = "strict", root: Schema | None = None) -> Any:
    """One side's arguments as compared in ``tier`` (see the module docstring); normalising is per side, so
    comparing normalised values stays symmetric."""
    if not isinstance(args, dict):
        return args
    root = root if root is not None else (params or {})
    out = {k: _normal(v, property_schema(params, k, root), root, tier) for k, v in args.items()}
    if tier == "lenient":
        for s in resolve_branches(params, root):
            props = s.get("properties")
            for k, sub in (props.items() if isinstance(props, Mapping) else ()):
                if k not in out and isinstance(sub, Mapping) and "default" in sub:
                    out[k] = _normal(sub["default"], sub, root, tier)
    return out


def _norm(call: ToolCall, schemas: dict[str, Schema] | None, tier: Tier) -> ToolCall:
    params = (schemas or {}).get(call.name)
    return ToolCall(call.name, normalize_arguments(call.arguments, params, tier), call.source, call.id)


def _weight(r: ToolCall, c: ToolCall) -> float:
    if r.canonical == c.canonical:
        return _EXACT
    if r.name != c.name:
        return 0.01
    ra, ca = r.arguments, c.arguments
    if not (isinstance(ra, dict) and isinstance(ca, dict)):
        return 1.0
    same = sum(1 for k in ra.keys() & ca.keys() if canonical_json(ra[k]) == canonical_json(ca[k]))
    return 1.0 + same / (len(ra.keys() | ca.keys()) + 1)


def _assign(w: list[list[float]]) -> list[tuple[int, int]]:
    """Maximum-weight assignment: exact DP over column subsets when small, else Kuhn on exact edges only."""
    n, m = len(w), len(w[0]) if w else 0
    if not n or not m:
        return []
    if m > n:
        return [(i, j) for j, i in _assign([list(col) for col in zip(*w, strict=True)])]
    if m > _DP_LIMIT:
        return _kuhn([[j for j in range(m) if w[i][j] >= _EXACT] for i in range(n)], m)
    best: dict[int, tuple[float, tuple[tuple[int, int], ...]]] = {0: (0.0, ())}
    for i in range(n):
        nxt = dict(best)
        for mask, (score, pairs) in best.items():
            for j in range(m):
                if not mask >> j & 1 and w[i][j] > 0:
                    key, cand = mask | 1 << j, (score + w[i][j], (*pairs, (i, j)))
                    if key not in nxt or cand[0] > nxt[key][0]:
                        nxt[key] = cand
        best = nxt
    return list(max(best.values(), key=lambda sp: sp[0])[1])


def _kuhn(adj: list[list[int]], m: int) -> list[tuple[int, int]]:
    owner = [-1] * m

    def augment(i: int, seen: set[int]) -> bool:
        for j in adj[i]:
            if j not in seen:
                seen.add(j)
                if owner[j] < 0 or augment(owner[j], seen):
                    owner[j] = i
                    return True
        return False

    for i in range(len(adj)):
        augment(i, set())
    return [(i, j) for j, i in enumerate(owner) if i >= 0]


def match_calls(reference: Sequence[ToolCall], candidate: Sequence[ToolCall]
                ) -> tuple[list[tuple[int, int]], list[int], list[int]]:
    """(pairs, unmatched reference indices, unmatched candidate indices), pairs sorted by reference index."""
    pairs = sorted(_assign([[_weight(r, c) for c in candidate] for r in reference]))
    return (pairs, sorted(set(range(len(reference))) - {i for i, _ in pairs}),
            sorted(set(range(len(candidate))) - {j for _, j in pairs}))


def _names(calls: Sequence[ToolCall]) -> str:
    return ", ".join(f"`{c.name}`" for c in calls)


def _argument_findings(r: ToolCall, c: ToolCall, label: str, schemas: dict[str, Schema] | None,
                       tier: Tier) -> list[Finding]:
    ra, ca = r.arguments, c.arguments
    if not (isinstance(ra, dict) and isinstance(ca, dict)):
        return [Finding("argument_value", f"arguments of `{c.name}`: candidate sent {_desc(ca)}, the {label} sent "
                        f"{_desc(ra)}", path=c.name, baseline=ra, candidate=ca)]
    params = (schemas or {}).get(c.name)
    out = []
    for k in sorted(ra.keys() | ca.keys()):
        where, path = f"argument `{k}` of `{c.name}`", f"{c.name}.{k}"
        if k not in ca:
            out.append(Finding("argument_missing", f"{where}: candidate omitted it (the {label} sent "
                               f"{_desc(ra[k])})", path=path, baseline=ra[k]))
        elif k not in ra:
            out.append(Finding("argument_extra", f"{where}: candidate sent {_desc(ca[k])}, the {label} did not "
                               "send it", path=path, candidate=ca[k]))
        elif canonical_json(ra[k]) != canonical_json(ca[k]):
            kind = "argument_type" if value_type(ra[k]) != value_type(ca[k]) else "argument_value"
            types = sorted(schema_types(property_schema(params, k), params or {}))
            says = f", schema says {' | '.join(types)}" if types and kind == "argument_type" else ""
            out.append(Finding(kind, f"{where}: candidate sent {_desc(ca[k])}, the {label} sent {_desc(ra[k])}{says} "
                               f"({tier} tier)", path=path, baseline=ra[k], candidate=ca[k]))
    return out


def _schema_issues(calls: Sequence[ToolCall], side: str, schemas: dict[str, Schema] | None,
                   tier: Tier) -> list[Finding]:
    """Unknown tools/parameters and JSON-Schema violations of one side's (normalised) calls."""
    if schemas is None:
        return []
    out = []
    for call in calls:
        if call.name not in schemas:
            out.append(Finding("unknown_tool", f"{side} called `{call.name}`, which is not among the offered tools "
                               f"({', '.join(sorted(schemas))})", path=call.name))
            continue
        params, args = schemas[call.name], call.arguments
        props = {k for s in resolve_branches(params, params) for k in (s.get("properties") or {})}
        for k in sorted(args) if isinstance(args, dict) and props else ():
            if k not in props:
                out.append(Finding("unknown_parameter", f"argument `{k}` of `{call.name}`: {side} sent it, but "
                                   "the tool's schema has no such parameter", path=f"{call.name}.{k}"))
        try:
            errors = list(Draft202012Validator(params, format_checker=Draft202012Validator.FORMAT_CHECKER
                                               ).iter_errors(args))
        except Exception as exc:  # a broken tool schema is the golden's fault: say so instead of crashing
            out.append(Finding("tool_schema_invalid", f"the parameters schema of tool `{call.name}` is not a "
                               f"valid JSON Schema ({type(exc).__name__}: {_clip(' '.join(str(exc).split()), 120)})",
                               path=call.name))
            continue
        for err in errors:
            path = json_path(list(err.absolute_path)).removeprefix("$.").removeprefix("$")
            if err.validator == "additionalProperties" and not path:
                continue  # already named one by one as unknown_parameter
            if err.validator == "required":
                missing = err.message.split("'")[1] if "'" in err.message else err.message
                missing = f"{path}.{missing}" if path else missing
                out.append(Finding("missing_required", f"`{call.name}`: {side} omitted required argument "
                                   f"`{missing}`", path=f"{call.name}.{missing}"))
            elif err.validator == "type":
                out.append(Finding("schema_type", f"argument `{path}` of `{call.name}`: {side} sent "
                                   f"{_desc(err.instance)}, schema says {err.validator_value} ({tier} tier)",
                                   path=f"{call.name}.{path}", candidate=err.instance))
            else:
                out.append(Finding("schema_violation", f"argument `{path or '(all)'}` of `{call.name}` from {side}: "
                                   f"{_clip(err.message, 120)}", path=f"{call.name}.{path}"))
    return out


def _semantic(ref: Sequence[ToolCall], cand: Sequence[ToolCall], label: str, cand_content: str,
              schemas: dict[str, Schema] | None, tier: Tier) -> tuple[list[Finding], bool]:
    if ref and not cand:
        said = f" — it answered in text: {_clip(cand_content)!r}" if cand_content else ""
        return [Finding("relevance", f"candidate made no tool call; the {label} called {_names(ref)}{said}",
                        baseline=[c.name for c in ref])], False
    if cand and not ref:
        return [Finding("relevance", f"candidate called {_names(cand)}; the {label} made no tool call",
                        candidate=[c.name for c in cand])], False
    out: list[Finding] = []
    if len(ref) != len(cand):
        out.append(Finding("call_count", f"candidate made {len(cand)} call(s) ({_names(cand)}), the {label} "
                           f"{len(ref)} ({_names(ref)})", baseline=len(ref), candidate=len(cand)))
    pairs, lost, added = match_calls(ref, cand)
    for i, j in pairs:
        r, c = ref[i], cand[j]
        if r.canonical == c.canonical:
            continue
        if r.name != c.name:
            out.append(Finding("name_mismatch", f"candidate called `{c.name}` where the {label} called `{r.name}`",
                               path=r.name, baseline=r.name, candidate=c.name))
        else:
            out += _argument_findings(r, c, label, schemas, tier)
    out += [Finding("missing_call", f"the {label}'s call `{ref[i].name}`({_clip(canonical_json(ref[i].arguments))})"
                    " has no counterpart in the candidate", path=ref[i].name, baseline=ref[i].arguments)
            for i in lost]
    out += [Finding("extra_call", f"candidate's call `{cand[j].name}`({_clip(canonical_json(cand[j].arguments))}) "
                    f"has no counterpart in the {label}", path=cand[j].name, candidate=cand[j].arguments)
            for j in added]
    exact = sum(1 for i, j in pairs if ref[i].canonical == cand[j].canonical)
    return out, exact == len(ref) == len(cand)


def _format(baseline: ParseResult, candidate: ParseResult) -> list[Finding]:
    out = []
    b_names = {d.name for d in baseline.defects}
    for d in candidate.defects:
        if d.name in b_names or d.name in ("unknown_tool", "unknown_parameter", "missing_required"):
            continue
        if d.fatal:
            tail = " (the baseline's output parsed cleanly)" if baseline.ok else ""
            out.append(Finding("format_regression", f"candidate's tool-call output no longer parses — {d.name}: "
                               f"{d.detail}{tail}", path=d.name, candidate=d.detail))
        else:
            out.append(Finding("format_warning", f"candidate's tool-call output needed repair — {d.name}: "
                               f"{d.detail}", path=d.name, candidate=d.detail))
    b_src, c_src = baseline.sources, candidate.sources
    if baseline.calls and candidate.calls and b_src != c_src:
        hint = (" — consumers reading message.tool_calls see no calls; enable the server's tool-call parser for "
                "this model (vLLM --tool-call-parser hermes / qwen3_coder)" if "native" in b_src - c_src else
                " — consumers parsing the old shape will not find the calls")
        out.append(Finding("shape_changed", f"calls changed shape {'/'.join(sorted(b_src))} → "
                           f"{'/'.join(sorted(c_src))}{hint}", path="shape_changed", baseline=sorted(b_src),
                           candidate=sorted(c_src)))
    return out


def _envelope(baseline: ParseResult, candidate: ParseResult) -> list[Finding]:
    out = []
    b_fin, c_fin = baseline.finish_reason, candidate.finish_reason
    if b_fin is not None and c_fin is not None and b_fin != c_fin:
        why = (" — consumers that dispatch on finish_reason == 'tool_calls' will not run the calls"
               if b_fin == "tool_calls" and candidate.calls else "")
        out.append(Finding("finish_reason", f"finish_reason changed {b_fin!r} → {c_fin!r}{why}", path="finish_reason",
                           baseline=b_fin, candidate=c_fin))
    if baseline.calls and candidate.calls and bool(baseline.content) != bool(candidate.content):
        if candidate.content:
            out.append(Finding("content_appeared", f"candidate now writes text next to its calls "
                               f"({_clip(candidate.content)!r}); consumers that show any content as the answer "
                               "will display it", path="content", candidate=candidate.content))
        else:
            out.append(Finding("content_disappeared", "candidate no longer writes the text the baseline put next "
                               "to its calls", path="content", baseline=baseline.content))
    return out


def compare_tool_calls(baseline: ParseResult, candidate: ParseResult, *,
                       tools: Sequence[Mapping[str, Any]] | None = None,
                       expected: Sequence[Mapping[str, Any]] | None = None,
                       tier: Tier = "strict") -> CheckResult:
    """Candidate vs reference (expected calls if given, else baseline): format, semantic, envelope findings.

    ``score`` is 1.0 when the calls match the reference in ``tier``, else 0.0; the case passes when they
    match and no format regression occurred.
    """
    schemas = tool_schemas(tools)
    ref_pr = expected_calls(expected, tools) if expected is not None else baseline
    label = "expected calls" if expected is not None else "baseline"
    ref = [_norm(c, schemas, tier) for c in ref_pr.calls]
    cand = [_norm(c, schemas, tier) for c in candidate.calls]
    fmt = _format(baseline, candidate)
    sem, matched = _semantic(ref, cand, label, candidate.content, schemas, tier)
    ref_issues = {(f.kind, f.path) for f in _schema_issues(ref, f"the {label}", schemas, tier)}
    diffed = {f.path for f in sem}
    for f in _schema_issues(cand, "candidate", schemas, tier):
        if f.path in diffed and f.kind == "schema_type":
            continue  # the pairwise diff already names this argument, schema type included
        also = f" (the {label} too)" if (f.kind, f.path) in ref_issues else ""
        sem.append(Finding(f.kind, f.message + also, f.path, f.baseline, f.candidate))
    env = _envelope(baseline, candidate)
    failing_fmt = [f.path for f in fmt if f.kind in _FAILING_FORMAT]
    outcome = ("format_regression" if failing_fmt else "semantic_mismatch" if not matched
               else "envelope_change" if env else "match")
    details: dict[str, Any] = {
        "outcome": outcome, "tier": tier, "reference": label, "format_regressions": failing_fmt,
        "classes": {"format": [f.kind for f in fmt], "semantic": [f.kind for f in sem],
                    "envelope": [f.kind for f in env]},
        "reference_calls": [c.canonical for c in ref], "candidate_calls": [c.canonical for c in cand]}
    if expected is not None:
        base = [_norm(c, schemas, tier) for c in baseline.calls]
        details["baseline_matches_expected"] = _semantic(ref, base, label, baseline.content, schemas, tier)[1]
    findings = tuple(fmt + sem + env)
    passed = matched and not failing_fmt
    shown = [f for f in findings if f.kind in _FAILING_FORMAT] + (list(sem) if not matched else [])
    explanation = ("; ".join(f.message for f in shown[:3]) + (" …" if len(shown) > 3 else "") if shown
                   else f"calls match the {label} ({tier} tier)" + (f"; {len(env)} envelope change(s)" if env else ""))
    return CheckResult("tool_calls", passed=passed, explanation=explanation, score=1.0 if matched else 0.0,
                       findings=findings, details=details)


PARAMS = gate_params("Tool calls: the share of tool cases whose calls match the golden (else the baseline's).", {
    "min_match_rate": rate("Lowest share of tool cases whose calls may match, judged next to the baseline's share "
                           "on the same cases (against the golden's expected calls).", 1.0),
    "tier": {"enum": ["strict", "lenient"], "default": "strict",
             "description": "strict: values and JSON types must be equal (a typed consumer); lenient: integral "
                            "floats, numeric/boolean strings and schema defaults are normalised first."},
    "margin": MARGIN,
})


def tool_call_gate(suite: str, results: Mapping[str, CheckResult], cfg: Mapping[str, Any] | None = None,
                   ) -> GateResult:
    """``tool_calls.match_rate`` (see :data:`PARAMS`): a case matches when its calls match the reference with no
    format regression; the baseline's own match against the golden stands next to it (``details
    ["baseline_match"]``, True where the baseline is the reference). Format regressions and mismatches are named by
    case id."""
    cfg = dict(cfg or {})
    scored = {cid: r for cid, r in sorted(results.items()) if r.score is not None}
    n = len(scored)
    fmt = {cid: sorted({f.path for f in r.findings if f.kind in _FAILING_FORMAT}) for cid, r in scored.items()}
    fmt = {cid: names for cid, names in fmt.items() if names}
    env = {cid: sorted({f.kind for f in r.findings if f.kind in ENVELOPE_KINDS}) for cid, r in scored.items()}
    env = {cid: kinds for cid, kinds in env.items() if kinds}
    cand = [(r.score or 0.0) >= 1.0 and cid not in fmt for cid, r in scored.items()]
    base = [bool(r.details.get("baseline_match", True)) for r in scored.values()]
    missed = [cid for cid, r in scored.items() if (r.score or 0.0) < 1.0]
    parts = []
    if fmt:
        parts.append(f"format regressions in {len(fmt)}/{n} cases: "
                     + ", ".join(f"{cid} ({', '.join(names)})" for cid, names in fmt.items()))
    if missed:
        parts.append(f"calls differ in {len(missed)}/{n} cases: " + ", ".join(missed[:8])
                     + (", …" if len(missed) > 8 else ""))
    if env:
        parts.append(f"envelope changes in {len(env)}/{n} cases: "
                     + ", ".join(f"{cid} ({', '.join(kinds)})" for cid, kinds in list(env.items())[:8]))
    return rate_gate(suite, "tool_calls.match_rate", cand, base, float(cfg.get("min_match_rate", 1.0)), ">=",
                     min_n=int(cfg.get("min_n", 1)), margin=float(cfg.get("margin", 0.0)),
                     message="; ".join(parts))
