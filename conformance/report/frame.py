"""Run results as pandas DataFrames, and the files analysts open: ``results.parquet`` and ``results.csv``.

Why a long frame: the rows the collector writes (``results.jsonl``) are nested — a test carries the responses it
used, the checks it ran and the gates it computed. Analysts want one flat table they can filter and pivot, so
:func:`results_frame` emits one row per *case × endpoint* (``kind == "response"``), one per *case × check*
(``kind == "check"``), one per *suite × gate* (``kind == "gate"``) and one for a test that recorded nothing
(``kind == "test"``, e.g. a fixture that failed in setup) — nothing the run saw is dropped.

Everything here is pure and vectorised: the nested input is walked once with comprehensions into columns,
everything after that is column arithmetic, so 100,000 results (300,000 frame rows) become a frame in about two
seconds on a 2-core machine. No Python loop touches a DataFrame row.
"""

from __future__ import annotations

import csv
import json
import os
import re
from collections.abc import Iterable, Mapping, Sequence
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
_NUMERIC = frozenset((*_FLOAT, *_INT))
#: Stands in for the props of a test that recorded none: it becomes that test's one ``kind == "test"`` row.
_NO_PROPS: Mapping[str, Any] = {"kind": "test"}
_PARAM = re.compile(r"\[(.*)\]$")
_PARAMS = re.compile(r"\[.*$")


def _objects(values: Sequence[Any] | Iterable[Any], n: int) -> np.ndarray:
    """An object array holding each value as it is (``np.array`` would turn equal-length lists into a 2-D array)."""
    return np.fromiter(values, dtype=object, count=n)


def _kind_columns(kind: str, props: list[Mapping[str, Any]]) -> dict[str, Any]:
    """The columns one kind of prop fills: numbers as float arrays, everything else as plain lists."""
    cols: dict[str, Any] = {}
    for col, key in _KEYS.get(kind, _GENERIC).items():
        values = [p.get(key) for p in props]
        if col == "passed":
            values = [v if isinstance(v, bool) else None for v in values]
        cols[col] = _floats(values) if col in _NUMERIC else values
    if kind == "check" or kind not in _KEYS:
        cols["n_findings"] = _floats([len(f) if isinstance(f := p.get("findings"), list) else None for p in props])
        cols["findings"] = [_json(p.get("findings")) for p in props]
        cols["details"] = [_json(p.get("details")) for p in props]
    if kind == "gate" or kind not in _KEYS:
        cols["ci_low"] = np.array([_interval(p, 0) for p in props], dtype=np.float64)
        cols["ci_high"] = np.array([_interval(p, 1) for p in props], dtype=np.float64)
    return cols


