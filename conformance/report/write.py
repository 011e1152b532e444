"""Turn a finished run folder into its report files: ``report.html``, ``results.parquet``, ``results.csv``.

Why a separate step that reads only the folder: the report must be reproducible after the fact — from a CI
artifact, for an old run, with ``--compare`` against another run — so it depends on nothing but the files the
collector and the response cache wrote (``summary.json``, ``results.jsonl``, ``responses/*.jsonl``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from conformance.report.answers import Answers, read_responses
from conformance.report.atomic import write_text_atomic
from conformance.report.frame import results_frame, write_csv, write_parquet
from conformance.report.gcpause import gc_paused
from conformance.report.html import render_html
from conformance.report.outcome import Outcome, classify_run, exit_code
from conformance.report.trend import compare_runs, read_previous, read_summary, trend_lines

__all__ = ["Answers", "finish_run", "read_responses", "read_rows", "write_report"]

_decode = json.JSONDecoder().decode  # ``json.loads`` minus its per-call argument handling


def read_rows(path: Path) -> list[dict[str, Any]]:
    """``results.jsonl``; a line cut short by a kill is skipped, not fatal."""
    rows: list[dict[str, Any]] = []
    if not path.is_file():
        return rows
    with open(path, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            try:
                row = _decode(line)
            except ValueError:
                continue
            if isinstance(row, dict):
                rows.append(row)
    return rows


def _write(run_dir: Path, previous: Path | None) -> tuple[Path, dict[str, Any], Outcome, list[str]]:
    """The report files; returns the HTML path, the summary, the outcome and the trend lines, so that
    :func:`finish_run` reads neither ``results.jsonl`` nor the previous summary a second time. A previous run that
    cannot be read gives no trend and one warning line instead. The collector is paused meanwhile: millions of
    decoded containers, no cycles among them (see conformance.report.gcpause)."""
    with gc_paused():
        summary = read_summary(run_dir)
        rows = read_rows(run_dir / "results.jsonl")
        moves = prev_id = None
        prev, warning = read_previous(previous)
        trend = [warning] if warning else []
        if prev is not None:
            moves, prev_id = compare_runs(summary, prev), str(prev.get("run_id") or previous)
            trend = trend_lines(moves, prev_id)
        frame = results_frame(rows)
        write_parquet(frame, run_dir / "results.parquet")
        write_csv(frame, run_dir / "results.csv")
        del frame
        outcome = summary.get("outcome") if summary.get("exit_code") is not None else None
        outcome = outcome or classify_run(summary, rows)
        answers = read_responses(run_dir / "responses")
        out = run_dir / "report.html"
        write_text_atomic(out, render_html(summary, rows, answers, moves=moves, previous_run=prev_id,
                                           outcome=outcome))
        return out, summary, outcome, trend


def write_report(run_dir: Path, previous: Path | None = None) -> Path:
    """Write ``report.html`` (+ ``results.parquet`` when pyarrow is installed, + ``results.csv``) into
    ``run_dir`` and return the HTML path. ``previous``: another run folder (or its summary.json) to show the
    gate trend against."""
    return _write(run_dir, previous)[0]


def finish_run(run_dir: Path, previous: Path | None = None, *, strict: bool | None = None,
               ) -> tuple[list[str], str, int]:
    """Write the report files and return ``(terminal lines, outcome, exit code)`` — what both the plugin (at
    session end) and ``conformance report`` print: the gate trend against ``previous``, the outcome word
    (:func:`~conformance.report.outcome.classify_run`) and where the report is."""
    html_path, summary, outcome, trend = _write(run_dir, previous)
    strict = bool(summary.get("strict")) if strict is None else strict
    code = exit_code(outcome, strict)
    return [*trend, f"outcome: {outcome} (exit code {code})", f"report: {html_path}"], outcome, code
