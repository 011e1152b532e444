"""Consumer parsers: the consuming team's own post-processing, run on both answers — from an allow-list only.

A consuming system often post-processes the model's answer with its own code (a strict JSON loader, an action-item
extractor); running that code on baseline and candidate is the most honest compatibility test there is. But the
name of the parser sits in ``suite.yaml`` — a file that arrives by pull request — and the text it is run on comes
from a model: a suite that could name *any* importable callable (``os:system``) would hand model output to a shell.
So a suite names a parser by a **registered name**, and only these can be loaded:

- the entry point group :data:`GROUP` (``llm_conformance.consumer_parsers``) of any installed distribution — a
  team ships its parser in its own package and registers it in that package's ``pyproject.toml``::

      [project.entry-points."llm_conformance.consumer_parsers"]
      finance-etl = "finance_etl.parse:monthly_summary"

  installing a package is a reviewed, deliberate act of whoever runs the harness, unlike a golden PR;
- the harness's own parsers in :mod:`conformance.parsers`, registered in the same group by this package.

``conformance lint`` refuses any other name with the list of registered ones; the run refuses it before the first
request. What a registered parser does is the registering team's responsibility: it runs in the harness's process
with the harness's permissions (docs/SECURITY.md).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import cache
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from conformance.errors import ConfigError

GROUP = "llm_conformance.consumer_parsers"
#: What a parser name may look like (a registered name, not a module path).
NAME = re.compile(r"\A[a-z][a-z0-9_.-]{0,63}\Z")


@cache
def registered() -> dict[str, EntryPoint]:
    """Registered parser names → their entry points (read once per process)."""
    return {ep.name: ep for ep in entry_points(group=GROUP)}


def parser_problem(name: Any) -> str | None:
    """Why ``name`` cannot be used as a consumer parser, or None when it is registered."""
    if not isinstance(name, str) or not NAME.match(name):
        return (f"consumer_parser must be the registered name of a parser (entry point group {GROUP}), "
                f"got {name!r}" + (" — module:function paths are not allowed (docs/SECURITY.md)"
                                   if isinstance(name, str) and ":" in name else ""))
    known = registered()
    if name not in known:
        listing = ", ".join(sorted(known)) or "(none)"
        return (f"consumer parser {name!r} is not registered in the entry point group {GROUP}; "
                f"registered: {listing}")
    return None


def load_consumer_parser(name: str) -> Callable[[str], Any]:
    """The registered parser called ``name``; :class:`ConfigError` for anything else (never imports it)."""
    problem = parser_problem(name)
    if problem:
        raise ConfigError(problem)
    obj = registered()[name].load()
    if not callable(obj):
        raise ConfigError(f"consumer parser {name!r} is not callable (got {type(obj).__name__})")
    return obj
