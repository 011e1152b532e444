"""Golden ``extra_body``: engine-specific request fields — validated, merged over set defaults, sent verbatim, part of
both fingerprints (answers are never reused across different extra bodies) and of recordings' provenance."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from conformance.endpoints.config import EndpointConfig
from conformance.endpoints.openai import OpenAIEndpoint
from conformance.endpoints.recorded import RecordedEndpoint
from conformance.errors import GoldenError
from conformance.goldens.loader import load_set, schema_errors
from conformance.goldens.model import Case
from conformance.goldens.yamlsource import read_yaml
from conformance.recordings import entry, write_recordings
from conformance.redact import Redactor
from conformance.testing.faultserver import FaultServer
from tests.conftest import line_no

CHOICE = {"structured_outputs": {"choice": ["正面", "负面"]}}

SET = """\
set: labels
owner: "@cx-analytics"
defaults:
  params: {temperature: 0, max_tokens: 8}
  extra_body: {structured_outputs: {choice: [正面, 负面]}, priority: 1}
cases:
  - id: inherits
    prompt: 物流太慢了。
  - id: overrides-one-key
    prompt: 物流很快。
    extra_body: {priority: 5}
  - id: plain
    prompt: 你好
    extra_body: {structured_outputs: {regex: "[0-9]+"}}
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "goldens" / "sentiment" / "labels.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def _case(extra: dict[str, object] | None = None) -> Case:
    return Case(system="s", set_name="t", id="c1", messages=({"role": "user", "content": "物流太慢了。"},),
                params={"temperature": 0, "max_tokens": 8, "seed": 42}, extra_body=dict(extra or {}))


def test_set_defaults_merge_key_by_key(tmp_path: Path) -> None:
    inherits, overrides, plain = load_set(_write(tmp_path, SET)).cases
    assert inherits.extra_body == {**CHOICE, "priority": 1}
    assert overrides.extra_body == {**CHOICE, "priority": 5}
    assert plain.extra_body == {"structured_outputs": {"regex": "[0-9]+"}, "priority": 1}


def test_fields_sit_at_the_top_level_of_the_request() -> None:
    body = _case(CHOICE).request()
    assert body["structured_outputs"] == CHOICE["structured_outputs"] and "extra_body" not in body
    assert set(_case().request()) == {"messages", "temperature", "max_tokens", "seed"}


def test_extra_body_is_part_of_both_fingerprints() -> None:
    plain, choice = _case(), _case(CHOICE)
    other = _case({"structured_outputs": {"choice": ["负面", "正面"]}})
    assert len({plain.fingerprint, choice.fingerprint, other.fingerprint}) == 3
    assert len({plain.prompt_fingerprint, choice.prompt_fingerprint, other.prompt_fingerprint}) == 3
    assert _case(dict(CHOICE)).fingerprint == choice.fingerprint
    assert choice.sampling_params == plain.sampling_params  # not a sampling param: a different *request*


@pytest.mark.parametrize("field", ["temperature", "tool_choice", "response_format", "messages", "stream", "top_k"])
def test_standard_fields_are_refused_at_their_line(tmp_path: Path, field: str) -> None:
    text = SET.replace("extra_body: {priority: 5}", f"extra_body: {{{field}: 1}}")
    errors = schema_errors(read_yaml(_write(tmp_path, text)), "golden-set.schema.json")
    assert [(e.line, e.message) for e in errors] == [(
        line_no(text, f"{field}: 1"),
        f"cases.1.extra_body: `{field}` is a standard request field: set it under `params` "
        "(`extra_body` is for engine-specific fields)",
    )]


@pytest.mark.parametrize(("value", "needle"), [("{}", "should be non-empty"), ("[1]", "is not of type 'object'"),
                                               ('{"bad key": 1}', "`bad key` is not a valid key here")])
def test_malformed_extra_body_is_a_golden_error(tmp_path: Path, value: str, needle: str) -> None:
    with pytest.raises(GoldenError) as info:
        load_set(_write(tmp_path, SET.replace("{priority: 5}", value)))
    assert needle in str(info.value) and info.value.line == line_no(SET, "{priority: 5}")


@pytest.fixture
def server() -> Iterator[FaultServer]:
    with FaultServer(models=["m"]) as srv:
        yield srv


def test_sent_verbatim_over_the_endpoints_own_extra_body(server: FaultServer) -> None:
    cfg = EndpointConfig(name="ep", base_url=server.base_url, model="m", max_retries=0,
                         extra_body={"priority": 9, "ignore_eos": False})
    case = _case({**CHOICE, "priority": 1})

    async def go() -> None:
        async with OpenAIEndpoint(cfg) as ep:
            assert (await ep.complete(case)).ok

    asyncio.run(go())
    body = server.requests[-1].body
    assert body["structured_outputs"] == {"choice": ["正面", "负面"]}
    assert (body["priority"], body["ignore_eos"]) == (1, False)  # the case's value wins over the endpoint's


def test_recordings_carry_it_and_go_stale_when_it_changes(tmp_path: Path) -> None:
    from conformance.response import new_response

    case = _case(CHOICE)
    resp = new_response("old", case, 0)
    resp.text, resp.finish_reason, resp.status = "负面", "stop", 200
    line = entry(resp, case, "m")
    assert line["extra_body"] == CHOICE and "extra_body" not in entry(resp, _case(), "m")
    path = tmp_path / "old.jsonl"
    write_recordings(path, {"endpoint": "old"}, [line], Redactor([]))
    assert json.loads(path.read_text().splitlines()[1])["extra_body"] == CHOICE

    rec = RecordedEndpoint(path, "recorded:old")
    same = asyncio.run(rec.complete(case))
    changed = asyncio.run(rec.complete(dataclasses.replace(case, extra_body={"structured_outputs": {"choice": ["x"]}})))
    assert same.ok and same.text == "负面"
    assert changed.fault == "recording_stale" and "messages/tools/extra_body changed" in (changed.error or "")
