#!/usr/bin/env bash
# Real-LAN test of fetching through peers found over mDNS (issue: LAN peers). Three node namespaces, each with its
# own dbus + avahi-daemon (scripts/lanlab.sh), and an origin (nginx) in a fourth:
#   node A fetches from the origin;
#   node B, with no --peer, discovers A over mDNS and fetches without one byte from the origin (access log);
#   node C then takes chunks from both A and B.
# Prints "N passed, N failed"; exits non-zero on failure; skips (exit 0) when not root or tools are missing.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT" || exit 1
BIN=${MODELCACHE_BIN:-.build/debug/modelcache}
LAB=$ROOT/scripts/lanlab.sh
export MCLAB_PREFIX=${MCLAB_PREFIX:-mcpf$$}
export MCLAB_STATE=${MCLAB_STATE:-/tmp/modelcache-lanlab-$MCLAB_PREFIX}

skip() { echo "SKIP: $*"; exit 0; }
[[ $(id -u) == 0 ]] || skip "needs root (creates network namespaces)"
for tool in ip nsenter avahi-daemon dbus-daemon nginx python3 curl; do
    command -v "$tool" >/dev/null || skip "$tool is not installed (scripts/install-deps)"
done
[[ -x $BIN ]] || { echo "FAIL: no modelcache binary at $BIN"; exit 1; }
BIN=$(realpath "$BIN")

OUT=$(mktemp -d /tmp/modelcache-peer-fetch-test.XXXXXX)
BG=()
LAB_UP=0
cleanup() {
    local p
    for p in "${BG[@]}"; do kill -TERM "$p" 2>/dev/null; done
    for p in "${BG[@]}"; do wait "$p" 2>/dev/null; done
    ((LAB_UP)) && "$LAB" down >/dev/null 2>&1
    [[ -n ${KEEP_OUTPUT:-} ]] || rm -rf "$OUT"
}
trap cleanup EXIT

PASS=0 FAIL=0
check() {  # check DESC CMD...
    local desc=$1; shift
    if "$@"; then echo "PASS: $desc"; PASS=$((PASS + 1)); else echo "FAIL: $desc"; FAIL=$((FAIL + 1)); fi
}

"$LAB" up 3 --origin >"$OUT/lab.log" 2>&1 || { cat "$OUT/lab.log"; echo "FAIL: lab did not come up"; echo "0 passed, 1 failed"; exit 1; }
LAB_UP=1

# The origin: nginx in its own namespace, logging the body bytes it sends to each address.
mkdir -p "$OUT/www"
chmod 755 "$OUT" "$OUT/www"  # nginx workers run as www-data
head -c $((40 * 1024 * 1024)) /dev/urandom >"$OUT/www/model.safetensors"
SIZE=$(stat -c %s "$OUT/www/model.safetensors")
SHA=$(sha256sum "$OUT/www/model.safetensors" | cut -d' ' -f1)
cat >"$OUT/nginx.conf" <<EOC
daemon off;
worker_processes 1;
pid $OUT/nginx.pid;
error_log $OUT/nginx-error.log;
events {}
http {
  log_format mc '\$remote_addr \$request_method \$status \$body_bytes_sent';
  access_log $OUT/access.log mc;
  sendfile on;
  server { listen 10.77.0.100:8080; root $OUT/www; }
}
EOC
"$LAB" exec origin nginx -c "$OUT/nginx.conf" 2>>"$OUT/nginx-error.log" &
BG+=($!)
URL=http://10.77.0.100:8080/model.safetensors
for _ in $(seq 50); do "$LAB" exec 1 curl -fsI "$URL" >/dev/null 2>&1 && break; sleep 0.1; done
: >"$OUT/access.log"

# One node per namespace, mDNS on, names a, b, c.
names=(x a b c)
for i in 1 2 3; do
    "$LAB" exec "$i" "$BIN" serve --cache-dir "$OUT/node$i" --name "${names[$i]}" -v 2>"$OUT/node$i.log" &
    BG+=($!)
