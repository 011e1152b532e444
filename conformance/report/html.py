"""``report.html``: one self-contained page a consuming team opens from a CI artifact.

Why standalone: the page is read on laptops with no network and from artifact stores that serve files as-is —
so no CDN, no external CSS or fonts, no JavaScript; charts are inline SVG (:mod:`conformance.report.charts`).

Why everything is escaped: the page shows model output and golden text, which are untrusted input. A golden or an
answer containing ``<script>``, ``"><img onerror=…>`` or ``</textarea>`` must render as text, and one holding a
right-to-left override must not read backwards. Every string that did not come from this module goes through
:func:`~conformance.report.escape.esc` (escaped once, bidi controls made visible, dicts and lists as readable text)
— the only markup not escaped is the one this module writes, and the ``<del>``/``<ins>`` of
:func:`~conformance.report.textdiff.diff_html` and ``<mark>`` of :mod:`~conformance.report.termdrift`, which escape
the text they wrap the same way.

Why the page names its fonts: answers are often Chinese. A machine whose browser finds no CJK font draws every
character as the same empty box, and a reviewer cannot tell 定金 from 订金. :data:`FONT_SANS` and
:data:`FONT_MONO` list the CJK fonts each platform ships (PingFang / Hiragino on macOS, Microsoft YaHei on
Windows, Noto Sans CJK / Source Han Sans / WenQuanYi on Linux — Debian's ``fonts-noto-cjk``); simplified-Chinese
faces come first so shared Han characters take their mainland forms. The README says what reviewers need.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from conformance.report.answers import Answers
from conformance.report.charts import cdf_svg, percentile_bars_svg
from conformance.report.escape import calls_text, esc, plain
from conformance.report.frame import latency_percentiles, responses_frame
from conformance.report.outcome import Outcome, classify_run
from conformance.report.termdrift import terms_section
from conformance.report.textdiff import diff_html
from conformance.report.trend import GateMove

#: The run's answers: :class:`~conformance.report.answers.Answers`, or any mapping whose values are answer records.
Responses = Answers | Mapping[Any, Mapping[str, Any]]

#: Failing cases shown with their texts; the rest are listed by id only (results.parquet has everything).
MAX_CASES = 300
MAX_FINDINGS = 500

#: Body text: the platform's UI font for Latin, then CJK fonts (simplified Chinese first), then any sans-serif.
FONT_SANS = ('system-ui,-apple-system,"Segoe UI",Roboto,"Noto Sans","PingFang SC","Hiragino Sans GB",'
             '"Microsoft YaHei","Noto Sans CJK SC","Source Han Sans SC","WenQuanYi Micro Hei",sans-serif')
#: Answers and snippets: a monospace Latin font, then CJK fonts (the monospace CJK face first where it exists).
FONT_MONO = ('ui-monospace,"SFMono-Regular",Menlo,Consolas,"Noto Sans Mono CJK SC","PingFang SC","Microsoft YaHei",'
             '"Noto Sans CJK SC","Source Han Sans SC","WenQuanYi Micro Hei",monospace')

_CSS = """
body{font:14px/1.45 FONT_SANS;
margin:0 auto;max-width:1240px;padding:16px 24px;color:#1a1a1a;background:#fafafa}
h1{font-size:22px;margin:4px 0 8px}h2{font-size:18px;margin:28px 0 8px;border-bottom:2px solid #ddd}
h3{font-size:15px;margin:18px 0 6px}table{border-collapse:collapse;margin:6px 0 12px;background:#fff}
th,td{border:1px solid #ddd;padding:4px 8px;text-align:left;vertical-align:top}th{background:#f0f0f0}
td.num{text-align:right;font-variant-numeric:tabular-nums}
.banner{padding:12px 16px;border-radius:6px;font-size:16px;font-weight:600;margin:8px 0 16px;color:#fff}
.b-pass{background:#2e7d32}.b-regression{background:#c62828}.b-infrastructure{background:#ef6c00}
.b-config_error{background:#6a1b9a}.b-baseline_fails{background:#8d6e63}.b-insufficient{background:#616161}
.v{display:inline-block;padding:1px 8px;border-radius:10px;font-size:12px;font-weight:600;color:#fff}
.v-pass{background:#2e7d32}.v-fail,.v-regression{background:#c62828}.v-insufficient{background:#757575}
.v-error{background:#6a1b9a}.v-baseline_fails{background:#8d6e63}
.v-better{background:#2e7d32}.v-worse{background:#c62828}.v-same,.v-new,.v-removed{background:#757575}
.muted{color:#666}.pair{display:grid;grid-template-columns:1fr 1fr;gap:10px}
.text{white-space:pre-wrap;word-break:break-word;background:#fff;border:1px solid #ddd;padding:8px;
font-family:FONT_MONO;font-size:13px}
del{background:#ffd7d5;text-decoration:line-through;color:#82071e}ins{background:#ccffd8;text-decoration:none;
color:#055d20}details.case{background:#fff;border:1px solid #ddd;border-radius:6px;margin:8px 0;padding:6px 10px}
details.case>summary{cursor:pointer;font-weight:600}ul.msgs{margin:4px 0 8px;padding-left:20px}
ul.msgs li{white-space:pre-wrap}td.diag{background:#e8f5e9}td.off{background:#ffebee}
.charts{display:flex;flex-wrap:wrap;gap:12px}nav a{margin-right:14px}
.snip{white-space:pre-wrap;word-break:break-word;font-family:FONT_MONO;font-size:12px}
mark{background:#fff3a3;color:inherit}td.term{white-space:nowrap;font-weight:600}
""".replace("FONT_SANS", FONT_SANS).replace("FONT_MONO", FONT_MONO)


def _fmt(v: Any, digits: int = 4) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "n/a"
    return f"{v:.{digits}g}" if isinstance(v, float) else esc(v)


def _badge(verdict: Any) -> str:
    v = esc(verdict)
    return f'<span class="v v-{v}">{v}</span>'


def _table(head: Sequence[str], body: Sequence[Sequence[str]], num: Sequence[int] = ()) -> str:
    """Cells of ``body`` are already HTML (callers escape); ``head`` is escaped here."""
    th = "".join(f"<th>{esc(h)}</th>" for h in head)
    trs = "".join("<tr>" + "".join(f'<td class="num">{c}</td>' if i in num else f"<td>{c}</td>"
                                   for i, c in enumerate(r)) + "</tr>" for r in body)
    return f"<table><thead><tr>{th}</tr></thead><tbody>{trs}</tbody></table>"


def _header(summary: Mapping[str, Any], outcome: Outcome) -> str:
    words = {"pass": "PASS — every gate passed",
             "regression": "REGRESSION — the evidence says the candidate is worse than the baseline",
             "infrastructure": "INFRASTRUCTURE — endpoints did not answer; nothing was learnt about the candidate",
             "config_error": "CONFIG ERROR — the run stopped before any request",
             "baseline_fails": "BASELINE FAILS — the baseline fails these gates too: the golden or threshold "
                               "needs attention",
             "insufficient": "INSUFFICIENT — nothing worse was shown, but the evidence cannot show a pass"}
    stopped = summary.get("stopped")
    out = [f"<h1>Conformance run {esc(summary.get('run_id'))}</h1>",
           f'<div class="banner b-{esc(outcome)}">{esc(words.get(outcome, outcome))}</div>',
           f"<p>baseline <b>{esc(summary.get('baseline'))}</b> vs candidate <b>{esc(summary.get('candidate'))}</b>"
           f" — pytest exit status {esc(summary.get('exitstatus'))}</p>"]
    if isinstance(stopped, Mapping):
        out.append(f"<p><b>Stopped before any request:</b> {esc(stopped.get('message'))}</p>")
    notes = summary.get("notes") or []
    if notes:
        out.append("<ul>" + "".join(f"<li>{esc(n)}</li>" for n in notes) + "</ul>")
    pre = summary.get("preflight") or {}
    if pre:
        body = [[esc(name), esc(p.get("model")), _badge("pass" if p.get("ok") else "fail"), esc(p.get("status")),
                 esc(p.get("server")), esc(p.get("message"))] for name, p in sorted(pre.items())]
        out.append("<h3>Preflight</h3>" + _table(["endpoint", "model", "ok", "status", "server", "message"], body))
    return "".join(out)


def _gates(summary: Mapping[str, Any]) -> str:
    out = ['<h2 id="gates">Suite gates</h2>']
    for name, s in sorted((summary.get("suites") or {}).items()):
        tests = ", ".join(f"{n} {esc(k)}" for k, n in sorted((s.get("tests") or {}).items()))
        faults = ", ".join(f"{esc(k)}×{n}" for k, n in sorted((s.get("faults") or {}).items())) or "none"
        out.append(f"<h3>{esc(name)}</h3><p class=\"muted\">tests: {tests}; endpoint faults: {faults}</p>")
        body = []
        for g in s.get("gates") or ():
            iv = g.get("interval")
            ci = f"{_fmt(float(iv[0]), 3)}–{_fmt(float(iv[1]), 3)}" if iv else ""
            thr = "" if g.get("threshold") is None else f"{esc(g.get('op'))} {_fmt(g.get('threshold'))}"
            body.append([esc(g.get("gate")), _fmt(g.get("statistic")), thr, esc(g.get("n")), ci,
                         _badge(g.get("verdict")), esc(g.get("message"))])
        out.append(_table(["gate", "statistic", "threshold", "n", "95% interval", "verdict", "message"], body,
                          num=(1, 3)) if body else '<p class="muted">no gates recorded</p>')
    return "".join(out)


def _trend(moves: Sequence[GateMove] | None, previous_run: str | None) -> str:
    if not moves:
        return ""
    body = [[esc(f"{m.suite}.{m.gate}"), _fmt(m.previous_statistic), _fmt(m.current_statistic),
             esc(m.previous_verdict), esc(m.current_verdict), _badge(m.direction or m.change)]
            for m in moves]
    since = f" since run {esc(previous_run)}" if previous_run else ""
    return (f'<h2 id="trend">Trend{since}</h2>'
            + _table(["gate", "previous", "current", "prev. verdict", "verdict", "move"], body, num=(1, 2)))


@dataclass
class _Scan:
    """What the sections need from the rows, gathered in one pass over them (100,000 rows × 3 props each)."""

    failing: dict[tuple[str, str], list[Mapping[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    #: response props of the failing cases, per (suite, case, role)
    resp: dict[tuple[str, str, str], Mapping[str, Any]] = field(default_factory=dict)
    #: rows with a term-drift finding
    term_rows: list[Mapping[str, Any]] = field(default_factory=list)
    confusions: list[tuple[str, pd.DataFrame]] = field(default_factory=list)
    labels: dict[str, list[tuple[Any, Any]]] = field(default_factory=lambda: defaultdict(list))
    #: every response prop — collected only when the run has no responses/ to take latencies from
    response_props: list[Mapping[str, Any]] = field(default_factory=list)


def _scan(rows: Sequence[Mapping[str, Any]], want_response_props: bool) -> _Scan:
    out = _Scan()
    for r in rows:
        if r.get("outcome") != "failed":
            continue
        props = [p for p in r.get("props") or () if isinstance(p, Mapping)]
        case_ids = {str(p["case_id"]) for p in props if p.get("case_id")}
        if not case_ids and "[" in str(r.get("nodeid", "")) and not any(p.get("kind") == "gate" for p in props):
            case_ids = {str(r["nodeid"]).rsplit("[", 1)[1].rstrip("]")}
        for cid in case_ids:
            out.failing[(str(r.get("suite")), cid)].append(r)
    failing_ids = {cid for _, cid in out.failing}
    for r in rows:
        has_terms = False
        for p in r.get("props") or ():
            if type(p) is not dict and not isinstance(p, Mapping):  # the ABC check alone is slow, on every prop
                continue
            kind = p.get("kind")
            if kind == "response":
                if want_response_props:
                    out.response_props.append(p)
                if str(p.get("case_id")) in failing_ids:
                    out.resp[(str(p.get("suite") or r.get("suite")), str(p.get("case_id")), str(p.get("role")))] = p
            elif kind in ("check", "gate"):
                has_terms = has_terms or (kind == "check" and p.get("check") == "terms" and bool(p.get("findings")))
                _confusion_of(p, r, out)
        if has_terms:
            out.term_rows.append(r)
    return out


def _side(role: str, prop: Mapping[str, Any] | None, full: Mapping[str, Any] | None) -> tuple[str | None, str]:
    """(text, one-line status) of one side. The text is the answer's in responses/ (``full``: the record the
    test row names); rows written before texts moved out of the props carry it themselves, and theirs wins."""
    src = prop or full or {}
    text = prop.get("text") if prop else None
    if text is None and full is not None:
        text = full.get("text")
    if not text and full is not None and full.get("tool_calls"):
        text = calls_text(full["tool_calls"])
    if not text and src.get("fault"):
        text = None  # a failed request has no answer to diff against (shown as "(no answer)")
    status = [esc(src.get("endpoint") or role)]
    if src.get("fault"):
        status.append(f'<span class="v v-fail">{esc(src.get("fault"))}</span> {esc(src.get("error"))}')
    for key in ("ttft_ms", "e2e_ms"):
        if isinstance(src.get(key), int | float):
            status.append(f"{key[:-3]} {src[key]:,.0f} ms")
    if src.get("finish_reason"):
        status.append(f"finish {esc(src.get('finish_reason'))}")
    return text, " · ".join(status)


def _failing(summary: Mapping[str, Any], scan: _Scan, answers: Answers, max_cases: int) -> str:
    failing, resp = scan.failing, scan.resp
    out = [f'<h2 id="failing">Failing cases ({len(failing)})</h2>']
    if not failing:
        return out[0] + '<p class="muted">no failing case</p>'
    for i, ((suite, cid), tests) in enumerate(sorted(failing.items())):
        if i == max_cases:
            rest = ", ".join(esc(f"{s}/{c}") for s, c in sorted(failing)[max_cases:])
            out.append(f"<p>{len(failing) - max_cases} more (texts in responses/*.jsonl): {rest}</p>")
            break
        sides = {}
        for role in ("baseline", "candidate"):
            prop = resp.get((suite, cid, role))
            endpoint = (prop or {}).get("endpoint") or summary.get(role)
            fingerprint = (prop or {}).get("fingerprint")
            full = answers.find(str(endpoint), suite, cid, None if fingerprint is None else str(fingerprint))
            sides[role] = _side(role, prop, full)
        (b_text, b_status), (c_text, c_status) = sides["baseline"], sides["candidate"]
        if b_text is not None and c_text is not None:
            b_html, c_html, ratio = diff_html(b_text, c_text)
            sim = f" · similarity {ratio:.2f}" if math.isfinite(ratio) else ""
        else:
            b_html, c_html, sim = esc(b_text or "(no answer)"), esc(c_text or "(no answer)"), ""
        msgs = "".join(f"<li><b>{esc(str(t.get('nodeid', '')).rsplit('::', 1)[-1])}</b>: "
                       f"{esc(t.get('message'))}</li>" for t in tests)
        out.append(f'<details class="case" id="case-{esc(suite)}-{esc(cid)}"{" open" if i < 25 else ""}>'
                   f"<summary>{esc(suite)} / {esc(cid)}{sim}</summary><ul class=\"msgs\">{msgs}</ul>"
                   f'<div class="pair"><div><div class="muted">baseline — {b_status}</div>'
                   f'<div class="text">{b_html}</div></div><div><div class="muted">candidate — {c_status}</div>'
                   f'<div class="text">{c_html}</div></div></div></details>')
    return "".join(out)


def confusion_from(obj: Any) -> pd.DataFrame | None:
    """A ``details["confusion"]`` value as a DataFrame (rows: baseline/reference, columns: candidate).

    Accepted: ``DataFrame.to_dict(orient="split")`` (``index``/``columns``/``data``), ``{"labels": [...],
    "matrix": [[...]]}``, or a nested mapping as ``DataFrame.to_dict()`` writes it (outer keys = columns).
    """
    try:
        if isinstance(obj, Mapping) and {"index", "columns", "data"} <= obj.keys():
            return pd.DataFrame(obj["data"], index=obj["index"], columns=obj["columns"])
        if isinstance(obj, Mapping) and {"labels", "matrix"} <= obj.keys():
            return pd.DataFrame(obj["matrix"], index=obj["labels"], columns=obj["labels"])
        if isinstance(obj, Mapping) and obj and all(isinstance(v, Mapping) for v in obj.values()):
            return pd.DataFrame(obj).fillna(0)
    except (ValueError, TypeError):
        return None
    return None


def _confusion_of(p: Mapping[str, Any], r: Mapping[str, Any], scan: _Scan) -> None:
    """A check's or gate's confusion matrix (``details["confusion"]``), else its per-case labels."""
    d = p.get("details") or {}
    if not isinstance(d, Mapping):
        return
    if "confusion" in d and (cm := confusion_from(d["confusion"])) is not None:
        scan.confusions.append((f"{p.get('suite') or r.get('suite')} · {p.get('check') or p.get('gate')}", cm))
    elif p.get("check") == "classification" and "candidate" in d:
        ref = d.get("gold") if d.get("gold") is not None else d.get("baseline")
        scan.labels[str(p.get("suite") or r.get("suite"))].append((ref, d.get("candidate")))


def _confusions(scan: _Scan) -> str:
    """Matrices checks carry (``details["confusion"]``), else one per suite built from per-case labels."""
    found = list(scan.confusions)
    labels = scan.labels
    for suite, pairs in sorted(labels.items()):
        ref, cand = (pd.Series(["(none)" if x is None else plain(x) for x in col], dtype=object)
                     for col in zip(*pairs, strict=True))
        found.append((f"{suite} · reference × candidate labels",
                      pd.crosstab(ref.rename("reference"), cand.rename("candidate"))))
    if not found:
        return ""
    out = ['<h2 id="confusion">Confusion matrices</h2>']
    for title, cm in found:
        cols = [str(c) for c in cm.columns]
        body = []
        for label, row in cm.iterrows():
            cells = [f"<th>{esc(label)}</th>"]
            for c, v in zip(cols, row.tolist(), strict=True):
                cls = "diag" if c == str(label) else ("off" if v else "")
                cells.append(f'<td class="num {cls}">{_fmt(v)}</td>')
            body.append("<tr>" + "".join(cells) + "</tr>")
        head = "".join(f"<th>{esc(c)}</th>" for c in cols)
        out.append(f'<h3>{esc(title)}</h3><table><thead><tr><th class="muted">row ↓ / candidate →</th>{head}'
                   f"</tr></thead><tbody>{''.join(body)}</tbody></table>")
    return "".join(out)


def _latency_frame(scan: _Scan, answers: Answers) -> pd.DataFrame:
    if answers:
        return answers.frame()
    props = scan.response_props
    return responses_frame({(str(p.get("endpoint")), f"{p.get('suite')}/{p.get('case_id')}"): p for p in props})


def _latency(summary: Mapping[str, Any], frame: pd.DataFrame) -> str:
    if frame.empty or frame[["ttft_ms", "e2e_ms"]].isna().all().all():
        return ""
    ok = frame[frame["fault"].isna()]
    seen = {str(e) for e in ok["endpoint"]}
    order = [str(e) for e in (summary.get("baseline"), summary.get("candidate")) if e in seen]
    order += sorted(seen - set(order))
    pct = latency_percentiles(frame)
    pct = pct.iloc[pct["endpoint"].map({e: i for i, e in enumerate(order)}).fillna(len(order)).argsort(kind="stable")]
    limit = next((float(g["threshold"]) for s in (summary.get("suites") or {}).values() for g in s.get("gates") or ()
                  if str(g.get("gate", "")).startswith("latency") and "p99" in str(g.get("gate"))
                  and "ttft" not in str(g.get("gate")) and isinstance(g.get("threshold"), int | float)), None)
    charts = []
    for metric, title in (("e2e_ms", "end-to-end latency"), ("ttft_ms", "time to first token")):
        series = {e: ok.loc[ok["endpoint"] == e, metric].dropna().to_numpy() for e in order}
        if not any(v.size for v in series.values()):
            continue
        charts.append(cdf_svg(series, f"CDF of {title}", "ms"))
        sub = pct[pct["metric"] == metric].set_index("endpoint")
        bars = {e: {c: float(sub.at[e, c]) for c in sub.columns if c.startswith("p")} for e in order if e in sub.index}
        charts.append(percentile_bars_svg(bars, f"{title} percentiles", "ms",
                                          limit=limit if metric == "e2e_ms" else None))
    body = [[esc(r.endpoint), esc(r.metric), esc(r.n), *(_fmt(float(getattr(r, c)), 5) for c in ("p50", "p90", "p95",
                                                                                             "p99"))]
            for r in pct.itertuples(index=False)]
    faulted = Counter(frame.loc[frame["fault"].notna(), "endpoint"])
    note = ("<p class=\"muted\">excluded (faulted): " + ", ".join(f"{esc(k)} {v}" for k, v in sorted(faulted.items()))
            + "</p>") if faulted else ""
    return (f'<h2 id="latency">Latency</h2><div class="charts">{"".join(charts)}</div>'
            + _table(["endpoint", "metric", "n", "p50", "p90", "p95", "p99"], body, num=(2, 3, 4, 5, 6)) + note)


def render_html(summary: Mapping[str, Any], rows: Sequence[Mapping[str, Any]], responses: Responses | None, *,
                moves: Sequence[GateMove] | None = None, previous_run: str | None = None,
                max_cases: int = MAX_CASES, outcome: Outcome | None = None) -> str:
    """The whole report page as one string (see the module docstring for what is guaranteed).

    ``responses``: the run's answers (:func:`~conformance.report.answers.read_responses`), where the failing cases'
    texts and the latency section come from; ``outcome``: :func:`~conformance.report.outcome.classify_run` of
    this run when the caller has it already (it walks every row)."""
    answers = responses if isinstance(responses, Answers) else Answers.from_records((responses or {}).values())
    scan = _scan(rows, want_response_props=not answers)
    sections = [_header(summary, outcome or classify_run(summary, rows)), _gates(summary),
                _trend(moves, previous_run), _failing(summary, scan, answers, max_cases),
                terms_section(scan.term_rows, anchors=set(sorted(scan.failing)[:max_cases]), limit=MAX_FINDINGS),
                _confusions(scan), _latency(summary, _latency_frame(scan, answers))]
    nav = "".join(f'<a href="#{a}">{t}</a>' for a, t in (("gates", "gates"), ("trend", "trend"),
                  ("failing", "failing cases"), ("terms", "term drift"), ("confusion", "confusion"),
                  ("latency", "latency")) if f'id="{a}"' in "".join(sections))
    title = f"conformance {summary.get('run_id', '')}"
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><title>{esc(title)}</title>"
            "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; "
            "img-src data:\">"
            f"<style>{_CSS}</style></head><body><nav>{nav}</nav>{''.join(sections)}"
            "<p class=\"muted\">Full data: results.parquet / results.csv / results.jsonl / responses/ in this run "
            "folder.</p></body></html>\n")
