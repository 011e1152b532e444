#!/usr/bin/env bash
# The main job on a fresh machine: set up, lint the goldens, then replay the legal suite against the embedded
# baseline (SmolLM2 Q4_1) and candidate (the same weights re-quantized to Q4_0), both real llama.cpp servers on
# 127.0.0.1 started on demand. Extra arguments go to pytest (e.g. --candidate local-candidate-q8).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/conformance lint
exec .venv/bin/pytest suites/legal "$@"
