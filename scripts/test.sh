#!/usr/bin/env bash
# The harness's own tests: set up, ruff, then pytest tests (xdist on 2 workers). Live tests use the real embedded
# llama.cpp servers. pytest's exit code 5 ("no tests collected") is a failure here: it means tests went missing.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check .
exec .venv/bin/pytest tests -n 2 --dist loadgroup --timeout 600 "$@"
