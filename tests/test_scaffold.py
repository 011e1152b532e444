from __future__ import annotations

from pathlib import Path

import pytest

from conformance.cli import main
from conformance.errors import ConfigError
from conformance.goldens.lint import lint_paths
from conformance.goldens.loader import load_system
from conformance.goldens.pii import lint_pii
from conformance.scaffold import (
    BEGIN,
    CODEOWNERS_FILE,
    END,
    LEGACY_HEADER,
    codeowners,
    codeowners_for,
    codeowners_stale,
    merge_codeowners,
    new_system,
    recorded_default_owner,
    split_codeowners,
    write_codeowners,
)
from conformance.suite import load_suite
from tests.conftest import ENDPOINTS_YAML, GOOD_SET, PYPROJECT, write_repo


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "pyproject.toml").write_text(PYPROJECT)
    (tmp_path / "endpoints.yaml").write_text(ENDPOINTS_YAML)
    return tmp_path


def test_new_system_creates_files_that_lint_and_load(root: Path) -> None:
    created = new_system(root, "ticket_routing", "@crm-platform")
    rel = sorted(str(p.relative_to(root)) for p in created)
    assert rel == ["goldens/ticket_routing/ticket_routing.yaml", "suites/ticket_routing/suite.yaml"]
    report = lint_paths([root / "goldens", root / "suites"], root)
    assert report.errors == [] and report.warnings == []
    assert (report.sets, report.cases) == (1, 2)
    golden = (root / "goldens/ticket_routing/ticket_routing.yaml").read_text(encoding="utf-8")
    assert golden.splitlines()[0] == ("# yaml-language-server: $schema=../../conformance/goldens/schema/"
                                      "golden-set.schema.json")
    schema = (root / "goldens/ticket_routing" / golden.splitlines()[0].split("=", 1)[1])
    assert schema.resolve() == (root / "conformance/goldens/schema/golden-set.schema.json").resolve()
    suite = load_suite(root / "suites" / "ticket_routing", root)
    assert suite.system == "ticket_routing" and len(suite.cases) == 2
    assert {s.owner for s in suite.sets} == {"@crm-platform"}
    assert all(lint_pii(s) == [] for s in load_system(root / "goldens" / "ticket_routing"))


def test_a_suite_needs_no_python(root: Path) -> None:
    created = new_system(root, "kb_qa", "@kb-team @acme/search")
    assert sorted(p.relative_to(root).as_posix() for p in created) == ["goldens/kb_qa/kb_qa.yaml",
                                                                        "suites/kb_qa/suite.yaml"]


def test_the_generated_suite_collects_under_the_plugin(pytester: pytest.Pytester) -> None:
    (pytester.path / "pyproject.toml").write_text('[tool.pytest.ini_options]\naddopts = "-p no:locust"\n')
    (pytester.path / "endpoints.yaml").write_text(ENDPOINTS_YAML)
    new_system(pytester.path, "sentiment", "@cx-analytics")
    result = pytester.runpytest_subprocess("suites/sentiment", "--no-preflight", "--no-local-start",
                                           "--collect-only", "-q")
    result.stdout.fnmatch_lines(["*answered?example-zh?*", "*phrases?example-zh?*", "*answered?example-en?*",
                                 "*gates*", "*5 tests collected*"])


def test_refuses_to_overwrite_anything(root: Path) -> None:
    new_system(root, "legal", "@legal-ai")
    before = {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}
    with pytest.raises(ConfigError, match="refusing to overwrite"):
        new_system(root, "legal", "@someone-else")
    assert {p: p.read_bytes() for p in root.rglob("*") if p.is_file()} == before
    (root / "goldens" / "other").mkdir(parents=True)  # an existing golden folder counts, even without files
    with pytest.raises(ConfigError, match="goldens/other"):
        new_system(root, "other", "@x")
    assert not (root / "suites" / "other").exists()


