"""``suites/<system>/suite.yaml``: which goldens a suite replays and the gates it applies.

A suite folder is recognised by its ``suite.yaml``; the plugin uses it to parametrize the tests next to it and
the CLI uses it to know what to record. Paths inside are relative to the repository root and may not escape it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conformance.errors import GoldenError
from conformance.goldens.loader import load_system, read_validated
from conformance.goldens.model import Case, GoldenSet

SUITE_FILE = "suite.yaml"


def find_root(start: Path) -> Path:
    """The repository root: the nearest ancestor holding endpoints.yaml, pyproject.toml or .git."""
    start = start.resolve()
    for d in (start, *start.parents):
        if any((d / marker).exists() for marker in ("endpoints.yaml", "pyproject.toml", ".git")):
            return d
    return start


def inside(root: Path, rel: str) -> Path | None:
    """``root / rel`` resolved, or None when it escapes ``root`` (``../../etc/passwd``) or is absolute."""
    if Path(rel).is_absolute():
        return None
    target = (root / rel).resolve()
    return target if target.is_relative_to(root.resolve()) else None


@dataclass(frozen=True)
class Suite:
    """A loaded suite: its config, its golden sets, and where it lives."""

    system: str
    dir: Path
    root: Path
    config: dict[str, Any]
    sets: tuple[GoldenSet, ...] = field(default=())
    warnings: tuple[str, ...] = ()

    @property
    def cases(self) -> list[Case]:
        return [c for s in self.sets for c in s.cases]

    @property
    def goldens_dir(self) -> Path:
        return resolve_in_root(self.root, self.config.get("goldens", f"goldens/{self.system}"),
                               self.dir / SUITE_FILE)

    @property
    def gates(self) -> dict[str, dict[str, Any]]:
        return dict(self.config.get("gates") or {})

    def recordings_path(self, endpoint: str) -> Path:
        return self.goldens_dir / "recordings" / f"{endpoint}.jsonl"


def resolve_in_root(root: Path, rel: str, source: Path) -> Path:
    target = inside(root, rel)
    if target is None:
        raise GoldenError(source, None, f"path {rel!r} escapes the repository root {root}")
    return target


def load_suite(suite_dir: Path, root: Path | None = None) -> Suite:
    """Load ``suite_dir/suite.yaml`` and the golden sets it points at."""
    suite_file = suite_dir / SUITE_FILE
    root = root or find_root(suite_dir)
    doc = read_validated(suite_file, "suite.schema.json", root)
    cfg = doc.data
    suite = Suite(system=cfg["system"], dir=suite_dir.resolve(), root=root, config=cfg)
    if "glossary" in cfg and not resolve_in_root(root, cfg["glossary"], suite_file).is_file():
        raise GoldenError(suite_file, doc.line_of(("glossary",)), f"glossary file not found: {cfg['glossary']}")
    sets = tuple(load_system(suite.goldens_dir, root))
    from conformance.suiteconfig import suite_problems

    errors, warnings = suite_problems(doc, [c for s in sets for c in s.cases])
    if errors:
        raise errors[0]
    return Suite(system=suite.system, dir=suite.dir, root=root, config=cfg, sets=sets,
                 warnings=tuple(str(w) for w in warnings))


def discover_suites(paths: list[Path]) -> list[Path]:
    """Suite folders touched by pytest's path arguments: the folder itself, an ancestor, or descendants."""
    found: set[Path] = set()
    for p in paths:
        p = p.resolve()
        base = p if p.is_dir() else p.parent
        for d in (base, *base.parents):
            if (d / SUITE_FILE).is_file():
                found.add(d)
                break
        if p.is_dir():
            found.update(f.parent for f in p.glob(f"**/{SUITE_FILE}"))
    return sorted(found)
