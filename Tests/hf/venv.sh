# The virtualenv of the Hugging Face client tests (sourced, not run), shared by Tests/hf/hf-client-test.sh and
# Tests/lan/hf-classroom-test.sh (which runs first in scripts/test, so either may have to make it).
#
#   source Tests/hf/venv.sh; hf_venv || case $? in 2) skip "$HF_VENV_WHY" ;; *) fail "$HF_VENV_WHY" ;; esac
#
# hf_venv makes (or reuses) $HF_VENV (.venv-hf at the repo root) with huggingface_hub==$HF_VERSION (hf-xet comes
# with it and stays: the node must strip Xet). Returns 0 when it is ready; 2 when it cannot be made here
# (python3 or python3-venv missing, PyPI unreachable: a reason to skip); 1 when pip failed otherwise.
# The reason is in HF_VENV_WHY.
HF_VERSION=2.4.0
HF_VENV=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/.venv-hf

hf_venv() {
    HF_VENV_WHY=
    command -v python3 >/dev/null || { HF_VENV_WHY="python3 is not installed (scripts/install-deps)"; return 2; }
    "$HF_VENV/bin/python" -c "import sys, huggingface_hub; sys.exit(huggingface_hub.__version__ != '$HF_VERSION')" \
        2>/dev/null && return 0
    echo "making $HF_VENV with huggingface_hub==$HF_VERSION"
    rm -rf "$HF_VENV"
    local log
    log=$(mktemp)
    if ! python3 -m venv "$HF_VENV" >"$log" 2>&1; then
        cat "$log"; rm -rf "$HF_VENV" "$log"
        HF_VENV_WHY="python3 -m venv failed: python3-venv is missing (scripts/install-deps)"
        return 2
    fi
    if ! timeout 300 "$HF_VENV/bin/pip" install -q --disable-pip-version-check "huggingface_hub==$HF_VERSION" >"$log" 2>&1; then
        tail -5 "$log"
        rm -rf "$HF_VENV"
        if grep -qiE "connection|resolve|network|timed out|No matching distribution|Could not find a version" "$log"; then
            rm -f "$log"; HF_VENV_WHY="PyPI is unreachable: cannot install huggingface_hub==$HF_VERSION"; return 2
        fi
        rm -f "$log"; HF_VENV_WHY="pip install huggingface_hub==$HF_VERSION failed"; return 1
    fi
    rm -f "$log"
    return 0
}

# The Hugging Face client tests' runner: skips (exit 0) when the virtualenv cannot be made here, fails without the
# binary or when CHECK (shell code run with $BIN set) fails, else runs DRIVER.py under a hard time bound.
#   hf_run_test DRIVER.py SECONDS 'CHECK' WHAT
hf_run_test() {
    local driver=$1 seconds=$2 check=$3 what=$4
    BIN=${MODELCACHE_BIN:-.build/debug/modelcache}
    hf_venv || case $? in
        2) echo "SKIP: $HF_VENV_WHY"; exit 0 ;;
        *) echo "FAIL: $HF_VENV_WHY"; echo "0 passed, 1 failed"; exit 1 ;;
    esac
    [[ -x $BIN ]] || { echo "FAIL: no modelcache binary at $BIN"; echo "0 passed, 1 failed"; exit 1; }
    eval "$check" || { echo "FAIL: $BIN has no $what"; echo "0 passed, 1 failed"; exit 1; }
    # Hard bound on the whole run; the driver stops everything it started on TERM.
    timeout -k 10 "$seconds" "$HF_VENV/bin/python" "$driver" --bin "$(realpath "$BIN")" ${KEEP_OUTPUT:+--keep}
}
