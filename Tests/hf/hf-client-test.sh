#!/usr/bin/env bash
# The real huggingface_hub client through a node's Hugging Face endpoint (issue #5), on loopback:
# Tests/hf/fakehub.py (a fake Hub + CDN), node A (`serve --no-mdns --hf-upstream <fake>`) and, for the offline part,
# node B (`--peer A`) with the fake stopped. Scenarios and checks: Tests/hf/hf_client_test.py.
# Makes (or reuses) the virtualenv .venv-hf at the repo root with huggingface_hub pinned (Tests/hf/venv.sh; hf-xet
# comes with it and stays: the node must strip Xet). Prints PASS/FAIL lines and "N passed, N failed"; exits non-zero
# on a failure; skips (exit 0) only when python3-venv or PyPI is unavailable. KEEP_OUTPUT=1 keeps the output directory.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.." || exit 1
source Tests/hf/venv.sh
hf_run_test Tests/hf/hf_client_test.py 420 '"$BIN" serve --help 2>&1 | grep -- --hf-upstream >/dev/null' "serve --hf-upstream option (issue #5 not in this build)"
