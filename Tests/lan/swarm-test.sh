#!/usr/bin/env bash
# Real-LAN swarm test: four node namespaces, each with its own dbus + avahi-daemon (scripts/lanlab.sh), that found
# each other over mDNS, start the same download together; the origin (nginx in a fifth namespace, its link capped
# with tc when the kernel allows it) must send at most 1.25x the file's bytes in all (its access log proves it).
# Prints "N passed, N failed"; exits non-zero on failure; skips (exit 0) when not root or tools are missing.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT" || exit 1
BIN=${MODELCACHE_BIN:-.build/debug/modelcache}
LAB=$ROOT/scripts/lanlab.sh
export MCLAB_PREFIX=${MCLAB_PREFIX:-mcsw$$}
export MCLAB_STATE=${MCLAB_STATE:-/tmp/modelcache-lanlab-$MCLAB_PREFIX}

skip() { echo "SKIP: $*"; exit 0; }
[[ $(id -u) == 0 ]] || skip "needs root (creates network namespaces)"
for tool in ip nsenter avahi-daemon dbus-daemon nginx python3 curl; do
    command -v "$tool" >/dev/null || skip "$tool is not installed (scripts/install-deps)"
done
[[ -x $BIN ]] || { echo "FAIL: no modelcache binary at $BIN"; exit 1; }
BIN=$(realpath "$BIN")

OUT=$(mktemp -d /tmp/modelcache-swarm-test.XXXXXX)
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

"$LAB" up 4 --origin >"$OUT/lab.log" 2>&1 || { cat "$OUT/lab.log"; echo "FAIL: lab did not come up"; echo "0 passed, 1 failed"; exit 1; }
LAB_UP=1

# The origin: nginx in its own namespace, logging the body bytes it sends to each address.
mkdir -p "$OUT/www"
chmod 755 "$OUT" "$OUT/www"  # nginx workers run as www-data
head -c $((64 * 1024 * 1024)) /dev/urandom >"$OUT/www/model.safetensors"
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

# Cap the origin's uplink (200 Mbit/s) when tc works here; say so when it does not.
if ip netns exec "$MCLAB_PREFIX-origin" tc qdisc add dev eth0 root tbf rate 200mbit burst 256kb latency 50ms 2>"$OUT/tc.err"; then
    echo "origin link capped at 200 Mbit/s"
else
    echo "note: tc is not available here ($(head -c 200 "$OUT/tc.err")); the origin is not rate-capped"
fi

for i in 1 2 3 4; do
    "$LAB" exec "$i" "$BIN" serve --cache-dir "$OUT/node$i" --name "n$i" -v 2>"$OUT/node$i.log" &
    BG+=($!)
done
for i in 1 2 3 4; do
    for _ in $(seq 100); do [[ -S $OUT/node$i/node.sock ]] && break; sleep 0.1; done
done
peers_of() { curl -s --unix-socket "$OUT/node$1/node.sock" http://node/v1/local/peers; }
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }

# Every node must have found the three others over mDNS (bounded wait).
for i in 1 2 3 4; do
    ok=0
    for _ in $(seq 100); do
        [[ $(peers_of "$i" | json 'sum(1 for p in d if p["foundBy"] == "mdns")' 2>/dev/null) == 3 ]] && { ok=1; break; }
        sleep 0.1
    done
    check "node $i found the 3 others over mDNS" test $ok = 1
done

# All four start together (the trusted digest comes with the request, as a model manifest would give it).
for i in 1 2 3 4; do
    "$LAB" exec "$i" "$BIN" fetch --cache-dir "$OUT/node$i" --sha256 "$SHA" --json "$URL" >"$OUT/f$i.json" 2>"$OUT/f$i.err" &
    FETCH[$i]=$!
done
for i in 1 2 3 4; do wait "${FETCH[$i]}"; done

for i in 1 2 3 4; do
    check "node $i has the right blob" test "$(json 'd["sha256"]' <"$OUT/f$i.json" 2>/dev/null)" = "$SHA"
done
SERVED=$(awk '$2 == "GET" { s += $4 } END { print s + 0 }' "$OUT/access.log")
RATIO=$(python3 -c "print(round($SERVED / $SIZE, 3))")
echo "origin sent $SERVED bytes = ${RATIO}x the file"
check "the origin sent at most 1.25x the file in all (access log)" python3 -c "exit(0 if $SERVED <= 1.25 * $SIZE else 1)"
check "the nodes took chunks from each other" python3 -c "
import json
peer = sum(v for i in range(1, 5) for k, v in json.load(open('$OUT/f%d.json' % i))['sources'].items() if k.startswith('peer '))
exit(0 if peer > 0 else 1)"

if ((FAIL)); then
    for i in 1 2 3 4; do echo "--- f$i"; cat "$OUT/f$i.json" "$OUT/f$i.err" 2>/dev/null; echo "--- node$i.log"; tail -15 "$OUT/node$i.log"; done
fi
echo "$PASS passed, $FAIL failed"
((FAIL == 0))
