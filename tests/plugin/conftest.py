"""Helpers to lay out a tiny conformance repo inside pytester's temporary folder."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

PYPROJECT = """
[tool.pytest.ini_options]
addopts = "-p no:locust -p no:cacheprovider"
"""


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

#: Two cases whose answers must keep the term 定金 (scripted endpoints switch it for 订金 to show drift).
TERMS_GOLDEN = """
set: smoke
owner: "@team"
defaults:
  params: {max_tokens: 6}
cases:
  - id: deposit
    prompt: 起草定金条款。
    expect: {terms: {required: [定金]}}
  - id: deposit-penalty
    prompt: 起草定金罚则。
    expect: {terms: {required: [定金]}}
"""


def two_endpoints(old: Any, new: Any, **opts: str) -> str:
    """endpoints.yaml text: ``old`` (default baseline) and ``new`` (default candidate) serving model ``m`` at the
    given FaultServers' URLs, each with ``opts`` (e.g. ``max_retries="0"``)."""
    extra = "".join(f", {k}: {v}" for k, v in opts.items())
    return (f"defaults: {{baseline: old, candidate: new}}\nendpoints:\n"
            f"  old: {{base_url: '{old.base_url}', model: m{extra}}}\n"
            f"  new: {{base_url: '{new.base_url}', model: m{extra}}}\n")


def make_suite_repo(root: Path, endpoints_yaml: str, system: str = "demo", golden: str = GOLDEN,
                    module: str | None = None) -> Path:
    """pyproject + endpoints.yaml + goldens/<system>/smoke.yaml + suites/<system>/suite.yaml — a suite needs no
    Python; ``module`` adds a team's own test module (suites/<system>/test_<system>.py)."""
    (root / "pyproject.toml").write_text(PYPROJECT)
    (root / "endpoints.yaml").write_text(textwrap.dedent(endpoints_yaml))
    g = root / "goldens" / system
    g.mkdir(parents=True, exist_ok=True)
    (g / "smoke.yaml").write_text(textwrap.dedent(golden))
    s = root / "suites" / system
    s.mkdir(parents=True, exist_ok=True)
    (s / "suite.yaml").write_text(f"system: {system}\ngates:\n  availability: {{max_error_rate: 0.0}}\n")
    if module is not None:
        (s / f"test_{system}.py").write_text(textwrap.dedent(module))
    return root
