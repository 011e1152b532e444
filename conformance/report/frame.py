"""Run results as pandas DataFrames, and the files analysts open: ``results.parquet`` and ``results.csv``.

Why a long frame: the rows the collector writes (``results.jsonl``) are nested — a test carries the responses it
used, the checks it ran and the gates it computed. Analysts want one flat table they can filter and pivot, so
:func:`results_frame` emits one row per *case × endpoint* (``kind == "response"``), one per *case × check*
(``kind == "check"``), one per *suite × gate* (``kind == "gate"``) and one for a test that recorded nothing
(``kind == "test"``, e.g. a fixture that failed in setup) — nothing the run saw is dropped.

Everything here is pure and vectorised: the nested input is walked once with comprehensions into columns,
everything after that is column arithmetic, so 100,000 results become a frame in about a second. No Python loop
touches a DataFrame row.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

#: Column order of :func:`results_frame` (stable: downstream notebooks and the CSV header rely on it).
COLUMNS: tuple[str, ...] = (
    "suite", "kind", "case_id", "test", "nodeid", "outcome", "when", "duration_s",
    "check", "gate", "role", "endpoint", "passed", "verdict", "score",
    "statistic", "op", "threshold", "n", "ci_low", "ci_high",
    "fault", "ttft_ms", "e2e_ms", "finish_reason", "attempts",
    "explanation", "n_findings", "findings", "details",
)

_FLOAT = ("duration_s", "score", "statistic", "threshold", "ci_low", "ci_high", "ttft_ms", "e2e_ms")
_INT = ("n", "attempts", "n_findings")
_STR = tuple(c for c in COLUMNS if c not in (*_FLOAT, *_INT, "passed"))

#: Percentiles the report and the terminal show for latency.
PERCENTILES: tuple[float, ...] = (0.5, 0.9, 0.95, 0.99)


# One encoder for every cell: ``json.dumps`` with options builds a new encoder per call, a third of the cost.
_ENCODE = json.JSONEncoder(ensure_ascii=False, default=str, sort_keys=True).encode


def _json(value: Any) -> str | None:
    return None if value is None or value == [] or value == {} else _ENCODE(value)


def _num(value: Any) -> float:
    if isinstance(value, bool):
        return float(value)
    try:
        return float(value) if isinstance(value, int | float | str) else np.nan
    except (TypeError, ValueError, OverflowError):
        return np.nan


def _floats(values: list[Any]) -> np.ndarray:
    """Fast path: ``np.array(..., float)`` maps None to NaN in C; a stray string falls back to coercion."""
    try:
        out = np.array(values, dtype=np.float64)
        if out.ndim == 1 and out.shape[0] == len(values):
            return out
    except (TypeError, ValueError):
        pass
    return np.array([_num(v) for v in values], dtype=np.float64)


def _interval(p: Mapping[str, Any], i: int) -> float:
    iv = p.get("interval")
    return _num(iv[i]) if isinstance(iv, list | tuple) and len(iv) == 2 else np.nan


# Which prop keys feed which columns, per prop kind — each kind is walked only for the columns it can have,
# which keeps the one unavoidable pass over the nested input short.
_KEYS: dict[str, dict[str, str]] = {
    "response": {"suite": "suite", "case_id": "case_id", "role": "role", "endpoint": "endpoint", "fault": "fault",
                 "ttft_ms": "ttft_ms", "e2e_ms": "e2e_ms", "finish_reason": "finish_reason",
                 "attempts": "attempts", "explanation": "error"},
    "check": {"suite": "suite", "case_id": "case_id", "check": "check", "passed": "passed", "score": "score",
              "explanation": "explanation"},
    "gate": {"suite": "suite", "gate": "gate", "statistic": "statistic", "op": "op", "threshold": "threshold",
             "n": "n", "verdict": "verdict", "explanation": "message"},
}
_GENERIC = {c: c for c in ("suite", "case_id", "check", "gate", "role", "endpoint", "passed", "verdict", "score",
                           "statistic", "op", "threshold", "n", "fault", "ttft_ms", "e2e_ms", "explanation")}


def _part(kind: str, pos: list[int], props: list[Mapping[str, Any]]) -> pd.DataFrame:
    keys = _KEYS.get(kind, _GENERIC)
    cols: dict[str, Any] = {"_row": np.array(pos, dtype=np.int64), "kind": kind}
    for col, key in keys.items():
        values = [p.get(key) for p in props]
        if col == "passed":
            values = [v if isinstance(v, bool) else None for v in values]
        cols[col] = _floats(values) if col in _FLOAT or col in _INT else values
    if kind in ("check", *(() if kind in _KEYS else (kind,))):
        cols["n_findings"] = [len(f) if isinstance(f := p.get("findings"), list) else None for p in props]
        cols["findings"] = [_json(p.get("findings")) for p in props]
        cols["details"] = [_json(p.get("details")) for p in props]
    if kind == "gate" or kind not in _KEYS:
        cols["ci_low"] = [_interval(p, 0) for p in props]
        cols["ci_high"] = [_interval(p, 1) for p in props]
    return pd.DataFrame(cols)


def results_frame(rows: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """Collector rows → the long results frame (columns :data:`COLUMNS`), in the rows' order."""
    by_kind: dict[str, tuple[list[int], list[Mapping[str, Any]]]] = {}
    seen = np.zeros(len(rows), dtype=bool)
    for i, r in enumerate(rows):
        for p in r.get("props") or ():
            if isinstance(p, Mapping):
                pos, ps = by_kind.setdefault(str(p.get("kind")), ([], []))
                pos.append(i)
                ps.append(p)
                seen[i] = True
    parts = [_part(k, pos, ps) for k, (pos, ps) in by_kind.items()]
    bare = np.flatnonzero(~seen)  # tests that recorded nothing (setup failures): one "test" row each
    parts.append(pd.DataFrame({"_row": bare, "kind": "test"}))
    df = pd.concat(parts, ignore_index=True).sort_values("_row", kind="stable", ignore_index=True)
    df = df.reindex(columns=["_row", *COLUMNS])
    base = pd.DataFrame({
        "suite": [r.get("suite") for r in rows],
        "nodeid": [r.get("nodeid") for r in rows],
        "outcome": [r.get("outcome") for r in rows],
        "when": [r.get("when") for r in rows],
        "duration_s": _floats([r.get("duration_s") for r in rows]),
        "message": [r.get("message") or None for r in rows],
    })
    nodeid = base["nodeid"].astype(object)
    base["test"] = nodeid.str.rsplit("::", n=1).str[-1].str.replace(r"\[.*$", "", regex=True)
    base["param"] = nodeid.str.extract(r"\[(.*)\]$", expand=False)
    taken = base.take(df["_row"].to_numpy()).reset_index(drop=True)
    df["suite"] = df["suite"].where(df["suite"].notna(), taken["suite"])
    for col in ("nodeid", "outcome", "when", "duration_s", "test"):
        df[col] = taken[col]
    # A test without props is identified by its parametrize id (the plugin uses case ids).
    is_test = df["kind"].eq("test").to_numpy()
    df["case_id"] = df["case_id"].where(~is_test, taken["param"])
    df["explanation"] = df["explanation"].where(~is_test, taken["message"])
    verdict = df["verdict"].astype(object)
    verdict = verdict.where(~df["kind"].eq("check"), np.where(df["passed"].eq(True), "pass", "fail"))
    verdict = verdict.where(~df["kind"].eq("response"), np.where(df["fault"].isna(), "ok", "fault"))
    df["verdict"] = verdict.where(~is_test, taken["outcome"])
    return _typed(df[list(COLUMNS)])


