"""``conformance lint``: every problem in the golden sets, as ``path:line: message``, in one pass.

Unlike the loader (which stops at the first error, fine for a test run), lint keeps going so a contributor fixes a
whole file in one round trip. It checks what the schema cannot: duplicate YAML keys, duplicate case ids across a
system's files, referenced files that are missing, invalid or outside the repository, glossaries, and recordings
that no longer match their cases.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema

from conformance.errors import ConformanceError, GoldenError
from conformance.goldens.loader import NON_SET_FILES, build_set, is_set_file, schema_errors, set_files
from conformance.goldens.model import Case, GoldenSet
from conformance.goldens.pii import lint_pii
from conformance.goldens.yamlsource import YamlDoc, link_outside, paused_gc, read_yaml
from conformance.suite import SUITE_FILE, inside


@dataclass
class LintReport:
    errors: list[GoldenError] = field(default_factory=list)
    warnings: list[GoldenError] = field(default_factory=list)
    sets: int = 0
    cases: int = 0

    def summary(self) -> str:
        warn = f", {len(self.warnings)} warnings" if self.warnings else ""
        return f"{self.sets} sets, {self.cases} cases, {len(self.errors)} errors{warn}"


def _read(path: Path, report: LintReport, root: Path | None) -> YamlDoc | None:
    try:
        doc = read_yaml(path, root)  # refuses a file a symlink leads out of the repository, unread
    except GoldenError as exc:
        report.errors.append(exc)
        return None
    for where, line in doc.duplicates:
        report.errors.append(GoldenError(path, line, f"duplicate key `{where[-1]}` (YAML keeps only the last one)"))
    return doc


def _check_schema_file(case: Case, rel: str, root: Path, report: LintReport) -> None:
    try:
        target = (case.path.parent / rel).resolve()
        escapes = Path(rel).is_absolute() or not target.is_relative_to(root.resolve())
        found = not escapes and target.is_file()
    except (OSError, ValueError) as exc:  # a NUL byte, a name too long for the file system ...
        report.errors.append(GoldenError(case.path, case.line, f"{case.id}: json_schema {rel!r} is not a usable "
                                                               f"path ({exc.__class__.__name__})"))
        return
    if escapes:
        report.errors.append(
            GoldenError(case.path, case.line, f"{case.id}: json_schema {rel!r} escapes the repository")
        )
        return
    if not found:
        report.errors.append(GoldenError(case.path, case.line, f"{case.id}: json_schema file not found: {rel}"))
        return
    try:
        jsonschema.Draft202012Validator.check_schema(json.loads(target.read_text(encoding="utf-8")))
    except (ValueError, jsonschema.SchemaError) as exc:
        msg = getattr(exc, "message", str(exc))
        report.errors.append(GoldenError(target, None, f"not a valid JSON Schema (referenced by {case.id}): {msg}"))


def _check_tools(case: Case, report: LintReport) -> None:
    for tool in case.tools:
        params = tool.get("function", {}).get("parameters")
        if params is None:
            continue
        try:
            jsonschema.Draft202012Validator.check_schema(params)
        except jsonschema.SchemaError as exc:
            name = tool["function"]["name"]
            report.errors.append(GoldenError(case.path, case.line,
                                             f"{case.id}: tool {name!r} parameters are not a valid JSON Schema: "
                                             f"{exc.message}"))


def lint_set_file(path: Path, root: Path, report: LintReport) -> GoldenSet | None:
    with paused_gc():  # a large set is allocated in bulk, without cycles: see paused_gc
        return _lint_set_file(path, root, report)


def _lint_set_file(path: Path, root: Path, report: LintReport) -> GoldenSet | None:
    doc = _read(path, report, root)
    if doc is None:
        return None
    errors = schema_errors(doc, "golden-set.schema.json")
    report.errors.extend(errors)
    if errors or doc.duplicates:
        return None
    gset = build_set(doc, path.parent.name)
    for case, message in lint_pii(gset):  # goldens are reviewed in public PRs: no real personal data
        report.errors.append(GoldenError(case.path, case.line, message))
    report.sets += 1
    report.cases += len(gset.cases)
    for case in gset.cases:
        if case.expect.json_schema:
            _check_schema_file(case, case.expect.json_schema, root, report)
        _check_tools(case, report)
    return gset


def lint_glossary(path: Path, report: LintReport, root: Path | None = None) -> None:
    doc = _read(path, report, root)
    if doc is None:
        return
    try:
        from conformance.checks.terms import validate_glossary
    except ImportError:  # pragma: no cover - the terms check ships with the package
        return
    for problem in validate_glossary(doc.data):
        report.errors.append(GoldenError(path, _line_for(doc, problem), problem))


def _line_for(doc: YamlDoc, problem: str) -> int:
    """Best effort: the line of the first YAML key or value the problem text quotes."""
    for path, line in sorted(doc.lines.items(), key=lambda kv: kv[1]):
        if path and isinstance(path[-1], str) and f"{path[-1]}" in problem:
            return line
    return 1


def lint_system(system_dir: Path, root: Path, report: LintReport) -> None:
    if _linked_out(system_dir, root, report):
        return
    sets = [s for p in sorted(system_dir.iterdir()) if p.is_file() and is_set_file(p)
            if (s := lint_set_file(p, root, report)) is not None]
    unique = _unique_ids((c for s in sets for c in s.cases), system_dir.name, report)
    for name in NON_SET_FILES:
        if (system_dir / name).is_file():
            lint_glossary(system_dir / name, report, root)
    _lint_recordings(system_dir, unique, report)


def _unique_ids(cases: Iterable[Case], system: str, report: LintReport) -> list[Case]:
    """The first case of every id; each later one is an error naming both locations."""
    seen: dict[str, Case] = {}
    for case in cases:
        if case.id in seen:
            report.errors.append(GoldenError(case.path, case.line,
                                             f"duplicate case id {case.id!r} in system {system!r} "
                                             f"(first at {seen[case.id].location})"))
        else:
            seen[case.id] = case
    return list(seen.values())


def _lint_recordings(system_dir: Path, cases: list[Case], report: LintReport) -> None:
    from conformance.endpoints.recorded import RecordedEndpoint

    for rec in sorted((system_dir / "recordings").glob("*.jsonl")):
        try:
            stale = RecordedEndpoint(rec, rec.stem).stale(cases)
        except ConformanceError as exc:
            report.errors.append(GoldenError(rec, None, str(exc)))
            continue
        if stale:
            report.warnings.append(GoldenError(rec, None, f"stale recordings (re-record before cutover): "
                                               f"{', '.join(stale[:10])}{' …' if len(stale) > 10 else ''}"))


def lint_suite_file(path: Path, root: Path, report: LintReport) -> None:
    doc = _read(path, report, root)
    if doc is None:
        return
    errors = schema_errors(doc, "suite.schema.json")
    report.errors.extend(errors)
    if errors:
        return
    data: dict[str, Any] = doc.data
    if data.get("require_gold"):
        _lint_require_gold(path, root, data, report)
    from conformance.suiteconfig import suite_problems

    errors, warnings = suite_problems(doc, _suite_cases(root, data))
    report.errors.extend(errors)
    report.warnings.extend(warnings)
    for key in ("goldens", "glossary"):
        if key in data:
            target = inside(root, data[key])
            if target is None:
                report.errors.append(GoldenError(path, doc.line_of((key,)), f"{key} path {data[key]!r} escapes the "
                                                 "repository"))
            elif not target.exists():
                report.errors.append(GoldenError(path, doc.line_of((key,)), f"{key} not found: {data[key]}"))


def _suite_cases(root: Path, data: dict[str, Any]) -> list[Case]:
    """The cases of the suite's golden folder that load (broken sets are reported where they are linted)."""
    goldens = inside(root, data.get("goldens", f"goldens/{data['system']}"))
    if goldens is None or not goldens.is_dir():
        return []
    out: list[Case] = []
    for p in set_files(goldens):
        try:
            doc = read_yaml(p)
        except GoldenError:
            continue
        if not doc.duplicates and not schema_errors(doc, "golden-set.schema.json"):
            out.extend(build_set(doc, goldens.name).cases)
    return out


