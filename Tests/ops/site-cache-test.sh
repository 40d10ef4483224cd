#!/usr/bin/env bash
# A site cache above the LAN (docs/scale.md): Squid, as a caching forward proxy on loopback, between two "LANs"
# (two nodes, mDNS off, no --peer: they never see each other) and the origin (nginx on loopback, with an access log).
# Node A is told the proxy with --origin-proxy, node B through http_proxy in its environment. Both fetch the same
# file; the origin's access log must show the file's bytes sent once, and both copies must have the file's sha256.
# Squid runs with its own config, cache dir, pid file and port, in the foreground (-N); everything is stopped by pid.
# Prints "N passed, N failed"; exits non-zero on failure; skips (exit 0) when squid, nginx or the binary is missing.
set -uo pipefail
cd "$(dirname "$0")/../.."
BIN=${MODELCACHE_BIN:-$PWD/.build/debug/modelcache}
for tool in squid nginx curl python3 sha256sum; do
    command -v "$tool" >/dev/null 2>&1 || PATH=$PATH:/usr/sbin:/sbin
    command -v "$tool" >/dev/null 2>&1 || { echo "SKIP site-cache-test: $tool is not installed (scripts/install-deps --test)"; exit 0; }
done
[ -x "$BIN" ] || { echo "SKIP site-cache-test: no modelcache binary at $BIN (swift build first)"; exit 0; }

OUT=$(mktemp -d /tmp/modelcache-site-cache.XXXXXX)
chmod 755 "$OUT"
PIDS=()
PASS=0 FAIL=0
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null; done
    for pid in "${PIDS[@]}"; do
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null
    done
    [ -n "${KEEP:-}" ] || rm -rf "$OUT"
}
trap cleanup EXIT
check() {
    local what=$1; shift
    if "$@"; then echo "ok   $what"; PASS=$((PASS + 1)); else echo "FAIL $what"; FAIL=$((FAIL + 1)); fi
}
wait_http() {  # URL: bounded wait (10 s) until something answers there
    for _ in $(seq 100); do curl -s -o /dev/null --max-time 1 "$1" && return 0; sleep 0.1; done
    return 1
}

# Four distinct ports, held open together while they are picked (one at a time, the kernel may hand out the same free
# port twice: squid then failed to bind and the readiness probe reached nginx on that port instead).
read -r ORIGIN_PORT SQUID_PORT A_PORT B_PORT < <(python3 -c '
import socket
ss = [socket.socket() for _ in range(4)]
for s in ss: s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in ss))')
mkdir -p "$OUT/www" "$OUT/squid-cache" "$OUT/logs" "$OUT/a" "$OUT/b"
head -c $((40 * 1024 * 1024 + 12345)) /dev/urandom >"$OUT/www/model.bin"
# A model published two days ago: Squid's heuristic freshness (a fifth of the age since Last-Modified) keeps it fresh
# for the test; a file modified seconds ago would be revalidated (304, no body) on every request.
touch -d '2 days ago' "$OUT/www/model.bin"
SIZE=$(stat -c %s "$OUT/www/model.bin")
SHA=$(sha256sum "$OUT/www/model.bin" | cut -d' ' -f1)
URL="http://127.0.0.1:$ORIGIN_PORT/model.bin"

# The origin: nginx on loopback; the access log records each request's body bytes.
cat >"$OUT/nginx.conf" <<CONF
daemon off;
worker_processes 1;
pid $OUT/nginx.pid;
error_log $OUT/logs/nginx-error.log;
events {}
http {
    log_format bytes '\$request_method \$uri \$status \$body_bytes_sent';
    server { listen 127.0.0.1:$ORIGIN_PORT; root $OUT/www; access_log $OUT/logs/access.log bytes; }
}
CONF
nginx -c "$OUT/nginx.conf" -p "$OUT" &
PIDS+=($!)

# The site cache: what a site admin sets (docs/scale.md): objects up to model size, a Range request fetches and
# stores the whole object (range_offset_limit -1) and goes on when the client has its bytes (quick_abort_min -1),
# concurrent misses for one URL make one origin request (collapsed_forwarding).
cat >"$OUT/squid.conf" <<CONF
http_port 127.0.0.1:$SQUID_PORT
pid_filename $OUT/squid.pid
cache_dir ufs $OUT/squid-cache 2000 16 256
coredump_dir $OUT/squid-cache
maximum_object_size 64 GB
cache_mem 32 MB
range_offset_limit -1
quick_abort_min -1 KB
collapsed_forwarding on
access_log stdio:$OUT/logs/squid-access.log
cache_log $OUT/logs/squid-cache.log
cache_store_log none
pinger_enable off
shutdown_lifetime 1 seconds
http_access allow localhost
http_access deny all
CONF
# Run as root, squid drops to its cache_effective_user (Debian: proxy), which must own its files.
if [ "$(id -u)" -eq 0 ] && id proxy >/dev/null 2>&1; then chown -R proxy "$OUT/squid-cache" "$OUT/logs"; fi
squid -f "$OUT/squid.conf" -N -z >"$OUT/logs/squid-z.out" 2>&1
squid -f "$OUT/squid.conf" -N >"$OUT/logs/squid.out" 2>&1 &
PIDS+=($!)
wait_http "http://127.0.0.1:$ORIGIN_PORT/" || { echo "FAIL nginx did not start"; cat "$OUT/logs/nginx-error.log"; exit 1; }
started=0
for _ in $(seq 100); do
    # Squid's answer names it in Via: something else on the port is not a start.
    curl -s -D - -o /dev/null --max-time 1 -x "http://127.0.0.1:$SQUID_PORT" "http://127.0.0.1:$ORIGIN_PORT/" \
        | grep -i '^via:.*squid' >/dev/null && { started=1; break; }
    sleep 0.1