@pytest.mark.parametrize("name", ["", "Legal", "1legal", "legal-ai", "le gal", "../etc", "schemas", "recordings",
                                  "a" * 49, "légal"])
def test_rejects_bad_names(root: Path, name: str) -> None:
    with pytest.raises(ConfigError, match="invalid system name"):
        new_system(root, name, "@team")
    assert not (root / "goldens").exists() and not (root / "suites").exists()


@pytest.mark.parametrize("owner", ["", "legal-ai", "@", "@team/", "@-x", "@a b/c/d"])
def test_rejects_bad_owners(root: Path, owner: str) -> None:
    with pytest.raises(ConfigError, match="invalid owner"):
        new_system(root, "legal", owner)


def _rules(text: str) -> list[str]:
    return [ln for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]


def test_codeowners_mirrors_set_owners(tmp_path: Path) -> None:
    repo = write_repo(tmp_path, sets={"deposit.yaml": GOOD_SET})
    new_system(repo.root, "kb_qa", "@kb-team")
    repo.write("goldens/kb_qa/extra.yaml", GOOD_SET.replace('owner: "@legal-ai"', 'owner: "@kb-team, @acme/search"')
               .replace("set: deposit-clauses", "set: extra").replace("deposit-20pct", "x1")
               .replace("weather-paris", "x2").replace("q3-summary", "x3"))
    repo.write("goldens/broken/bad.yaml", "set: [unclosed\n")
    text = codeowners(repo.root)
    assert _rules(text) == [
        "/goldens/kb_qa/ @kb-team @acme/search",  # extra.yaml sorts first: its order wins
        "/suites/kb_qa/ @kb-team @acme/search",
        "/goldens/kb_qa/kb_qa.yaml @kb-team",
        "/goldens/legal/ @legal-ai",
        "/suites/legal/ @legal-ai",
    ]
    assert text.startswith(f"{BEGIN}\n# Generated by `conformance codeowners") and text.endswith(f"{END}\n")


def test_the_default_owner_owns_the_harness_workflows_and_endpoints(tmp_path: Path) -> None:
    repo = write_repo(tmp_path)
    for path in (".github/workflows/pr.yml", "conformance/__init__.py", "tests/test_x.py", "scripts/test.sh"):
        repo.write(path, "")
    text = codeowners(repo.root, default_owner="@platform @acme/sre")
    assert text.splitlines()[0] == f"{BEGIN} --default-owner @platform @acme/sre"
    owned = {ln.split()[0]: ln.split()[1:] for ln in _rules(text)}
    for path in ("/.github/", "/endpoints.yaml", "/conformance/", "/tests/", "/scripts/", "/pyproject.toml"):
        assert owned[path] == ["@platform", "@acme/sre"], path
    assert "/bench/" not in owned and "/docs/" not in owned  # only what the repository has
    assert owned["/goldens/legal/"] == ["@legal-ai"]  # after the harness lines: teams own their goldens
    with pytest.raises(ConfigError, match="invalid owner"):
        codeowners(repo.root, default_owner="platform")


def test_codeowners_check_and_write(root: Path) -> None:
    new_system(root, "legal", "@legal-ai")
    assert codeowners_stale(root)  # no file yet
    path = write_codeowners(root)
    assert path == root / CODEOWNERS_FILE and not codeowners_stale(root)
    new_system(root, "kb_qa", "@kb-team")
    assert codeowners_stale(root)  # a new system's owners are not in the committed file


