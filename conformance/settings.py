"""Frozen run settings, built once: CLI > environment > ini > endpoints.yaml defaults.

Library code receives a :class:`Settings` (or values taken from it) as constructor arguments and never sees
``pytest.Config`` — so the CLI, the plugin and tests build settings the same way.
"""

from __future__ import annotations

import re
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

#: What a run id may be. It names a folder directly under ``reports/`` and ``reports/latest`` is pointed at it, so
#: it must not be able to name anything else: no separators, no ``.``/``..``/empty, no control characters, no
#: leading ``-`` or ``.``; ``latest`` is the link itself. Generated ids (``20261123-142501-a3f9``) match.
RUN_ID_PATTERN = r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}"
RESERVED_RUN_IDS = frozenset({"latest"})
_RUN_ID = re.compile(RUN_ID_PATTERN)


def check_run_id(value: str, what: str = "run id") -> str:
    """``value`` when it is a usable run id (see :data:`RUN_ID_PATTERN`), else a :class:`ConfigError` naming
    ``what`` (the option it came from) and the allowed pattern."""
    if _RUN_ID.fullmatch(value) and value not in RESERVED_RUN_IDS:
        return value
    raise ConfigError(f"{what} {value!r} is not a valid run id: it must match {RUN_ID_PATTERN} (letters, digits, "
                      f"'.', '_' and '-', starting with a letter or digit; not 'latest'), because it names a folder "
                      f"directly under the reports folder")


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
    resume, named = cli.get("resume"), cli.get("run_id")
    if resume is not None:
        check_run_id(str(resume), "--resume")
    if named is not None:
        check_run_id(str(named), "--conformance-run-id")
    run_id = resume or named
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