def _lint_require_gold(path: Path, root: Path, data: dict[str, Any], report: LintReport) -> None:
    """A suite that gates on gold labels (``require_gold: true``) cannot use cases without an expectation."""
    goldens = inside(root, data.get("goldens", f"goldens/{data['system']}"))
    if goldens is None or not goldens.is_dir():
        return
    for p in sorted(goldens.iterdir()):
        if not (p.is_file() and is_set_file(p)):
            continue
        try:
            doc = read_yaml(p, root)
        except GoldenError:
            continue  # reported where the set itself is linted
        if schema_errors(doc, "golden-set.schema.json"):
            continue
        for case in build_set(doc, goldens.name).cases:
            if not case.expect.raw:
                report.errors.append(GoldenError(case.path, case.line, f"{case.id}: no `expect` — suite "
                                                 f"{data['system']!r} requires gold expectations (require_gold)"))


def _linked_out(folder: Path, root: Path, report: LintReport) -> bool:
    """True (and an error naming the folder) when a symlink leads ``folder`` out of the repository."""
    target = link_outside(folder, root)
    if target is not None:
        report.errors.append(GoldenError(folder, None, f"folder is a symlink to {target}, outside the repository: "
                                                       "refused"))
    return target is not None


def _is_system_dir(d: Path) -> bool:
    return d.is_dir() and d.name not in ("recordings", "schemas", "schema") and not (d / SUITE_FILE).exists() and any(
        p.is_file() and is_set_file(p) for p in d.iterdir())


def lint_paths(paths: Iterable[Path], root: Path) -> LintReport:
    """Lint files and folders: golden set files, system folders, a goldens/ tree, suite folders."""
    report = LintReport()
    for path in paths:
        if not path.exists():
            report.errors.append(GoldenError(path, None, "no such file or folder"))
        elif path.is_file():
            if path.name == SUITE_FILE:
                lint_suite_file(path, root, report)
            elif path.name in NON_SET_FILES:
                lint_glossary(path, report, root)
            elif (gset := lint_set_file(path, root, report)) is not None:
                _unique_ids(gset.cases, path.parent.name, report)  # a file linted alone: ids within it
        elif not _linked_out(path, root, report):
            # glob does not descend into symlinked folders: report those that leave the repository instead
            linked = [d for d in sorted(path.glob("**/*")) if d.is_symlink() and d.is_dir()
                      and _linked_out(d, root, report)]
            for suite_file in sorted(path.glob(f"**/{SUITE_FILE}")):
                lint_suite_file(suite_file, root, report)
            systems = [path] if _is_system_dir(path) else sorted(d for d in path.glob("**/") if _is_system_dir(d))
            empty = [d for d in sorted(path.iterdir()) if d.is_dir() and d not in linked and d.name not in (
                     "recordings", "schemas", "schema") and not _is_system_dir(d) and not any(d.glob(SUITE_FILE))
                     and path.name == "goldens"]
            for d in empty:
                report.errors.append(GoldenError(d, None, "empty golden folder: no *.yaml sets"))
            for d in systems:
                lint_system(d, root, report)
    return report
