"""Shared fixtures for the harness's own unit tests: a tiny repository on disk — files only, no server.

The repository lives under ``tmp_path`` (never inside the checkout: the plugin treats any folder holding a
``suite.yaml`` on the pytest command line as a suite)::

    def test_lint_accepts_the_good_set(make_repo):
        repo = make_repo()                       # pyproject, endpoints.yaml, goldens/legal, suites/legal
        repo.write("goldens/legal/extra.yaml", "set: x\\n...")
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas  # noqa: F401 - imported once, before any in-process pytester run: see below
import pytest
import yaml
from hypothesis import settings
from hypothesis import strategies as st

PYPROJECT = """\
[project]
name = "tiny-conformance-repo"
version = "0"
"""

# Nothing listens on port 9 (discard); these tests never connect anyway.
ENDPOINTS_YAML = """\
defaults:
  baseline: old
  candidate: new
endpoints:
  old:
    base_url: http://127.0.0.1:9/v1
    model: old-model
  new:
    base_url: http://127.0.0.1:9/v1
    model: new-model
    api_key_env: TINY_NEW_KEY
  other:
    base_url: https://llm.example.invalid/v1
    model: other-model
    timeout_s: 30
"""

#: A valid golden set using every feature the loader applies defaults to (find lines with :func:`line_no`).
GOOD_SET = """\
set: deposit-clauses
owner: "@legal-ai"
defaults:
  system: 你是法务文书助手，只输出条款正文。
  params: {temperature: 0, max_tokens: 64}
  tags: [legal]
description: Deposit clauses.
cases:
  - id: deposit-20pct
    messages:
      - {role: user, content: 起草买卖合同的定金条款，定金为总价的20%。}
    expect:
      terms: {required: [定金], forbidden: [订金]}
  - id: weather-paris
    prompt: What's the weather in Paris?
    tools:
      - type: function
        function:
          name: get_weather
          parameters: {type: object, properties: {city: {type: string}}, required: [city]}
    expect:
      tool_calls: [{name: get_weather, arguments: {city: Paris}}]
  - id: q3-summary
    messages:
      - {role: system, content: You are a finance analyst.}
      - {role: user, content: Summarise Q3.}
    params: {max_tokens: 128, response_format: {type: json_object}}
    tags: [finance, legal]
    expect: {json_schema: schemas/summary.json}
"""

SUMMARY_SCHEMA = '{"type": "object", "required": ["revenue"], "properties": {"revenue": {"type": "number"}}}\n'

SUITE_YAML = """\
system: legal
goldens: goldens/legal
gates:
  terms: {max_drift_rate: 0.001}
