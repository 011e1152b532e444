"""The run's answers (``responses/*.jsonl``) as the report reads them: every answer's latency, texts on demand.

Why the report joins texts here: a test row in ``results.jsonl`` names the answers it used (endpoint, case,
fingerprint, fault, timings) but not their texts — repeating every text twice per case there made 100,000 results a
112 MB file to write and decode again (docs/PERFORMANCE.md, F7), while the run cache already holds each text once.
The report needs texts only for the failing cases it shows; every answer's latency goes into the latency section.

Which record a key resolves to follows the run cache (:class:`~conformance.runstore.RunStore`): several records can
share a key — a resumed run re-asks a failed request and appends the new answer, a noise-floor pass adds repeat 1,
the latency phase repeats ≥ 1000, a prompt perturbation or a golden edited before ``--resume`` another fingerprint
— so repeat 0 is preferred, then an answer over a failure, then the earlier line. Looking a text up by
(endpoint, fingerprint) — what a test row names, and the run cache's own key — finds exactly the request the test
saw; by (endpoint, system, case id) is the fallback for rows that name no fingerprint.

Why two readers: the report needs eight small fields of every answer and the whole record of a few hundred, so
when pyarrow is installed (it writes ``results.parquet`` too) its JSON reader parses just those fields, in C++ on
every core, and the few records shown are decoded from their lines when asked for — 1.6 → 0.6 s of CPU at 100,000
answers. The standard-library reader decodes everything; a file pyarrow cannot read exactly as it does (a line cut
short by a kill, a field of another type) is read by it instead, so both give the same answers
(tests/report/test_answers.py compares them).
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from conformance.report.frame import _floats

#: ``(endpoint, system, case_id)`` — a case id is unique within its system only, so the system is part of the key.
Key = tuple[str, str, str]
#: What the report reads of every answer; the rest of a record is decoded only for the answers it shows.
FIELDS = ("endpoint", "system", "case_id", "fingerprint", "repeat", "fault", "ttft_ms", "e2e_ms")

_decode = json.JSONDecoder().decode


class Answers(Mapping[Key, Mapping[str, Any]]):
    """One preferred answer per ``(endpoint, system, case_id)`` (a read-only mapping), plus lookup by fingerprint.

    ``table`` has one row per answer record, in file order, as :func:`_table` builds it; ``records[i]`` is row
    ``i``'s record, decoded or as its raw line. Build it with :func:`read_responses` or :meth:`from_records`.
    """

    def __init__(self, table: pd.DataFrame, records: Sequence[Mapping[str, Any] | bytes]) -> None:
        self._records = records
        ranked = table.assign(_pos=np.arange(len(table)))
        ranked = ranked.sort_values(["repeat", "faulted"], kind="stable")  # ties keep file order
        self._chosen = ranked.drop_duplicates(["endpoint", "system", "case_id"]).sort_values("_pos")
        prints = ranked[ranked["fingerprint"].notna()].drop_duplicates(["endpoint", "fingerprint"])
        self._by_fingerprint = dict(zip(zip(prints["endpoint"], prints["fingerprint"], strict=True),
                                        prints["_pos"].tolist(), strict=True))

    @classmethod
    def from_records(cls, records: Iterable[Any]) -> Answers:
        """Records in the order they were written; anything that is not an answer record is skipped."""
        return cls(*_decoded(records))

    @cached_property
    def _by_case(self) -> dict[Key, int]:
        c = self._chosen
        return dict(zip(zip(c["endpoint"], c["system"], c["case_id"], strict=True), c["_pos"].tolist(), strict=True))

    def _record(self, pos: int) -> Mapping[str, Any]:
        r = self._records[pos]
        return _decode(r.decode("utf-8", errors="replace")) if isinstance(r, bytes) else r

    def __getitem__(self, key: Key) -> Mapping[str, Any]:
        return self._record(self._by_case[key])

    def __iter__(self) -> Iterator[Key]:
        return iter(self._by_case)

    def __len__(self) -> int:
        return len(self._chosen)

    def find(self, endpoint: str, system: str, case_id: str, fingerprint: str | None = None
             ) -> Mapping[str, Any] | None:
        """The answer a test row names: by fingerprint when the row recorded one, else by case."""
        pos = (self._by_case.get((endpoint, system, case_id)) if fingerprint is None
               else self._by_fingerprint.get((endpoint, fingerprint)))
        return None if pos is None else self._record(pos)

    def frame(self) -> pd.DataFrame:
        """endpoint, system, case_id, fault, ttft_ms, e2e_ms — one row per key (what the latency section reads)."""
        return self._chosen[["endpoint", "system", "case_id", "fault", "ttft_ms", "e2e_ms"]].reset_index(drop=True)


def _table(cols: Mapping[str, Sequence[Any]]) -> pd.DataFrame:
    """The fields of :data:`FIELDS` as the report compares them — what the run cache's keys mean: endpoint and
    case id as strings, a missing system as "", a repeat that is not an integer as 0, ``faulted`` when there is a
    fault; latencies as floats."""

    def strings(values: Iterable[Any], missing: str | None) -> pd.Series:
        return pd.Series([missing if v is None else v if type(v) is str else str(v) for v in values], dtype=object)

    faults = list(cols["fault"])
    return pd.DataFrame({
        "endpoint": strings(cols["endpoint"], "None"), "system": strings((v or None for v in cols["system"]), ""),
        "case_id": strings(cols["case_id"], "None"), "fingerprint": strings(cols["fingerprint"], None),
        "repeat": np.array([v if isinstance(v, int) else 0 for v in cols["repeat"]], dtype=np.int64),
        "faulted": np.array([v is not None for v in faults], dtype=bool), "fault": pd.Series(faults, dtype=object),
        "ttft_ms": _floats(list(cols["ttft_ms"])), "e2e_ms": _floats(list(cols["e2e_ms"])),
    })


def _decoded(records: Iterable[Any]) -> tuple[pd.DataFrame, list[Mapping[str, Any] | bytes]]:
    kept: list[dict[str, Any]] = [r for r in records if isinstance(r, dict) and "endpoint" in r and "case_id" in r]
    return _table({f: [r.get(f) for r in kept] for f in FIELDS}), [*kept]


def read_responses(folder: Path) -> Answers:
    """``responses/*.jsonl`` → :class:`Answers`; a line cut short by a kill (or not JSON) is skipped, not fatal."""
    tables: list[pd.DataFrame] = []
    records: list[Mapping[str, Any] | bytes] = []
    for path in sorted(folder.glob("*.jsonl")) if folder.is_dir() else ():
        table, recs = _read_arrow(path) or _decoded(_lines(path))
        tables.append(table)
        records += recs
    return Answers(pd.concat(tables, ignore_index=True) if tables else _decoded([])[0], records)


def _lines(path: Path) -> Iterator[Any]:
    # errors="replace": a kill can cut the last line inside a multi-byte character (CJK text)
    with open(path, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            try:
                yield _decode(line)
            except ValueError:
                continue


def _read_arrow(path: Path) -> tuple[pd.DataFrame, list[Mapping[str, Any] | bytes]] | None:
    """:data:`FIELDS` of every line with pyarrow's JSON reader, the lines kept raw; ``None`` when pyarrow is not
    installed or cannot read the file exactly as :func:`_lines` would (then that reader reads it)."""
    try:
        import pyarrow as pa
        import pyarrow.json as pa_json
    except ImportError:
        return None
    data = path.read_bytes()
    if data.count(b"\r") != data.count(b"\r\n"):
        return None  # a lone CR ends a line for the standard reader (universal newlines), not for pyarrow
    # A JSON object starts with "{" and ends with "}": any other line is one the standard reader skips as well.
    lines = [ln for ln in data.split(b"\n") if ln.strip()[:1] == b"{" and ln.rstrip()[-1:] == b"}"]
    if not lines:
        return None
    schema = pa.schema([(f, pa.int64() if f == "repeat" else pa.float64() if f.endswith("_ms") else pa.string())
                        for f in FIELDS])
    try:
        table = pa_json.read_json(
            io.BytesIO(b"\n".join(lines)),
            read_options=pa_json.ReadOptions(block_size=max(1 << 20, 2 * max(map(len, lines)))),
            parse_options=pa_json.ParseOptions(explicit_schema=schema, unexpected_field_behavior="ignore"))
        cols = {f: table.column(f).to_numpy(zero_copy_only=False) for f in FIELDS}
    except Exception:  # any line it reads differently (cut short, another type, bad UTF-8): the exact reader
        return None
    if table.num_rows != len(lines) or table.column("endpoint").null_count or table.column("case_id").null_count:
        return None  # two objects on a line, or an explicit null key the standard reader would keep as "None"

    def objects(name: str) -> pd.Series:
        return pd.Series(cols[name], dtype=object)  # as _table's (pandas would infer its own string dtype)

    return pd.DataFrame({  # what _table makes of the same values, without a Python loop over them
        "endpoint": objects("endpoint"), "system": objects("system").fillna(""), "case_id": objects("case_id"),
        "fingerprint": objects("fingerprint"),
        "repeat": np.nan_to_num(cols["repeat"].astype(np.float64), nan=0.0).astype(np.int64),
        "faulted": table.column("fault").is_valid().to_numpy(zero_copy_only=False), "fault": objects("fault"),
        "ttft_ms": cols["ttft_ms"].astype(np.float64), "e2e_ms": cols["e2e_ms"].astype(np.float64),
    }), list(lines)
