"""End to end through pytest: scripted candidates that regress in one specific way are caught, by name,
and a candidate identical to the baseline is never a regression. Each suite is only suite.yaml + goldens — the
items come from the check registry. The endpoints are fault-injecting OpenAI-compatible servers whose
answers are scripted per prompt, so each regression is exactly the one under test."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from conformance.testing.faultserver import Behaviour, FaultServer, ToolCallScript

Answer = Callable[[str], Behaviour]

def build(root: Path, system: str, suite_yaml: str, golden_yaml: str, files: dict[str, str] | None = None) -> None:
    (root / "pyproject.toml").write_text('[tool.pytest.ini_options]\naddopts = "-p no:locust -p no:cacheprovider"\n')
    (root / "goldens" / system).mkdir(parents=True)
    (root / "goldens" / system / "set.yaml").write_text(textwrap.dedent(golden_yaml))
    for rel, text in (files or {}).items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(textwrap.dedent(text))
    (root / "suites" / system).mkdir(parents=True)
    (root / "suites" / system / "suite.yaml").write_text(textwrap.dedent(suite_yaml))


def _prompt(req: dict) -> str:  # type: ignore[type-arg]
    return str(req["messages"][-1]["content"])


@contextmanager
def endpoints(root: Path, baseline: Answer, candidate: Answer) -> Iterator[None]:
    with FaultServer(lambda req, n: baseline(_prompt(req)), models=["m"]) as old, \
            FaultServer(lambda req, n: candidate(_prompt(req)), models=["m"]) as new:
        (root / "endpoints.yaml").write_text(
            "defaults: {baseline: old, candidate: new}\nendpoints:\n"
            f"  old: {{base_url: '{old.base_url}', model: m, max_retries: 0}}\n"
            f"  new: {{base_url: '{new.base_url}', model: m, max_retries: 0}}\n")
        yield


def run(pytester: pytest.Pytester, system: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess(f"suites/{system}", "-p", "no:randomly")


# --- output format: JSON schema -------------------------------------------------------------------------------

FIN_SUITE = """
system: fin
gates:
  schema: {max_invalid_rate: 0.0}
"""
FIN_GOLDEN = """
set: monthly
owner: "@finance-bi"
defaults: {params: {max_tokens: 64}}
cases:
""" + "".join(f"""  - id: m{i}
    prompt: "month {i}"
    expect: {{json_schema: schemas/summary.json}}
""" for i in range(1, 6))
FIN_SCHEMA = """
{"type": "object", "required": ["month", "profit", "trend"],
 "properties": {"month": {"type": "string"}, "profit": {"type": "number"},
                "trend": {"enum": ["up", "down", "flat"]}}}
"""


def fin_answer(prompt: str) -> dict:  # type: ignore[type-arg]
    i = int(prompt.split()[-1])
    return {"month": f"2026-0{i}", "profit": 1000.5 * i, "trend": "up"}


@pytest.mark.parametrize(("name", "transform", "expected"), [
    ("identical", lambda d, i: json.dumps(d), None),
    ("think", lambda d, i: f"<think>The user wants JSON.</think>{json.dumps(d)}" if i == 2 else json.dumps(d),
     ["*<think>…</think> block the baseline never emitted*", "*FAILED*schema?m2?*"]),
    ("renamed", lambda d, i: json.dumps({("net_profit" if k == "profit" else k): v for k, v in d.items()}),
     ["*`$.profit` is missing (baseline had 1000.5)*", "*`$.net_profit` is new*"]),
    ("number-to-string", lambda d, i: json.dumps({**d, "profit": str(d["profit"])} if i in (1, 3, 4) else d),
     ["*`profit` changed number → string in 3/5 cases: m1, m3, m4*"]),
])
def test_schema_regressions(pytester: pytest.Pytester, name: str, transform: Callable, expected: list[str] | None
                            ) -> None:
    build(pytester.path, "fin", FIN_SUITE, FIN_GOLDEN, {"goldens/fin/schemas/summary.json": FIN_SCHEMA})

    def base(p: str) -> Behaviour:
        return Behaviour(text=json.dumps(fin_answer(p)))

    def cand(p: str) -> Behaviour:
        return Behaviour(text=transform(fin_answer(p), int(p.split()[-1])))

    with endpoints(pytester.path, base, cand):
        result = run(pytester, "fin")
    if expected is None:
        assert result.ret == 0, result.stdout.str()
    else:
        assert result.ret == 1
        result.stdout.fnmatch_lines(expected, consecutive=False)


# --- tool calls -----------------------------------------------------------------------------------------------

TOOLS_GOLDEN = """
set: tools
owner: "@cs-platform"
defaults:
  tools:
    - type: function
      function:
        name: create_order
        parameters:
          type: object
          properties: {sku: {type: string}, quantity: {type: integer}}
          required: [sku, quantity]
