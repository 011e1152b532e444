"""Symlinks out of the repository: a golden file or folder that a link leads outside is refused with its path,
unread, by lint and by collection; a link that stays inside the repository is followed as before."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from conformance.cli import main
from conformance.errors import GoldenError
from conformance.goldens.loader import load_system
from conformance.goldens.yamlsource import link_outside, read_yaml
from conformance.suite import load_suite
from tests.conftest import GOOD_SET, Repo, write_repo

#: What lint used to quote back from the linked file (in a schema error about the document).
SECRET = "root:x:0:0:SECRET-LINE-FROM-OUTSIDE"
OTHER_SET = 'set: other\nowner: "@team"\ncases:\n  - id: solo\n    prompt: Hello?\n'


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    """A repository under tmp_path/repo; tmp_path/outside holds a "system file" and a golden-looking folder."""
    outside = tmp_path / "outside"
    (outside / "folder").mkdir(parents=True)
    (outside / "passwd").write_text(SECRET + "\n", encoding="utf-8")
    (outside / "folder" / "cases.yaml").write_text(SECRET + "\n", encoding="utf-8")
    return write_repo(tmp_path / "repo")


def _lint(repo: Repo, capsys: pytest.CaptureFixture[str], *paths: str) -> tuple[int, str]:
    code = main(["--root", str(repo.root), "lint", *paths])
    out = capsys.readouterr()
    return code, out.out + out.err


def test_golden_file_linked_out_of_the_repo_is_refused_unread(repo: Repo, capsys: pytest.CaptureFixture[str]) -> None:
    link = repo.goldens / "evil.yaml"
    link.symlink_to(repo.root.parent / "outside" / "passwd")
    for args in ((), (str(repo.root / "goldens"),), (str(link),)):  # default paths, the folder, the file itself
        code, out = _lint(repo, capsys, *args)
        assert code == 1
        assert "evil.yaml: a symlink to" in out and "outside the repository: refused" in out
        assert SECRET not in out


def test_golden_folder_linked_out_of_the_repo_is_refused(repo: Repo, capsys: pytest.CaptureFixture[str]) -> None:
    link = repo.root / "goldens" / "evil"
    link.symlink_to(repo.root.parent / "outside" / "folder", target_is_directory=True)
    for args in ((), (str(link),)):
        code, out = _lint(repo, capsys, *args)
        assert code == 1 and SECRET not in out
        assert f"{os.path.relpath(link)}: folder is a symlink to" in out
        assert "empty golden folder" not in out


def test_collection_refuses_a_golden_file_linked_out(repo: Repo) -> None:
    (repo.goldens / "evil.yaml").symlink_to(repo.root.parent / "outside" / "passwd")
    with pytest.raises(GoldenError, match="outside the repository") as info:
        load_suite(repo.suite_dir, repo.root)
    assert info.value.path == str(repo.goldens / "evil.yaml") and SECRET not in str(info.value)


def test_collection_refuses_a_system_folder_linked_out(repo: Repo) -> None:
    evil = repo.root / "goldens" / "evil"
    evil.symlink_to(repo.root.parent / "outside" / "folder", target_is_directory=True)
    with pytest.raises(GoldenError, match="golden folder is a symlink") as info:
        load_system(evil, repo.root)
    assert info.value.path == str(evil)
    # through suite.yaml, `goldens:` pointing at it was already refused (paths are resolved inside the root)
    (repo.suite_dir / "suite.yaml").write_text("system: legal\ngoldens: goldens/evil\n", encoding="utf-8")
    with pytest.raises(GoldenError, match="escapes the repository"):
        load_suite(repo.suite_dir, repo.root).sets  # noqa: B018


def test_links_inside_the_repository_are_followed(repo: Repo, capsys: pytest.CaptureFixture[str]) -> None:
    shared = repo.write("shared/other.yaml", OTHER_SET)
    (repo.goldens / "other.yaml").symlink_to(os.path.relpath(shared, repo.goldens))
    suite = load_suite(repo.suite_dir, repo.root)
    assert "solo" in {c.id for c in suite.cases}
    code, out = _lint(repo, capsys)
    assert code == 0, out


def test_a_file_named_outside_the_repository_is_not_a_link_escape(repo: Repo, tmp_path: Path) -> None:
    """Only links are refused: a file spelled outside the root (named on the command line) is read as before."""
    plain = tmp_path / "elsewhere.yaml"
    plain.write_text(GOOD_SET, encoding="utf-8")
    assert link_outside(plain, repo.root) is None
    assert read_yaml(plain, repo.root).data["set"]
    assert link_outside(repo.root / "goldens", repo.root) is None