"""


def line_no(text: str, needle: str, occurrence: int = 1) -> int:
    """1-based line of the ``occurrence``-th line of ``text`` containing ``needle`` (so tests never hard-code it)."""
    hits = [i for i, line in enumerate(text.splitlines(), 1) if needle in line]
    return hits[occurrence - 1]


@dataclass(frozen=True)
class Repo:
    """A tiny repository written under a temporary folder."""

    root: Path
    system: str

    @property
    def goldens(self) -> Path:
        return self.root / "goldens" / self.system

    @property
    def suite_dir(self) -> Path:
        return self.root / "suites" / self.system

    def write(self, rel: str, text: str) -> Path:
        """Write ``text`` (dedented) at ``root/rel``, creating folders; returns the path."""
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
        return path


def write_repo(
    root: Path,
    *,
    system: str = "legal",
    sets: Mapping[str, str] | None = None,
    suite: str | None = SUITE_YAML,
    endpoints: str | None = ENDPOINTS_YAML,
) -> Repo:
    """pyproject.toml + endpoints.yaml + goldens/<system>/{*.yaml, schemas/summary.json} + suites/<system>/suite.yaml.

    ``sets`` maps file names to YAML text (default: ``{"deposit.yaml": GOOD_SET}``); ``suite=None`` or
    ``endpoints=None`` leaves that file out.
    """
    repo = Repo(root, system)
    repo.write("pyproject.toml", PYPROJECT)
    if endpoints is not None:
        repo.write("endpoints.yaml", endpoints)
    for name, text in (sets if sets is not None else {"deposit.yaml": GOOD_SET}).items():
        repo.write(f"goldens/{system}/{name}", text)
    repo.write(f"goldens/{system}/schemas/summary.json", SUMMARY_SCHEMA)
    if suite is not None:
        repo.write(f"suites/{system}/suite.yaml", suite)
    return repo


@pytest.fixture
def make_repo(tmp_path: Path) -> Callable[..., Repo]:
    """Factory writing a tiny repository under ``tmp_path`` (see :func:`write_repo` for the arguments).

    Example::

        repo = make_repo(sets={"a.yaml": GOOD_SET, "b.yaml": OTHER}, suite=None)
        assert lint_paths([repo.goldens], repo.root).errors == []
    """
    counter = iter(range(1_000_000))

    def make(**kwargs: Any) -> Repo:
        return write_repo(tmp_path / f"repo{next(counter)}", **kwargs)

    return make


@pytest.fixture
def repo(make_repo: Callable[..., Repo]) -> Repo:
    """The default tiny repository: one good golden set of three cases, a suite and endpoints.yaml."""
    return make_repo()


# ---------------------------------------------------------------- hypothesis: malformed golden documents

_WRONG = (
    st.integers(-5, 5) | st.booleans() | st.none() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=6) | st.lists(st.integers(0, 3), max_size=2)
    | st.dictionaries(st.text(max_size=4), st.integers(0, 3), max_size=2)
)
_UNKNOWN_KEYS = st.sampled_from(["lable", "label", "expected", "prompts", "Set", "temprature", "id2"]) | st.text(
    min_size=1, max_size=8) | st.integers(0, 9)


def _slots(node: Any) -> list[tuple[Any, Any]]:
    """Every (container, key-or-index) below ``node``: the places a mutation can hit."""
    out: list[tuple[Any, Any]] = []
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for k, v in items:
        out.append((node, k))
        out += _slots(v)
    return out


@st.composite
def mutated_golden(draw: st.DrawFn, base: str = GOOD_SET) -> str:
    """A valid golden set with 1–3 random mutations: dropped keys or items, wrong types, unknown keys, emptied
    lists/maps — dumped back to YAML text."""
    doc = yaml.safe_load(base)
    for _ in range(draw(st.integers(1, 3), label="n_mutations")):
        slots = _slots(doc)
        if not slots:
            break
        parent, key = draw(st.sampled_from(slots), label="slot")
        op = draw(st.sampled_from(["drop", "wrong_type", "unknown_key", "empty"]), label="op")
        if op == "drop":
            del parent[key]
        elif op == "wrong_type":
            parent[key] = draw(_WRONG, label="value")
        elif op == "unknown_key":
            target = parent[key] if isinstance(parent[key], dict) else parent if isinstance(parent, dict) else doc
            target[draw(_UNKNOWN_KEYS, label="key")] = draw(_WRONG, label="value")
        elif isinstance(parent[key], list | dict):
            parent[key] = type(parent[key])()
    return yaml.safe_dump(doc, allow_unicode=True, sort_keys=False)


# Hypothesis' per-example deadline (200 ms) measures the machine, not the code: on a loaded 2-core CI runner with
# two xdist workers, pandas or a subprocess-heavy neighbour makes it flake. Correctness properties need no deadline.
settings.register_profile("conformance", deadline=None)
settings.load_profile("conformance")


# --- live tests (real llama.cpp servers) ----------------------------------------------------------------------
from tests.support.live import live_endpoints, live_servers, mark_live_items  # noqa: E402

__all__ = ["live_endpoints", "live_servers"]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    mark_live_items(items)