cases:
  - id: order-30
    prompt: order 30 units of A1
    expect: {tool_calls: [{name: create_order, arguments: {sku: A1, quantity: 30}}]}
  - id: order-2
    prompt: order 2 units of B7
    expect: {tool_calls: [{name: create_order, arguments: {sku: B7, quantity: 2}}]}
"""
TOOLS_SUITE = """
system: tools
gates:
  tool_calls: {min_match_rate: 1.0}
"""


def order_call(prompt: str, quantity_as: type = int) -> Behaviour:
    words = prompt.split()
    args = {"sku": words[-1], "quantity": quantity_as(words[1])}
    return Behaviour(text="", tool_calls=[ToolCallScript("create_order", args)], finish_reason="tool_calls")


def test_tool_call_integer_sent_as_string_is_caught(pytester: pytest.Pytester) -> None:
    build(pytester.path, "tools", TOOLS_SUITE, TOOLS_GOLDEN)
    with endpoints(pytester.path, order_call, lambda p: order_call(p, str)):
        result = run(pytester, "tools")
    assert result.ret == 1
    result.stdout.fnmatch_lines(['*argument `quantity` of `create_order`*"30"*integer*'], consecutive=False)


def test_tool_call_hermes_text_vs_native_and_identical(pytester: pytest.Pytester) -> None:
    build(pytester.path, "tools", TOOLS_SUITE, TOOLS_GOLDEN)
    with endpoints(pytester.path, order_call, order_call):
        assert run(pytester, "tools").ret == 0

    def hermes(p: str) -> Behaviour:
        words = p.split()
        call = {"name": "create_order", "arguments": {"sku": words[-1], "quantity": int(words[1])}}
        return Behaviour(text=f"<tool_call>{json.dumps(call)}</tool_call>")

    with endpoints(pytester.path, order_call, hermes):
        result = run(pytester, "tools")
    assert result.ret == 1  # the consumer parsing native tool_calls would break: a format regression
    result.stdout.fnmatch_lines(["*format*"], consecutive=False)


# --- classification -------------------------------------------------------------------------------------------

SAFETY_SUITE = """
system: safety
labels: {values: [违规, 合规, 需复核], aliases: {不合规: 违规}}
noise_floor: {repeats: 2}
gates:
  classification:
    min_agreement: 0.95
    critical_flips: [{from: 违规, to: 合规}]
"""
SAFETY_GOLDEN = """
set: verdicts
owner: "@trust-safety"
defaults: {system: 只输出一个标签：违规、合规、需复核。, params: {max_tokens: 8}}
cases:
""" + "".join(f"  - {{id: v{i:02d}, prompt: '内容 {i}', expect: {{label: {'违规' if i % 2 else '合规'}}}}}\n"
              for i in range(20))


def verdict(prompt: str) -> Behaviour:
    return Behaviour(text="违规" if int(prompt.split()[-1]) % 2 else "合规")


def test_label_flips_and_critical_flip_are_caught(pytester: pytest.Pytester) -> None:
    build(pytester.path, "safety", SAFETY_SUITE, SAFETY_GOLDEN)
    with endpoints(pytester.path, verdict, verdict):
        result = run(pytester, "safety")
    assert result.ret == 0, result.stdout.str()
    # a perfect run on 20 cases does not claim more certainty than 20 cases allow
    result.stdout.fnmatch_lines(["*? safety.classification.agreement 1 >= 0.95 (n=20, 95% CI 0.839–1.000*"
                                 "INSUFFICIENT*"])

    def flipped(p: str) -> Behaviour:  # one violation passed as compliant; two compliant ones sent to review
        i = int(p.split()[-1])
        return Behaviour(text={3: "合规", 4: "需复核", 6: "需复核"}.get(i, verdict(p).text))

    with endpoints(pytester.path, verdict, flipped):
        result = run(pytester, "safety")
    assert result.ret == 1
    result.stdout.fnmatch_lines(["*critical*违规*合规*", "*✗ safety.classification.agreement 0.85 >= 0.95*"],
                                consecutive=False)


# --- legal terms ----------------------------------------------------------------------------------------------

LEGAL_SUITE = """
system: legal
glossary: goldens/legal/glossary.yaml
gates:
  terms: {max_drift_rate: 0.001}