def _test_names(nodeids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(test function, parametrize id)`` of each node id — what ``str.rsplit``/``str.extract`` would give."""
    names: list[str | None] = []
    params: list[str | None] = []
    for nodeid in nodeids:
        if isinstance(nodeid, str):
            names.append(_PARAMS.sub("", nodeid.rsplit("::", 1)[-1]))
            m = _PARAM.search(nodeid)
            params.append(m.group(1) if m else None)
        else:
            names.append(None)
            params.append(None)
    return _objects(names, len(names)), _objects(params, len(params))


def results_frame(rows: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """Collector rows → the long results frame (columns :data:`COLUMNS`): one row per prop in the rows' order
    (and, within a row, the props' order), one ``kind == "test"`` row for a test that recorded none.

    Built column by column: the props are grouped by kind, each kind fills its columns in one comprehension per
    key, and the values are scattered into full-length arrays by position — no per-row frames, no concat or sort.
    """
    flat: list[Mapping[str, Any]] = []
    counts: list[int] = []
    for r in rows:
        # ``type(p) is dict`` first: the ABC check alone costs more than the rest of this line
        props = [p for p in r.get("props") or () if type(p) is dict or isinstance(p, Mapping)] or [_NO_PROPS]
        flat += props
        counts.append(len(props))
    n = len(flat)
    at = np.repeat(np.arange(len(rows), dtype=np.int64), counts)
    kinds = _objects((k if type(k) is str else str(k) for k in (p.get("kind") for p in flat)), n)
    codes, names = pd.factorize(kinds)
    by_kind = np.argsort(codes, kind="stable")
    bounds = np.cumsum(np.bincount(codes, minlength=len(names)))[:-1]  # where each kind's positions start
    props_of = _objects(flat, n)
    cols: dict[str, np.ndarray] = {c: np.full(n, np.nan) if c in _NUMERIC else np.full(n, None, dtype=object)
                                   for c in COLUMNS}
    cols["kind"] = kinds
    for kind, pos in zip(names, np.split(by_kind, bounds) if n else [], strict=True):
        for col, values in _kind_columns(kind, props_of[pos].tolist()).items():
            cols[col][pos] = values if col in _NUMERIC else _objects(values, len(pos))
    nodeid = _objects((r.get("nodeid") for r in rows), len(rows))
    test, param = _test_names(nodeid)
    suite = cols["suite"]
    missing = pd.isna(suite)
    suite[missing] = _objects((r.get("suite") for r in rows), len(rows))[at[missing]]
    cols["nodeid"], cols["test"] = nodeid[at], test[at]
    cols["outcome"] = _objects((r.get("outcome") for r in rows), len(rows))[at]
    cols["when"] = _objects((r.get("when") for r in rows), len(rows))[at]
    cols["duration_s"] = _floats([r.get("duration_s") for r in rows])[at]
    # A test without props is identified by its parametrize id (the plugin uses case ids) and its message.
    kind_of = cols["kind"]
    is_test = kind_of == "test"
    cols["case_id"][is_test] = param[at[is_test]]
    cols["explanation"][is_test] = _objects((r.get("message") or None for r in rows), len(rows))[at[is_test]]
    verdict = cols["verdict"]
    is_check, is_response = kind_of == "check", kind_of == "response"
    verdict[is_check] = np.where(cols["passed"][is_check] == True, "pass", "fail")  # noqa: E712 - None is fail
    verdict[is_response] = np.where(pd.isna(cols["fault"][is_response]), "ok", "fault")
    verdict[is_test] = cols["outcome"][is_test]
    return _typed(cols, n)


def _typed(cols: Mapping[str, np.ndarray], n: int) -> pd.DataFrame:
    """Stable dtypes so Parquet schemas do not change with the data (an all-null column is still a string)."""
    out: dict[str, Any] = {}
    for c in COLUMNS:
        values = cols[c]
        if c in _INT:
            whole = np.isfinite(values) & (np.abs(values) < 2.0**53) & (values == np.floor(values))
            out[c] = pd.arrays.IntegerArray(np.where(whole, values, 0).astype(np.int64), ~whole)
        elif c in _FLOAT:
            out[c] = values.astype(np.float64)
        elif c == "passed":
            out[c] = pd.array(values, dtype="boolean")
        else:
            out[c] = _strings(values)
    return pd.DataFrame(out, index=pd.RangeIndex(n), columns=list(COLUMNS))


def _strings(values: np.ndarray) -> Any:
    """An object array as pandas' ``string`` dtype. When that dtype is Arrow-backed, a column of ``str``/``None``
    goes through ``pyarrow.array`` directly — a third of the cost of ``pd.array(..., dtype="string")``, which
    first copies and checks every element in Python objects; anything else (a number where a name belongs)
    takes the general path, which writes ``str(value)``."""
    if _ARROW_STRINGS:
        import pyarrow as pa

        try:
            return pd.arrays.ArrowStringArray(pa.array(values, type=pa.large_string(), from_pandas=True))
        except (pa.ArrowException, TypeError, ValueError):
            pass
    return pd.array(values, dtype="string")


_ARROW_STRINGS = pd.StringDtype().storage == "pyarrow"


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


def responses_frame(responses: Mapping[Any, Mapping[str, Any]]) -> pd.DataFrame:
    """``{(endpoint, [system,] case_id): Response dict}`` → endpoint, system, case_id, fault, ttft_ms, e2e_ms."""
    keys, values = list(responses.keys()), list(responses.values())
    return pd.DataFrame({
        "endpoint": [k[0] for k in keys], "system": [v.get("system") for v in values],
        "case_id": [k[-1] for k in keys], "fault": [v.get("fault") for v in values],
        "ttft_ms": _floats([v.get("ttft_ms") for v in values]), "e2e_ms": _floats([v.get("e2e_ms") for v in values]),
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
    """UTF-8 with BOM so spreadsheet programs show CJK text correctly on double-click.

    Byte for byte what ``frame.to_csv(path, index=False, encoding="utf-8-sig")`` writes — pandas hands its rows to
    this same :mod:`csv` writer — but each column becomes Python values once, instead of pandas turning every
    block into strings chunk by chunk first: 2.1 → 1.4 s at 300,000 rows (tests/report/test_frame.py compares).
    """
    columns = [frame[c].to_numpy(dtype=object, na_value="") for c in frame.columns]
    with open(path, "w", encoding="utf-8", newline="") as fh:
        fh.write("\ufeff")  # what "utf-8-sig" writes first; its encoder is Python code, called once per row
        writer = csv.writer(fh, lineterminator=os.linesep, quoting=csv.QUOTE_MINIMAL)
        writer.writerow([str(c) for c in frame.columns])
        writer.writerows(zip(*columns, strict=True))
    return path
