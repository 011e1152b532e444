"""Convert a SmolLM2 GGUF into a Hugging Face folder (bf16 safetensors + tokenizer) that vLLM can serve.

Why a script run by *another* interpreter: the conversion needs torch, transformers and gguf, which live only in the
vLLM lane's own virtualenv (``.venv-vllm``; scripts/setup-vllm.sh) — the harness's ``.venv`` must not carry them.
:func:`conformance.local.vllm.hf_model_dir` runs this file by path with that interpreter, so at module level it
imports the standard library only and nothing from ``conformance``.

How (facts in /work/shared/VLLM-CPU.md): transformers loads the GGUF with ``GgufConfig(dequantize=True)``; the
weights are copied into a plain model built from the same config without ``quantization_config`` (some transformers
releases refuse to ``save_pretrained`` a GGUF-quantized model) and saved with the tokenizer, whose chat template
survives. Written to a temporary folder beside the target and renamed into place, so a half conversion is never
served; a concurrent converter that finished first wins.

Usage: ``.venv-vllm/bin/python gguf_to_hf.py SOURCE.gguf TARGET_DIR``
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path


def convert(source: Path, target: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    folder, name = str(source.parent), source.name
    loaded = AutoModelForCausalLM.from_pretrained(
        folder, gguf_file=name, quantization_config=GgufConfig(dequantize=True), dtype=torch.bfloat16
    )
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    plain = type(loaded)(config).to(torch.bfloat16)
    plain.load_state_dict(loaded.state_dict())
    del loaded
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)

    tmp = target.with_name(f"{target.name}.tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        plain.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        (tmp / "SOURCE").write_text(f"{source.name}\n", encoding="utf-8")
        try:
            os.rename(tmp, target)
        except OSError:
            if not (target / "config.json").is_file():  # not "someone else finished first": a real failure
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(f"usage: {Path(sys.argv[0]).name} SOURCE.gguf TARGET_DIR")
    convert(Path(sys.argv[1]), Path(sys.argv[2]))
