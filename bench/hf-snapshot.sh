#!/usr/bin/env bash
# Hugging Face snapshot_download through a node (issue #5), on loopback. The fake Hub (Tests/hf/fakehub.py) serves
# acme/big-model: two LFS files of BENCH_SIZE_MIB/2 MiB each (1 GiB in all by default) + 3 small files, its LFS
# 302s pointing at its separate CDN port (Python, sendfile). The real huggingface_hub 2.4.0 (the .venv-hf of
# Tests/hf/hf-client-test.sh, made here if missing) downloads the repo into a fresh HF_HOME each time:
#
#   straight   HF_ENDPOINT=<fake Hub>, HF_HUB_DISABLE_XET=1 (the fake's Xet headers are bait: a client that goes
#              Xet fails there), plain HTTP from the fake's CDN;
#   A cold     HF_ENDPOINT=<node A> with an empty cache (a new A each round): A fetches from the fake's CDN and
#              streams to the client;
#   A warm     the same again: A's cache;
#   B warm     a new node B (`--peer A`, empty cache) with the fake still up: metadata from the fake, every byte
#              from peer A (checked: the fake's CDN sends nothing during B's runs).
#
# Time = the snapshot_download call inside the client process (not Python's start-up); every run's files are
# checked (sha256) afterwards, outside the timing. ROUNDS rounds, each mode once a round; medians, then ratios
# to `straight`. CPU seconds per GiB of each process during the call: the client's own (getrusage around the call),
# the fake Hub's, node A's and node B's (from /proc/PID/stat before and after).
#
#   bench/hf-snapshot.sh      MODELCACHE_BIN (default .build-release/release/modelcache), BENCH_SIZE_MIB (1024),
#                             ROUNDS (3), BENCH_TMP (/tmp), BENCH_HF_DATA (where the fake's generated files are kept
#                             between runs; default $BENCH_TMP/modelcache-bench-hf-data)
#
# Every process started is stopped by its pid on exit. Traffic stays on 127.0.0.1; no mDNS (`--no-mdns`).

set -uo pipefail
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/hf-lib.sh"
ROUNDS=${ROUNDS:-3}

require_bin
"$MODELCACHE_BIN" serve --help 2>&1 | grep -- --hf-upstream >/dev/null || bench_die "$MODELCACHE_BIN has no serve --hf-upstream"
hf_client_venv

WORK=$(mktemp -d "$BENCH_TMP/modelcache-bench-hf.XXXXXX")
mkdir -p "$WORK/runs"
cleanup() {
    stop_tracked
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

bench_log "before: $(load_note)"
start_fake_hub

# cdn_bytes: file-body bytes the fake's CDN has sent so far.
cdn_bytes() {
    curl -sf "$HUB/_stats" | "$PYTHON" -c "import json, sys; d = json.load(sys.stdin); print(sum(r['sent'] for r in d['requests'] if r['server'] == 'cdn' and r['file_body']))"
}

# cpu_since PID BEFORE: the CPU seconds PID used since it had used BEFORE (0 without a process).
cpu_since() { awk -v a="$(proc_cpu "$1")" -v b="$2" 'BEGIN { printf "%.2f", (a > b ? a - b : 0) }'; }

# one MODE ROUND ENDPOINT [XET_OFF]: snapshot_download acme/big-model into a fresh HF_HOME; appends
# "MODE ROUND SECONDS" to $WORK/results; checks every file against the fake's manifest.
one() {
    local mode=$1 round=$2 ep=$3 xetoff=${4:-} home=$WORK/runs/home-$1-$2 secs out fake0 a0 b0
    sync
    fake0=$(proc_cpu "$FAKE_PID") a0=$(proc_cpu "${A_PID:-}") b0=$(proc_cpu "${B_PID:-}")
    out=$(snapshot_client "$home" "$ep" "$xetoff") || { bench_log "$mode $round failed: $(tail -3 "$home.err")"; out="nan nan"; }
    secs=${out% *}
    # MODE ROUND WALL, then the CPU seconds of: the client, the fake Hub, node A, node B
    echo "$mode $round $out $(cpu_since "$FAKE_PID" "$fake0") $(cpu_since "${A_PID:-}" "$a0") $(cpu_since "${B_PID:-}" "$b0")" \
        >>"$WORK/results"
    bench_log "$(printf '%-9s round %s: %s s (CPU s of client, fake Hub, A, B: %s)' "$mode" "$round" "$secs" \
        "$(tail -1 "$WORK/results" | cut -d' ' -f4-)")"
    rm -rf "$home"
}

: >"$WORK/results"
bad_b=0
for ((r = 0; r <= ROUNDS; r++)); do
    round=$r
    ((r == 0)) && round=warmup
    start_node a
    A_PID=$NODE_PID A_URL=$NODE_URL
    one straight "$round" "$HUB" xetoff
    one a-cold "$round" "$A_URL"
    one a-warm "$round" "$A_URL"
    start_node b "127.0.0.1:${A_URL##*:}"
    B_PID=$NODE_PID
    before=$(cdn_bytes)
    one b-warm "$round" "$NODE_URL"
    after=$(cdn_bytes)
    if [[ $before != "$after" ]]; then
        bench_log "b-warm $round: the fake's CDN sent $((after - before)) bytes during B's run (expected 0)"
        bad_b=1
    fi
    stop_pid "$B_PID"; forget "$B_PID"
    stop_pid "$A_PID"; forget "$A_PID"
    A_PID= B_PID=
    rm -rf "$WORK/node-a" "$WORK/node-b"
done
bench_log "after: $(load_note)"

med() { awk -v m="$1" -v f="${2:-3}" '$1 == m && $2 != "warmup" { print $f }' "$WORK/results" | grep -v nan | median; }
rounds() { awk -v m="$1" '$1 == m && $2 != "warmup" { printf "%s ", $3 }' "$WORK/results"; }
S=$(med straight)
echo
echo "snapshot_download acme/big-model ($((2 * HALF_MIB)) MiB in 2 LFS files + 3 small), huggingface_hub $HF_VERSION,"
echo "median of $ROUNDS rounds (after a warm-up round); $(nproc) CPUs; $(date -u +%F)"
printf '%-40s %9s %8s %9s   %-22s %s\n' "" "wall (s)" "MiB/s" "/ straight" "rounds (s)" "CPU s per GiB: client, fake Hub, A, B"
for m in straight a-cold a-warm b-warm; do
    case $m in
        straight) label="straight from the fake Hub (no Xet)" ;;
        a-cold) label="through node A, cold (A from the CDN)" ;;
        a-warm) label="through node A, warm (A's cache)" ;;
        b-warm) label="through node B, warm from peer A" ;;
    esac
    w=$(med "$m")
    printf '%-40s %9s %8s %9s   %-22s %s\n' "$label" "$w" \
        "$(awk -v s=$((2 * HALF_MIB)) -v w="$w" 'BEGIN { if (w > 0) printf "%.0f", s / w; else print "nan" }')" \
        "$(awk -v a="$w" -v b="$S" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "nan" }')" "$(rounds "$m")" \
        "$(for f in 4 5 6 7; do med "$m" $f; done | awk -v gib="$(awk -v m=$((2 * HALF_MIB)) 'BEGIN { print m / 1024 }')" '{ printf "%.2f ", $1 / gib }')"
done
((bad_b)) && echo "WARNING: the fake's CDN sent bytes during a B run: B did not take everything from peer A"
exit 0