done
[ $started = 1 ] || { echo "FAIL squid did not start"; cat "$OUT/logs/squid.out" "$OUT/logs/squid-cache.log"; exit 1; }
: >"$OUT/logs/access.log"  # forget the readiness probes

# Two LANs: a node each, no mDNS, no peers. A is given the proxy on the command line, B in its environment.
"$BIN" serve --cache-dir "$OUT/a" --listen "127.0.0.1:$A_PORT" --no-mdns --hf-upstream none \
    --origin-proxy "http://127.0.0.1:$SQUID_PORT" >"$OUT/logs/a.log" 2>&1 &
PIDS+=($!)
env http_proxy="http://127.0.0.1:$SQUID_PORT" no_proxy=localhost "$BIN" serve --cache-dir "$OUT/b" \
    --listen "127.0.0.1:$B_PORT" --no-mdns --hf-upstream none >"$OUT/logs/b.log" 2>&1 &
PIDS+=($!)
wait_http "http://127.0.0.1:$A_PORT/v1/info" && wait_http "http://127.0.0.1:$B_PORT/v1/info" \
    || { echo "FAIL the nodes did not start"; cat "$OUT/logs/a.log" "$OUT/logs/b.log"; exit 1; }

json() { python3 -c "import json, sys; d = json.load(sys.stdin); print($1)"; }
origin_get_bytes() { awk '$1 == "GET" && $2 == "/model.bin" { s += $4 } END { print s + 0 }' "$OUT/logs/access.log"; }

"$BIN" fetch --cache-dir "$OUT/a" --json "$URL" >"$OUT/a.json" 2>"$OUT/a.err"
check "LAN A fetched the file through its node" test "$(json 'd["sha256"]' <"$OUT/a.json" 2>/dev/null)" = "$SHA"
check "LAN A's blob on disk has the file's sha256" \
    test "$(sha256sum "$(json 'd["path"]' <"$OUT/a.json" 2>/dev/null)" 2>/dev/null | cut -d' ' -f1)" = "$SHA"
check "the origin sent the file once for LAN A ($SIZE bytes)" test "$(origin_get_bytes)" = "$SIZE"

"$BIN" fetch --cache-dir "$OUT/b" --json "$URL" >"$OUT/b.json" 2>"$OUT/b.err"
check "LAN B fetched the file through its node" test "$(json 'd["sha256"]' <"$OUT/b.json" 2>/dev/null)" = "$SHA"
check "LAN B's blob on disk has the file's sha256" \
    test "$(sha256sum "$(json 'd["path"]' <"$OUT/b.json" 2>/dev/null)" 2>/dev/null | cut -d' ' -f1)" = "$SHA"
check "LAN B took every byte from its origin side (the site cache), none from a peer" \
    test "$(json 'd["sources"].get("origin", 0)' <"$OUT/b.json" 2>/dev/null)" = "$SIZE"
check "the origin's access log shows the file's bytes sent once for both LANs" test "$(origin_get_bytes)" = "$SIZE"
check "squid served LAN B from its cache (hits in its log)" grep -q 'TCP_\(MEM_\)\?HIT/206.*model.bin' "$OUT/logs/squid-access.log"
check "the nodes asked squid in absolute form for the origin's URL" grep -q "GET $URL" "$OUT/logs/squid-access.log"

echo "origin access log:"; sed 's/^/  /' "$OUT/logs/access.log"
echo "squid: $(grep -c 'TCP_MISS' "$OUT/logs/squid-access.log") misses, $(grep -c 'TCP_HIT\|TCP_MEM_HIT' "$OUT/logs/squid-access.log") hits, $(grep -c 'REFRESH' "$OUT/logs/squid-access.log") revalidated"
echo "$PASS passed, $FAIL failed"
if ((FAIL)); then
    for f in a.err b.err logs/a.log logs/b.log logs/squid-cache.log; do echo "--- $f"; tail -20 "$OUT/$f"; done
    exit 1
fi