"""
LEGAL_GOLDEN = """
set: drafting
owner: "@legal-ai"
defaults: {params: {max_tokens: 64}}
cases:
""" + "".join(f"  - {{id: d{i:02d}, prompt: '定金条款 {i}'}}\n" for i in range(10))
GLOSSARY = (Path(__file__).resolve().parents[2] / "goldens" / "legal" / "glossary.yaml").read_text(encoding="utf-8")


def clause(prompt: str, word: str = "定金") -> Behaviour:
    return Behaviour(text=f"买方应当于签约之日起三日内向卖方支付{word}，{word}为合同总价的20%。")


def test_deposit_swapped_for_look_alike_is_caught(pytester: pytest.Pytester) -> None:
    build(pytester.path, "legal", LEGAL_SUITE, LEGAL_GOLDEN, {"goldens/legal/glossary.yaml": GLOSSARY})
    with endpoints(pytester.path, clause, clause):
        assert run(pytester, "legal").ret == 0

    def swapped(p: str) -> Behaviour:
        return clause(p, "订金" if p.endswith((" 2", " 7")) else "定金")

    with endpoints(pytester.path, clause, swapped):
        result = run(pytester, "legal")
    assert result.ret == 1
    result.stdout.fnmatch_lines(["*'定金' replaced by look-alike '订金'*", "*✗ legal.terms.drift_rate*",
                                 "*FAILED*terms?d02?*"], consecutive=False)


# --- free text ------------------------------------------------------------------------------------------------

QA_SUITE = """
system: qa
noise_floor: {repeats: 2}
gates:
  text: {max_similarity_drop: 0.05}
"""
QA_GOLDEN = """
set: qa
owner: "@kb-team"
cases:
""" + "".join(f"""  - id: q{i}
    prompt: "问题 {i}"
    expect: {{must_include: [风险提示]}}
""" for i in range(6))


def answer(prompt: str) -> Behaviour:
    return Behaviour(text=f"根据[DOC-101]，报销需在30日内提交。风险提示：逾期不予受理。（{prompt}）")


@pytest.mark.parametrize(("name", "mutate", "expected", "item"), [
    ("english", lambda t: "According to DOC-101, claims must be filed within 30 days. Risk note: late claims "
                          "are rejected.", "*✗ qa.text.language_switches 1 <= 0*q3*", "text"),
    ("refusal", lambda t: "抱歉，我无法回答这个问题。", "*✗ qa.text.refusal_increase*q3*", "text"),
    ("dropped-section", lambda t: t.split("风险提示")[0], "*✗ qa.phrases.missing_rate*q3 ('风险提示')*", "phrases"),
])
def test_free_text_regressions_are_caught_by_case(pytester: pytest.Pytester, name: str,
                                                  mutate: Callable[[str], str], expected: str, item: str) -> None:
    build(pytester.path, "qa", QA_SUITE, QA_GOLDEN)

    def cand(p: str) -> Behaviour:
        text = answer(p).text
        return Behaviour(text=mutate(text) if p.endswith(" 3") else text)

    with endpoints(pytester.path, answer, cand):
        result = run(pytester, "qa")
    assert result.ret == 1
    result.stdout.fnmatch_lines([expected, f"*FAILED*{item}?q3?*"], consecutive=False)
    assert f"{item}[q1]" not in result.stdout.str()


def test_identical_free_text_passes_with_similarity_next_to_noise_floor(pytester: pytest.Pytester) -> None:
    build(pytester.path, "qa", QA_SUITE, QA_GOLDEN)
    with endpoints(pytester.path, answer, answer):
        result = run(pytester, "qa")
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines(["*✓ qa.text.similarity_median*noise floor*"])


# --- the consuming system's own parser ------------------------------------------------------------------------

CONSUMER = """
import json