def _typed(df: pd.DataFrame) -> pd.DataFrame:
    """Stable dtypes so Parquet schemas do not change with the data (an all-null column is still a string)."""
    out = df.copy()
    for c in _FLOAT:
        out[c] = pd.to_numeric(out[c], errors="coerce").astype("float64")
    for c in _INT:
        num = pd.Series(_floats(out[c].tolist()), index=out.index)
        whole = np.isfinite(num) & (num.abs() < 2.0**53) & (num == np.floor(num))
        out[c] = num.where(whole).astype("Int64")
    out["passed"] = out["passed"].astype("boolean")
    for c in _STR:
        out[c] = out[c].astype("string")
    return out


def findings_frame(rows: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """One row per finding of every check: what the term-drift table and ad-hoc analysis read."""
    recs = [
        (p.get("suite") or r.get("suite"), p.get("case_id"), p.get("check"), f.get("kind"), f.get("message"),
         f.get("path"), _text(f.get("baseline")), _text(f.get("candidate")))
        for r in rows for p in (r.get("props") or ()) if isinstance(p, Mapping) and p.get("kind") == "check"
        for f in (p.get("findings") or ()) if isinstance(f, Mapping)
    ]
    cols = ["suite", "case_id", "check", "kind", "message", "path", "baseline", "candidate"]
    return pd.DataFrame.from_records(recs, columns=cols).astype("string")


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, default=str)


