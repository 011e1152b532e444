from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from conformance.report.frame import (
    COLUMNS,
    findings_frame,
    gates_frame,
    latency_percentiles,
    responses_frame,
    results_frame,
    write_csv,
    write_parquet,
)
from conformance.report.trend import read_summary
from conformance.report.write import read_responses, read_rows
from tests.report.runfolder import build_run


@pytest.fixture
def run(tmp_path: Path) -> Path:
    return build_run(tmp_path / "run")


def test_one_row_per_response_check_gate_and_bare_test(run: Path) -> None:
    rows = read_rows(run / "results.jsonl")
    df = results_frame(rows)
    assert list(df.columns) == list(COLUMNS)
    props = [p for r in rows for p in r["props"]]
    expected = pd.Series([p["kind"] for p in props] + ["test"] * sum(not r["props"] for r in rows))
    assert df["kind"].value_counts().sort_index().to_dict() == expected.value_counts().sort_index().to_dict()
    assert len(df) == sum(max(1, len(r["props"])) for r in rows)


def test_rows_keep_their_order_and_test_context(run: Path) -> None:
    rows = read_rows(run / "results.jsonl")
    df = results_frame(rows)
    expected_nodeids = [r["nodeid"] for r in rows for _ in range(max(1, len(r["props"])))]
    assert df["nodeid"].tolist() == expected_nodeids
    first = df.iloc[0]
    assert (first["kind"], first["role"], first["test"], first["outcome"]) == (
        "response", "baseline", "test_terms", rows[0]["outcome"])


def test_verdicts_per_kind(run: Path) -> None:
    df = results_frame(read_rows(run / "results.jsonl"))
    checks = df[df["kind"] == "check"]
    assert ((checks["verdict"] == "pass") == checks["passed"].astype(bool)).all()
    resp = df[df["kind"] == "response"]
    assert ((resp["verdict"] == "fault") == resp["fault"].notna()).all()
    assert set(resp.loc[resp["fault"].notna(), "case_id"]) == {"timeout-case"}
    assert resp.loc[resp["fault"].notna(), "e2e_ms"].isna().all()


def test_gate_rows_carry_threshold_and_interval(run: Path) -> None:
    summary = read_summary(run)
    df = results_frame(read_rows(run / "results.jsonl"))
    gates = df[df["kind"] == "gate"].set_index("gate")
    drift = next(g for g in summary["suites"]["legal"]["gates"] if g["gate"] == "terms.drift_rate")
    row = gates.loc["terms.drift_rate"]
    assert (row["statistic"], row["threshold"], row["op"], row["n"], row["verdict"]) == (
        drift["statistic"], drift["threshold"], drift["op"], drift["n"], drift["verdict"])
    assert (row["ci_low"], row["ci_high"]) == tuple(drift["interval"])
    assert np.isnan(gates.loc["classification.kappa", "statistic"])
    assert len(gates_frame(summary)) == sum(len(s["gates"]) for s in summary["suites"].values())


def test_a_test_without_props_keeps_its_case_id_and_message(run: Path) -> None:
    rows = read_rows(run / "results.jsonl")
    bare = next(r for r in rows if not r["props"])
    df = results_frame(rows)
    got = df[df["kind"] == "test"].iloc[0]
    assert got["case_id"] == bare["nodeid"].rsplit("[", 1)[1].rstrip("]")
    assert got["explanation"] == bare["message"]
    assert (got["when"], got["verdict"]) == ("setup", "failed")


def test_findings_frame_has_one_row_per_finding(run: Path) -> None:
    rows = read_rows(run / "results.jsonl")
    f = findings_frame(rows)
    n = sum(len(p.get("findings") or []) for r in rows for p in r["props"] if p["kind"] == "check")
    assert len(f) == n and n > 0
    assert set(f["check"]) == {"terms"}
    nested = results_frame(rows)
    stored = nested.loc[nested["n_findings"].fillna(0) > 0, "findings"].map(json.loads)
    assert sum(len(x) for x in stored) == n


def test_empty_input_still_has_every_column_with_stable_types() -> None:
    df = results_frame([])
    assert list(df.columns) == list(COLUMNS) and df.empty
    assert str(df["passed"].dtype) == "boolean" and str(df["n"].dtype) == "Int64"
    assert findings_frame([]).empty
    assert latency_percentiles(responses_frame({})).empty


def test_latency_percentiles_match_numpy_and_skip_faults(run: Path) -> None:
    responses = read_responses(run / "responses")
    frame = responses_frame(responses)
    pct = latency_percentiles(frame).set_index(["endpoint", "metric"])
    for endpoint in frame["endpoint"].unique():
        ok = [r["e2e_ms"] for (ep, _, _), r in responses.items() if ep == endpoint and r["fault"] is None]
        got = pct.loc[(endpoint, "e2e_ms")]
        assert got["n"] == len(ok)
        assert got["p50"] == pytest.approx(np.quantile(ok, 0.5))
        assert got["p99"] == pytest.approx(np.quantile(ok, 0.99))


