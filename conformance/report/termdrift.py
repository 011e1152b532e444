"""The term-drift section of ``report.html``: which legal term became what, in which case, seen in context.

Why its own table: a legal reviewer reads term drift as "定金 → 订金 in deposit-20pct, here is the sentence" — not
as a finding message and two JSON blobs. Each finding of the ``terms`` check
(:mod:`conformance.checks.terms`) becomes one row: the term and what the candidate wrote instead, the case, and
the baseline's and candidate's snippets (±10 characters, the term marked). Findings the baseline shares
(``*_shared``: the golden's required term is missing from both answers, or both use the forbidden one) are not
migration regressions — the pytest layer marks those cases xfail — so they are listed apart, under the
regressions, instead of inflating them.

Snippets arrive as :meth:`~conformance.checks.glossary.Span.describe` dicts (``text``, ``start``, ``end``,
``snippet``, ``snippet_start``) or, from older runs, as plain strings; both are shown as text, escaped by
:mod:`conformance.report.escape`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from conformance.report.escape import esc

#: What each finding kind is called in the table, and what the term became.
KINDS: dict[str, str] = {
    "replaced": "look-alike", "near_miss": "near miss", "required_missing": "required term missing",
    "forbidden_present": "forbidden term used",
}


def drift_findings(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Every finding of a ``terms`` check in ``rows``, with its suite and case (rows' order, findings' order)."""
    return [{"suite": str(p.get("suite") or r.get("suite")), "case_id": str(p.get("case_id")), **f}
            for r in rows for p in r.get("props") or () if isinstance(p, Mapping)
            and p.get("kind") == "check" and p.get("check") == "terms"
            for f in p.get("findings") or () if isinstance(f, Mapping)]


def shared(finding: Mapping[str, Any]) -> bool:
    """The baseline fails this expectation too: reported, not a regression."""
    return str(finding.get("kind", "")).endswith("_shared")


def _surface(side: Any) -> str | None:
    return str(side["text"]) if isinstance(side, Mapping) and side.get("text") is not None else None


def _became(f: Mapping[str, Any]) -> str:
    kind = str(f.get("kind", "")).removesuffix("_shared")
    if kind == "required_missing":
        return '<span class="muted">(missing)</span>'
    if kind == "forbidden_present":
        return '<span class="muted">(present)</span>'
    return esc(_surface(f.get("candidate")) or "?")


def snippet_html(side: Any) -> str:
    """A finding's snippet with the term in ``<mark>``, ``…`` in front when the answer goes on before it."""
    if side is None:
        return ""
    if not isinstance(side, Mapping) or not isinstance(side.get("snippet"), str):
        return esc(side)
    snip, lo = side["snippet"], side.get("snippet_start")
    start, end = side.get("start"), side.get("end")
    lead = "…" if lo else ""
    if not (isinstance(lo, int) and isinstance(start, int) and isinstance(end, int) and lo <= start <= end):
        return lead + esc(snip)
    a, b = start - lo, end - lo
    return f"{lead}{esc(snip[:a])}<mark>{esc(snip[a:b])}</mark>{esc(snip[b:])}"


def _table(findings: Sequence[Mapping[str, Any]], anchors: Collection[tuple[str, str]]) -> str:
    body = []
    for f in findings:
        suite, cid = f["suite"], f["case_id"]
        case = esc(f"{suite} / {cid}")
        if (suite, cid) in anchors:
            case = f'<a href="#case-{esc(suite)}-{esc(cid)}">{case}</a>'
        kind = str(f.get("kind", ""))
        body.append(
            f'<tr><td class="term">{esc(f.get("path"))} → {_became(f)}</td><td>{case}</td>'
            f"<td>{esc(KINDS.get(kind.removesuffix('_shared'), kind))}</td><td>{esc(f.get('message'))}</td>"
            f'<td class="snip">{snippet_html(f.get("baseline"))}</td>'
            f'<td class="snip">{snippet_html(f.get("candidate"))}</td></tr>')
    head = "".join(f"<th>{h}</th>" for h in ("term → replacement", "case", "kind", "finding", "baseline snippet",
                                              "candidate snippet"))
    return f'<table class="terms"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def terms_section(rows: Sequence[Mapping[str, Any]], anchors: Collection[tuple[str, str]] = (),
                  limit: int = 500) -> str:
    """``<h2 id="terms">`` with the regressions' table, then the findings the baseline shares; ``""`` when the
    run has no term finding. ``anchors``: (suite, case) pairs the page has a failing-case block for."""
    found = drift_findings(rows)
    if not found:
        return ""
    regressions = [f for f in found if not shared(f)]
    also = [f for f in found if shared(f)]
    kinds = Counter(KINDS.get(str(f.get("kind")), str(f.get("kind"))) for f in regressions)
    head = ", ".join(f"{esc(k)} {n}" for k, n in sorted(kinds.items()))
    out = [f'<h2 id="terms">Term drift ({len(regressions)} regression{"s" * (len(regressions) != 1)}'
           f'{": " + head if head else ""}; {len(also)} shared with the baseline)</h2>']
    if regressions:
        out.append(_table(regressions[:limit], anchors))
        if len(regressions) > limit:
            out.append(f"<p>{len(regressions) - limit} more in results.parquet</p>")
    else:
        out.append('<p class="muted">no term drift in the candidate</p>')
    if also:
        out.append(f'<h3 id="terms-shared">Shared with the baseline ({len(also)})</h3><p class="muted">The baseline '
                   "misses these expectations too: they are not migration regressions (the cases are marked "
                   "xfail) and do not count against the candidate.</p>")
        out.append(_table(also[:limit], anchors))
        if len(also) > limit:
            out.append(f"<p>{len(also) - limit} more in results.parquet</p>")
    return "".join(out)
