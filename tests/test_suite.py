"""suite.yaml: loading a suite with its goldens, repository-root discovery, and paths that may not escape."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conformance.errors import GoldenError
from conformance.suite import SUITE_FILE, discover_suites, find_root, inside, load_suite
from tests.conftest import GOOD_SET, SUITE_YAML, Repo, line_no

# ---------------------------------------------------------------- inside(): the escape check


def test_inside_accepts_paths_within_the_root(tmp_path: Path) -> None:
    assert inside(tmp_path, "goldens/legal") == (tmp_path / "goldens" / "legal").resolve()
    assert inside(tmp_path, "goldens/../goldens/legal") == (tmp_path / "goldens" / "legal").resolve()
    assert inside(tmp_path, ".") == tmp_path.resolve()


@pytest.mark.parametrize("rel", ["../../etc/passwd", "..", "goldens/../../x", "/etc/passwd"])
def test_inside_refuses_escapes_and_absolute_paths(tmp_path: Path, rel: str) -> None:
    assert inside(tmp_path / "repo", rel) is None


def test_inside_follows_symlinks_out_of_the_root(tmp_path: Path) -> None:
    root, outside = tmp_path / "repo", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (root / "link").symlink_to(outside, target_is_directory=True)
    assert inside(root, "link/file.json") is None


segments = st.lists(st.sampled_from(["a", "repo", "..", "."]), max_size=8)


@settings(max_examples=100)
@given(segments)
def test_inside_is_lexical_containment_for_plain_paths(parts: list[str]) -> None:
    root = Path("/nonexistent-root/repo")  # nothing exists, so resolving is purely lexical
    rel = "/".join(parts) or "."
    normal = Path(os.path.normpath(root / rel))
    expected = normal if normal.is_relative_to(root) else None
    assert inside(root, rel) == expected


# ---------------------------------------------------------------- find_root


@pytest.mark.parametrize("marker", ["endpoints.yaml", "pyproject.toml", ".git"])
def test_find_root_walks_up_to_a_marker(tmp_path: Path, marker: str) -> None:
    root = tmp_path / "repo"
    deep = root / "suites" / "legal"
    deep.mkdir(parents=True)
    (root / marker).mkdir() if marker == ".git" else (root / marker).write_text("")
    assert find_root(deep) == root.resolve()
    assert find_root(root) == root.resolve()


def test_find_root_falls_back_to_the_start(tmp_path: Path) -> None:
    # tmp_path has no marker above it (pytest's temp root is outside any checkout)
    start = tmp_path / "a" / "b"
    start.mkdir(parents=True)
    if any((d / m).exists() for d in start.parents for m in ("endpoints.yaml", "pyproject.toml", ".git")):
        pytest.skip("a marker exists above the temporary folder")
    assert find_root(start) == start.resolve()


# ---------------------------------------------------------------- load_suite


def test_load_suite_reads_config_and_goldens(repo: Repo) -> None:
    suite = load_suite(repo.suite_dir, repo.root)
    assert suite.system == "legal"
    assert suite.dir == repo.suite_dir.resolve()
    assert suite.goldens_dir == repo.goldens.resolve()
    assert [c.id for c in suite.cases] == [line.split("id: ")[1] for line in GOOD_SET.splitlines() if "- id:" in line]
    assert suite.gates == {"terms": {"max_drift_rate": 0.001}}
    assert suite.recordings_path("old") == repo.goldens.resolve() / "recordings" / "old.jsonl"


def test_load_suite_finds_the_root_itself(repo: Repo) -> None:
    assert load_suite(repo.suite_dir).root == repo.root.resolve()


def test_goldens_default_to_goldens_slash_system(make_repo: Callable[..., Repo]) -> None:
    repo = make_repo(suite="system: legal\n")
    suite = load_suite(repo.suite_dir, repo.root)
    assert suite.goldens_dir == repo.goldens.resolve()
    assert suite.gates == {}


def test_goldens_escaping_the_root_is_refused(make_repo: Callable[..., Repo]) -> None:
    repo = make_repo(suite=SUITE_YAML.replace("goldens/legal", "../../../etc"))
    with pytest.raises(GoldenError, match="escapes the repository") as info:
        load_suite(repo.suite_dir, repo.root)
    assert info.value.path == str(repo.suite_dir / SUITE_FILE)


def test_missing_glossary_is_reported_at_its_line(make_repo: Callable[..., Repo]) -> None:
    text = SUITE_YAML + "glossary: goldens/legal/glossary.yaml\n"
    repo = make_repo(suite=text)
    with pytest.raises(GoldenError, match="glossary file not found") as info:
        load_suite(repo.suite_dir, repo.root)
    assert info.value.line == line_no(text, "glossary:")
    repo.write("goldens/legal/glossary.yaml", "terms: []\n")
    assert load_suite(repo.suite_dir, repo.root).config["glossary"] == "goldens/legal/glossary.yaml"


def test_glossary_escaping_the_root_is_refused(make_repo: Callable[..., Repo]) -> None:
    repo = make_repo(suite=SUITE_YAML + "glossary: ../../../etc/hosts\n")
    with pytest.raises(GoldenError, match="escapes"):
        load_suite(repo.suite_dir, repo.root)


@pytest.mark.parametrize(
    ("text", "needle", "fragment"),
    [
        (SUITE_YAML + "system: other\n", "system: other", "duplicate key `system`"),
        (SUITE_YAML.replace("gates:", "gatez:"), "gatez", "gatez"),
        (SUITE_YAML.replace("system: legal", "system: Legal!"), "system:", "does not match"),
        (SUITE_YAML.replace("gates:", "gates: [oops"), None, "YAML syntax error"),
    ],
)
def test_suite_file_errors_carry_path_and_line(
    make_repo: Callable[..., Repo], text: str, needle: str | None, fragment: str
) -> None:
    repo = make_repo(suite=text)
    with pytest.raises(GoldenError) as info:
        load_suite(repo.suite_dir, repo.root)
    assert info.value.path == str(repo.suite_dir / SUITE_FILE)
    assert info.value.line is not None
    if needle:
        assert info.value.line == line_no(text, needle)
    assert fragment in info.value.message


def test_golden_errors_surface_through_load_suite(make_repo: Callable[..., Repo]) -> None:
    repo = make_repo(sets={"a.yaml": GOOD_SET, "b.yaml": GOOD_SET.replace("deposit-clauses", "other")})
    with pytest.raises(GoldenError, match="duplicate case id"):
        load_suite(repo.suite_dir, repo.root)


def test_missing_suite_file(tmp_path: Path) -> None:
    with pytest.raises(GoldenError, match="file not found"):
        load_suite(tmp_path, tmp_path)


# ---------------------------------------------------------------- discover_suites


def test_discover_suites_from_folder_file_parent_and_ancestor(make_repo: Callable[..., Repo]) -> None:
    repo = make_repo()
    other = repo.write("suites/other/suite.yaml", "system: other\n").parent
    test_file = repo.write("suites/legal/test_legal.py", "")
    legal = repo.suite_dir.resolve()
    assert discover_suites([repo.suite_dir]) == [legal]
    assert discover_suites([test_file]) == [legal]
    assert discover_suites([repo.root / "suites"]) == sorted([legal, other.resolve()])
    assert discover_suites([repo.suite_dir / "sub" / "x.py"]) == [legal]  # below a suite folder
    assert discover_suites([repo.root / "goldens"]) == []
    assert discover_suites([test_file, repo.suite_dir]) == [legal]  # each once
