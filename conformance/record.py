"""``conformance record``: capture the baseline's answers for a system, provenance-stamped, before cutover."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from conformance.endpoints.base import make_endpoint
from conformance.endpoints.config import EndpointsFile
from conformance.endpoints.preflight import check_all
from conformance.errors import EndpointError
from conformance.recordings import entry, write_recordings
from conformance.redact import Redactor
from conformance.replay import replay_sync
from conformance.response import Response
from conformance.runstore import RunStore, new_run_id
from conformance.suite import load_suite


def _harness_version() -> str:
    try:
        return version("llm-conformance")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "unknown"


def record_system(root: Path, endpoints: EndpointsFile, system: str, name: str, *, start_local: bool = True,
                  progress: bool = True) -> int:
    """Record every case of ``system`` from endpoint ``name``; return the number of cases that failed.

    Failed cases are listed and left out of the file (a recording of an error is useless for replay); the file is
    written with write-then-rename, so an interrupted recording leaves the previous file intact.
    """
    from tqdm import tqdm

    from conformance.local.servers import ensure_up

    suite = load_suite(root / "suites" / system, root)
    cfg = endpoints.get(name)
    if start_local and cfg.local:
        ensure_up([cfg])
    redactor = Redactor(endpoints.secrets())
    (pf,) = check_all([cfg], redactor)
    if not pf.ok and pf.status != "unchecked":
        raise EndpointError(name, f"cannot record: {pf.message}")
    run_dir = root / "reports" / f"{new_run_id()}-record-{system}"
    store = RunStore(run_dir, redactor=redactor)
    cases = suite.cases
    bar = tqdm(total=len(cases), desc=f"record {system} from {name}", unit="case", disable=not progress,
               file=sys.stderr)

    def tick(resp: Response) -> None:
        bar.update(1)
        if not resp.ok:
            bar.write(f"  {resp.case_id}: {resp.describe_failure()}")

    try:
        got = replay_sync([make_endpoint(cfg, redactor)], cases, store, progress=tick)
    finally:
        bar.close()
        store.close()
    ok = {cid: r for (_, cid, _), r in got.items() if r.ok}
    entries = [entry(ok[c.id], c, cfg.model if pf.status == "ok" else None) for c in cases if c.id in ok]
    meta = {
        "endpoint": name, "base_url": cfg.base_url, "model": cfg.model, "served_models": list(pf.served),
        "server": pf.server, "harness": _harness_version(), "system": system,
        "recorded_at": datetime.now(UTC).isoformat(timespec="seconds"), "cases": len(entries),
    }
    path = suite.recordings_path(name)
    write_recordings(path, meta, entries, redactor)
    failed = len(cases) - len(entries)
    print(f"recorded {len(entries)}/{len(cases)} cases of {system} from {name} → {path.relative_to(root)}"
          + (f" ({failed} failed, not recorded)" if failed else ""))
    return failed