def gates_frame(summary: Mapping[str, Any]) -> pd.DataFrame:
    """Every gate of ``summary.json``, one row each (suite, gate, statistic, op, threshold, n, CI, verdict)."""
    gates = [g for s in (summary.get("suites") or {}).values() for g in (s.get("gates") or ())]
    return pd.DataFrame({
        "suite": [g.get("suite") for g in gates], "gate": [g.get("gate") for g in gates],
        "statistic": [_num(g.get("statistic")) for g in gates], "op": [g.get("op") for g in gates],
        "threshold": [_num(g.get("threshold")) for g in gates], "n": [g.get("n") for g in gates],
        "ci_low": [_interval(g, 0) for g in gates], "ci_high": [_interval(g, 1) for g in gates],
        "verdict": [g.get("verdict") for g in gates], "message": [g.get("message") for g in gates],
    })


def responses_frame(responses: Mapping[tuple[str, str], Mapping[str, Any]]) -> pd.DataFrame:
    """``{(endpoint, case_id): Response dict}`` → endpoint, system, case_id, fault, ttft_ms, e2e_ms."""
    items = list(responses.items())
    return pd.DataFrame({
        "endpoint": [k[0] for k, _ in items], "system": [v.get("system") for _, v in items],
        "case_id": [k[1] for k, _ in items], "fault": [v.get("fault") for _, v in items],
        "ttft_ms": [_num(v.get("ttft_ms")) for _, v in items], "e2e_ms": [_num(v.get("e2e_ms")) for _, v in items],
    })


def latency_percentiles(frame: pd.DataFrame, by: str = "endpoint",
                        percentiles: Sequence[float] = PERCENTILES) -> pd.DataFrame:
    """Per ``by`` group and metric (ttft_ms, e2e_ms): n and the percentiles, over answered requests only.

    Faulted requests are excluded on purpose: a timeout's elapsed time is the client's budget, not the model's
    latency (availability gates count those).
    """
    ok = frame[frame["fault"].isna()] if "fault" in frame else frame
    parts = []
    for metric in ("ttft_ms", "e2e_ms"):
        if metric not in ok:
            continue
        g = ok.dropna(subset=[metric]).groupby(by, sort=True)[metric]
        if not g.ngroups:
            continue
        q = g.quantile(list(percentiles)).unstack()
        q.columns = [f"p{round(p * 100):d}" for p in percentiles]
        q.insert(0, "n", g.size())
        q.insert(0, "metric", metric)
        parts.append(q.reset_index())
    cols = [by, "metric", "n", *(f"p{round(p * 100):d}" for p in percentiles)]
    return pd.concat(parts, ignore_index=True)[cols] if parts else pd.DataFrame(columns=cols)


def write_parquet(frame: pd.DataFrame, path: Path) -> Path | None:
    """Write Parquet with pyarrow; ``None`` when pyarrow is not installed (it is a dev extra, CSV always works)."""
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        return None
    frame.to_parquet(path, engine="pyarrow", index=False)
    return path


def write_csv(frame: pd.DataFrame, path: Path) -> Path:
    """UTF-8 with BOM so spreadsheet programs show CJK text correctly on double-click."""
    frame.to_csv(path, index=False, encoding="utf-8-sig")
    return path
