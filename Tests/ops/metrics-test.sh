#!/usr/bin/env bash
# /metrics against real Prometheus tools, everything on loopback: a node (the built binary, cache in a temp dir)
# fetches a file from a loopback origin (python3 http.server); `promtool check metrics` lints its /metrics; then a
# real `prometheus` (its own temp config and TSDB) scrapes the node every second, and its HTTP API must give back the
# fetched byte count. Every wait is bounded; every process started here is stopped by its pid.
# Prints "N passed, N failed"; exits non-zero on failure; skips (exit 0) when a tool is missing.
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BIN=${MODELCACHE_BIN:-$ROOT/.build/debug/modelcache}
PASS=0 FAIL=0
check() {  # check DESC CMD...
    local desc=$1; shift
    if "$@"; then echo "PASS: $desc"; PASS=$((PASS + 1)); else echo "FAIL: $desc"; FAIL=$((FAIL + 1)); fi
}
for tool in python3 curl promtool prometheus; do
    command -v "$tool" >/dev/null || { echo "SKIP: $tool is not installed (scripts/install-deps --test installs it)"; exit 0; }
done
[[ -x $BIN ]] || { echo "FAIL: no modelcache binary at $BIN (swift build first)"; echo "0 passed, 1 failed"; exit 1; }

TMP=$(mktemp -d "${TMPDIR:-/tmp}/modelcache-metrics-test.XXXXXX")
PIDS=()
cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
    rm -rf "$TMP"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_for() {  # wait_for TRIES CMD...: runs CMD every 0.2 s until it succeeds, at most TRIES times
    local tries=$1; shift
    for ((i = 0; i < tries; i++)); do "$@" >/dev/null 2>&1 && return 0; sleep 0.2; done
    return 1
}
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }

# The origin: a file of an odd size, served by python3's http.server on loopback.
SIZE=3158001
mkdir -p "$TMP/www"
head -c "$SIZE" /dev/urandom >"$TMP/www/model.bin"
OPORT=$(free_port)
python3 -m http.server --bind 127.0.0.1 --directory "$TMP/www" "$OPORT" >"$TMP/origin.log" 2>&1 &
PIDS+=($!)
URL="http://127.0.0.1:$OPORT/model.bin"
check "the origin answers" wait_for 50 curl -sf -o /dev/null -I "$URL"

# The node, on loopback only, no mDNS, no Hub endpoint.
NPORT=$(free_port)
"$BIN" serve --cache-dir "$TMP/cache" --listen "127.0.0.1:$NPORT" --no-mdns --hf-upstream none >"$TMP/node.log" 2>&1 &
PIDS+=($!)
check "the node serves /metrics on loopback" wait_for 150 curl -sf -o /dev/null "http://127.0.0.1:$NPORT/metrics"

# A fetch through the node (it runs as the node's job), all from the origin.
timeout 120 "$BIN" fetch --cache-dir "$TMP/cache" --json "$URL" >"$TMP/fetch.json" 2>"$TMP/fetch.err"
check "the fetch took $SIZE bytes from the origin" test "$(json 'd["sources"].get("origin", 0)' <"$TMP/fetch.json" 2>/dev/null)" = "$SIZE"

curl -sf "http://127.0.0.1:$NPORT/metrics" >"$TMP/metrics.txt"
check "promtool check metrics accepts /metrics" promtool check metrics <"$TMP/metrics.txt"
value() { awk -v k="$1" '$1 == k { print $2 + 0; found = 1 } END { if (!found) print "missing" }' "$TMP/metrics.txt"; }
check "/metrics counts the origin's bytes" test "$(value 'modelcache_received_bytes_total{source="origin"}')" = "$SIZE"
check "/metrics counts one miss, no hit" test "$(value modelcache_cache_misses_total) $(value modelcache_cache_hits_total)" = "1 0"
check "/metrics shows the cache's size" test "$(value modelcache_cache_size_bytes)" = "$SIZE"
check "/metrics shows the job's success" test "$(value 'modelcache_jobs{state="success"}')" = 1
check "/metrics has one fetch in the duration histogram" test "$(value modelcache_fetch_duration_seconds_count)" = 1

# Prometheus itself, scraping the node every second.
PPORT=$(free_port)
cat >"$TMP/prometheus.yml" <<YAML
global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: modelcache
    scrape_interval: 1s
    scrape_timeout: 1s
    static_configs:
      - targets: ['127.0.0.1:$NPORT']
YAML
check "promtool check config accepts the test's configuration" promtool check config "$TMP/prometheus.yml"
prometheus --config.file="$TMP/prometheus.yml" --storage.tsdb.path="$TMP/tsdb" \
    --web.listen-address="127.0.0.1:$PPORT" >"$TMP/prometheus.log" 2>&1 &
PIDS+=($!)
query() {  # query PROMQL: the first result's value, or nothing
    curl -sf "http://127.0.0.1:$PPORT/api/v1/query" --data-urlencode "query=$1" 2>/dev/null \
        | json 'd["data"]["result"][0]["value"][1] if d["data"]["result"] else ""' 2>/dev/null
}
query_is() { [[ $(query "$1") == "$2" ]]; }
check "prometheus scrapes the node (up == 1)" wait_for 150 query_is 'up{job="modelcache"}' 1
check "prometheus has the origin's $SIZE bytes" wait_for 50 query_is 'modelcache_received_bytes_total{source="origin"}' "$SIZE"
check "prometheus has the cache's size" wait_for 50 query_is 'modelcache_cache_size_bytes' "$SIZE"

if ((FAIL)); then
    for f in node.log fetch.err prometheus.log; do echo "--- $f"; tail -n 20 "$TMP/$f"; done
fi
echo "$PASS passed, $FAIL failed"
((FAIL == 0))
