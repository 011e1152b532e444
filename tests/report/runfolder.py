"""Build realistic run folders for the report tests from the package's own result types.

Rows are produced the way the plugin and the collector produce them (``CheckResult.to_dict``,
``GateResult.to_dict``, ``Response.to_dict``, the response props of ``conformance.plugin._response``), so a shape
change there breaks these tests instead of silently diverging.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from conformance.checks.glossary import Glossary, GlossaryEntry
from conformance.checks.result import CheckResult
from conformance.checks.terms import term_findings
from conformance.gates import GateResult
from conformance.response import Response

#: Hostile strings a golden or a model answer may contain; the report must show them as text.
ADVERSARIAL = ('<script>alert(1)</script>', '"><img src=x onerror=alert(2)>', "</textarea><b id=pwn>x</b>")
EVIL = " ".join(ADVERSARIAL)

BASE, CAND = "old-ep", "new-ep"


def response(endpoint: str, system: str, case_id: str, text: str | None, *, fault: str | None = None,
             ttft: float = 120.0, e2e: float = 900.0) -> Response:
    return Response(endpoint=endpoint, system=system, case_id=case_id, fingerprint=f"fp-{case_id}",
                    prompt_fingerprint=f"pp-{case_id}", text=text, fault=fault,
                    error=f"{fault}: boom" if fault else None, ttft_ms=None if fault else ttft,
                    e2e_ms=None if fault else e2e, finish_reason=None if fault else "stop")


def response_prop(role: str, r: Response) -> dict[str, Any]:
    """As ``conformance.plugin._response`` records it: no text (the report joins it from responses/)."""
    return {"kind": "response", "role": role, "suite": r.system, "case_id": r.case_id, "endpoint": r.endpoint,
            "fingerprint": r.fingerprint, "fault": r.fault, "error": r.error, "ttft_ms": r.ttft_ms,
            "e2e_ms": r.e2e_ms, "finish_reason": r.finish_reason, "attempts": len(r.attempts)}


def check_prop(system: str, case_id: str, result: CheckResult) -> dict[str, Any]:
    return {"kind": "check", "suite": system, "case_id": case_id, **result.to_dict()}


def row(nodeid: str, suite: str, outcome: str, props: list[dict[str, Any]], message: str = "",
        when: str = "call") -> dict[str, Any]:
    return {"nodeid": nodeid, "suite": suite, "outcome": outcome, "when": when, "duration_s": 0.01,
            "message": message, "props": props}


#: The legal suite's glossary, cut down: a deposit look-alike, a duty/discretion pair, a required term.
GLOSSARY = Glossary((GlossaryEntry("定金", ("订金",), note="定金 triggers the double-return penalty"),
                     GlossaryEntry("shall", ("may",), note="a duty, not a discretion"),
                     GlossaryEntry("违约金", ("罚款",), note="a fine is not a contractual penalty")))
#: A right-to-left override: ``RLO + "evil" + PDF`` is displayed as "live" unless the page neutralises it.
BIDI = "\u202eevil\u202c"


def legal_case(case_id: str, base_text: str, cand_text: str, *, required: tuple[str, ...] = (),
               cand_fault: str | None = None, e2e: float = 900.0, message: str | None = None,
               ) -> tuple[dict[str, Any], list[Response]]:
    """A legal case judged by the real terms check (:func:`term_findings` with :data:`GLOSSARY`): failed on a
    regression or a fault, xfailed when every finding is shared with the baseline, as the pytest layer marks it."""
    b = response(BASE, "legal", case_id, base_text, e2e=e2e)
    c = response(CAND, "legal", case_id, cand_text, fault=cand_fault, e2e=e2e * 1.3)
    result = term_findings(base_text, cand_text, GLOSSARY, required=required)
    props = [response_prop("baseline", b), response_prop("candidate", c), check_prop("legal", case_id, result)]
    failed = not result.passed or cand_fault is not None
    outcome = "failed" if failed else "xfailed" if result.findings else "passed"
    if message is None:
        message = (f"[terms] {result.explanation}" if not result.passed
                   else f"[answered] {cand_fault}" if cand_fault else "")
    return row(f"suites/legal/test_legal.py::test_terms[{case_id}]", "legal", outcome, props, message), [b, c]


def sentiment_case(case_id: str, gold: str, base_label: str, cand_label: str) -> tuple[dict[str, Any],
                                                                                       list[Response]]:
    b = response(BASE, "sentiment", case_id, base_label, e2e=300.0)
    c = response(CAND, "sentiment", case_id, cand_label, e2e=350.0)
    ok = cand_label == gold
    result = CheckResult("classification", passed=ok, explanation="match" if ok else f"gold says {gold!r}",
                         score=1.0 if ok else 0.0, details={"baseline": base_label, "candidate": cand_label,
                                                            "gold": gold, "critical": False})
    props = [response_prop("baseline", b), response_prop("candidate", c), check_prop("sentiment", case_id, result)]
    return row(f"suites/sentiment/test_sentiment.py::test_label[{case_id}]", "sentiment",
               "passed" if ok else "failed", props, "" if ok else f"[classification] {result.explanation}"), [b, c]


def build_run(run_dir: Path, *, run_id: str = "20261123-120000-abcd", drift: float = 0.012,
              extra_gate: bool = False) -> Path:
    """A two-suite run: legal (term drift with an adversarial golden, one candidate timeout, a required term both
    endpoints miss, an answer holding a right-to-left override) and sentiment (labels with flips); gates in
    summary.json, rows in results.jsonl, responses in responses/*.jsonl."""
    rows: list[dict[str, Any]] = []
    resps: list[Response] = []
    cases = [
        legal_case("deposit-20pct", "买方应于签约之日起三日内支付合同总价20%的定金。",
                   f"买方应于签约之日起三日内支付合同总价20%的订金。{EVIL}", e2e=800.0),
        legal_case("evil-golden", f"The Seller shall deliver the goods. {EVIL}",
                   f"The Seller may deliver the goods. {EVIL}", e2e=1200.0),
        legal_case("force-majeure", "因不可抗力不能履行合同的，不承担责任。", "因不可抗力不能履行合同的，不承担责任。",
                   e2e=700.0),
        legal_case("timeout-case", "违约方应当承担违约责任。", "", cand_fault="timeout"),
        # the golden requires 违约金 and neither endpoint wrote it: shared with the baseline, not a regression
        legal_case("both-miss-penalty", "违约方应当承担违约责任。", "违约方应承担违约责任。", required=("违约金",),
                   e2e=650.0),
        legal_case("bidi-answer", f"The Buyer shall pay. Status: {BIDI} (logical order).",
                   f"The Buyer may pay. Status: {BIDI} (logical order).", e2e=750.0,
                   message=f"[terms] the golden's reference reads {BIDI}"),
    ]
    labels = [("r1", "正面", "正面", "正面"), ("r2", "负面", "负面", "正面"), ("r3", "负面", "负面", "负面"),
              ("r4", "正面", "负面", "负面"), ("r5", "中性", "中性", "中性")]
    for r, rs in [*cases, *(sentiment_case(*x) for x in labels)]:
        rows.append(r)
        resps += rs
    gates = [
        GateResult("legal", "terms.drift_rate", drift, 0.001, "<=", 312, "fail" if drift > 0.001 else "pass",
                   (0.006, 0.022), f"drift {EVIL}"),
        GateResult("legal", "availability.error_rate", 0.25, 0.0, "<=", 4, "fail", (0.05, 0.7),
                   "candidate failed 1/4: timeout×1 (timeout-case)"),
        GateResult("sentiment", "classification.agreement", 0.6, 0.95, ">=", 5, "fail", (0.23, 0.88)),
        GateResult("sentiment", "classification.kappa", None, 0.8, ">=", 5, "insufficient", None,
                   "insufficient samples (n=5, need ≥ 30)"),
    ]
    if extra_gate:
        gates.append(GateResult("legal", "latency.p99_ms", 1500.0, 2500.0, "<=", 4, "pass"))
    for suite in ("legal", "sentiment"):
        props = [{"kind": "gate", **g.to_dict()} for g in gates if g.suite == suite]
        failed = any(g["verdict"] != "pass" for g in props)
        rows.append(row(f"suites/{suite}/test_{suite}.py::test_gates", suite, "failed" if failed else "passed",
                        props, "suite gates: …" if failed else ""))
    rows.append(row("suites/legal/test_legal.py::test_terms[setup-broke]", "legal", "failed", [],
                    f"Failed: fixture exploded {EVIL}", when="setup"))
    summary = {
        "run_id": run_id, "baseline": BASE, "candidate": CAND,
        "preflight": {BASE: {"endpoint": BASE, "model": "m-old", "ok": True, "status": "ok", "message": ""},
                      CAND: {"endpoint": CAND, "model": "m-new", "ok": True, "status": "ok", "message": ""}},
        "notes": [f"note with {EVIL}"], "exitstatus": 1,
        "suites": {s: {"tests": dict(Counter(r["outcome"] for r in rows if r["suite"] == s)),
                       "gates": [{"kind": "gate", **g.to_dict()} for g in gates if g.suite == s],
                       "faults": {"candidate:timeout": 1} if s == "legal" else {}}
                   for s in ("legal", "sentiment")},
    }
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "summary.json").write_text(json.dumps(summary, ensure_ascii=False, indent=2), encoding="utf-8")
    with open(run_dir / "results.jsonl", "w", encoding="utf-8") as fh:
        for r in rows:
            fh.write(json.dumps(r, ensure_ascii=False) + "\n")
    (run_dir / "responses").mkdir(exist_ok=True)
    for ep in (BASE, CAND):
        with open(run_dir / "responses" / f"{ep}.main.jsonl", "w", encoding="utf-8") as fh:
            for resp in resps:
                if resp.endpoint == ep:
                    fh.write(json.dumps(resp.to_dict(), ensure_ascii=False) + "\n")
            fh.write('{"endpoint": "cut-short-by-a-ki')  # a killed writer's last line
    return run_dir
