"""Helpers to lay out a tiny conformance repo inside pytester's temporary folder."""

from __future__ import annotations

import textwrap
from pathlib import Path

PYPROJECT = """
[tool.pytest.ini_options]
addopts = "-p no:locust -p no:cacheprovider"
"""

SUITE_TEST = '''
from conformance import assert_check, assert_gates
from conformance.checks.availability import answered, availability_gates


def test_answered(case, baseline, candidate, conformance_record):
    result = answered(baseline, candidate)
    conformance_record.check(case, result)
    assert_check(result)


def test_gates(suite, suite_responses, conformance_record):
    gates = availability_gates(suite.system, list(suite_responses["baseline"].values()),
                               list(suite_responses["candidate"].values()), suite.gates.get("availability"))
    conformance_record.gates(gates)
    assert_gates(gates)
'''

GOLDEN = """
set: smoke
owner: "@team"
defaults:
  params: {max_tokens: 6}
cases:
  - id: alpha
    prompt: Say hello.
  - id: beta
    prompt: Name a colour.
  - id: gamma
    prompt: Count to three.
"""


def make_suite_repo(root: Path, endpoints_yaml: str, system: str = "demo", golden: str = GOLDEN) -> Path:
    """pyproject + endpoints.yaml + goldens/<system>/smoke.yaml + suites/<system>/{suite.yaml,test_<system>.py}."""
    (root / "pyproject.toml").write_text(PYPROJECT)
    (root / "endpoints.yaml").write_text(textwrap.dedent(endpoints_yaml))
    g = root / "goldens" / system
    g.mkdir(parents=True, exist_ok=True)
    (g / "smoke.yaml").write_text(textwrap.dedent(golden))
    s = root / "suites" / system
    s.mkdir(parents=True, exist_ok=True)
    (s / "suite.yaml").write_text(f"system: {system}\ngates:\n  availability: {{max_error_rate: 0.0}}\n")
    (s / f"test_{system}.py").write_text(SUITE_TEST)
    return root
