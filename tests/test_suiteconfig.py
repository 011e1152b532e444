"""suite.yaml is validated before any request: every key typed (suite.schema.json, generated from the registry)
and the cross-field rules of conformance.suiteconfig — each error with path:line, by lint and at session start."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from conformance.errors import GoldenError
from conformance.goldens.lint import lint_paths
from conformance.suite import load_suite
from conformance.suiteschema import SCHEMA_PATH, render
from tests.conftest import line_no

LABELS = """
set: reviews
owner: "@cx"
cases:
  - {id: r1, prompt: 物流太慢了。, expect: {label: 负面}}
  - {id: r2, prompt: 很满意。, expect: {label: 正面}}
"""


def _repo(tmp_path: Path, suite_yaml: str, golden: str = LABELS) -> Path:
    (tmp_path / "pyproject.toml").write_text("")
    (tmp_path / "goldens" / "cx").mkdir(parents=True)
    (tmp_path / "goldens" / "cx" / "set.yaml").write_text(textwrap.dedent(golden))
    (tmp_path / "suites" / "cx").mkdir(parents=True)
    (tmp_path / "suites" / "cx" / "suite.yaml").write_text(textwrap.dedent(suite_yaml))
    return tmp_path


def _errors(root: Path) -> list[tuple[str, int | None, str]]:
    report = lint_paths([root / "suites"], root)
    return [(Path(e.path).name, e.line, e.message) for e in report.errors]


# Finding 4 of the verdict-trust issue: each of these passed lint and silently disabled (or broke) a gate.
@pytest.mark.parametrize(("text", "needle", "message"), [
    ("gates:\n  availability: {max_eror_rate: 0.0}\n", "max_eror_rate",
     "unknown key `max_eror_rate` (did you mean `max_error_rate`?)"),
    ("gates:\n  schema: {max_eror_rate: 0.0}\n", "max_eror_rate", "unknown key `max_eror_rate`"),
    ("gates:\n  tool_calls: {min_match_rat: 1.0}\n", "min_match_rat", "(did you mean `min_match_rate`?)"),
    ("gates:\n  terms: {max_drift: 0.001}\n", "max_drift", "(did you mean `max_drift_rate`?)"),
    ("gates:\n  terms: {max_drift_rate: .nan}\n", "max_drift_rate", "not a finite number"),
    ("gates:\n  terms: {max_drift_rate: -0.1}\n", "max_drift_rate", "less than the minimum of 0"),
    ("gates:\n  terms: {max_drift_rate: lots}\n", "max_drift_rate", "is not of type 'number'"),
    ("noise_floor: {repeats: 100000}\n", "repeats", "greater than the maximum of 10"),
    ("load:\n  stages: [{users: 10000, duration_s: 3600}]\n", "stages", "greater than the maximum of 1000"),
    ("gates:\n  latency: {p99_msec: 100}\n", "p99_msec", "unknown key `p99_msec`"),
])
def test_typed_keys_are_refused_with_path_and_line(tmp_path: Path, text: str, needle: str, message: str) -> None:
    suite = "system: cx\nlabels: {values: [正面, 负面]}\n" + text
    root = _repo(tmp_path, suite)
    errors = _errors(root)
    assert errors and errors[0][0] == "suite.yaml"
    assert errors[0][1] == line_no(suite, needle) and message in errors[0][2], errors


@pytest.mark.parametrize(("suite", "where", "golden", "message"), [
    ("system: cx\ngates:\n  classification: {min_agreement: 0.9}\n", ("suite.yaml", "classification"), LABELS,
     "gates.classification needs a `labels: {values: [...]}` set"),
    ("system: cx\n", ("set.yaml", "r1"), LABELS, "r1: expect.label '负面', but suite 'cx' declares no `labels` set"),
    # a JSON-schema gate in a suite of label cases used to judge every label answer as broken JSON
    ("system: cx\nlabels: {values: [正面, 负面]}\ngates:\n  schema: {max_invalid_rate: 0.0}\n",
     ("suite.yaml", "schema"), LABELS, "gates.schema is declared, but no case of suite 'cx' can be judged by it"),
    ("system: cx\nlabels: {values: [正面, 负面]}\ngates:\n  classification:\n"
     "    critical_flips: [{from: 违规, to: 合规}]\n", ("suite.yaml", "违规"), LABELS,
     "critical_flips[0].from: '违规' is not one of the labels"),
    ("system: cx\nlabels: {values: [正面, 负面]}\nconsumer_parser: not-registered\n",
     ("suite.yaml", "consumer_parser"), LABELS, "is not registered in the entry point group"),
    ("system: cx\nlabels: {values: [正面, 负面]}\ngates:\n  latency: {min_slo_attainment: 0.9}\n",
     ("suite.yaml", "min_slo_attainment"), LABELS, "needs `slo:"),
])
def test_cross_field_rules(tmp_path: Path, suite: str, where: tuple[str, str], golden: str, message: str) -> None:
    root = _repo(tmp_path, suite, golden)
    errors = _errors(root)
    source = suite if where[0] == "suite.yaml" else textwrap.dedent(golden)
    assert (errors[0][0], errors[0][1]) == (where[0], line_no(source, where[1])), errors
    assert message in errors[0][2]
    with pytest.raises(GoldenError, match=r"expect\.label|gates|critical|consumer|slo"):  # and at session start
        load_suite(root / "suites" / "cx", root)


def test_a_mixed_suite_is_valid_and_allow_large_is_a_warning(tmp_path: Path) -> None:
    golden = LABELS + "  - {id: j1, prompt: json please, params: {response_format: {type: json_object}}}\n"
    root = _repo(tmp_path, "system: cx\nlabels: {values: [正面, 负面]}\ngates:\n  schema: {}\n"
                           "noise_floor: {repeats: 20, allow_large: true}\n", golden)
    report = lint_paths([root / "suites"], root)
    assert report.errors == []
    assert [w.message for w in report.warnings] == [
        "noise_floor.allow_large: allow_large lifts the ceilings on this section (requests cost real time and "
        "memory)"]


def test_the_committed_suite_schema_is_generated_from_the_registry() -> None:
    assert SCHEMA_PATH.read_text(encoding="utf-8") == render(), "run `python -m conformance.suiteschema`"
    check = subprocess.run([sys.executable, "-m", "conformance.suiteschema", "--check"], capture_output=True,
                           text=True, check=False)
    assert check.returncode == 0, check.stderr


def test_every_shipped_suite_validates() -> None:
    root = Path(__file__).resolve().parents[1]
    report = lint_paths([root / "suites", root / "goldens"], root)
    assert report.errors == [], [str(e) for e in report.errors]
