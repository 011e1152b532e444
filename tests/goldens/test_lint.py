"""lint: every problem of every file as ``path:line: message`` in one pass; a good repository is clean."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conformance.errors import GoldenError
from conformance.goldens.lint import LintReport, lint_paths
from conformance.goldens.loader import load_set
from conformance.recordings import entry, write_recordings
from conformance.redact import Redactor
from conformance.response import new_response
from tests.conftest import GOOD_SET, SUITE_YAML, Repo, line_no, mutated_golden

MINIMAL = 'set: other\nowner: "@team"\ncases:\n  - id: solo\n    prompt: Hello?\n'


def _lint_one(make_repo: Callable[..., Repo], text: str, name: str = "bad.yaml") -> tuple[Repo, LintReport, Path]:
    repo = make_repo(sets={"deposit.yaml": GOOD_SET, name: text})
    return repo, lint_paths([repo.root / "goldens"], repo.root), repo.goldens / name


def _only_error(report: LintReport, path: Path) -> GoldenError:
    errors = [e for e in report.errors if e.path == str(path)]
    assert len(errors) == 1, [str(e) for e in report.errors]
    return errors[0]


# ---------------------------------------------------------------- the good case


def test_good_repository_is_clean(repo: Repo) -> None:
    report = lint_paths([repo.root / "goldens", repo.root / "suites"], repo.root)
    assert report.errors == [] and report.warnings == []
    assert (report.sets, report.cases) == (1, GOOD_SET.count("- id:"))
    assert report.summary() == f"1 sets, {report.cases} cases, 0 errors"


@pytest.mark.parametrize("target", ["system_dir", "file", "tree"])
def test_good_set_is_clean_whichever_path_is_given(repo: Repo, target: str) -> None:
    path = {"system_dir": repo.goldens, "file": repo.goldens / "deposit.yaml", "tree": repo.root / "goldens"}[target]
    report = lint_paths([path], repo.root)
    assert report.errors == []
    assert report.sets == 1


# ---------------------------------------------------------------- each rejection names path:line


@pytest.mark.parametrize(
    ("text", "needle", "fragment"),
    [
        (MINIMAL.replace("prompt: Hello?", "prompt: [Hello?"), None, "YAML syntax error"),
        (MINIMAL.replace("id: solo", "id: so lo"), "id: so lo", "does not match"),
        (MINIMAL + "    expect: {lable: 正面}\n", "lable", "lable"),
        ('set: other\nowner: "@team"\ncases: []\n', "cases: []", "empty set"),
        (MINIMAL + "    prompt: Twice?\n", "prompt: Twice?", "duplicate key `prompt`"),
        (MINIMAL + "    expect: {json_schema: schemas/nope.json}\n", "- id: solo", "not found"),
        (MINIMAL + "    expect: {json_schema: ../../../etc/passwd}\n", "- id: solo", "escapes the repository"),
        # relative to the golden file, so from goldens/legal/ this one stays inside the repository
        (MINIMAL + "    expect: {json_schema: ../../etc/passwd}\n", "- id: solo", "not found"),
        (MINIMAL + "    expect: {json_schema: /etc/passwd}\n", "- id: solo", "escapes the repository"),
        (MINIMAL + "    tools: [{type: function, function: {name: f, parameters: {type: 5}}}]\n", "- id: solo",
         "not a valid JSON Schema"),
        (MINIMAL.replace('owner: "@team"\n', ""), None, "owner"),
    ],
    ids=["syntax", "schema", "unknown-expect-key", "empty-set", "duplicate-yaml-key", "missing-json-schema",
         "json-schema-escapes", "json-schema-inside-root", "json-schema-absolute", "bad-tool-schema",
         "missing-required"],
)
def test_each_problem_is_reported_with_path_and_line(
    make_repo: Callable[..., Repo], text: str, needle: str | None, fragment: str
) -> None:
    _, report, path = _lint_one(make_repo, text)
    err = _only_error(report, path)
    assert err.line is not None
    if needle is not None:
        assert err.line == line_no(text, needle), err
    assert fragment in err.message, err
    assert str(err).startswith(f"{path}:{err.line}: ")


def test_syntax_error_line_is_where_the_parser_stopped(make_repo: Callable[..., Repo]) -> None:
    text = 'set: other\nowner: "@team"\ncases:\n  - id: solo\n  prompt: x\n'  # `prompt` dedented out of the case
    _, report, path = _lint_one(make_repo, text)
    assert _only_error(report, path).line == line_no(text, "  prompt: x")


def test_duplicate_case_ids_across_files_name_both_locations(make_repo: Callable[..., Repo]) -> None:
    text = MINIMAL.replace("id: solo", "id: weather-paris")
    repo, report, path = _lint_one(make_repo, text, name="z.yaml")
    err = _only_error(report, path)
    assert err.line == line_no(text, "id: weather-paris")
    first = f"{repo.goldens / 'deposit.yaml'}:{line_no(GOOD_SET, 'id: weather-paris')}"
    assert first in err.message and "duplicate case id" in err.message


def test_duplicate_case_ids_within_a_file_linted_alone(make_repo: Callable[..., Repo]) -> None:
    text = MINIMAL + "  - id: solo\n    prompt: again\n"
    repo = make_repo(sets={"a.yaml": text})
    report = lint_paths([repo.goldens / "a.yaml"], repo.root)
    err = _only_error(report, repo.goldens / "a.yaml")
    assert err.line == line_no(text, "id: solo", occurrence=2)
    assert f"{repo.goldens / 'a.yaml'}:{line_no(text, 'id: solo')}" in err.message


def test_invalid_referenced_schema_file_is_reported_at_that_file(make_repo: Callable[..., Repo]) -> None:
    repo = make_repo()
    schema = repo.write("goldens/legal/schemas/summary.json", '{"type": "object", "required": 5}')
    report = lint_paths([repo.goldens], repo.root)
    assert _only_error(report, schema).message.startswith("not a valid JSON Schema (referenced by q3-summary)")
    schema.write_text("{not json")
    assert "not a valid JSON Schema" in _only_error(lint_paths([repo.goldens], repo.root), schema).message


def test_unusable_json_schema_paths_are_errors_not_crashes(make_repo: Callable[..., Repo]) -> None:
    text = MINIMAL + '    expect: {json_schema: "a\\0b"}\n  - id: long\n    prompt: x\n    expect: {json_schema: ' + (
        "x" * 300) + "}\n"
    _, report, path = _lint_one(make_repo, text)
    errors = [e for e in report.errors if e.path == str(path)]
    assert [e.line for e in errors] == [line_no(text, "- id: solo"), line_no(text, "- id: long")]


def test_lint_collects_every_problem_in_one_pass(make_repo: Callable[..., Repo]) -> None:
    broken = {
        "a.yaml": MINIMAL.replace("prompt: Hello?", "prompt: [Hello?"),
        "b.yaml": MINIMAL.replace("id: solo", "id: b1") + "    expect: {lable: x}\n  - id: b2\n    promt: y\n",
        "c.yaml": 'set: c\nowner: "@t"\ncases: []\n',
        "z.yaml": MINIMAL.replace("id: solo", "id: deposit-20pct"),  # sorts after deposit.yaml
    }
    repo = make_repo(sets={"deposit.yaml": GOOD_SET, **broken})
    report = lint_paths([repo.root / "goldens"], repo.root)
    by_file = {Path(e.path).name for e in report.errors}
    assert by_file == set(broken)
    assert len([e for e in report.errors if e.path.endswith("b.yaml")]) >= 2
    assert all(e.line for e in report.errors)
    assert report.sets == 2  # deposit.yaml and z.yaml are schema-valid
    assert report.summary().endswith(f"{len(report.errors)} errors")


# ---------------------------------------------------------------- folders, suites, glossaries, recordings


def test_empty_golden_folder_and_missing_paths(make_repo: Callable[..., Repo]) -> None:
    repo = make_repo()
    (repo.root / "goldens" / "empty").mkdir()
    report = lint_paths([repo.root / "goldens", repo.root / "nope"], repo.root)
    assert {Path(e.path).name: e.message for e in report.errors} == {
        "empty": "empty golden folder: no *.yaml sets", "nope": "no such file or folder"}


@pytest.mark.parametrize(
    ("edit", "fragment"),
    [
        (("goldens: goldens/legal", "goldens: ../../outside"), "escapes"),
        (("goldens: goldens/legal", "goldens: goldens/missing"), "not found"),
        (("goldens: goldens/legal", "goldens: goldens/legal\nglossary: goldens/legal/glossary.yaml"), "not found"),
        (("system: legal", "system: Legal Team"), "does not match"),
        (("gates:", "gatez:"), "gatez"),
    ],
)
def test_suite_file_problems(make_repo: Callable[..., Repo], edit: tuple[str, str], fragment: str) -> None:
    text = SUITE_YAML.replace(*edit)
    repo = make_repo(suite=text)
    report = lint_paths([repo.root / "suites"], repo.root)
    err = _only_error(report, repo.suite_dir / "suite.yaml")
    assert fragment in err.message
    key = edit[1].split("\n")[-1].split(":")[0]
    assert err.line == line_no(text, key + ":")


def test_suite_folders_are_not_golden_systems(repo: Repo) -> None:
    report = lint_paths([repo.root / "suites"], repo.root)
    assert report.errors == [] and report.sets == 0


def test_glossary_is_read_but_not_counted_as_a_set(make_repo: Callable[..., Repo]) -> None:
    repo = make_repo(sets={"deposit.yaml": GOOD_SET, "glossary.yaml": "a: 1\na: 2\n"})
    report = lint_paths([repo.goldens], repo.root)
    assert report.sets == 1
    assert {Path(e.path).name for e in report.errors} == {"glossary.yaml"}
    assert [e.line for e in report.errors if "duplicate key `a`" in e.message] == [2]


def _record(repo: Repo, cases: list) -> Path:  # type: ignore[type-arg]
    path = repo.goldens / "recordings" / "old.jsonl"
    entries = [entry(new_response("old", c), c, "old-model") for c in cases]
    write_recordings(path, {"endpoint": "old"}, entries, Redactor())
    return path


def test_stale_and_orphaned_recordings_are_warnings(make_repo: Callable[..., Repo]) -> None:
    repo = make_repo()
    cases = list(load_set(repo.goldens / "deposit.yaml").cases)
    rec = _record(repo, cases)
    assert lint_paths([repo.goldens], repo.root).warnings == []
    # change one prompt and delete another case: one stale, one orphan
    changed = GOOD_SET.replace("Summarise Q3.", "Summarise Q4.")
    changed = changed[: changed.index("  - id: weather-paris")] + changed[changed.index("  - id: q3-summary"):]
    (repo.goldens / "deposit.yaml").write_text(changed, encoding="utf-8")
    report = lint_paths([repo.goldens], repo.root)
    assert report.errors == []
    (warning,) = report.warnings
    assert warning.path == str(rec)
    assert "q3-summary" in warning.message and "weather-paris (orphan" in warning.message
    assert report.summary().endswith(", 1 warnings")


def test_corrupt_recordings_are_errors(make_repo: Callable[..., Repo]) -> None:
    repo = make_repo()
    rec = _record(repo, list(load_set(repo.goldens / "deposit.yaml").cases))
    with rec.open("a", encoding="utf-8") as fh:
        fh.write('{"case_id": "x"}\n')
    err = _only_error(lint_paths([repo.goldens], repo.root), rec)
    assert f":{len(rec.read_text().splitlines())}:" in err.message


# ---------------------------------------------------------------- malformed documents never crash lint


@pytest.fixture(scope="module")
def fuzz_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("lintfuzz")
    (root / "pyproject.toml").write_text("")
    (root / "goldens" / "fuzz" / "schemas").mkdir(parents=True)
    (root / "goldens" / "fuzz" / "schemas" / "summary.json").write_text(json.dumps({"type": "object"}))
    return root


def _lint_text(root: Path, text: str) -> tuple[Path, LintReport]:
    path = root / "goldens" / "fuzz" / "m.yaml"
    path.write_text(text, encoding="utf-8")
    return path, lint_paths([path.parent], root)


def _assert_well_formed(path: Path, text: str, report: LintReport) -> None:
    n_lines = max(1, len(text.splitlines()))
    for err in report.errors:
        assert isinstance(err, GoldenError) and err.path
        if err.path != str(path):
            continue
        if "YAML" in err.message:  # the file does not parse: the parser may stop one past the last line
            assert err.line is None or 1 <= err.line <= n_lines + 1, (str(err), text)
        else:
            assert err.line is not None and 1 <= err.line <= n_lines, (str(err), text)


@settings(max_examples=40, deadline=None)
@given(text=mutated_golden())
def test_mutated_documents_lint_without_crashing_and_agree_with_the_loader(fuzz_repo: Path, text: str) -> None:
    path, report = _lint_text(fuzz_repo, text)
    _assert_well_formed(path, text, report)
    try:
        load_set(path)
    except GoldenError:
        assert report.errors, "the loader refused a file that lint passed"
    else:
        # lint checks more than the loader (referenced files, tool schemas) but never less
        assert all("json_schema" in e.message or "tool" in e.message for e in report.errors), report.errors


@settings(max_examples=60, deadline=None)
@given(st.text(st.sampled_from(list("ab :-\n[]{}#&*!|'\"?\t\x07定")), max_size=80))
def test_random_text_lints_without_crashing(fuzz_repo: Path, text: str) -> None:
    path, report = _lint_text(fuzz_repo, text)
    _assert_well_formed(path, text, report)
    assert report.errors or report.sets == 1


def test_require_gold_flags_cases_without_expectations(tmp_path: Path) -> None:
    from conformance.goldens.lint import lint_paths

    (tmp_path / "pyproject.toml").write_text("")
    g = tmp_path / "goldens" / "sent"
    g.mkdir(parents=True)
    (g / "set.yaml").write_text("set: s\nowner: '@t'\ncases:\n  - {id: a, prompt: x, expect: {label: 正面}}\n"
                                "  - {id: b, prompt: y}\n")
    s = tmp_path / "suites" / "sent"
    s.mkdir(parents=True)
    (s / "suite.yaml").write_text("system: sent\nlabels: {values: [正面, 负面]}\nrequire_gold: true\n")
    report = lint_paths([tmp_path / "suites"], tmp_path)
    assert [(e.line, e.message) for e in report.errors] == [
        (5, "b: no `expect` — suite 'sent' requires gold expectations (require_gold)")]
    (s / "suite.yaml").write_text("system: sent\nlabels: {values: [正面, 负面]}\n")
    assert lint_paths([tmp_path / "suites"], tmp_path).errors == []
