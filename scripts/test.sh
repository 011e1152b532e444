#!/usr/bin/env bash
# The harness's own tests: set up, ruff, then pytest tests (xdist on 2 workers). Live tests use the real embedded
# llama.cpp servers. pytest's exit code 5 ("no tests collected") is a failure here: it means tests went missing.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check .
.venv/bin/mypy conformance
# The report test opens report.html in headless Chromium (Debian's package); it skips where none can be had.
if ! command -v chromium >/dev/null && command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
  (apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium) >/dev/null 2>&1 \
    || echo "test.sh: chromium not installed; the browser test will be skipped"
fi
exec .venv/bin/pytest tests -n 2 --dist loadgroup --timeout 600 "$@"
