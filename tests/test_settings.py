"""settings: one frozen Settings from CLI > environment > ini > endpoints.yaml defaults."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conformance.errors import ConfigError
from conformance.settings import ENV, Settings, build_settings
from tests.conftest import ENDPOINTS_YAML, write_repo

NAMES = ["old", "new", "other"]  # the endpoints defined in ENDPOINTS_YAML; defaults: old / new


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    repo = write_repo(tmp_path_factory.mktemp("settings"))
    repo.write("alt/endpoints.yaml", ENDPOINTS_YAML.replace("baseline: old", "baseline: other"))
    return repo.root


# ---------------------------------------------------------------- precedence

source = st.sampled_from(NAMES) | st.none() | st.just("")  # "" counts as not given


@settings(max_examples=60, deadline=None)
@given(role=st.sampled_from(["baseline", "candidate"]), cli=source, env=source, ini=source)
def test_cli_beats_env_beats_ini_beats_endpoints_defaults(
    root: Path, role: str, cli: str | None, env: str | None, ini: str | None
) -> None:
    s, _ = build_settings(root, {role: cli}, {ENV[role]: env} if env is not None else {}, {role: ini})
    expected = next((v for v in (cli, env, ini) if v), {"baseline": "old", "candidate": "new"}[role])
    assert getattr(s, role) == expected


@settings(max_examples=40, deadline=None)
@given(cli=st.sampled_from(["cli", None]), env=st.sampled_from(["env", None]), ini=st.sampled_from(["ini", None]))
def test_reports_folder_precedence(root: Path, cli: str | None, env: str | None, ini: str | None) -> None:
    s, _ = build_settings(root, {"reports": cli}, {ENV["reports"]: env} if env else {}, {"reports": ini})
    assert s.reports_dir == root / (cli or env or ini or "reports")


def test_endpoints_file_precedence(root: Path) -> None:
    alt = "alt/endpoints.yaml"
    assert build_settings(root, {}, {}, {})[0].endpoints_file == root / "endpoints.yaml"
    for cli, env, ini in ((alt, None, None), (None, alt, None), (None, None, alt), (alt, "nope.yaml", "nope.yaml")):
        s, endpoints = build_settings(root, {"endpoints": cli}, {ENV["endpoints"]: env} if env else {},
                                      {"endpoints": ini})
        assert s.endpoints_file == root / alt
        assert s.baseline == endpoints.default_baseline == "other"  # read from the chosen file
    s, _ = build_settings(root, {"endpoints": "endpoints.yaml"}, {ENV["endpoints"]: alt}, {})
    assert s.baseline == "old"  # command line beats environment


def test_absolute_paths_are_kept(root: Path, tmp_path: Path) -> None:
    s, _ = build_settings(root, {"endpoints": str(root / "alt" / "endpoints.yaml"), "reports": str(tmp_path)}, {}, {})
    assert s.endpoints_file == root / "alt" / "endpoints.yaml"
    assert s.reports_dir == tmp_path


def test_flags(root: Path) -> None:
    plain, _ = build_settings(root, {}, {}, {})
    assert (plain.run_id, plain.resume, plain.preflight, plain.start_local) == (None, False, True, True)
    s, _ = build_settings(root, {"run_id": "r1", "no_preflight": True, "no_local_start": True}, {}, {})
    assert (s.run_id, s.resume, s.preflight, s.start_local) == ("r1", False, False, False)
    resumed, _ = build_settings(root, {"resume": "20261123-142501-a3f9", "run_id": "ignored"}, {}, {})
    assert (resumed.run_id, resumed.resume) == ("20261123-142501-a3f9", True)


def test_settings_are_frozen(root: Path) -> None:
    s, _ = build_settings(root, {}, {}, {})
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.baseline = "other"  # type: ignore[misc]
    t = s.with_baseline("other")
    assert (s.baseline, t.baseline, t.candidate) == ("old", "other", s.candidate)


# ---------------------------------------------------------------- errors


def test_unknown_endpoint_names_the_role_and_lists_known_ones(root: Path) -> None:
    with pytest.raises(ConfigError, match="unknown candidate endpoint 'nope'") as info:
        build_settings(root, {"candidate": "nope"}, {}, {})
    assert "new, old, other" in str(info.value)
    with pytest.raises(ConfigError, match="unknown baseline endpoint 'typo'"):
        build_settings(root, {}, {ENV["baseline"]: "typo"}, {})


def test_missing_endpoints_file_says_how_to_choose_one(root: Path) -> None:
    with pytest.raises(ConfigError, match="endpoints file not found") as info:
        build_settings(root, {"endpoints": "missing.yaml"}, {}, {})
    assert ENV["endpoints"] in str(info.value)


def test_no_default_and_no_choice(tmp_path: Path) -> None:
    repo = write_repo(tmp_path / "r", endpoints=ENDPOINTS_YAML.replace("  candidate: new\n", ""))
    with pytest.raises(ConfigError, match="no candidate endpoint: pass --candidate NAME"):
        build_settings(repo.root, {}, {}, {})
    assert build_settings(repo.root, {"candidate": "other"}, {}, {})[0].candidate == "other"


def test_bad_endpoints_file_is_a_config_error(tmp_path: Path) -> None:
    repo = write_repo(tmp_path / "r", endpoints="endpoints: [oops\n")
    with pytest.raises(ConfigError, match=r"endpoints\.yaml:2: YAML syntax error"):
        build_settings(repo.root, {}, {}, {})


# ---------------------------------------------------------------- recorded baselines


def test_recorded_baseline_replays_the_default_baseline(root: Path) -> None:
    s, endpoints = build_settings(root, {"baseline": "recorded"}, {}, {})
    assert s.baseline_recorded
    assert s.recorded_source(endpoints) == "old"


def test_recorded_baseline_with_a_name(root: Path) -> None:
    s, endpoints = build_settings(root, {"baseline": "recorded:other"}, {}, {})
    assert s.baseline_recorded and s.recorded_source(endpoints) == "other"
    with pytest.raises(ConfigError, match="unknown recorded baseline endpoint 'gone'"):
        build_settings(root, {"baseline": "recorded:gone"}, {}, {})


def test_recorded_needs_a_name_without_a_default_baseline(tmp_path: Path) -> None:
    repo = write_repo(tmp_path / "r", endpoints=ENDPOINTS_YAML.replace("  baseline: old\n", ""))
    with pytest.raises(ConfigError, match="recorded:NAME"):
        build_settings(repo.root, {"baseline": "recorded"}, {}, {})
    # endpoints.yaml may itself default the baseline to its recordings
    repo = write_repo(tmp_path / "r2", endpoints=ENDPOINTS_YAML.replace("baseline: old", "baseline: recorded"))
    with pytest.raises(ConfigError, match="recorded:NAME"):
        build_settings(repo.root, {}, {}, {})
    s, endpoints = build_settings(repo.root, {"baseline": "recorded:old"}, {}, {})
    assert s.recorded_source(endpoints) == "old"


@pytest.mark.parametrize("candidate", ["recorded", "recorded:old"])
def test_the_candidate_cannot_be_recorded(root: Path, candidate: str) -> None:
    with pytest.raises(ConfigError, match="the candidate must be a live endpoint"):
        build_settings(root, {"candidate": candidate}, {}, {})


def test_live_names_are_not_recorded(root: Path) -> None:
    s = Settings(root=root, endpoints_file=root / "endpoints.yaml", baseline="recordedish", candidate="new",
                 reports_dir=root / "reports")
    assert not s.baseline_recorded
