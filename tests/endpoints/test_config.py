"""endpoints.yaml: named endpoints, defaults, keys only by environment-variable name, errors as path:line."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from conformance.endpoints.config import RECORDED, EndpointConfig, EndpointsFile, load_endpoints
from conformance.errors import ConfigError
from tests.conftest import ENDPOINTS_YAML, line_no

REPO = Path(__file__).resolve().parents[2]


def _load(tmp_path: Path, text: str) -> EndpointsFile:
    path = tmp_path / "endpoints.yaml"
    path.write_text(text, encoding="utf-8")
    return load_endpoints(path)


def _error(tmp_path: Path, text: str) -> str:
    with pytest.raises(ConfigError) as info:
        _load(tmp_path, text)
    message = str(info.value)
    assert str(tmp_path / "endpoints.yaml") in message
    return message


def test_load_endpoints_and_defaults(tmp_path: Path) -> None:
    eps = _load(tmp_path, ENDPOINTS_YAML)
    raw = yaml.safe_load(ENDPOINTS_YAML)
    assert eps.path == tmp_path / "endpoints.yaml"
    assert sorted(eps.endpoints) == sorted(raw["endpoints"])
    assert (eps.default_baseline, eps.default_candidate) == (
        raw["defaults"]["baseline"], raw["defaults"]["candidate"])
    other = eps.get("other")
    assert other == EndpointConfig(name="other", **raw["endpoints"]["other"])
    assert other.timeout_s == raw["endpoints"]["other"]["timeout_s"]
    # unspecified fields keep the dataclass defaults
    assert (other.max_concurrency, other.stream, other.extra_body, other.local) == (4, True, {}, None)


def test_the_repository_endpoints_file_loads() -> None:
    eps = load_endpoints(REPO / "endpoints.yaml")
    assert eps.default_baseline in eps.endpoints and eps.default_candidate in eps.endpoints
    assert all(e.local for e in eps.endpoints.values() if e.is_loopback)


def test_defaults_are_optional(tmp_path: Path) -> None:
    eps = _load(tmp_path, "endpoints:\n  a: {base_url: 'http://h/v1', model: m}\n")
    assert (eps.default_baseline, eps.default_candidate) == (None, None)


def test_the_default_baseline_may_be_recorded(tmp_path: Path) -> None:
    eps = _load(tmp_path, ENDPOINTS_YAML.replace("baseline: old", f"baseline: {RECORDED}"))
    assert eps.default_baseline == RECORDED


def test_get_unknown_lists_known_names(tmp_path: Path) -> None:
    eps = _load(tmp_path, ENDPOINTS_YAML)
    with pytest.raises(ConfigError, match=r"unknown candidate endpoint 'nwe' .*known endpoints: new, old, other"):
        eps.get("nwe", "candidate")


# ---------------------------------------------------------------- errors name file and line


def test_duplicate_endpoint_name(tmp_path: Path) -> None:
    text = ENDPOINTS_YAML + "  old:\n    base_url: http://127.0.0.1:10/v1\n    model: again\n"
    message = _error(tmp_path, text)
    assert f"endpoints.yaml:{line_no(text, '  old:', occurrence=2)}: duplicate key `old`" in message


def test_default_pointing_nowhere(tmp_path: Path) -> None:
    text = ENDPOINTS_YAML.replace("candidate: new", "candidate: neww")
    message = _error(tmp_path, text)
    assert f":{line_no(text, 'candidate: neww')}: default candidate 'neww' is not defined" in message


@pytest.mark.parametrize(
    ("edit", "needle"),
    [
        (("base_url: https://llm.example.invalid/v1", "base_url: llm.example.invalid"), "base_url: llm"),
        (("timeout_s: 30", "timeout_s: -1"), "timeout_s: -1"),
        (("api_key_env: TINY_NEW_KEY", "api_key: sk-abcdefghijklmnop"), "api_key: sk-"),
    ],
)
def test_schema_violations_name_the_line(tmp_path: Path, edit: tuple[str, str], needle: str) -> None:
    text = ENDPOINTS_YAML.replace(*edit)
    assert text != ENDPOINTS_YAML
    message = _error(tmp_path, text)
    assert f"endpoints.yaml:{line_no(text, needle)}:" in message


def test_recorded_is_a_reserved_endpoint_name(tmp_path: Path) -> None:
    message = _error(tmp_path, ENDPOINTS_YAML.replace("  other:\n", "  recorded:\n"))
    # reported at the `endpoints:` mapping (jsonschema gives propertyNames errors the parent's path)
    assert f"endpoints.yaml:{line_no(ENDPOINTS_YAML, 'endpoints:')}:" in message and "'recorded'" in message


def test_every_schema_violation_is_listed(tmp_path: Path) -> None:
    text = ENDPOINTS_YAML.replace("timeout_s: 30", "timeout_s: -1").replace("model: old-model", "model: ''")
    message = _error(tmp_path, text)
    assert len(message.splitlines()) == 2


def test_syntax_error_and_missing_file(tmp_path: Path) -> None:
    assert "YAML syntax error" in _error(tmp_path, "endpoints:\n  a: {base_url: x\n")
    with pytest.raises(ConfigError, match="file not found"):
        load_endpoints(tmp_path / "none.yaml")


# ---------------------------------------------------------------- keys and loopback


def test_api_key_comes_from_the_named_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    ep = EndpointConfig(name="gw", base_url="https://gw.example/v1", model="m", api_key_env="GW_KEY")
    monkeypatch.delenv("GW_KEY", raising=False)
    with pytest.raises(ConfigError, match="GW_KEY") as info:
        ep.api_key()
    assert "'gw'" in str(info.value)
    assert ep.secret() is None
    monkeypatch.setenv("GW_KEY", "sk-live-0123456789")
    assert ep.api_key() == ep.secret() == "sk-live-0123456789"


def test_no_key_configured_means_a_placeholder() -> None:
    ep = EndpointConfig(name="local", base_url="http://127.0.0.1:8411/v1", model="m")
    assert ep.api_key() == "none"
    assert ep.secret() is None


def test_secrets_lists_only_keys_that_are_set(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    eps = _load(tmp_path, ENDPOINTS_YAML)
    monkeypatch.delenv("TINY_NEW_KEY", raising=False)
    assert eps.secrets() == []
    monkeypatch.setenv("TINY_NEW_KEY", "secret-value-123")
    assert eps.secrets() == ["secret-value-123"]


@pytest.mark.parametrize(
    ("url", "loopback"),
    [
        ("http://127.0.0.1:8411/v1", True), ("http://localhost:8000/v1", True), ("http://[::1]:8000/v1", True),
        ("http://127.1.2.3/v1", True), ("https://api.example.com/v1", False), ("http://10.0.0.5:8000/v1", False),
        ("http://127.0.0.1.example.com/v1", False), ("http://LOCALHOST/v1", True), ("http://[::2]/v1", False),
    ],
)
def test_is_loopback(url: str, loopback: bool) -> None:
    assert EndpointConfig(name="x", base_url=url, model="m").is_loopback is loopback
