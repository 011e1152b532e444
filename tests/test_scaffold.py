from __future__ import annotations

from pathlib import Path

import pytest

from conformance.errors import ConfigError
from conformance.goldens.lint import lint_paths
from conformance.goldens.loader import load_system
from conformance.goldens.pii import lint_pii
from conformance.scaffold import CODEOWNERS_FILE, codeowners, codeowners_stale, new_system, write_codeowners
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


def test_codeowners_mirrors_set_owners(tmp_path: Path) -> None:
    repo = write_repo(tmp_path, sets={"deposit.yaml": GOOD_SET})
    new_system(repo.root, "kb_qa", "@kb-team")
    repo.write("goldens/kb_qa/extra.yaml", GOOD_SET.replace('owner: "@legal-ai"', 'owner: "@kb-team, @acme/search"')
               .replace("set: deposit-clauses", "set: extra").replace("deposit-20pct", "x1")
               .replace("weather-paris", "x2").replace("q3-summary", "x3"))
    repo.write("goldens/broken/bad.yaml", "set: [unclosed\n")
    text = codeowners(repo.root, default_owner="@platform")
    lines = [ln for ln in text.splitlines() if ln and not ln.startswith("#")]
    assert lines == [
        "* @platform",
        "/goldens/kb_qa/ @kb-team @acme/search",  # extra.yaml sorts first: its order wins
        "/suites/kb_qa/ @kb-team @acme/search",
        "/goldens/kb_qa/kb_qa.yaml @kb-team",
        "/goldens/legal/ @legal-ai",
        "/suites/legal/ @legal-ai",
    ]
    assert text.startswith("# Generated by `conformance codeowners`")


def test_codeowners_of_this_repository_covers_every_system() -> None:
    root = Path(__file__).resolve().parents[1]
    text = codeowners(root)
    for system in sorted(d.name for d in (root / "goldens").iterdir() if d.is_dir() and d.name != "schema"):
        assert f"/goldens/{system}/ @" in text
    assert "/goldens/legal/ @legal-ai" in text


def test_codeowners_check_and_write(root: Path) -> None:
    new_system(root, "legal", "@legal-ai")
    assert codeowners_stale(root)  # no file yet
    path = write_codeowners(root)
    assert path == root / CODEOWNERS_FILE and not codeowners_stale(root)
    new_system(root, "kb_qa", "@kb-team")
    assert codeowners_stale(root)  # a new system's owners are not in the committed file
