"""conformance.evaluate: which checks apply to a case (regressions found while wiring quality under load)."""

from __future__ import annotations

from pathlib import Path

from conformance.endpoints.base import Response
from conformance.evaluate import CaseView, SuiteData, terms_check
from conformance.suite import load_suite
from tests.plugin.conftest import make_suite_repo

GOLDEN = """
set: smoke
owner: "@team"
cases:
  - id: c1
    prompt: 起草定金条款。
    expect: {terms: {required: [定金], forbidden: [订金]}}
"""


def test_required_terms_work_without_a_glossary(tmp_path: Path) -> None:
    root = make_suite_repo(tmp_path, "endpoints: {}\n", golden=GOLDEN)
    data = SuiteData(load_suite(root / "suites" / "demo", root))
    assert data.glossary is None
    (case,) = data.suite.cases

    def r(text: str) -> Response:
        return Response("e", "demo", "c1", case.fingerprint, case.prompt_fingerprint, text=text, finish_reason="stop")

    ok = terms_check(data, CaseView(case, r("支付定金。"), r("支付定金。")))
    bad = terms_check(data, CaseView(case, r("支付定金。"), r("支付订金。")))
    assert ok is not None and ok.passed
    assert bad is not None and not bad.passed
    assert {f.kind for f in bad.findings} == {"forbidden_present", "required_missing"}
