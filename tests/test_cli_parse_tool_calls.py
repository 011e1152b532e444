"""``conformance parse-tool-calls``: one answer in, ``{"calls", "defects"}`` JSON out; exit 0 / 1 fatal / 2 usage."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from conformance import toolparse_cli
from conformance.cli import main

TOOLS = [{"type": "function", "function": {"name": "ship", "parameters": {"type": "object", "properties": {
    "weight": {"type": "number"}, "tags": {"type": "array"}, "express": {"type": "boolean"}}}}}]
XML = ("Shipping now.\n<tool_call>\n<function=ship>\n<parameter=weight>\n5.0\n</parameter>\n<parameter=tags>\n"
       "['fragile']\n</parameter>\n</function>\n</tool_call>")


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, Any, str]:
    code = main(["parse-tool-calls", *argv])
    out = capsys.readouterr()
    return code, json.loads(out.out) if out.out else None, out.err


def _file(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_xml_values_follow_the_tools_schemas(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    answer, tools = _file(tmp_path, "a.txt", XML), _file(tmp_path, "tools.json", json.dumps(TOOLS))
    code, out, _ = _run(capsys, "--tools", tools, answer)
    assert code == 0 and out == {"calls": [{"name": "ship", "arguments": {"weight": 5, "tags": ["fragile"]}}],
                                 "defects": []}
    code, out, _ = _run(capsys, "--format", "qwen3_xml", answer)  # no schemas: XML values stay text, as in vLLM
    assert code == 0 and out["calls"][0]["arguments"] == {"weight": "5.0", "tags": "['fragile']"}


def test_a_request_body_can_serve_as_the_tools_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tools = _file(tmp_path, "req.json", json.dumps({"model": "m", "messages": [], "tools": TOOLS}))
    code, out, _ = _run(capsys, "--tools", tools, _file(tmp_path, "a.txt", XML))
    assert code == 0 and out["calls"][0]["arguments"]["weight"] == 5


def test_fatal_defect_exits_1_and_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    answer = _file(tmp_path, "a.txt", '<tool_call>{"name": "ship", "parameters": {"weight": 2}}</tool_call>')
    code, out, _ = _run(capsys, "--format", "hermes", answer)
    assert code == 1
    assert out["defects"] == [{"code": "parameters_key", "fatal": True, "message": out["defects"][0]["message"]}]
    assert "no calls at all" in out["defects"][0]["message"]


def test_native_message_and_markup_left_in_its_content(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    message = {"role": "assistant", "content": '<tool_call>{"name": "ship", "arguments": {}}</tool_call>',
               "tool_calls": [{"id": "c1", "type": "function",
                               "function": {"name": "ship", "arguments": '{"weight": 1.5}'}}]}
    code, out, _ = _run(capsys, "--format", "native", _file(tmp_path, "m.json", json.dumps(message)))
    assert code == 0 and out["calls"] == [{"name": "ship", "arguments": {"weight": 1.5}}]
    assert [d["code"] for d in out["defects"]] == ["calls_in_content"]
    response = {"choices": [{"index": 0, "message": message, "finish_reason": "tool_calls"}]}
    code, out, _ = _run(capsys, _file(tmp_path, "r.json", json.dumps(response)))  # auto: a response is a message
    assert code == 0 and [c["arguments"] for c in out["calls"]] == [{"weight": 1.5}, {}]
    assert [d["code"] for d in out["defects"]] == ["mixed_formats"]


def test_stdin_and_non_finite_numbers_print_as_json(capsys: pytest.CaptureFixture[str],
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    text = '<tool_call>{"name": "ship", "arguments": {"weight": NaN}}</tool_call>'
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(text.encode())))
    code, out, _ = _run(capsys, "-")
    assert code == 1 and out["calls"][0]["arguments"] == {"weight": "NaN"}
    assert [d["code"] for d in out["defects"]] == ["nan"]


@pytest.mark.parametrize(("argv", "files", "message"), [
    (["missing.txt"], {}, "cannot read input"),
    (["--format", "native", "a.txt"], {"a.txt": "not json"}, "is not valid JSON"),
    (["--format", "native", "a.txt"], {"a.txt": "[1, 2]"}, "reads an assistant message as JSON"),
    (["--tools", "t.json", "a.txt"], {"a.txt": "hi", "t.json": "{oops"}, "tools file 't.json' is not valid JSON"),
    (["--tools", "t.json", "a.txt"], {"a.txt": "hi", "t.json": '{"tools": 3}'}, "must hold an OpenAI tools array"),
    (["a.txt"], {"a.txt": b"\xff\xfe\xfa"}, "is not UTF-8 text"),
])
def test_usage_errors_exit_2_with_one_message(argv: list[str], files: dict[str, Any], message: str,
                                              tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    for name, content in files.items():
        (tmp_path / name).write_bytes(content if isinstance(content, bytes) else content.encode())
    monkeypatch.chdir(tmp_path)
    code, out, err = _run(capsys, *argv)
    assert code == 2 and out is None and message in err and "Traceback" not in err


def test_oversized_input_is_refused_before_parsing(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(toolparse_cli, "MAX_INPUT_BYTES", 64)
    code, _, err = _run(capsys, _file(tmp_path, "big.txt", "<tool_call>" + "x" * 100))
    assert code == 2 and "larger than" in err and "cut it down" in err


def test_unknown_format_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["parse-tool-calls", "--format", "json", "-"])
    assert exc.value.code == 2 and "invalid choice" in capsys.readouterr().err
