#!/usr/bin/env bash
# What a GET per chunk costs (issue 12 §1): the same 1 GiB origin fetch from nginx on 127.0.0.1 with 4 MiB and with
# 16 MiB chunks (one Range GET per chunk), over 1 and 4 connections, against `curl -o` in the same rounds.
#
#   bench/request-size.sh        MODELCACHE_BIN (default .build-release/release/modelcache), BENCH_SIZE_MIB (1024),
#                                ROUNDS (4), BENCH_TMP (/tmp), OLD_BIN (optional: a second build, timed as "old-c1"
#                                and "old-c4")
#
# Each round runs every variant once, in forward order on odd rounds and reverse order on even ones; medians are
# reported. Since StreamPlan, `--connections 1` to the origin alone is one GET whatever the chunk size, so the c1
# rows compare one stream with (given OLD_BIN, a build from before StreamPlan) a GET per 4 MiB chunk. Since spans
# (8e27313), 4 connections ask for up to 16 MiB of 4 MiB chunks per GET: c4-4M against old-c4 (OLD_BIN from before
# spans) is that change.

set -uo pipefail
source "$(dirname "$0")/lib.sh"
ROUNDS=${ROUNDS:-4}
OLD_BIN=${OLD_BIN:-}

require_bin
ensure_tool /usr/bin/time time
ensure_tool curl curl
ensure_tool nginx nginx-light

bench_workdir reqsize
bench_log "before: $(load_note)"
serve_blob_with_nginx "$WORK"

VARIANTS=(c4-4M c4-16M c1-4M curl)
[[ -n $OLD_BIN ]] && VARIANTS+=(old-c1 old-c4)

run_variant() {
    local v=$1 res=$2 dir=$WORK/out
    rm -rf "$dir"; mkdir -p "$dir"; sync
    case $v in
        c4-4M) timed "$res" "$MODELCACHE_BIN" fetch "$URL" --cache-dir "$dir/c" --no-node --connections 4 ;;
        c4-16M) timed "$res" "$MODELCACHE_BIN" fetch "$URL" --cache-dir "$dir/c" --no-node --connections 4 --chunk-size 16777216 ;;
        c1-4M) timed "$res" "$MODELCACHE_BIN" fetch "$URL" --cache-dir "$dir/c" --no-node --connections 1 ;;
        old-c1) timed "$res" "$OLD_BIN" fetch "$URL" --cache-dir "$dir/c" --no-node --connections 1 ;;
        old-c4) timed "$res" "$OLD_BIN" fetch "$URL" --cache-dir "$dir/c" --no-node --connections 4 ;;
        curl) timed "$res" curl -sS -o "$dir/blob.bin" "$URL" ;;
    esac
    local rc=$?
    rm -rf "$dir"; sync
    ((rc == 0)) || bench_die "$v failed (exit $rc): $(tail -3 "$res.stderr")"
}

mkdir -p "$WORK/runs"
for ((r = 1; r <= ROUNDS; r++)); do
    order=("${VARIANTS[@]}")
    if ((r % 2 == 0)); then
        order=()
        for ((i = ${#VARIANTS[@]} - 1; i >= 0; i--)); do order+=("${VARIANTS[i]}"); done
    fi
    for v in "${order[@]}"; do
        run_variant "$v" "$WORK/runs/$v.$r"
        bench_log "r$r $(printf '%-8s' "$v") $(awk '{printf "%.3f s, %.2f CPU s, %d context switches", $1, $3, $4}' "$WORK/runs/$v.$r")"
    done
done

echo
echo "origin fetch of $SIZE bytes from nginx on loopback; median of $ROUNDS rounds"
printf '%-10s %9s %12s %9s   %s\n' variant "wall (s)" "CPU s (u+s)" "ctx sw" "walls of each round (s)"
declare -A WALL
for v in "${VARIANTS[@]}"; do
    walls=$(for ((r = 1; r <= ROUNDS; r++)); do awk '{print $1}' "$WORK/runs/$v.$r"; done)
    WALL[$v]=$(echo "$walls" | median)
    cpu=$(for ((r = 1; r <= ROUNDS; r++)); do awk '{print $3}' "$WORK/runs/$v.$r"; done | median)
    csw=$(for ((r = 1; r <= ROUNDS; r++)); do awk '{print $4}' "$WORK/runs/$v.$r"; done | median)
    printf '%-10s %9s %12s %9s   %s\n' "$v" "${WALL[$v]}" "$cpu" "$csw" "$(echo $walls)"
done
echo
for v in "${VARIANTS[@]}"; do
    [[ $v == curl ]] && continue
    printf '%-8s wall / curl wall = %s\n' "$v" "$(awk -v a="${WALL[$v]}" -v b="${WALL[curl]}" 'BEGIN { printf "%.2f", a / b }')"
done
bench_log "after: $(load_note)"
