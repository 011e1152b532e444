"""Frozen run settings, built once: CLI > environment > ini > endpoints.yaml defaults.

Library code receives a :class:`Settings` (or values taken from it) as constructor arguments and never sees
``pytest.Config`` — so the CLI, the plugin and tests build settings the same way.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from conformance.endpoints.config import RECORDED, EndpointsFile, load_endpoints
from conformance.errors import ConfigError

ENV = {
    "endpoints": "CONFORMANCE_ENDPOINTS",
    "baseline": "CONFORMANCE_BASELINE",
    "candidate": "CONFORMANCE_CANDIDATE",
    "reports": "CONFORMANCE_REPORTS",
}


@dataclass(frozen=True)
class Settings:
    root: Path
    endpoints_file: Path
    baseline: str
    candidate: str
    reports_dir: Path
    run_id: str | None = None
    resume: bool = False
    preflight: bool = True
    start_local: bool = True

    @property
    def baseline_recorded(self) -> bool:
        return self.baseline == RECORDED or self.baseline.startswith(RECORDED + ":")

    def recorded_source(self, endpoints: EndpointsFile) -> str:
        """Which endpoint's recordings ``--baseline recorded[:NAME]`` replays (default: the default baseline)."""
        if ":" in self.baseline:
            return self.baseline.split(":", 1)[1]
        if endpoints.default_baseline and endpoints.default_baseline != RECORDED:
            return endpoints.default_baseline
        raise ConfigError(
            "--baseline recorded needs a name (recorded:NAME) when endpoints.yaml has no default baseline"
        )

    def with_baseline(self, baseline: str) -> Settings:
        return replace(self, baseline=baseline)


def _pick(key: str, cli: Mapping[str, object], env: Mapping[str, str], ini: Mapping[str, object]) -> str | None:
    for source in (cli.get(key), env.get(ENV[key]) if key in ENV else None, ini.get(key)):
        if source not in (None, ""):
            return str(source)
    return None


def reports_dir(root: Path, cli: Mapping[str, object], env: Mapping[str, str], ini: Mapping[str, object]) -> Path:
    """Where run folders go: ``--conformance-reports`` > ``$CONFORMANCE_REPORTS`` > ini > ``reports/``, relative
    to the root. Commands that only read runs (``conformance runs``/``view``) need this and no endpoints file."""
    reports = Path(_pick("reports", cli, env, ini) or "reports")
    return reports if reports.is_absolute() else root / reports


def build_settings(
    root: Path,
    cli: Mapping[str, object],
    env: Mapping[str, str],
    ini: Mapping[str, object],
) -> tuple[Settings, EndpointsFile]:
    """Resolve settings and load the endpoints file; every problem is one :class:`ConfigError`."""
    ep_path = Path(_pick("endpoints", cli, env, ini) or "endpoints.yaml")
    if not ep_path.is_absolute():
        ep_path = root / ep_path
    if not ep_path.is_file():
        raise ConfigError(f"endpoints file not found: {ep_path} (set --endpoints or {ENV['endpoints']})")
    endpoints = load_endpoints(ep_path)
    roles = {}
    for role, default in (("baseline", endpoints.default_baseline), ("candidate", endpoints.default_candidate)):
        name = _pick(role, cli, env, ini) or default
        if not name:
            raise ConfigError(f"no {role} endpoint: pass --{role} NAME or set `defaults.{role}` in {ep_path}")
        if name == RECORDED or name.startswith(RECORDED + ":"):
            if role == "candidate":  # checked before the name lookup, which would only say "unknown endpoint"
                raise ConfigError(
                    "the candidate must be a live endpoint; only the baseline can be replayed from recordings"
                )
        else:
            endpoints.get(name, role)
        roles[role] = name
    run_id = cli.get("resume") or cli.get("run_id")
    settings = Settings(
        root=root,
        endpoints_file=ep_path,
        baseline=roles["baseline"],
        candidate=roles["candidate"],
        reports_dir=reports_dir(root, cli, env, ini),
        run_id=str(run_id) if run_id else None,
        resume=bool(cli.get("resume")),
        preflight=not cli.get("no_preflight"),
        start_local=not cli.get("no_local_start"),
    )
    if settings.baseline_recorded:
        source = settings.recorded_source(endpoints)
        endpoints.get(source, "recorded baseline")
    return settings, endpoints