def test_hand_written_lines_are_kept_and_not_checked(root: Path) -> None:
    new_system(root, "legal", "@legal-ai")
    path = write_codeowners(root, default_owner="@platform")
    block = path.read_text(encoding="utf-8")
    above = "# catch-all, overridden by the block\n* @everyone\n\n"
    below = "\n/docs/ @docs-team\n/goldens/legal/x.yaml @lit\n"
    path.write_text(above + block + below, encoding="utf-8")
    assert not codeowners_stale(root)  # hand edits outside the block are not a difference
    new_system(root, "kb_qa", "@kb-team")
    assert codeowners_stale(root)
    write_codeowners(root)  # no --default-owner: the one the block records is kept
    text = path.read_text(encoding="utf-8")
    before, new_block, after = split_codeowners(text)
    assert (before, after) == (above, below)  # every hand-written line, where it was
    assert "/goldens/kb_qa/ @kb-team" in new_block and "/endpoints.yaml @platform" in " ".join(new_block.split())
    assert not codeowners_stale(root)


def test_edits_inside_the_block_are_regenerated(root: Path) -> None:
    new_system(root, "legal", "@legal-ai")
    path = write_codeowners(root)
    path.write_text(path.read_text(encoding="utf-8").replace("/suites/legal/ @legal-ai", "/suites/legal/ @me"),
                    encoding="utf-8")
    assert codeowners_stale(root)
    write_codeowners(root)
    assert "/suites/legal/ @legal-ai" in path.read_text(encoding="utf-8") and not codeowners_stale(root)


def test_the_default_owner_is_remembered_for_check(root: Path) -> None:
    new_system(root, "legal", "@legal-ai")
    write_codeowners(root, default_owner="@platform")
    assert recorded_default_owner((root / CODEOWNERS_FILE).read_text(encoding="utf-8")) == "@platform"
    assert not codeowners_stale(root)  # CI runs `--check` without the flag
    assert codeowners_stale(root, default_owner="@other-team")  # a new default owner is a change


def test_a_file_from_before_the_block_is_taken_over(root: Path) -> None:
    new_system(root, "legal", "@legal-ai")
    old = (LEGACY_HEADER + "* @platform\n\n/goldens/legal/ @legal-ai\n/suites/legal/ @legal-ai\n"
           "/goldens/legal/legal.yaml @contracts  # added by hand\n")
    path = root / CODEOWNERS_FILE
    path.parent.mkdir(parents=True)
    path.write_text(old, encoding="utf-8")
    assert codeowners_stale(root)
    write_codeowners(root, default_owner="@platform")
    before, block, after = split_codeowners(path.read_text(encoding="utf-8"))
    assert before == "" and block is not None and "/endpoints.yaml" in block
    assert after == "\n/goldens/legal/legal.yaml @contracts  # added by hand\n"  # the hand line, after the block
    assert merge_codeowners("/docs/ @docs\n", block) == block + "\n/docs/ @docs\n"  # a hand-made file: kept


def test_the_cli_writes_and_checks(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    new_system(root, "legal", "@legal-ai")
    assert main(["--root", str(root), "codeowners", "--write"]) == 0
    assert "have no owner: add --default-owner" in capsys.readouterr().out
    assert main(["--root", str(root), "codeowners", "--write", "--default-owner", "@platform"]) == 0
    assert main(["--root", str(root), "codeowners", "--check"]) == 0
    assert "CODEOWNERS is current" in capsys.readouterr().out
    with open(root / CODEOWNERS_FILE, "a", encoding="utf-8") as fh:
        fh.write("/docs/ @docs-team\n")
    assert main(["--root", str(root), "codeowners", "--check"]) == 0
    assert main(["--root", str(root), "codeowners"]) == 0
    assert capsys.readouterr().out.count("--default-owner @platform") == 1  # prints the block it would write


def test_codeowners_of_this_repository_covers_every_system_and_is_current() -> None:
    root = Path(__file__).resolve().parents[1]
    text = codeowners_for(root)
    for system in sorted(d.name for d in (root / "goldens").iterdir() if d.is_dir() and d.name != "schema"):
        assert f"/goldens/{system}/ @" in text
    assert "/goldens/legal/ @legal-ai" in text
    assert "/.github/" in text and "/endpoints.yaml" in text and "/conformance/" in text
    assert not codeowners_stale(root), "run `conformance codeowners --write` and commit .github/CODEOWNERS"