def test_parquet_and_csv_round_trip(run: Path, tmp_path: Path) -> None:
    pytest.importorskip("pyarrow")
    df = results_frame(read_rows(run / "results.jsonl"))
    pq = write_parquet(df, tmp_path / "r.parquet")
    assert pq is not None
    back = pd.read_parquet(pq)
    pd.testing.assert_frame_equal(back, df, check_dtype=False)
    csv = pd.read_csv(write_csv(df, tmp_path / "r.csv"), encoding="utf-8-sig")
    assert list(csv.columns) == list(COLUMNS) and len(csv) == len(df)
    assert csv["explanation"].str.contains("订金", na=False).any()


def _big(n: int) -> list[dict[str, Any]]:
    rng = np.random.default_rng(7)
    lat = rng.gamma(2.0, 300.0, size=(n, 2))
    rows = []
    for i in range(n):
        cid = f"case-{i}"
        props: list[dict[str, Any]] = [
            {"kind": "response", "role": role, "suite": "legal", "case_id": cid, "endpoint": role, "fault": None,
             "fingerprint": f"{i:016x}", "error": None, "ttft_ms": lat[i, j] / 5, "e2e_ms": lat[i, j],
             "finish_reason": "stop", "attempts": 1} for j, role in enumerate(("baseline", "candidate"))]
        props.append({"kind": "check", "suite": "legal", "case_id": cid, "check": "terms", "passed": i % 7 != 0,
                      "explanation": "x", "score": 0.0, "findings": [{"kind": "replaced", "message": "m"}] if i % 7
                      == 0 else [], "details": {}})
        rows.append({"nodeid": f"suites/legal/test_legal.py::test_terms[{cid}]", "suite": "legal",
                     "outcome": "failed" if i % 7 == 0 else "passed", "when": "call", "duration_s": 0.01,
                     "message": "", "props": props})
    return rows


def test_100k_results_take_well_under_10_seconds() -> None:
    rows = _big(100_000)
    start = time.process_time()  # CPU time: a busy CI machine must not make this flaky
    df = results_frame(rows)
    took = time.process_time() - start
    assert len(df) == 300_000
    assert took < 10.0, f"results_frame took {took:.1f} s of CPU for 100k results"
    assert (df["kind"] == "check").sum() == 100_000


KIND = st.sampled_from(["response", "check", "gate", "mystery", None])
VALUE = st.none() | st.booleans() | st.integers(-3, 3) | st.floats(allow_nan=True) | st.text(max_size=4) | st.lists(
    st.integers(), max_size=3) | st.dictionaries(st.text(max_size=3), st.integers(), max_size=2)
PROP = st.fixed_dictionaries({"kind": KIND}, optional={k: VALUE for k in (
    "suite", "case_id", "check", "gate", "passed", "score", "statistic", "threshold", "n", "interval", "fault",
    "ttft_ms", "e2e_ms", "findings", "details", "explanation", "message", "attempts")})
ROW = st.fixed_dictionaries({"nodeid": st.text(max_size=20), "suite": st.text(max_size=5) | st.none(),
                             "outcome": st.sampled_from(["passed", "failed", "skipped"]),
                             "props": st.lists(PROP, max_size=3)},
                            optional={"duration_s": VALUE, "message": VALUE, "when": st.just("call")})


@given(st.lists(ROW, max_size=6))
def test_csv_is_what_pandas_to_csv_writes(rows: list[dict[str, Any]]) -> None:
    """write_csv feeds pandas' own csv writer itself; the bytes must not change (floats, NA, quoting, CJK, BOM)."""
    import tempfile

    df = results_frame(rows)
    with tempfile.TemporaryDirectory() as tmp:
        ours, theirs = Path(tmp) / "ours.csv", Path(tmp) / "theirs.csv"
        write_csv(df, ours)
        df.to_csv(theirs, index=False, encoding="utf-8-sig")
        assert ours.read_bytes() == theirs.read_bytes()


def test_csv_of_a_run_is_what_pandas_to_csv_writes(run: Path, tmp_path: Path) -> None:
    df = results_frame(read_rows(run / "results.jsonl"))
    write_csv(df, tmp_path / "ours.csv")
    df.to_csv(tmp_path / "theirs.csv", index=False, encoding="utf-8-sig")
    assert (tmp_path / "ours.csv").read_bytes() == (tmp_path / "theirs.csv").read_bytes()


def test_props_keep_their_order_within_a_test() -> None:
    rows = [{"nodeid": "t.py::test_x[c]", "suite": "s", "outcome": "passed", "props": [
        {"kind": "check", "check": "terms", "passed": True}, {"kind": "response", "role": "baseline"},
        {"kind": "gate", "gate": "g"}, {"kind": "check", "check": "label", "passed": False}]}]
    df = results_frame(rows)
    assert df["kind"].tolist() == ["check", "response", "gate", "check"]
    assert df["verdict"].fillna("-").tolist() == ["pass", "ok", "-", "fail"]


@given(st.lists(ROW, max_size=6))
def test_arbitrary_rows_never_raise_and_lose_nothing(rows: list[dict[str, Any]]) -> None:
    df = results_frame(rows)
    assert len(df) == sum(max(1, len(r["props"])) for r in rows)
    assert list(df.columns) == list(COLUMNS)
