"""loader + model: schema validation with path:line errors, defaults, unique ids, and request fingerprints."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from conformance.errors import GoldenError
from conformance.goldens.loader import build_set, load_set, load_system, schema_errors, set_files
from conformance.goldens.model import DEFAULT_PARAMS, Case, Expect, canonical_json, digest
from conformance.goldens.yamlsource import parse_yaml
from tests.conftest import GOOD_SET, Repo, line_no, mutated_golden

MINIMAL = """\
set: minimal
owner: "@team"
cases:
  - id: only
    prompt: Hello?
"""


def _write(tmp_path: Path, text: str, name: str = "set.yaml", system: str = "legal") -> Path:
    path = tmp_path / "goldens" / system / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def _error(tmp_path: Path, text: str) -> GoldenError:
    path = _write(tmp_path, text)
    with pytest.raises(GoldenError) as info:
        load_set(path)
    assert info.value.path == str(path)
    return info.value


# ---------------------------------------------------------------- a good set, defaults applied


def test_good_set_loads_with_defaults_applied(repo: Repo) -> None:
    path = repo.goldens / "deposit.yaml"
    gset = load_set(path)
    raw = yaml.safe_load(GOOD_SET)
    defaults = raw["defaults"]
    assert (gset.system, gset.name, gset.owner, gset.path) == ("legal", raw["set"], raw["owner"], path)
    assert gset.description == raw["description"]
    assert [c.id for c in gset.cases] == [c["id"] for c in raw["cases"]]

    deposit, weather, q3 = gset.cases
    system_msg = {"role": "system", "content": defaults["system"]}
    # the set's system prompt goes first where a case has none ...
    assert deposit.messages == (system_msg, *raw["cases"][0]["messages"])
    # ... `prompt:` is shorthand for one user message ...
    assert weather.messages == (system_msg, {"role": "user", "content": raw["cases"][1]["prompt"]})
    # ... and a case with its own system message keeps it alone
    assert q3.messages == tuple(raw["cases"][2]["messages"])

    # params: packaged defaults < set defaults < case params
    assert deposit.params == {**DEFAULT_PARAMS, **defaults["params"]}
    assert q3.params == {**DEFAULT_PARAMS, **defaults["params"], **raw["cases"][2]["params"]}
    # tags: set defaults first, then the case's, each once
    assert deposit.tags == tuple(defaults["tags"])
    assert q3.tags == tuple(dict.fromkeys([*defaults["tags"], *raw["cases"][2]["tags"]]))

    assert weather.tools == tuple(raw["cases"][1]["tools"])
    assert deposit.tools == ()
    assert deposit.expect.terms_required == tuple(raw["cases"][0]["expect"]["terms"]["required"])
    assert deposit.expect.terms_forbidden == tuple(raw["cases"][0]["expect"]["terms"]["forbidden"])
    assert weather.expect.tool_calls == tuple(raw["cases"][1]["expect"]["tool_calls"])
    assert q3.expect.json_schema == raw["cases"][2]["expect"]["json_schema"]

    for case, needle in zip(gset.cases, ("id: deposit-20pct", "id: weather-paris", "id: q3-summary"), strict=True):
        assert case.line == line_no(GOOD_SET, needle)
        assert case.location == f"{path}:{case.line}"
        assert (case.system, case.set_name, case.path) == ("legal", raw["set"], path)


def test_packaged_default_params_apply_without_set_defaults(tmp_path: Path) -> None:
    (case,) = load_set(_write(tmp_path, MINIMAL)).cases
    assert case.params == DEFAULT_PARAMS
    assert case.messages == ({"role": "user", "content": "Hello?"},)
    assert case.expect == Expect()


def test_default_tools_apply_unless_a_case_opts_out(tmp_path: Path) -> None:
    text = MINIMAL.replace("cases:", "defaults:\n  tools: [{type: function, function: {name: f}}]\ncases:") + (
        "  - id: own\n    prompt: x\n    tools: [{type: function, function: {name: g}}]\n"
        "  - id: none\n    prompt: x\n    tools: []\n"
    )
    only, own, none = load_set(_write(tmp_path, text)).cases
    assert [t["function"]["name"] for t in only.tools] == ["f"]
    assert [t["function"]["name"] for t in own.tools] == ["g"]
    assert none.tools == ()


def test_developer_message_counts_as_a_system_message(tmp_path: Path) -> None:
    text = MINIMAL.replace("cases:", "defaults: {system: S}\ncases:").replace(
        "prompt: Hello?", "messages: [{role: developer, content: D}, {role: user, content: U}]")
    (case,) = load_set(_write(tmp_path, text)).cases
    assert [m["role"] for m in case.messages] == ["developer", "user"]


def test_system_defaults_to_the_folder_name_unless_given(tmp_path: Path) -> None:
    path = _write(tmp_path, MINIMAL, system="ticket_routing")
    assert load_set(path).system == "ticket_routing"
    assert load_set(path, "other").cases[0].system == "other"


def test_free_form_objects_stay_json(tmp_path: Path) -> None:
    """Tool schemas and expected arguments are free-form: YAML dates and integer keys must still fingerprint."""
    text = MINIMAL + (
        "    tools: [{type: function, function: {name: book, parameters: {type: object, properties: {d: {type: "
        "string, default: 2024-05-01}}}}, x-extension: {1: one}}]\n"
        "    expect: {tool_calls: [{name: book, arguments: {d: 2024-05-01}}]}\n"
    )
    (case,) = load_set(_write(tmp_path, text)).cases
    assert case.expect.tool_calls == ({"name": "book", "arguments": {"d": "2024-05-01"}},)
    assert len(case.fingerprint) == 16
    assert json.loads(json.dumps(case.request()))["tools"][0]["x-extension"] == {"1": "one"}


# ---------------------------------------------------------------- errors: path:line, first one raised


def test_duplicate_yaml_key_is_an_error_at_the_repetition(tmp_path: Path) -> None:
    text = MINIMAL + "    prompt: Again?\n"
    err = _error(tmp_path, text)
    assert err.line == line_no(text, "prompt:", occurrence=2)
    assert "duplicate key `prompt`" in err.message


@pytest.mark.parametrize(
    ("edit", "needle", "fragment"),
    [
        (("temperature: 0", "temperature: hot"), "temperature: hot", "temperature"),
        (("temperature: 0", "temperature: 3"), "temperature: 3", "temperature"),
        (("- id: weather-paris", "- id: weather paris"), "- id: weather paris", "id"),
        (("{role: user, content: 起草", "{role: robot, content: 起草"), "role: robot", "role"),
        (("    prompt: What's the weather in Paris?\n", "    prompt: W\n    messages: [{role: user}]\n"),
         "- id: weather-paris", "exactly one of `messages` or `prompt`"),
        (("      tool_calls: [{name: get_weather,", "      tool_calls: [{nom: get_weather,"),
         "tool_calls: [{nom", "name"),
    ],
)
def test_schema_violations_point_at_the_offending_line(
    tmp_path: Path, edit: tuple[str, str], needle: str, fragment: str
) -> None:
    text = GOOD_SET.replace(*edit)
    assert text != GOOD_SET
    err = _error(tmp_path, text)
    assert err.line == line_no(text, needle), err
    assert fragment in err.message


def test_missing_required_top_level_key(tmp_path: Path) -> None:
    err = _error(tmp_path, MINIMAL.replace('owner: "@team"\n', ""))
    assert err.line == 1
    assert "owner" in err.message


def test_unknown_expectation_key_is_named_with_its_line(tmp_path: Path) -> None:
    text = MINIMAL + "    expect: {lable: 正面}\n"
    err = _error(tmp_path, text)
    assert err.line == line_no(text, "lable")
    assert "lable" in err.message
    assert "label" in err.message.replace("lable", "")  # the key that was meant is suggested


def test_case_level_label_suggests_expect_label(tmp_path: Path) -> None:
    text = MINIMAL + "    label: 正面\n"
    err = _error(tmp_path, text)
    assert err.line == line_no(text, "label: 正面")
    assert "expect.label" in err.message


def test_empty_set_is_an_error(tmp_path: Path) -> None:
    text = 'set: empty\nowner: "@t"\ncases: []\n'
    err = _error(tmp_path, text)
    assert err.line == line_no(text, "cases:")
    assert "empty set" in err.message


def test_the_first_error_in_file_order_is_raised(tmp_path: Path) -> None:
    text = GOOD_SET.replace("temperature: 0", "temperature: -1").replace("- id: q3-summary", "- id: q3 summary")
    err = _error(tmp_path, text)
    assert err.line == line_no(text, "temperature: -1")
    doc = parse_yaml(text, "x.yaml")
    lines = [e.line for e in schema_errors(doc, "golden-set.schema.json")]
    assert lines == sorted(lines) and len(lines) == 2


@pytest.mark.parametrize("text", ["", "- a\n- b\n", "just a string\n"])
def test_a_document_that_is_not_a_mapping(tmp_path: Path, text: str) -> None:
    assert _error(tmp_path, text).line == 1


# ---------------------------------------------------------------- systems: several files, unique ids


def test_load_system_reads_sets_in_sorted_order_and_skips_glossaries(make_repo: Callable[..., Repo]) -> None:
    b = MINIMAL.replace("minimal", "b").replace("id: only", "id: b-only")
    a = MINIMAL.replace("minimal", "a").replace("id: only", "id: a-only")
    repo = make_repo(sets={"b.yaml": b, "a.yml": a, "glossary.yaml": "terms: []\n", "notes.txt": "x"})
    assert [p.name for p in set_files(repo.goldens)] == ["a.yml", "b.yaml"]
    assert [s.name for s in load_system(repo.goldens)] == ["a", "b"]


def test_duplicate_case_id_across_files_names_both_locations(make_repo: Callable[..., Repo]) -> None:
    other = MINIMAL.replace("id: only", "id: deposit-20pct")
    repo = make_repo(sets={"a.yaml": GOOD_SET, "b.yaml": other})
    with pytest.raises(GoldenError) as info:
        load_system(repo.goldens)
    err = info.value
    assert err.path == str(repo.goldens / "b.yaml")
    assert err.line == line_no(other, "id: deposit-20pct")
    assert f"{repo.goldens / 'a.yaml'}:{line_no(GOOD_SET, 'id: deposit-20pct')}" in err.message


def test_duplicate_case_id_within_one_file(tmp_path: Path) -> None:
    text = MINIMAL + "  - id: only\n    prompt: again\n"
    path = _write(tmp_path, text)
    with pytest.raises(GoldenError, match="duplicate case id") as info:
        load_system(path.parent)
    assert info.value.line == line_no(text, "id: only", occurrence=2)


def test_load_system_without_sets_or_folder(tmp_path: Path) -> None:
    with pytest.raises(GoldenError, match="not found"):
        load_system(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(GoldenError, match="no golden sets"):
        load_system(tmp_path / "empty")


# ---------------------------------------------------------------- malformed documents: only GoldenError


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("mutations") / "goldens" / "fuzz"


@settings(max_examples=40, deadline=None)
@given(text=mutated_golden())
def test_mutated_documents_raise_only_golden_errors_with_a_line_in_the_file(scratch: Path, text: str) -> None:
    path = _write(scratch.parents[1], text, "m.yaml", system="fuzz")
    n_lines = len(text.splitlines())
    try:
        gset = load_set(path)
    except GoldenError as exc:
        assert exc.path == str(path)
        assert exc.line is not None and 1 <= exc.line <= n_lines, (exc, text)
        return
    for case in gset.cases:  # whatever loads can be fingerprinted and sent
        assert 1 <= case.line <= n_lines
        assert len(case.fingerprint) == len(case.prompt_fingerprint) == 16
        json.dumps(case.request())


def test_build_set_accepts_every_valid_document_shape() -> None:
    doc = parse_yaml(GOOD_SET.replace("defaults:", "defaults_off:").replace("  system:", "  xsystem:"), "x.yaml")
    assert schema_errors(doc, "golden-set.schema.json")  # sanity: that edit is invalid ...
    doc = parse_yaml(MINIMAL, "x.yaml")
    assert not schema_errors(doc, "golden-set.schema.json")  # ... and this one is valid and builds
    assert build_set(doc, "s").cases[0].id == "only"


# ---------------------------------------------------------------- model: fingerprints


def _case(messages: list[dict[str, Any]], params: dict[str, Any], tools: list[dict[str, Any]] | None = None) -> Case:
    return Case(system="s", set_name="x", id="c", messages=tuple(messages), params=params, tools=tuple(tools or ()))


texts = st.text(max_size=20)
messages_st = st.lists(
    st.fixed_dictionaries({"role": st.sampled_from(["system", "user", "assistant"]), "content": texts}),
    min_size=1, max_size=4,
)
sampling_st = st.fixed_dictionaries(
    {},
    optional={
        "temperature": st.floats(0, 2), "seed": st.integers(0, 2**31), "max_tokens": st.integers(1, 4096),
        "top_p": st.floats(0.01, 1), "presence_penalty": st.floats(-2, 2),
    },
)
format_st = st.fixed_dictionaries(
    {},
    optional={
        "response_format": st.sampled_from([{"type": "json_object"}, {"type": "text"}]),
        "tool_choice": st.sampled_from(["auto", "none", "required"]),
        "stop": st.lists(texts, max_size=2), "parallel_tool_calls": st.booleans(),
    },
)


@settings(max_examples=80)
@given(messages_st, sampling_st, format_st, st.randoms(use_true_random=False))
def test_fingerprints_do_not_depend_on_key_order(
    messages: list[dict[str, Any]], sampling: dict[str, Any], fmt: dict[str, Any], rnd: Any
) -> None:
    def shuffled(d: dict[str, Any]) -> dict[str, Any]:
        items = list(d.items())
        rnd.shuffle(items)
        return dict(items)

    params = {**sampling, **fmt}
    a = _case(messages, params)
    b = _case([shuffled(m) for m in messages], shuffled(params))
    assert (a.fingerprint, a.prompt_fingerprint) == (b.fingerprint, b.prompt_fingerprint)


@settings(max_examples=80)
@given(messages_st, sampling_st, st.integers(0, 3), texts)
def test_fingerprints_change_when_the_messages_change(
    messages: list[dict[str, Any]], params: dict[str, Any], index: int, extra: str
) -> None:
    i = index % len(messages)
    changed = [dict(m) for m in messages]
    changed[i]["content"] = messages[i]["content"] + "!" + extra
    a, b = _case(messages, params), _case(changed, params)
    assert a.fingerprint != b.fingerprint
    assert a.prompt_fingerprint != b.prompt_fingerprint


@settings(max_examples=80)
@given(messages_st, sampling_st, sampling_st, format_st)
def test_prompt_fingerprint_ignores_sampling_params(
    messages: list[dict[str, Any]], s1: dict[str, Any], s2: dict[str, Any], fmt: dict[str, Any]
) -> None:
    a, b = _case(messages, {**s1, **fmt}), _case(messages, {**s2, **fmt})
    assert a.prompt_fingerprint == b.prompt_fingerprint
    assert (a.fingerprint == b.fingerprint) == (canonical_json(s1) == canonical_json(s2))
    assert a.sampling_params == s1


@pytest.mark.parametrize(
    ("key", "v1", "v2"),
    [
        ("response_format", {"type": "text"}, {"type": "json_object"}),
        ("tool_choice", "auto", "required"),
        ("stop", ["\n"], ["。"]),
        ("parallel_tool_calls", True, False),
    ],
)
def test_prompt_fingerprint_keeps_format_params(key: str, v1: Any, v2: Any) -> None:
    msgs = [{"role": "user", "content": "hi"}]
    a = _case(msgs, {"temperature": 0, key: v1})
    b = _case(msgs, {"temperature": 0, key: v2})
    c = _case(msgs, {"temperature": 0})
    assert len({a.prompt_fingerprint, b.prompt_fingerprint, c.prompt_fingerprint}) == 3
    assert key not in a.sampling_params


def test_tools_are_part_of_both_fingerprints() -> None:
    msgs = [{"role": "user", "content": "weather?"}]
    tool = {"type": "function", "function": {"name": "get_weather"}}
    a, b = _case(msgs, {}), _case(msgs, {}, [tool])
    assert a.fingerprint != b.fingerprint and a.prompt_fingerprint != b.prompt_fingerprint
    assert "tools" not in a.request() and b.request()["tools"] == [tool]


def test_request_is_a_copy_without_model_or_stream() -> None:
    case = _case([{"role": "user", "content": "x"}], {"temperature": 0})
    body = case.request()
    assert set(body) == {"messages", "temperature"}
    body["messages"][0]["content"] = "mutated"
    assert case.messages[0]["content"] == "x"


@given(st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=5))
def test_canonical_json_and_digest(d: dict[str, str]) -> None:
    reordered = dict(reversed(list(d.items())))
    assert canonical_json(d) == canonical_json(reordered)
    assert json.loads(canonical_json(d)) == d
    assert digest(d) == digest(reordered)
    assert len(digest(d)) == 16 and int(digest(d), 16) >= 0


def test_canonical_json_keeps_cjk_readable() -> None:
    assert canonical_json({"k": "定金"}) == '{"k":"定金"}'


def test_expect_from_dict() -> None:
    raw = {"label": "负面", "terms": {"required": ["定金"]}, "must_include": ["a"], "tool_calls": []}
    e = Expect.from_dict(raw)
    assert (e.label, e.terms_required, e.terms_forbidden, e.must_include) == ("负面", ("定金",), (), ("a",))
    assert e.tool_calls == ()  # an explicit empty list ("no tool call expected") is not None
    assert Expect.from_dict(None).tool_calls is None
    assert e.raw == raw and e.raw is not raw
