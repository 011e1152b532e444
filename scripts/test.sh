#!/usr/bin/env bash
# The harness's own tests: set up, ruff, then pytest tests (xdist on 2 workers). Live tests use the real embedded
# llama.cpp servers and, for the vLLM lane, two real vLLM servers (tests/local/test_vllm_*live.py). pytest's exit
# code 5 ("no tests collected") is a failure here: it means tests went missing.
set -euo pipefail
cd "$(dirname "$0")/.."
# The vLLM lane's own virtualenv installs (downloads, ~4 min the first time) while setup.sh compiles llama.cpp.
vllm_log=$(mktemp)
bash scripts/setup-vllm.sh >"$vllm_log" 2>&1 &
vllm_setup=$!
bash scripts/setup.sh
if ! wait "$vllm_setup"; then
  grep -v "is ignored: it is neither a file nor a directory" "$vllm_log" | tail -20
  echo "test.sh: scripts/setup-vllm.sh failed" >&2
  exit 1
fi
rm -f "$vllm_log"
# The lane is required here: without it the vLLM tests fail instead of skipping.
export CONFORMANCE_VLLM_PYTHON="$PWD/.venv-vllm/bin/python"
.venv/bin/ruff check .
.venv/bin/mypy conformance
# The report tests open report.html in headless Chromium (Debian's package) and check that Chinese is drawn with
# real glyphs, which needs a CJK font (Debian's fonts-noto-cjk); each skips where what it needs cannot be had.
need=()
command -v chromium >/dev/null || need+=(chromium)
if ! command -v fc-list >/dev/null || [ -z "$(fc-list :lang=zh family)" ]; then need+=(fonts-noto-cjk); fi
if [ ${#need[@]} -gt 0 ] && command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
  (apt-get update -qq && apt-get install -y -qq --no-install-recommends "${need[@]}") >/dev/null 2>&1 \
    || echo "test.sh: ${need[*]} not installed; the browser tests that need them will be skipped"
fi
exec .venv/bin/pytest tests -n 2 --dist loadgroup --timeout 600 "$@"
