#!/usr/bin/env bash
# The real huggingface_hub client through a node's Hugging Face endpoint (issue #5), on loopback:
# Tests/hf/fakehub.py (a fake Hub + CDN), node A (`serve --no-mdns --hf-upstream <fake>`) and, for the offline part,
# node B (`--peer A`) with the fake stopped. Scenarios and checks: Tests/hf/hf_client_test.py.
# Makes (or reuses) the virtualenv .venv-hf at the repo root with huggingface_hub pinned (Tests/hf/venv.sh; hf-xet
# comes with it and stays: the node must strip Xet). Prints PASS/FAIL lines and "N passed, N failed"; exits non-zero
# on a failure; skips (exit 0) only when python3-venv or PyPI is unavailable. KEEP_OUTPUT=1 keeps the output directory.
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT" || exit 1
BIN=${MODELCACHE_BIN:-.build/debug/modelcache}
source Tests/hf/venv.sh

skip() { echo "SKIP: $*"; exit 0; }
fail() { echo "FAIL: $*"; echo "0 passed, 1 failed"; exit 1; }

hf_venv || case $? in 2) skip "$HF_VENV_WHY" ;; *) fail "$HF_VENV_WHY" ;; esac
[[ -x $BIN ]] || fail "no modelcache binary at $BIN"
"$BIN" serve --help 2>&1 | grep -q -- --hf-upstream || fail "$BIN serve has no --hf-upstream option (issue #5 not in this build)"
# Hard bound on the whole run; the driver stops everything it started on TERM.
timeout -k 10 420 "$HF_VENV/bin/python" Tests/hf/hf_client_test.py --bin "$(realpath "$BIN")" ${KEEP_OUTPUT:+--keep}
