#!/usr/bin/env bash
# The real huggingface_hub client through a node's Hugging Face endpoint (issue #5), on loopback:
# Tests/hf/fakehub.py (a fake Hub + CDN), node A (`serve --no-mdns --hf-upstream <fake>`) and, for the offline part,
# node B (`--peer A`) with the fake stopped. Scenarios and checks: Tests/hf/hf_client_test.py.
# Makes (or reuses) the virtualenv .venv-hf at the repo root with huggingface_hub pinned (hf-xet comes with it and
# stays: the node must strip Xet). Prints PASS/FAIL lines and "N passed, N failed"; exits non-zero on a failure;
# skips (exit 0) only when python3-venv or PyPI is unavailable. KEEP_OUTPUT=1 keeps the output directory.
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT" || exit 1
BIN=${MODELCACHE_BIN:-.build/debug/modelcache}
HF_VERSION=2.4.0
VENV=$ROOT/.venv-hf

skip() { echo "SKIP: $*"; exit 0; }
fail() { echo "FAIL: $*"; echo "0 passed, 1 failed"; exit 1; }

command -v python3 >/dev/null || skip "python3 is not installed (scripts/install-deps)"
if ! "$VENV/bin/python" -c "import sys, huggingface_hub; sys.exit(huggingface_hub.__version__ != '$HF_VERSION')" 2>/dev/null; then
    echo "making $VENV with huggingface_hub==$HF_VERSION"
    rm -rf "$VENV"
    log=$(mktemp)
    python3 -m venv "$VENV" >"$log" 2>&1 || { cat "$log"; rm -rf "$VENV" "$log"; skip "python3 -m venv failed: python3-venv is missing (scripts/install-deps)"; }
    if ! timeout 300 "$VENV/bin/pip" install -q --disable-pip-version-check "huggingface_hub==$HF_VERSION" >"$log" 2>&1; then
        tail -5 "$log"
        rm -rf "$VENV"
        if grep -qiE "connection|resolve|network|timed out|No matching distribution|Could not find a version" "$log"; then
            rm -f "$log"; skip "PyPI is unreachable: cannot install huggingface_hub==$HF_VERSION"
        fi
        rm -f "$log"; fail "pip install huggingface_hub==$HF_VERSION failed"
    fi
    rm -f "$log"
fi
[[ -x $BIN ]] || fail "no modelcache binary at $BIN"
"$BIN" serve --help 2>&1 | grep -q -- --hf-upstream || fail "$BIN serve has no --hf-upstream option (issue #5 not in this build)"
# Hard bound on the whole run; the driver stops everything it started on TERM.
timeout -k 10 420 "$VENV/bin/python" Tests/hf/hf_client_test.py --bin "$(realpath "$BIN")" ${KEEP_OUTPUT:+--keep}