def monthly_profit_cents(text):
    \"\"\"What the finance team's nightly job really does with the answer.\"\"\"
    return round(json.loads(text)["profit"] * 100)
"""


def register_parser(root: Path, name: str, target: str) -> None:
    """Register a consumer parser as an installed distribution would (entry point group
    llm_conformance.consumer_parsers): a dist-info folder on the subprocess's path (its working directory)."""
    info = root / "finance_consumer-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: finance-consumer\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[llm_conformance.consumer_parsers]\n{name} = {target}\n")


def test_consumer_parser_breaks_on_candidate_output(pytester: pytest.Pytester) -> None:
    suite = FIN_SUITE + "consumer_parser: finance-etl\n"
    build(pytester.path, "fin", suite, FIN_GOLDEN, {"goldens/fin/schemas/summary.json": FIN_SCHEMA,
                                                    "finance_consumer.py": CONSUMER})
    register_parser(pytester.path, "finance-etl", "finance_consumer:monthly_profit_cents")

    def base(p: str) -> Behaviour:
        return Behaviour(text=json.dumps(fin_answer(p)))

    def cand(p: str) -> Behaviour:  # m4's profit became a string: the consumer's arithmetic breaks
        d = fin_answer(p)
        return Behaviour(text=json.dumps({**d, "profit": str(d["profit"])} if p.endswith(" 4") else d))

    with endpoints(pytester.path, base, base):
        assert run(pytester, "fin").ret == 0
    with endpoints(pytester.path, base, cand):
        result = run(pytester, "fin")
    assert result.ret == 1
    result.stdout.fnmatch_lines(["*finance-etl*TypeError*", "*FAILED*consumer_parser?m4?*"],
                                consecutive=False)


def test_a_consumer_parser_that_is_not_registered_is_refused_before_any_request(pytester: pytest.Pytester) -> None:
    """Issue #13: `consumer_parser: os:system` sent the candidate's answer to /bin/sh. Only registered parsers."""
    suite = FIN_SUITE + "consumer_parser: 'os:system'\n"
    build(pytester.path, "fin", suite, FIN_GOLDEN, {"goldens/fin/schemas/summary.json": FIN_SCHEMA})

    def shell(p: str) -> Behaviour:
        return Behaviour(text="touch pwned")

    with endpoints(pytester.path, shell, shell):
        result = run(pytester, "fin")
    assert result.ret == 78
    result.stdout.fnmatch_lines(["*config_error*consumer_parser*module:function paths are not allowed*"])
    assert not (pytester.path / "pwned").exists()


# --- prompt-perturbation robustness ---------------------------------------------------------------------------

def test_label_flips_under_prompt_perturbation_are_caught(pytester: pytest.Pytester) -> None:
    suite = SAFETY_SUITE.replace("noise_floor: {repeats: 2}", "perturbation: {seed: 7}") + \
        "    max_perturbation_excess: 0.05\n"
    build(pytester.path, "safety", suite, SAFETY_GOLDEN)

    def robust(p: str) -> Behaviour:  # reads the number wherever it is
        digits = "".join(ch for ch in p if ch.isdigit())
        return Behaviour(text="违规" if int(digits) % 2 else "合规")

    def brittle(p: str) -> Behaviour:  # answers only the exact original wording
        return robust(p) if p == f"内容 {''.join(ch for ch in p if ch.isdigit())}" else Behaviour(text="需复核")

    with endpoints(pytester.path, robust, robust):
        result = run(pytester, "safety")
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines(["*? safety.classification.perturbation_excess 0 <= 0.05*INSUFFICIENT*"])
    with endpoints(pytester.path, robust, brittle):
        result = run(pytester, "safety")
    assert result.ret == 1
    result.stdout.fnmatch_lines(["*✗ safety.classification.perturbation_excess*candidate flips under perturbation*"])
