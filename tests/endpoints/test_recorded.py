"""Recordings: written atomically, read back per case, and never replayed when stale or made with other params."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conformance import recordings as recorded
from conformance.endpoints.recorded import RecordedEndpoint
from conformance.errors import RecordingError
from conformance.goldens.model import Case
from conformance.recordings import FORMAT, entry, read_recordings, write_recordings
from conformance.redact import MASK, Redactor
from conformance.response import Response, new_response


def _case(cid: str, content: str = "起草定金条款", **params: Any) -> Case:
    return Case(system="legal", set_name="s", id=cid, messages=({"role": "user", "content": content},),
                params={"temperature": 0, "max_tokens": 64, "seed": 42, **params})


CASES = [_case("b-case"), _case("a-case", "What's the weather?"), _case("c-case", response_format={"type": "text"})]


def _answer(case: Case, text: str) -> Response:
    resp = new_response("old", case)
    resp.text, resp.model, resp.server, resp.e2e_ms, resp.finish_reason = text, "old-model", "vllm", 12.5, "stop"
    resp.created_at = "2026-11-23T12:00:00+00:00"
    return resp


def _record(path: Path, cases: list[Case], redactor: Redactor | None = None) -> None:
    entries = [entry(_answer(c, f"答复 {c.id}"), c, "served-model") for c in cases]
    write_recordings(path, {"endpoint": "old", "model": "served-model"}, entries, redactor or Redactor())


def _complete(ep: RecordedEndpoint, case: Case, repeat: int = 0) -> Response:
    return asyncio.run(ep.complete(case, repeat))


@pytest.fixture
def rec(tmp_path: Path) -> Path:
    path = tmp_path / "goldens" / "legal" / "recordings" / "old.jsonl"
    _record(path, CASES)
    return path


# ---------------------------------------------------------------- the file


def test_entry_is_provenance_stamped() -> None:
    case = CASES[2]
    e = entry(_answer(case, "x"), case, "served-model")
    assert (e["case_id"], e["fingerprint"], e["prompt_fingerprint"]) == (
        case.id, case.fingerprint, case.prompt_fingerprint)
    assert e["params"] == case.sampling_params and "response_format" not in e["params"]
    assert (e["seed"], e["model"], e["server"], e["endpoint"]) == (42, "served-model", "vllm", "old")
    assert e["recorded_at"] == "2026-11-23T12:00:00+00:00"
    assert Response.from_dict(e["response"]) == _answer(case, "x")
    assert entry(_answer(case, "x"), case, None)["model"] == "old-model"  # falls back to what the answer said


def test_file_layout_meta_first_then_cases_sorted_by_id(rec: Path) -> None:
    lines = [json.loads(line) for line in rec.read_text(encoding="utf-8").splitlines()]
    assert lines[0] == {"_meta": {"format": FORMAT, "endpoint": "old", "model": "served-model"}}
    assert [line["case_id"] for line in lines[1:]] == sorted(c.id for c in CASES)
    assert "答复 a-case" in rec.read_text(encoding="utf-8")  # reviewable in a PR diff: CJK is not escaped


def test_read_back(rec: Path) -> None:
    meta, recs = read_recordings(rec)
    assert meta["endpoint"] == "old"
    assert set(recs) == {c.id for c in CASES}
    r = recs["a-case"]
    assert (r.fingerprint, r.prompt_fingerprint, r.model) == (CASES[1].fingerprint, CASES[1].prompt_fingerprint,
                                                              "served-model")
    assert r.response["text"] == "答复 a-case"


def test_secrets_are_redacted_before_the_file_is_written(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    case = CASES[0]
    e = entry(_answer(case, "the key is sk-live-ABCDEFGH12345678 and tok3n-value"), case, None)
    write_recordings(path, {}, [e], Redactor(["tok3n-value"]))
    text = path.read_text(encoding="utf-8")
    assert "sk-live-ABCDEFGH12345678" not in text and "tok3n-value" not in text
    assert text.count(MASK) == 2
    read_recordings(path)  # still valid JSON lines


def test_a_failed_write_leaves_the_old_file_and_no_temporary(rec: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    before = rec.read_bytes()

    def disk_full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(recorded.os, "fsync", disk_full)
    with pytest.raises(OSError, match="No space"):
        _record(rec, CASES[:1])
    assert rec.read_bytes() == before
    assert sorted(p.name for p in rec.parent.iterdir()) == [rec.name]


def test_the_new_file_appears_by_one_rename_in_the_same_folder(rec: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    before = rec.read_bytes()
    seen: list[tuple[Path, bytes]] = []
    real_replace = os.replace

    def spy(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        seen.append((Path(src), Path(dst).read_bytes()))  # the target is still complete and old right before
        real_replace(src, dst)

    monkeypatch.setattr(recorded.os, "replace", spy)
    _record(rec, CASES[:1])
    ((src, target_then),) = seen
    assert src.parent == rec.parent and src != rec
    assert target_then == before
    assert set(read_recordings(rec)[1]) == {CASES[0].id}
    assert sorted(p.name for p in rec.parent.iterdir()) == [rec.name]


def test_missing_and_corrupt_files(tmp_path: Path, rec: Path) -> None:
    with pytest.raises(RecordingError, match="no recordings at"):
        read_recordings(tmp_path / "none.jsonl")
    with rec.open("a", encoding="utf-8") as fh:
        fh.write("\n")  # blank lines are fine
        fh.write('{"case_id": "x", "fingerprint": "f"}\n')
    n = len(rec.read_text(encoding="utf-8").splitlines())
    with pytest.raises(RecordingError, match=rf"{rec.name}:{n}: corrupt recording line"):
        read_recordings(rec)


@settings(max_examples=40, deadline=None)
@given(st.binary(max_size=40))
def test_garbage_lines_are_recording_errors(tmp_path_factory: pytest.TempPathFactory, junk: bytes) -> None:
    path = tmp_path_factory.mktemp("junk") / "r.jsonl"
    _record(path, CASES[:1])
    with path.open("ab") as fh:
        fh.write(junk.replace(b"\n", b" ") + b"\n")
    try:
        _, recs = read_recordings(path)
    except RecordingError as exc:
        assert f"{path}:3: corrupt recording line" in str(exc)  # meta, one case, then the junk
    else:
        assert set(recs) == {CASES[0].id}  # junk that is valid JSON (or blank) must not add a recording


# ---------------------------------------------------------------- replay per case


def test_a_matching_recording_is_replayed(rec: Path) -> None:
    ep = RecordedEndpoint(rec, "old")
    case = CASES[1]
    resp = _complete(ep, case, repeat=2)
    assert resp.ok and resp.text == "答复 a-case"
    assert (resp.endpoint, resp.source, resp.repeat, resp.fingerprint) == ("old", "recorded", 2, case.fingerprint)
    assert resp.model == "old-model" and resp.e2e_ms == 12.5  # the recorded answer, timings included


def test_a_missing_case_is_a_recording_missing_fault(rec: Path) -> None:
    resp = _complete(RecordedEndpoint(rec, "old"), _case("new-case"))
    assert (resp.ok, resp.fault, resp.source) == (False, "recording_missing", "recorded")
    assert "'new-case'" in (resp.error or "") and str(rec) in (resp.error or "")
    assert resp.text is None


@pytest.mark.parametrize(
    "change",
    [
        {"messages": ({"role": "user", "content": "起草违约金条款"},)},
        {"tools": ({"type": "function", "function": {"name": "f"}},)},
        {"params": {"temperature": 0, "max_tokens": 64, "seed": 42, "response_format": {"type": "json_object"}}},
        {"params": {"temperature": 0, "max_tokens": 64, "seed": 42, "stop": ["。"]}},
    ],
)
def test_a_changed_prompt_makes_the_recording_stale(rec: Path, change: dict[str, Any]) -> None:
    case = dataclasses.replace(CASES[0], **change)
    resp = _complete(RecordedEndpoint(rec, "old"), case)
    assert resp.fault == "recording_stale" and not resp.ok
    assert "stale" in (resp.error or "") and case.prompt_fingerprint in (resp.error or "")


@pytest.mark.parametrize("param", [{"temperature": 0.7}, {"seed": 7}, {"max_tokens": 65}, {"top_p": 0.9}])
def test_other_sampling_params_are_refused(rec: Path, param: dict[str, Any]) -> None:
    case = _case("b-case", **param)
    assert case.prompt_fingerprint == CASES[0].prompt_fingerprint  # same prompt ...
    resp = _complete(RecordedEndpoint(rec, "old"), case)
    assert resp.fault == "recording_params" and not resp.ok  # ... but not comparable
    assert "refusing to compare" in (resp.error or "")


def test_stale_lists_changed_cases_and_orphans(rec: Path) -> None:
    ep = RecordedEndpoint(rec, "old")
    assert ep.stale(CASES) == []
    now = [dataclasses.replace(CASES[0], messages=({"role": "user", "content": "changed"},)), CASES[1],
           _case("brand-new")]
    assert ep.stale(now) == ["b-case", "c-case (orphan: case deleted)"]
    asyncio.run(ep.aclose())
