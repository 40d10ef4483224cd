#!/usr/bin/env bash
# The browser API and the status page in headless Chromium (Selenium), everything on loopback. Makes its own
# virtualenv (.venv-test/, selenium from PyPI); needs Debian's chromium and chromium-driver (scripts/install-deps).
# Screenshots of the status page go to .build/browser-test/ (or $SCREENSHOT_DIR).
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT" || exit 1
export MODELCACHE_BIN=${MODELCACHE_BIN:-$ROOT/.build/debug/modelcache}
SELENIUM_VERSION=4.27.1

for tool in chromium chromedriver python3; do
    command -v "$tool" >/dev/null || { echo "SKIP: $tool is not installed (scripts/install-deps installs chromium chromium-driver python3-venv)"; exit 0; }
done
[[ -x $MODELCACHE_BIN ]] || { echo "FAIL: no modelcache binary at $MODELCACHE_BIN"; echo "0 passed, 1 failed"; exit 1; }
chromium --headless=new --no-sandbox --disable-gpu --dump-dom about:blank >/dev/null 2>&1 \
    || { echo "SKIP: chromium is installed but does not start headless here"; exit 0; }

VENV=$ROOT/.venv-test
if ! "$VENV/bin/python" -c "import selenium, sys; sys.exit(selenium.__version__ != '$SELENIUM_VERSION')" 2>/dev/null; then
    python3 -m venv "$VENV" || { echo "FAIL: cannot create $VENV (python3-venv)"; echo "0 passed, 1 failed"; exit 1; }
    "$VENV/bin/pip" install -q "selenium==$SELENIUM_VERSION" \
        || { echo "FAIL: cannot install selenium==$SELENIUM_VERSION from PyPI"; echo "0 passed, 1 failed"; exit 1; }
fi
# Selenium must use Debian's chromedriver, never download one.
export SE_OFFLINE=true
exec timeout --kill-after=10 240 "$VENV/bin/python" Tests/web/browser_test.py
