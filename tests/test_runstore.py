"""RunStore: every answer appended and flushed at once, fsynced at most once a second and on close; a killed
run's cut-off last line is skipped on resume; failed answers are never reused; the stored line is byte for byte
the redacted JSON of the response."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conformance import runstore
from conformance.redact import MASK, Redactor
from conformance.response import Attempt, Response
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


# ---------------------------------------------------------------- durability: flush per answer, bounded fsync


class _Clock:
    """``time`` as conformance.runstore sees it, advanced by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


@pytest.fixture
def fsyncs(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Every fd ``os.fsync`` is called with (the real fsync still runs)."""
    calls: list[int] = []
    real = os.fsync

    def counting(fd: int) -> None:
        calls.append(fd)
        real(fd)

    monkeypatch.setattr(os, "fsync", counting)
    return calls


def test_rapid_puts_fsync_at_most_once_per_interval_and_on_close(tmp_path: Path, fsyncs: list[int]) -> None:
    store = RunStore(tmp_path)
    for i in range(200):
        store.put(_resp(f"f{i}", endpoint=("old", "new")[i % 2]))
        assert len(_lines(tmp_path)) == i + 1  # every answer written and flushed at once, fsync or not
    # The first answer is synced at once; the 199 others arrive well within FSYNC_INTERVAL_S of it. A machine so
    # slow that 200 puts take seconds may sync once more per second elapsed, never once per answer.
    assert 1 <= len(fsyncs) <= 4
    before_close = len(fsyncs)
    store.close()
    assert len(fsyncs) == before_close + 2  # both files: answers since the last fsync reach the disk
    assert len(_lines(tmp_path)) == 200


def test_fsync_interval_follows_the_clock(tmp_path: Path, fsyncs: list[int], monkeypatch: pytest.MonkeyPatch) -> None:
    clock = _Clock()
    monkeypatch.setattr(runstore, "time", clock)
    store = RunStore(tmp_path)
    store.put(_resp("f0"))
    assert len(fsyncs) == 1
    for i in range(1, 30):  # 29 answers 0.1 s apart: an fsync each second (answers 10 and 20), not each answer
        clock.now += 0.1
        store.put(_resp(f"f{i}"))
    assert len(fsyncs) == 3
    store.close()
    assert len(fsyncs) == 4
    store.close()  # nothing written since: nothing to sync
    assert len(fsyncs) == 4


def test_a_synced_file_is_not_synced_again(tmp_path: Path, fsyncs: list[int], monkeypatch: pytest.MonkeyPatch) -> None:
    clock = _Clock()
    monkeypatch.setattr(runstore, "time", clock)
    store = RunStore(tmp_path)
    store.put(_resp("f0", endpoint="old"))
    clock.now += 5
    store.put(_resp("f1", endpoint="new"))  # only "new" has unsynced answers
    assert len(fsyncs) == 2 and fsyncs[0] != fsyncs[1]
    store.close()
    assert len(fsyncs) == 2


# ---------------------------------------------------------------- the JSON line: same bytes, cheaper


# Fragments that make the redactor act (a secret, "Bearer <token>", "sk-<key>") among characters JSON escapes.
_texts = st.lists(st.sampled_from([*"ab 定金\"\\\n\t\u2028", "Bearer ", "sk-", "hunter2-secret", "x" * 12]),
                  max_size=12).map("".join)


@settings(max_examples=80, deadline=None)
@given(text=st.none() | _texts, error=st.none() | _texts, usage=st.none() | st.dictionaries(st.text(max_size=5),
       st.integers() | st.floats(allow_nan=False)), n_attempts=st.integers(0, 3),
       tool_args=st.lists(_texts, max_size=2), ttft=st.none() | st.floats(allow_nan=False, allow_infinity=False))
def test_stored_line_is_the_redacted_json_of_to_dict(tmp_path_factory: pytest.TempPathFactory, text: str | None,
                                                      error: str | None, usage: dict[str, Any] | None,
                                                      n_attempts: int, tool_args: list[str],
                                                      ttft: float | None) -> None:
    """Readers see exactly what ``redactor(json.dumps(resp.to_dict(), ensure_ascii=False))`` wrote before the
    shallow serialisation — including when a secret or a token-looking string is in any field."""
    resp = Response(endpoint="ep", system="s", case_id="c", fingerprint="f", prompt_fingerprint="p", text=text,
                    error=error, usage=usage, ttft_ms=ttft, params={"temperature": 0, "top_k": [1, (2, 3)]},
                    tool_calls=[{"id": None, "type": "function", "function": {"name": "f", "arguments": a}}
                                for a in tool_args],
                    attempts=[Attempt(n=i + 1, elapsed_ms=1.5, error=error) for i in range(n_attempts)])
    assert resp.to_json() == json.dumps(resp.to_dict(), ensure_ascii=False)
    redactor = Redactor(["hunter2-secret"])
    run = tmp_path_factory.mktemp("line")
    store = RunStore(run, redactor=redactor)
    store.put(resp)
    store.close()
    written = (run / "responses" / "ep.main.jsonl").read_text("utf-8")  # not splitlines(): U+2028 is no newline
    assert written == redactor(json.dumps(resp.to_dict(), ensure_ascii=False)) + "\n"
