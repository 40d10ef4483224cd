#!/usr/bin/env bash
# Origin fetch benchmark: one 1 GiB random file served by nginx (sendfile on) on 127.0.0.1, fetched by
#   modelcache fetch URL --cache-dir FRESH          (default 4 connections; also 1 and 8)
#   curl -o FILE URL
#   aria2c -x8 -s8 -d DIR URL
# each into a fresh directory on the same disk, under /usr/bin/time -v (wall time, peak RSS).
# Every tool runs once as warm-up, then ROUNDS (5) measured rounds in alternating order; medians are reported
# (5, not 3: this VM has spells in which a process needs up to twice its CPU for the same bytes, and a median of 3
# is a slow round as soon as two of the three are slow). Extra rows for context: curl followed by an fsync of the
# file (modelcache fsyncs before commit), and curl piped through `openssl dgst -sha256` (SHA-NI) then fsynced (a
# verified, durable download as modelcache makes it). Nothing is dropped from the page cache; `sync` runs
# (untimed) before every run so no tool pays for the previous one's write-back.
#
#   bench/origin-fetch.sh        MODELCACHE_BIN (default .build-release/release/modelcache),
#                                BENCH_SIZE_MIB (1024), ROUNDS (5), BENCH_TMP (/tmp)
#
# Targets: modelcache wall / curl wall <= 1.0; modelcache peak RSS <= 64 MiB.

set -uo pipefail
source "$(dirname "$0")/lib.sh"
ROUNDS=${ROUNDS:-5}

require_bin
ensure_tool /usr/bin/time time
ensure_tool aria2c aria2
ensure_tool curl curl
ensure_tool nginx nginx-light

bench_workdir origin

bench_log "before: $(load_note)"
mkdir -p "$WORK/runs"
serve_blob_with_nginx "$WORK"

TOOLS=(modelcache curl aria2c modelcache-c1 modelcache-c8 curl+fsync curl+sha256+fsync)

# run_tool TOOL OUTDIR RESULTFILE: one fetch into the (new, empty) OUTDIR. Checks the result.
run_tool() {
    local tool=$1 dir=$2 res=$3 rc
    case $tool in
        modelcache) timed "$res" "$MODELCACHE_BIN" fetch "$URL" --cache-dir "$dir" --json ;;
        modelcache-c1) timed "$res" "$MODELCACHE_BIN" fetch "$URL" --cache-dir "$dir" --json --connections 1 ;;
        modelcache-c8) timed "$res" "$MODELCACHE_BIN" fetch "$URL" --cache-dir "$dir" --json --connections 8 ;;
        curl) timed "$res" curl -sS -o "$dir/blob.bin" "$URL" ;;
        aria2c) timed "$res" aria2c -q -x8 -s8 --summary-interval=0 --console-log-level=error -d "$dir" "$URL" ;;
        curl+fsync) timed "$res" sh -c 'curl -sS -o "$1/blob.bin" "$2" && sync "$1/blob.bin"' sh "$dir" "$URL" ;;
        curl+sha256+fsync)
            timed "$res" sh -c 'set -e; curl -sS "$2" | tee "$1/blob.bin" | openssl dgst -sha256 -r >"$1/sum"; sync "$1/blob.bin"' sh "$dir" "$URL" ;;
    esac
    rc=$?
    ((rc == 0)) || { bench_log "$tool failed (exit $rc): $(tail -3 "$res.stderr")"; return 1; }
    case $tool in
        modelcache*)
            "$PYTHON" - "$res.stdout" "$SHA" "$SIZE" <<'EOF' || return 1
import json, sys
r = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
ok = r["sha256"] == sys.argv[2] and r["size"] == int(sys.argv[3]) and not r["cached"] and r["sources"].get("origin") == int(sys.argv[3])
if not ok: sys.stderr.write("bench: unexpected modelcache result: %s\n" % r)
sys.exit(0 if ok else 1)
EOF
            ;;
        curl+sha256+fsync)
            [[ $(cut -d' ' -f1 "$dir/sum") == "$SHA" ]] || { bench_log "$tool: wrong sha256"; return 1; } ;;
        *)
            [[ $(stat -c %s "$dir/blob.bin" 2>/dev/null) == "$SIZE" ]] || { bench_log "$tool: wrong size"; return 1; } ;;
    esac
}

# one ROUND TOOL: fresh directory, sync, run, clean up.
FAILED=0
one() {
    local round=$1 tool=$2 dir
    dir=$(mktemp -d "$WORK/runs/$tool.$round.XXXX")
    sync
    if run_tool "$tool" "$dir" "$WORK/runs/$tool.$round.res"; then
        bench_log "$(printf '%-8s %-18s %s s, %s KiB, %s CPU s, %s context switches' "$round" "$tool" $(cat "$WORK/runs/$tool.$round.res"))"
    else
        FAILED=1
        echo "nan 0 nan 0" >"$WORK/runs/$tool.$round.res"
    fi
    rm -rf "$dir"
}

