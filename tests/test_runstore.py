"""RunStore: every answer appended and flushed at once; a killed run's cut-off last line is skipped on resume;
failed answers are never reused."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conformance.endpoints.base import Attempt, Response
from conformance.redact import MASK, Redactor
from conformance.runstore import RunStore, new_run_id


def _resp(fp: str, endpoint: str = "old", text: str | None = "定金为总价的20%。", fault: str | None = None,
          repeat: int = 0) -> Response:
    return Response(endpoint=endpoint, system="legal", case_id=f"case-{fp}", fingerprint=fp,
                    prompt_fingerprint="p" + fp, repeat=repeat, text=None if fault else text, fault=fault,
                    error="HTTP 503" if fault else None,
                    attempts=[Attempt(n=1, elapsed_ms=3.5, status=503 if fault else 200, fault=fault)],
                    e2e_ms=40.0)


def _lines(run_dir: Path) -> list[str]:
    return [line for p in sorted((run_dir / "responses").glob("*.jsonl")) for line in p.read_text("utf-8").splitlines()]


@pytest.fixture
def stores(tmp_path: Path) -> Iterator[Callable[..., RunStore]]:
    """``stores(writer="gw0")`` opens a RunStore on ``tmp_path``; all are closed after the test."""
    made: list[RunStore] = []

    def open_store(run_dir: Path = tmp_path, **kwargs: Any) -> RunStore:
        made.append(RunStore(run_dir, **kwargs))
        return made[-1]

    yield open_store
    for store in made:
        store.close()


def test_new_run_id_is_sortable() -> None:
    ids = [new_run_id() for _ in range(5)]
    assert all(re.fullmatch(r"20\d{6}-\d{6}-[0-9a-f]{4}", i) for i in ids)
    stamps = [i.rsplit("-", 1)[0] for i in ids]
    assert stamps == sorted(stamps)  # UTC time first: folder names sort by start time


def test_put_is_on_disk_immediately_without_close(tmp_path: Path) -> None:
    store = RunStore(tmp_path / "run")
    store.put(_resp("f1"))
    lines = _lines(tmp_path / "run")  # read before close(): nothing may wait in a buffer
    assert len(lines) == 1 and Response.from_dict(json.loads(lines[0])) == _resp("f1")
    assert (tmp_path / "run" / "responses" / "old.main.jsonl").is_file()
    store.close()


def test_one_file_per_endpoint_and_writer(tmp_path: Path, stores: Callable[..., RunStore]) -> None:
    a, b = stores(writer="gw0"), stores(writer="gw1")
    a.put(_resp("f1"))
    a.put(_resp("f2", endpoint="new"))
    b.put(_resp("f3", endpoint="team/model"))
    names = sorted(p.name for p in (tmp_path / "responses").iterdir())
    assert names == ["new.gw0.jsonl", "old.gw0.jsonl", "team_model.gw1.jsonl"]


def test_reload_shares_answers_between_writers_and_runs(stores: Callable[..., RunStore]) -> None:
    first = stores(writer="gw0")
    first.put(_resp("f1"))
    first.put(_resp("f1", repeat=1, text="second sample"))
    other = stores(writer="gw1")  # another worker starting later sees them
    assert other.get("old", "f1") == _resp("f1")
    assert other.get("old", "f1", repeat=1).text == "second sample"  # type: ignore[union-attr]
    assert other.get("new", "f1") is None and other.get("old", "f2") is None
    first.put(_resp("f2"))
    assert other.get("old", "f2") is None
    assert other.reload() == 1 and other.get("old", "f2") == _resp("f2")
    assert {r.fingerprint for r in other.all()} == {"f1", "f2"}


def test_failed_answers_are_kept_but_not_reused(stores: Callable[..., RunStore]) -> None:
    store = stores()
    store.put(_resp("f1", fault="unavailable_503"))
    assert store.get("old", "f1") is None  # in memory ...
    assert stores(writer="resumed").get("old", "f1") is None  # ... and after a resume: ask again
    assert [r.fault for r in store.all()] == ["unavailable_503"]  # still reported
    store.put(_resp("f1"))
    assert store.get("old", "f1") == _resp("f1")
    assert stores(writer="resumed-again").get("old", "f1") == _resp("f1")


def test_a_success_wins_over_a_failure_in_any_file_order(stores: Callable[..., RunStore]) -> None:
    ok_first, fail_later = stores(writer="a"), stores(writer="b")
    ok_first.put(_resp("f1"))
    fail_later.put(_resp("f1", fault="timeout"))
    assert stores(writer="c").get("old", "f1") == _resp("f1")


def test_secrets_are_redacted_on_disk(tmp_path: Path, stores: Callable[..., RunStore]) -> None:
    store = stores(redactor=Redactor(["hunter2-secret"]))
    store.put(_resp("f1", text="echo: hunter2-secret, Bearer abcdefgh12345"))
    line = _lines(tmp_path)[0]
    assert "hunter2-secret" not in line and "abcdefgh12345" not in line and line.count(MASK) == 2


# ---------------------------------------------------------------- killed runs


@settings(max_examples=30, deadline=None)
@given(cut=st.integers(min_value=1), n=st.integers(1, 4))
def test_a_last_line_cut_anywhere_is_skipped(tmp_path_factory: pytest.TempPathFactory, cut: int, n: int) -> None:
    run = tmp_path_factory.mktemp("killed")
    store = RunStore(run)
    for i in range(n):
        store.put(_resp(f"f{i}", text=f"回答{i}：定金条款"))  # CJK: a cut may land inside a character
    store.close()
    path = run / "responses" / "old.main.jsonl"
    data = path.read_bytes()
    last_start = data.rstrip(b"\n").rfind(b"\n") + 1
    keep = last_start + cut % (len(data) - 1 - last_start)  # cut inside the last line (before its newline)
    path.write_bytes(data[:keep])

    resumed = RunStore(run)  # reading only: nothing opened yet
    assert {r.fingerprint for r in resumed.all()} == {f"f{i}" for i in range(n - 1)}
    assert resumed.get("old", f"f{n - 1}") is None  # that request was in flight: ask again
    # the resumed run appends its answer: it must not be glued onto the cut-off line
    resumed.put(_resp(f"f{n - 1}"))
    resumed.close()
    assert {r.fingerprint for r in RunStore(run).all()} == {f"f{i}" for i in range(n)}


def test_garbage_and_blank_lines_are_skipped(tmp_path: Path, stores: Callable[..., RunStore]) -> None:
    store = RunStore(tmp_path)
    store.put(_resp("f1"))
    store.close()
    with (tmp_path / "responses" / "old.main.jsonl").open("a", encoding="utf-8") as fh:
        fh.write('\n{"endpoint": "old"}\n[1, 2]\nnot json\n')
    assert {r.fingerprint for r in stores().all()} == {"f1"}
