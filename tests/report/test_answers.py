"""responses/ as the report reads it: which record a key resolves to, and pyarrow's reader agreeing with json's."""

from __future__ import annotations

import gc
import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from conformance.report import answers as answers_module
from conformance.report.answers import Answers, read_responses
from conformance.report.gcpause import gc_paused
from tests.report.runfolder import build_run


def _rec(case_id: str, text: str | None, *, fp: str = "fp", system: str = "legal", repeat: int = 0,
         fault: str | None = None, **extra: Any) -> dict[str, Any]:
    return {"endpoint": "ep", "system": system, "case_id": case_id, "fingerprint": fp, "repeat": repeat,
            "text": text, "fault": fault, "ttft_ms": None if fault else 100.0, "e2e_ms": None if fault else 800.0,
            **extra}


def _write(folder: Path, name: str, lines: list[Any]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text("".join(x if isinstance(x, str) else json.dumps(x, ensure_ascii=False) + "\n"
                                       for x in lines), encoding="utf-8")


def _json_only(folder: Path, monkeypatch: pytest.MonkeyPatch) -> Answers:
    with monkeypatch.context() as m:
        m.setattr(answers_module, "_read_arrow", lambda path: None)
        return read_responses(folder)


def _same(a: Answers, b: Answers) -> None:
    pd.testing.assert_frame_equal(a.frame(), b.frame())
    assert dict(a.items()) == dict(b.items())
    assert a._by_fingerprint == b._by_fingerprint


def test_repeat_zero_then_an_answer_then_the_earlier_line(tmp_path: Path) -> None:
    _write(tmp_path, "ep.main.jsonl", [
        _rec("c1", None, fault="timeout"),  # a resumed run asked again after this failure...
        _rec("c1", "answer", repeat=1),  # ...a noise-floor pass...
        _rec("c1", "second answer"),  # ...and the answer the test used
        _rec("c1", "later duplicate"),
    ])
    got = read_responses(tmp_path)
    assert len(got) == 1 and got[("ep", "legal", "c1")]["text"] == "second answer"
    assert got.find("ep", "legal", "c1", "fp")["text"] == "second answer"  # type: ignore[index]


def test_the_fingerprint_finds_the_request_the_test_saw(tmp_path: Path) -> None:
    """A golden edited before ``--resume`` (or a prompt perturbation) leaves two answers to one case id."""
    _write(tmp_path, "ep.main.jsonl", [_rec("c1", "answer to the old prompt", fp="old"),
                                       _rec("c1", "answer to the new prompt", fp="new")])
    got = read_responses(tmp_path)
    assert got.find("ep", "legal", "c1", "new")["text"] == "answer to the new prompt"  # type: ignore[index]
    assert got.find("ep", "legal", "c1")["text"] == "answer to the old prompt"  # type: ignore[index]
    assert got.find("ep", "legal", "c1", "unknown") is None


def test_a_case_id_is_unique_per_system_only(tmp_path: Path) -> None:
    _write(tmp_path, "ep.main.jsonl", [_rec("q1", "legal answer", fp="a"),
                                       _rec("q1", "routing answer", fp="b", system="routing")])
    got = read_responses(tmp_path)
    assert got.find("ep", "legal", "q1")["text"] == "legal answer"  # type: ignore[index]
    assert got.find("ep", "routing", "q1")["text"] == "routing answer"  # type: ignore[index]
    assert sorted(got.frame()["system"]) == ["legal", "routing"]  # both count in the latency section


def test_odd_files_read_the_same_with_and_without_pyarrow(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("pyarrow")
    folder = tmp_path / "responses"
    recs = [_rec("c1", "定金 answer"), _rec("c2", None, fault="timeout"), _rec("c3", "x", fp="f3", repeat=1000)]
    line = json.dumps(recs[0], ensure_ascii=False)
    _write(folder, "a.main.jsonl", [*recs, "\n", '{"endpoint": "cut-short-by-a-ki'])  # a killed writer's tail
    _write(folder, "b.gw0.jsonl", ["\ufeff" + line + "\r\n", "[1]\n", '"x"\n', line + "\n"])  # BOM, CRLF, no dicts
    bad = json.dumps(_rec("c4", "BAD", fp="f4")).encode().replace(b"BAD", b"\xff")  # bad UTF-8 in a text
    (folder / "c.gw1.jsonl").write_bytes(bad + b"\n")
    _write(folder, "d.main.jsonl", ['{"endpoint": null, "case_id": "z"}\n', '{"case_id": "no endpoint"}\n'])
    _write(folder, "e.main.jsonl", [{"endpoint": "e", "case_id": "n", "repeat": True, "system": 5},
                                    {"endpoint": "e", "case_id": "s", "ttft_ms": "12", "fingerprint": 7}])
    _write(folder, "f.main.jsonl", ['{"endpoint": "e", "case_id": "m", "usage": {"a": 1}\n', recs[1]])
    (folder / "g.main.jsonl").write_bytes(b'{"endpoint": "e", "case_id": "cr",\r"system": "s"}\n')  # 2 lines to json
    fast = read_responses(folder)
    assert [answers_module._read_arrow(p) is not None for p in sorted(folder.iterdir())] == [
        True, True, True, False, False, False, False]  # the last four only the json reader reads as it must
    _same(fast, _json_only(folder, monkeypatch))
    assert fast.find("ep", "legal", "c1", "fp")["text"] == "定金 answer"  # type: ignore[index]
    assert ("None", "", "z") in fast and ("e", "5", "n") in fast and ("e", "s", "cr") not in fast


def test_a_run_folder_reads_the_same_with_and_without_pyarrow(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    run = build_run(tmp_path / "run")
    _same(read_responses(run / "responses"), _json_only(run / "responses", monkeypatch))


def test_records_and_an_empty_folder(tmp_path: Path) -> None:
    assert len(read_responses(tmp_path / "missing")) == 0 and read_responses(tmp_path).frame().empty
    got = Answers.from_records([_rec("c1", "t"), "not a record", {"case_id": "no endpoint"}])
    assert list(got) == [("ep", "legal", "c1")]


def test_gc_paused_restores_the_collector_even_on_error() -> None:
    assert gc.isenabled()
    with pytest.raises(RuntimeError), gc_paused():
        with gc_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # only the outermost pause turns it back on
        raise RuntimeError
    assert gc.isenabled()
