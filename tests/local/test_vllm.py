"""The vLLM lane's pure pieces, without vLLM: which interpreter, the converted-model cache and the converter's
contract (run with that interpreter, offline, cached, failures shown), the server's argv and environment (an API key
never on the command line), the memory check, and `conformance local` choosing vLLM endpoints."""

from __future__ import annotations

import re
import stat
import sys
from pathlib import Path

import pytest

from conformance.cli import local_selection
from conformance.endpoints.config import EndpointConfig, load_endpoints
from conformance.errors import ConfigError, ConformanceError
from conformance.local import servers, vllm

ROOT = Path(__file__).resolve().parents[2]


def _fake_python(path: Path, body: str) -> Path:
    """An executable standing in for .venv-vllm/bin/python: a shell script running ``body``."""
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_interpreter_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    py = _fake_python(tmp_path / "python", "exit 0")
    monkeypatch.setenv(vllm.PYTHON_ENV, str(py))
    assert vllm.interpreter() == py
    monkeypatch.setenv(vllm.PYTHON_ENV, str(tmp_path / "missing"))
    with pytest.raises(ConfigError, match="is not an executable Python"):
        vllm.interpreter()


def test_interpreter_beside_the_harness_venv_or_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(vllm.PYTHON_ENV, raising=False)
    monkeypatch.setattr(sys, "prefix", str(tmp_path / "repo" / ".venv"))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=r"run `bash scripts/setup-vllm.sh`"):
        vllm.interpreter()
    (tmp_path / "repo" / ".venv-vllm" / "bin").mkdir(parents=True)
    py = _fake_python(tmp_path / "repo" / ".venv-vllm" / "bin" / "python", "exit 0")
    assert vllm.interpreter() == py