for t in "${TOOLS[@]}"; do one warmup "$t"; done
for ((r = 1; r <= ROUNDS; r++)); do
    order=("${TOOLS[@]}")
    if ((r % 2 == 0)); then  # even rounds run the tools in reverse order
        order=()
        for ((i = ${#TOOLS[@]} - 1; i >= 0; i--)); do order+=("${TOOLS[$i]}"); done
    fi
    for t in "${order[@]}"; do one "r$r" "$t"; done
done

declare -A WALL RSS
echo
echo "origin fetch of $SIZE bytes from nginx on loopback; median of $ROUNDS rounds (after 1 warm-up each)"
printf '%-20s %10s %8s %14s %12s %10s   %s\n' tool "wall (s)" "MiB/s" "peak RSS MiB" "CPU s (u+s)" "ctx sw" "walls of each round (s)"
for t in "${TOOLS[@]}"; do
    walls=$(for ((r = 1; r <= ROUNDS; r++)); do cut -d' ' -f1 "$WORK/runs/$t.r$r.res"; done)
    rsss=$(for ((r = 1; r <= ROUNDS; r++)); do cut -d' ' -f2 "$WORK/runs/$t.r$r.res"; done)
    cpus=$(for ((r = 1; r <= ROUNDS; r++)); do cut -d' ' -f3 "$WORK/runs/$t.r$r.res"; done)
    csws=$(for ((r = 1; r <= ROUNDS; r++)); do cut -d' ' -f4 "$WORK/runs/$t.r$r.res"; done)
    WALL[$t]=$(echo "$walls" | median)
    RSS[$t]=$(echo "$rsss" | median | awk '{ printf "%.1f", $1 / 1024 }')
    printf '%-20s %10s %8s %14s %12s %10s   %s\n' "$t" "${WALL[$t]}" \
        "$(awk -v s="$SIZE" -v w="${WALL[$t]}" 'BEGIN { printf "%.0f", s / 1048576 / w }')" "${RSS[$t]}" \
        "$(echo "$cpus" | median)" "$(echo "$csws" | median)" "$(echo $walls)"
done
echo
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
echo "modelcache wall / curl wall   = $(ratio "${WALL[modelcache]}" "${WALL[curl]}")   (target <= 1.0)"
echo "modelcache wall / aria2c wall = $(ratio "${WALL[modelcache]}" "${WALL[aria2c]}")"
echo "modelcache peak RSS           = ${RSS[modelcache]} MiB   (target <= 64 MiB)"
echo "modelcache wall / (curl+sha256+fsync) wall = $(ratio "${WALL[modelcache]}" "${WALL[curl+sha256+fsync]}")"
best=$(for c in 1 4 8; do
    t=modelcache-c$c
    [[ $c == 4 ]] && t=modelcache
    echo "${WALL[$t]} $c"
done | sort -g | head -1)
echo "--connections: 1 -> ${WALL[modelcache-c1]} s, 4 -> ${WALL[modelcache]} s, 8 -> ${WALL[modelcache-c8]} s; best: ${best#* }"

# rss_split CONNECTIONS: one more (untimed) fetch, its /proc/PID/status read every 20 ms: the peak of its own memory
# (RssAnon) and of the file pages it maps (RssFile: the binary's code and data, shared and reclaimable), which
# /usr/bin/time's peak RSS adds up.
rss_split() {
    local dir=$WORK/runs/rss pid anon=0 file=0 a f
    # running: the fetch has not ended (it may be a zombie not yet waited for, which kill -0 cannot tell).
    running() { [[ $(awk '{ sub(/^.*\) /, ""); print $1 }' "/proc/$pid/stat" 2>/dev/null) =~ ^[RSD]$ ]]; }
    rm -rf "$dir"
    "$MODELCACHE_BIN" fetch "$URL" --cache-dir "$dir" --json --connections "$1" >/dev/null 2>&1 &
    pid=$!
    for _ in $(seq 3000); do
        read -r a f < <(awk '/^RssAnon/ { a = $2 } /^RssFile/ { f = $2 } END { print a + 0, f + 0 }' "/proc/$pid/status" 2>/dev/null)
        ((a > anon)) && anon=$a
        ((f > file)) && file=$f
        running || break
        sleep 0.02
    done
    if running; then
        stop_pid "$pid"  # still running after 60 s
    else
        wait "$pid" 2>/dev/null
    fi
    rm -rf "$dir"
    echo "peak RssAnon $((anon / 1024)) MiB + RssFile $((file / 1024)) MiB"
}
echo "modelcache peak RSS, split: 4 connections: $(rss_split 4); 1 connection: $(rss_split 1)"
echo "after: $(load_note)"
((FAILED == 0)) || { echo "some runs FAILED (see messages above)"; exit 1; }
