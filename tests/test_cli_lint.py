"""``conformance lint``: compiler-style ``path:line: message`` lines, a one-line summary, exit code 1 on errors."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest

from conformance.cli import main
from tests.conftest import GOOD_SET, Repo, line_no

MINIMAL = 'set: other\nowner: "@team"\ncases:\n  - id: solo\n    prompt: Hello?\n'
SUMMARY = re.compile(r"^(\d+) sets, (\d+) cases, (\d+) errors(, \d+ warnings)?$")


def _lint(repo: Repo, capsys: pytest.CaptureFixture[str], *paths: str) -> tuple[int, list[str]]:
    code = main(["--root", str(repo.root), "lint", *paths])
    out = capsys.readouterr()
    assert out.err == ""
    return code, out.out.splitlines()


@pytest.fixture
def in_repo(make_repo: Callable[..., Repo], monkeypatch: pytest.MonkeyPatch) -> Callable[..., Repo]:
    """make_repo, then chdir into it (lint prints paths relative to the current folder)."""

    def make(**kwargs: object) -> Repo:
        repo = make_repo(**kwargs)
        monkeypatch.chdir(repo.root)
        return repo

    return make


def test_good_repository_exits_0_with_only_the_summary(in_repo: Callable[..., Repo],
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    repo = in_repo()
    code, lines = _lint(repo, capsys)  # default paths: goldens/ and suites/
    assert code == 0
    assert lines == [f"1 sets, {GOOD_SET.count('- id:')} cases, 0 errors"]


@pytest.mark.parametrize(
    ("text", "needle", "fragment"),
    [
        (MINIMAL.replace("prompt: Hello?", "prompt: [Hello?"), None, "YAML syntax error"),
        (MINIMAL.replace("owner: \"@team\"", "owner: 5"), "owner: 5", "owner"),
        (MINIMAL + "    expect: {lable: 正面}\n", "lable", "lable"),
        (MINIMAL + "    expect: {json_schema: schemas/missing.json}\n", "- id: solo", "not found"),
        (MINIMAL + "    expect: {json_schema: ../../../etc/passwd}\n", "- id: solo", "escapes the repository"),
        ('set: other\nowner: "@team"\ncases: []\n', "cases: []", "empty set"),
        (MINIMAL + "    prompt: Twice?\n", "prompt: Twice?", "duplicate key"),
    ],
    ids=["syntax", "schema", "unknown-expect-key", "missing-json-schema", "escaping-json-schema", "empty-set",
         "duplicate-yaml-key"],
)
def test_each_problem_exits_1_with_path_line_message(
    in_repo: Callable[..., Repo], capsys: pytest.CaptureFixture[str], text: str, needle: str | None, fragment: str
) -> None:
    repo = in_repo(sets={"deposit.yaml": GOOD_SET, "bad.yaml": text})
    code, lines = _lint(repo, capsys)
    assert code == 1
    *errors, summary = lines
    assert len(errors) == 1, lines
    match = re.fullmatch(r"goldens/legal/bad\.yaml:(\d+): (.+)", errors[0])
    assert match, errors[0]
    line = int(match.group(1))
    assert 1 <= line <= len(text.splitlines()) + 1
    if needle:
        assert line == line_no(text, needle)
    assert fragment in match.group(2)
    m = SUMMARY.fullmatch(summary)
    assert m and int(m.group(3)) == 1


def test_duplicate_case_ids_across_files_name_both_locations(
    in_repo: Callable[..., Repo], capsys: pytest.CaptureFixture[str]
) -> None:
    other = MINIMAL.replace("id: solo", "id: deposit-20pct")
    repo = in_repo(sets={"deposit.yaml": GOOD_SET, "more.yaml": other})
    code, lines = _lint(repo, capsys)
    assert code == 1
    (error, summary) = lines
    assert error.startswith(f"goldens/legal/more.yaml:{line_no(other, 'id: deposit-20pct')}: duplicate case id")
    assert f"deposit.yaml:{line_no(GOOD_SET, 'id: deposit-20pct')}" in error
    assert summary == f"2 sets, {GOOD_SET.count('- id:') + 1} cases, 1 errors"


def test_all_problems_are_listed_then_counted(in_repo: Callable[..., Repo], capsys: pytest.CaptureFixture[str]) -> None:
    repo = in_repo(
        sets={"a.yaml": MINIMAL.replace("prompt: Hello?", "prompt: [x"), "b.yaml": 'set: b\nowner: "@t"\ncases: []\n',
              "c.yaml": MINIMAL.replace("solo", "c1") + "    expect: {lable: x}\n"},
        suite="system: legal\ngoldens: ../outside\n",
    )
    code, lines = _lint(repo, capsys)
    *errors, summary = lines
    assert code == 1
    assert {e.split(":", 1)[0] for e in errors} == {
        "goldens/legal/a.yaml", "goldens/legal/b.yaml", "goldens/legal/c.yaml", "suites/legal/suite.yaml"}
    assert all(re.match(r"[^:]+:\d+: \S", e) for e in errors), errors
    assert SUMMARY.fullmatch(summary) and summary.endswith(f"{len(errors)} errors")


def test_explicit_paths_lint_only_those(in_repo: Callable[..., Repo], capsys: pytest.CaptureFixture[str]) -> None:
    repo = in_repo(sets={"deposit.yaml": GOOD_SET, "bad.yaml": 'set: b\nowner: "@t"\ncases: []\n'})
    assert _lint(repo, capsys, "goldens/legal/deposit.yaml")[0] == 0
    code, lines = _lint(repo, capsys, "goldens/legal/bad.yaml", "suites")
    assert code == 1 and lines[0].startswith("goldens/legal/bad.yaml:3: ")
    code, lines = _lint(repo, capsys, "goldens/nope")
    assert code == 1 and lines[0] == "goldens/nope: no such file or folder"


def test_warnings_do_not_fail_the_run(in_repo: Callable[..., Repo], capsys: pytest.CaptureFixture[str]) -> None:
    repo = in_repo()
    repo.write("goldens/legal/recordings/old.jsonl", '{"_meta": {"format": 1}}\n' + (
        '{"case_id": "gone", "fingerprint": "f", "prompt_fingerprint": "p", "params": {}, '
        '"recorded_at": "2026-11-23T12:00:00+00:00", "response": {}}\n'))
    code, lines = _lint(repo, capsys)
    assert code == 0
    assert lines[0].startswith("goldens/legal/recordings/old.jsonl: warning: stale recordings")
    assert "gone (orphan" in lines[0]
    assert lines[-1].endswith("0 errors, 1 warnings")


def test_paths_are_relative_to_the_current_folder(make_repo: Callable[..., Repo], capsys: pytest.CaptureFixture[str],
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    repo = make_repo(sets={"bad.yaml": 'set: b\nowner: "@t"\ncases: []\n'})
    monkeypatch.chdir(repo.goldens)
    code, lines = _lint(repo, capsys)
    assert code == 1 and lines[0].startswith("bad.yaml:3: ")