@pytest.fixture
def gguf(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CONFORMANCE_CACHE", str(tmp_path / "cache"))
    source = tmp_path / "SmolLM2-135M-Instruct.Q4_0-from-Q4_1.gguf"
    source.write_bytes(b"GGUF")
    monkeypatch.setattr(vllm, "model_path", lambda quant: source)
    return source


def test_conversion_runs_once_with_the_lane_interpreter_offline(tmp_path: Path, gguf: Path) -> None:
    calls = tmp_path / "calls"
    # records its argv and HF_HUB_OFFLINE, then makes the folder the converter would make
    py = _fake_python(tmp_path / "python", f'echo "$@ offline=$HF_HUB_OFFLINE" >> {calls}; '
                                           'mkdir -p "$3" && echo {{}} > "$3/config.json"')
    target = vllm.hf_model_dir("Q4_0", py)
    assert target == tmp_path / "cache" / "models" / "hf" / "SmolLM2-135M-Instruct.Q4_0-from-Q4_1"
    assert (target / "config.json").is_file()
    assert vllm.hf_model_dir("Q4_0", py) == target  # cached: the converter is not run again
    (line,) = calls.read_text().splitlines()
    assert line == f"{vllm.CONVERTER} {gguf} {target} offline=1"
    assert vllm.CONVERTER.is_file()


def test_a_failed_conversion_shows_the_converters_last_words(tmp_path: Path, gguf: Path) -> None:
    py = _fake_python(tmp_path / "python", 'echo "ImportError: No module named gguf" >&2; exit 1')
    with pytest.raises(ConfigError) as info:
        vllm.hf_model_dir("Q4_0", py)
    assert "converting SmolLM2-135M-Instruct.Q4_0-from-Q4_1.gguf" in str(info.value)
    assert "No module named gguf" in str(info.value)


def test_command_serves_the_folder_on_loopback_with_tools_and_eager_mode(tmp_path: Path) -> None:
    cmd = vllm.command(tmp_path / "model", "smollm2-135m-instruct-q4_1", 8461, {"n_ctx": 1024}, Path("/py"))
    assert cmd[:3] == ["/py", "-m", "vllm.entrypoints.openai.api_server"]

    def arg(flag: str) -> str:
        return cmd[cmd.index(flag) + 1]

    assert (arg("--model"), arg("--served-model-name")) == (str(tmp_path / "model"), "smollm2-135m-instruct-q4_1")
    assert (arg("--host"), arg("--port"), arg("--max-model-len")) == ("127.0.0.1", "8461", "1024")
    assert (arg("--tool-call-parser"), arg("--chat-template")) == ("hermes", str(vllm.CHAT_TEMPLATE))
    assert {"--enable-auto-tool-choice", "--enforce-eager"} <= set(cmd)
    assert vllm.CHAT_TEMPLATE.is_file()


def test_environment_is_offline_with_a_small_kv_cache_and_the_key_out_of_argv(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = vllm.environment({}, None)
    assert env["HF_HUB_OFFLINE"] == "1" and env["VLLM_NO_USAGE_STATS"] == "1" and env["VLLM_HOST_IP"] == "127.0.0.1"
    assert env["VLLM_CPU_KVCACHE_SPACE"] == "1" and "VLLM_API_KEY" not in env
    assert vllm.environment({"kv_cache_gb": 3}, "sk-test-1234")["VLLM_API_KEY"] == "sk-test-1234"

    monkeypatch.setenv("VLLM_LANE_TEST_KEY", "sk-lane-secret-5678")
    monkeypatch.setattr(vllm, "interpreter", lambda: Path("/py"))
    monkeypatch.setattr(vllm, "hf_model_dir", lambda quant, python: tmp_path / quant)
    ep = EndpointConfig(name="v", base_url="http://127.0.0.1:8461/v1", model="m", api_key_env="VLLM_LANE_TEST_KEY",
                        local={"engine": "vllm", "quant": "Q4_0", "startup_timeout_s": 123})
    spec = servers.launch_spec(ep)
    assert (spec.engine, spec.model_file, spec.wait_s) == ("vllm", str(tmp_path / "Q4_0"), 123.0)
    assert spec.env["VLLM_API_KEY"] == "sk-lane-secret-5678"
    assert not any("sk-lane-secret" in part for part in spec.cmd)


MEMINFO = "MemTotal:       24000000 kB\nMemFree:         1000000 kB\nMemAvailable:    7340032 kB\n"


def test_memory_check() -> None:
    assert vllm.available_memory_gb(MEMINFO) == 7.0
    assert vllm.available_memory_gb("MemTotal: 1 kB\n") is None
    assert vllm.memory_problem([{}, {}], 7.0) is None  # 2 × (2.5 + 1) GB
    problem = vllm.memory_problem([{}, {"kv_cache_gb": 2}], 7.0)
    assert problem is not None and "needs about 8.0 GB" in problem and "only 7.0 GB is available" in problem
    assert vllm.memory_problem([{}] * 5, None) is None  # cannot be told: do not refuse


@pytest.fixture(scope="module")
def endpoints_file():  # type: ignore[no-untyped-def]
    return load_endpoints(ROOT / "endpoints.yaml")


def test_the_repositorys_vllm_endpoints(endpoints_file) -> None:  # type: ignore[no-untyped-def]
    lane = {n: e for n, e in endpoints_file.endpoints.items() if servers.engine(e) == "vllm"}
    assert sorted(lane) == ["vllm-baseline", "vllm-candidate", "vllm-candidate-q8"]
    assert {n: e.local["quant"] for n, e in lane.items() if e.local} == {
        "vllm-baseline": "Q4_1", "vllm-candidate": "Q4_0", "vllm-candidate-q8": "Q8_0"}
    assert all(e.is_loopback and e.metrics_url for e in lane.values())
    assert (endpoints_file.default_baseline, endpoints_file.default_candidate) == ("local-baseline", "local-candidate")


@pytest.mark.parametrize(("action", "names", "engine", "expected"), [
    ("up", [], None, ["local-baseline", "local-candidate"]),
    ("up", [], "vllm", ["vllm-baseline", "vllm-candidate"]),  # the default pair's quantizations, on vLLM
    ("up", [], "llama.cpp", ["local-baseline", "local-candidate"]),
    ("up", ["vllm-candidate-q8"], "vllm", ["vllm-candidate-q8"]),
    ("down", [], "vllm", ["vllm-baseline", "vllm-candidate", "vllm-candidate-q8"]),
    ("status", [], "llama.cpp", ["local-baseline", "local-candidate", "local-candidate-q8", "local-candidate-q2k"]),
])
def test_local_selection(endpoints_file, action: str, names: list[str], engine: str | None,  # type: ignore[no-untyped-def]
                         expected: list[str]) -> None:
    assert [e.name for e in local_selection(endpoints_file, action, names, engine)] == expected


def test_local_selection_refuses_an_endpoint_of_the_other_engine(endpoints_file) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConformanceError, match=re.escape("'local-baseline' is a llama.cpp endpoint, not vllm")):
        local_selection(endpoints_file, "up", ["local-baseline"], "vllm")



@pytest.mark.parametrize("argv", [["local", "up", "--engine", "vllm", "vllm-candidate-q8"],
                                  ["local", "up", "vllm-candidate-q8", "--engine", "vllm"]])
def test_names_parse_on_either_side_of_the_engine_option(argv: list[str]) -> None:
    from conformance.cli import build_parser

    args = build_parser().parse_args(argv)
    assert (args.action, args.names, args.engine) == ("up", ["vllm-candidate-q8"], "vllm")
