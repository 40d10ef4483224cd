#!/usr/bin/env bash
# scripts/demo (what scripts/setup runs last) succeeds and leaves nothing behind: not in the user's cache (HOME and
# XDG_CACHE_HOME point at an empty folder of the test's, MODELCACHE_DIR is unset), nor its temporary folder (in the
# test's TMPDIR).
set -euo pipefail
cd "$(dirname "$0")/../.."
bin="${MODELCACHE_BIN:-$PWD/.build/debug/modelcache}"
[ -x "$bin" ] || { echo "FAIL: no built modelcache at $bin: run swift build first"; exit 1; }
command -v nginx >/dev/null || { echo "SKIP: nginx is missing (scripts/install-deps --test)"; exit 0; }
home=$(mktemp -d /tmp/modelcache-demotest.XXXXXX)
trap 'rm -rf "$home" "$home.log"' EXIT
chmod 755 "$home"  # nginx workers may run as www-data and must reach the demo's folder
mkdir -m 755 "$home/tmp"
fail=0
env -u MODELCACHE_DIR HOME="$home" XDG_CACHE_HOME="$home/.cache" TMPDIR="$home/tmp" scripts/demo "$bin" > "$home.log" 2>&1 || { echo "FAIL: scripts/demo:"; tail -5 "$home.log"; fail=1; }
grep -q '^demo OK: sha256 ' "$home.log" || { echo "FAIL: the demo did not report OK"; fail=1; }
grep -q '^origin requests during the second fetch: 0$' "$home.log" || { echo "FAIL: the second fetch was not a cache hit"; fail=1; }
grep -q "^stored at $home/tmp/modelcache-demo\.[^/]*/cache/blobs/" "$home.log" || { echo "FAIL: the blob was not in the demo's cache"; fail=1; }
left=$(find "$home" -mindepth 1 -not -path "$home/tmp" | head -5)
[ -z "$left" ] || { echo "FAIL: the demo left files behind: $left"; fail=1; }
[ "$fail" -eq 0 ] && echo "demo-test OK: the demo fetched into a temporary cache and left nothing behind"
exit "$fail"