done
for i in 1 2 3; do
    for _ in $(seq 100); do [[ -S $OUT/node$i/node.sock ]] && break; sleep 0.1; done
done

peers_of() { curl -s --unix-socket "$OUT/node$1/node.sock" http://node/v1/local/peers; }
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
origin_body_bytes_to() { awk -v a="$1" '$1 == a && $2 == "GET" { s += $4 } END { print s + 0 }' "$OUT/access.log"; }
origin_gets_from() { awk -v a="$1" '$1 == a && $2 == "GET"' "$OUT/access.log" | wc -l; }

# A: from the origin.
"$LAB" exec 1 "$BIN" fetch --cache-dir "$OUT/node1" --json "$URL" >"$OUT/a.json" 2>"$OUT/a.err"
check "A fetched from the origin" test "$(json 'd["sources"].get("origin", 0)' <"$OUT/a.json" 2>/dev/null)" = "$SIZE"
check "A's blob has the origin's sha256" test "$(json 'd["sha256"]' <"$OUT/a.json" 2>/dev/null)" = "$SHA"

# B: discovers A over mDNS (no --peer anywhere) and sees A's new catalogue (A re-published its TXT).
found=0
for _ in $(seq 100); do
    if [[ $(peers_of 2 | json 'sum(p["blobs"] for p in d if p["name"] == "a")' 2>/dev/null) -ge 1 ]]; then found=1; break; fi
    sleep 0.1
done
check "B found A over mDNS, with A's catalogue" test $found = 1
check "B's peer A is 'found by mdns' at 10.77.0.1" test "$(peers_of 2 | json '[p["foundBy"] + " " + p["address"] for p in d if p["name"] == "a"][0]' 2>/dev/null)" = "mdns 10.77.0.1:7070"
"$LAB" exec 2 "$BIN" fetch --cache-dir "$OUT/node2" --json "$URL" >"$OUT/b.json" 2>"$OUT/b.err"
check "B fetched the whole blob from peer a" test "$(json 'd["sources"].get("peer a", 0)' <"$OUT/b.json" 2>/dev/null)" = "$SIZE"
check "B's blob has the right sha256" test "$(json 'd["sha256"]' <"$OUT/b.json" 2>/dev/null)" = "$SHA"
check "the origin sent B no body byte (access log)" test "$(origin_body_bytes_to 10.77.0.2)" = 0
check "the origin saw no GET from B (access log)" test "$(origin_gets_from 10.77.0.2)" = 0

# C: both A and B hold it now: chunks from both.
for _ in $(seq 100); do
    [[ $(peers_of 3 | json 'sum(1 for p in d if p["blobs"] >= 1)' 2>/dev/null) -ge 2 ]] && break
    sleep 0.1
done
"$LAB" exec 3 "$BIN" fetch --cache-dir "$OUT/node3" --json "$URL" >"$OUT/c.json" 2>"$OUT/c.err"
check "C took chunks from A" python3 -c "import json; d=json.load(open('$OUT/c.json')); exit(0 if d['sources'].get('peer a', 0) > 0 else 1)"
check "C took chunks from B" python3 -c "import json; d=json.load(open('$OUT/c.json')); exit(0 if d['sources'].get('peer b', 0) > 0 else 1)"
check "C's blob has the right sha256" test "$(json 'd["sha256"]' <"$OUT/c.json" 2>/dev/null)" = "$SHA"
check "the origin sent C no body byte (access log)" test "$(origin_body_bytes_to 10.77.0.3)" = 0

if ((FAIL)); then
    for f in a b c; do echo "--- $f.json"; cat "$OUT/$f.json" "$OUT/$f.err" 2>/dev/null; done
    echo "--- access.log"; cat "$OUT/access.log"
    for i in 1 2 3; do echo "--- node$i.log"; tail -20 "$OUT/node$i.log"; done
fi
echo "$PASS passed, $FAIL failed"
((FAIL == 0))
