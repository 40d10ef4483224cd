#!/usr/bin/env bash
# `modelcache hf download` and `modelcache hf import` with the real huggingface_hub (issue 14), on loopback: the fake
# Hub (Tests/hf/fakehub.py), node A, node I (imports a Hub cache the client filled from the fake Hub) and node B
# (--peer I, the fake stopped). Scenarios: Tests/hf/hf_download_test.py. Same virtualenv and skip rules as
# hf-client-test.sh. KEEP_OUTPUT=1 keeps the output directory.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.." || exit 1
source Tests/hf/venv.sh
hf_run_test Tests/hf/hf_download_test.py 300 '"$BIN" hf --help >/dev/null 2>&1' "hf command (issue 14)"
