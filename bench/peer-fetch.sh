#!/usr/bin/env bash
# Peer fetch benchmarks (needs root: network namespaces via scripts/lanlab.sh). Three parts:
#
#  a. loopback peer vs nginx: node A (`serve --listen 127.0.0.1:PORT --no-mdns`) holds a 1 GiB blob (fetched
#     through A from nginx); a fresh `fetch URL --no-node --peer 127.0.0.1:PORT --no-origin` is timed against
#     `curl -o` from nginx (sendfile on). 1 warm-up + ROUNDS rounds, alternating order, medians.
#     Target: modelcache wall / curl wall <= 1.0.
#  b. three capped peers: `lanlab.sh up 4 --origin`; nodes 1-3 serve the same 1 GiB blob
#     (`serve --listen 0.0.0.0:7070 --no-mdns`), each with its egress capped by
#     `tc qdisc add dev eth0 root tbf rate 200mbit burst 256kb latency 50ms`; node 4 fetches with three
#     `--peer`s, `--no-origin --no-node`. One uncapped run first (for reference), then ROUNDS capped runs.
#     Target (issue 12 §2): aggregate >= 95% of tbf's real goodput, measured in the same run as 3 x what curl gets
#     from one capped peer (about 192 Mbit/s each: 576, not the nominal 600).
#  c. discovery latency: nodes a and b (same lab, caps removed) `serve` with mDNS (`--name a`, `--name b`);
#     a new 16 MiB blob is fetched on a (through node a, from the origin namespace: a commits it and
#     re-publishes its TXT record); then `fetch URL --cache-dir B --no-origin` (through node b) is polled every
#     100 ms (bounded 30 s) until it succeeds with every byte from a peer. TRIALS trials, new blob each.
#     Target: <= 2 s. A build that refuses `fetch --no-origin` through a node (it says "not supported through
#     a node yet") is measured another way, and the report says so: b's peer directory (control socket,
#     /v1/local/peers) is polled every 100 ms until it lists the new blob on peer a, then b fetches it through
#     its node with the origin allowed, and the script checks every byte came from a.
#  Part a also reads node A's peer API with plain curl once (is the serving side the limit?), and part b
#  measures one capped peer with curl (the real ceiling of a 200 Mbit/s tbf link).
#
#   sudo bench/peer-fetch.sh     MODELCACHE_BIN (default .build-release/release/modelcache), PARTS (abc),
#                                BENCH_SIZE_MIB (1024), ROUNDS (5: see origin-fetch.sh), TRIALS (3), BENCH_TMP (/tmp)
#
# Everything started is stopped by its pid on exit; the lab is torn down with `lanlab.sh down`.
# Traffic stays on loopback and inside the lab's namespaces; avahi-daemon only runs inside them.

set -uo pipefail
source "$(dirname "$0")/lib.sh"
ROUNDS=${ROUNDS:-5}
TRIALS=${TRIALS:-3}
PARTS=${PARTS:-abc}
LAB=$BENCH_ROOT/scripts/lanlab.sh

if [[ $(id -u) != 0 ]]; then
    echo "SKIP: bench/peer-fetch.sh needs root (network namespaces, tc)"
    exit 0
fi
require_bin
ensure_tool /usr/bin/time time
ensure_tool curl curl
ensure_tool nginx nginx-light
ensure_tool jq jq
for t in ip nsenter unshare setsid avahi-daemon dbus-daemon tc python3; do
    command -v "$t" >/dev/null || bench_die "$t is missing (apt-get install -y avahi-daemon dbus iproute2 util-linux python3)"
done

WORK=$(mktemp -d "$BENCH_TMP/modelcache-bench-peer.XXXXXX")
chmod 0755 "$WORK"
# A lab of our own (its own bridge and namespaces): never clashes with another one.
export MCLAB_PREFIX=${MCLAB_PREFIX:-mcbench$$}
export MCLAB_STATE=${MCLAB_STATE:-/tmp/modelcache-lanlab-$MCLAB_PREFIX}
LAB_UP=0
cleanup() {
    stop_tracked
    ((LAB_UP)) && "$LAB" down >/dev/null 2>&1
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
now() { date +%s.%N; }
mbit() { awk -v b="$1" -v s="$2" 'BEGIN { printf "%.0f", b * 8 / s / 1e6 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

# check_json FILE SHA SIZE KIND: the last line of FILE is a modelcache --json result for SHA/SIZE, not a cache hit,
# whose bytes all came from peers (KIND=peer) or from the origin (KIND=origin). Prints "peer X=N ..." on success.
check_json() {
    "$PYTHON" - "$@" <<'EOF'
import json, sys
try:
    r = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
except Exception as e:
    sys.stderr.write("bench: no JSON result in %s: %s\n" % (sys.argv[1], e)); sys.exit(1)
sha, size, kind = sys.argv[2], int(sys.argv[3]), sys.argv[4]
src = r.get("sources", {})
origin = src.get("origin", 0)
peers = sum(v for k, v in src.items() if k != "origin")
ok = r.get("sha256") == sha and r.get("size") == size and not r.get("cached")
ok = ok and ((kind == "peer" and origin == 0 and peers >= size) or (kind == "origin" and origin >= size))
if not ok:
    sys.stderr.write("bench: unexpected result: %s\n" % r); sys.exit(1)
print(" ".join("%s=%d" % (k, v) for k, v in sorted(src.items())), "seconds=%.3f" % r.get("seconds", 0))
EOF
}

bench_log "writing a $BENCH_SIZE_MIB MiB random file in $WORK"
bench_log "before: $(load_note)"
mkdir -p "$WORK/www" "$WORK/runs"
chmod 0755 "$WORK/www"
make_blob "$WORK/www/blob.bin" "$BENCH_SIZE_MIB"
SIZE=$(stat -c %s "$WORK/www/blob.bin")
SHA=$(sha256sum "$WORK/www/blob.bin" | cut -d' ' -f1)
bench_log "blob: $SIZE bytes, sha256 $SHA"
SUMMARY=()

# ---------------------------------------------------------------------------------------------------------------
part_a() {
    echo "== a. peer on loopback vs nginx on loopback"
    local port pa url nginx_pid a_pid r t dir res walls_mc=() walls_curl=() rss_mc=() rss_curl=()
    port=$(free_port)
    mkdir -p "$WORK/nginx-a"
    write_nginx_conf "$WORK/nginx-a" "$WORK/www" "127.0.0.1:$port"
    nginx -c "$WORK/nginx-a/nginx.conf" -p "$WORK/nginx-a" </dev/null >"$WORK/nginx-a/stdout" 2>&1 &
    nginx_pid=$!
    track "$nginx_pid"
    url="http://127.0.0.1:$port/blob.bin"
    wait_http "$url" || bench_die "nginx did not start (see $WORK/nginx-a/error.log)"
    pa=$(free_port)
    "$MODELCACHE_BIN" serve --cache-dir "$WORK/a" --listen "127.0.0.1:$pa" --no-mdns --name a </dev/null >"$WORK/a.log" 2>&1 &
    a_pid=$!
    track "$a_pid"
    wait_http "http://127.0.0.1:$pa/v1/info" || bench_die "node A did not start (see $WORK/a.log)"
    local t0 t1
    t0=$(now)
    timeout -k 5 300 "$MODELCACHE_BIN" fetch "$url" --cache-dir "$WORK/a" --json >"$WORK/a.fetch" 2>"$WORK/a.fetch.err" ||
        bench_die "fetch through node A failed: $(tail -3 "$WORK/a.fetch.err")"
    t1=$(now)
    check_json "$WORK/a.fetch" "$SHA" "$SIZE" origin >/dev/null || bench_die "node A's fetch"
    bench_log "node A (pid $a_pid, 127.0.0.1:$pa) holds the blob (fetched through A from nginx in $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }') s)"

    one_a() { # ROUND TOOL
        local round=$1 tool=$2 dir res
        dir=$(mktemp -d "$WORK/runs/a-$tool.$round.XXXX")
        res=$WORK/runs/a-$tool.$round.res
        sync
        if [[ $tool == modelcache ]]; then
            timed "$res" timeout -k 5 300 "$MODELCACHE_BIN" fetch "$url" --cache-dir "$dir" --no-node --peer "127.0.0.1:$pa" --no-origin --json &&
                info=$(check_json "$res.stdout" "$SHA" "$SIZE" peer) || { echo "nan 0 nan" >"$res"; bench_log "a: modelcache $round failed: $(tail -3 "$res.stderr")"; }
        else
            timed "$res" curl -sS -o "$dir/blob.bin" "$url" && [[ $(stat -c %s "$dir/blob.bin") == "$SIZE" ]] && info= ||
                { echo "nan 0 nan" >"$res"; bench_log "a: curl $round failed"; }
        fi
        bench_log "$(printf 'a %-7s %-10s %s s, %s KiB, %s CPU s, %s context switches %s' "$round" "$tool" $(cat "$res") "$info")"
        rm -rf "$dir"
    }
    local info ticks0 ticks1 nginx0 nginx1
    cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0; }
    # nginx's CPU (master and workers) over the same rounds: the serving cost of the reference, measured alike.
    nginx_ticks() { local p t=0; for p in "$nginx_pid" $(pgrep -P "$nginx_pid"); do t=$((t + $(cpu_ticks "$p"))); done; echo "$t"; }
    ticks0=$(cpu_ticks "$a_pid")
    nginx0=$(nginx_ticks)
    one_a warmup modelcache
    one_a warmup curl
    for ((r = 1; r <= ROUNDS; r++)); do
        if ((r % 2)); then one_a "r$r" modelcache; one_a "r$r" curl; else one_a "r$r" curl; one_a "r$r" modelcache; fi
    done
    # Reference: node A's peer API alone, read by curl as one stream (is the serving side the limit?).
    local ref_a ref0 ref1
    sync
    ref0=$(cpu_ticks "$a_pid")
    ref_a=$(curl -sS -o "$WORK/runs/a-ref.bin" -w '%{time_total}' "http://127.0.0.1:$pa/v1/blobs/$SHA" | awk '{ printf "%.3f", $1 }')
    [[ $(stat -c %s "$WORK/runs/a-ref.bin" 2>/dev/null) == "$SIZE" ]] || ref_a=nan
    ref1=$(cpu_ticks "$a_pid")
    rm -f "$WORK/runs/a-ref.bin"
    local mc_w curl_w mc_rss curl_rss a_hwm
    mc_w=$(for ((r = 1; r <= ROUNDS; r++)); do cut -d' ' -f1 "$WORK/runs/a-modelcache.r$r.res"; done)
    curl_w=$(for ((r = 1; r <= ROUNDS; r++)); do cut -d' ' -f1 "$WORK/runs/a-curl.r$r.res"; done)
    mc_rss=$(for ((r = 1; r <= ROUNDS; r++)); do cut -d' ' -f2 "$WORK/runs/a-modelcache.r$r.res"; done | median | awk '{ printf "%.1f", $1 / 1024 }')
    curl_rss=$(for ((r = 1; r <= ROUNDS; r++)); do cut -d' ' -f2 "$WORK/runs/a-curl.r$r.res"; done | median | awk '{ printf "%.1f", $1 / 1024 }')
    a_hwm=$(awk '/VmHWM/ { printf "%.1f", $2 / 1024 }' "/proc/$a_pid/status" 2>/dev/null)
    ticks1=$(cpu_ticks "$a_pid")
    nginx1=$(nginx_ticks)
    local a_cpu nginx_cpu
    a_cpu=$(awk -v a="$ticks0" -v b="$ticks1" -v hz="$(getconf CLK_TCK)" -v n=$((ROUNDS + 2)) 'BEGIN { printf "%.2f", (b - a) / hz / n }')
    nginx_cpu=$(awk -v a="$nginx0" -v b="$nginx1" -v hz="$(getconf CLK_TCK)" -v n=$((ROUNDS + 1)) 'BEGIN { printf "%.2f", (b - a) / hz / n }')
    local mcm curlm
    mcm=$(echo "$mc_w" | median)
    curlm=$(echo "$curl_w" | median)
    echo
    echo "a. $SIZE bytes over loopback; median of $ROUNDS rounds"
    local mc_cpu curl_cpu
    mc_cpu=$(for ((r = 1; r <= ROUNDS; r++)); do cut -d' ' -f3 "$WORK/runs/a-modelcache.r$r.res"; done | median)
    curl_cpu=$(for ((r = 1; r <= ROUNDS; r++)); do cut -d' ' -f3 "$WORK/runs/a-curl.r$r.res"; done | median)
    printf '%-44s %9s %8s %13s %12s   %s\n' "" "wall (s)" "MiB/s" "peak RSS MiB" "CPU s (u+s)" "rounds (s)"
    printf '%-44s %9s %8s %13s %12s   %s\n' "modelcache fetch --peer (node A, --no-origin)" "$mcm" \
        "$(awk -v s="$SIZE" -v w="$mcm" 'BEGIN { printf "%.0f", s / 1048576 / w }')" "$mc_rss" "$mc_cpu" "$(echo $mc_w)"
    printf '%-44s %9s %8s %13s %12s   %s\n' "curl -o from nginx" "$curlm" \
        "$(awk -v s="$SIZE" -v w="$curlm" 'BEGIN { printf "%.0f", s / 1048576 / w }')" "$curl_rss" "$curl_cpu" "$(echo $curl_w)"
    printf '%-44s %9s %8s\n' "curl -o from node A's peer API (1 run)" "$ref_a" \
        "$(awk -v s="$SIZE" -v w="$ref_a" 'BEGIN { printf "%.0f", s / 1048576 / w }')"
    echo "node A (serving): peak RSS over the whole part ${a_hwm:-?} MiB; CPU per served copy $a_cpu s (warm-up, rounds, curl reference)"
    echo "nginx (serving curl's copies in the same rounds): CPU per served copy $nginx_cpu s"
    local a_ref_cpu
    a_ref_cpu=$(awk -v a="$ref0" -v b="$ref1" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.2f", (b - a) / hz }')
    echo "node A serving the one curl copy (the same client as nginx's): CPU $a_ref_cpu s"
    echo "ratio modelcache-from-peer / curl-from-nginx = $(ratio "$mcm" "$curlm")   (target <= 1.0)"
    SUMMARY+=("a: peer-on-loopback $mcm s vs curl $curlm s, ratio $(ratio "$mcm" "$curlm") (target <= 1.0); curl from node A $ref_a s; fetcher RSS $mc_rss MiB, CPU $mc_cpu s; node A RSS ${a_hwm:-?} MiB, CPU $a_cpu s per copy; per copy to curl: node A $a_ref_cpu s, nginx $nginx_cpu s")
    stop_pid "$a_pid"; forget "$a_pid"
    stop_pid "$nginx_pid"; forget "$nginx_pid"
    rm -rf "$WORK/a"
    echo
}

# ---------------------------------------------------------------------------------------------------------------
lab_up() {
    ((LAB_UP)) && return 0
    LAB_UP=1
    "$LAB" up 4 --origin 2>"$WORK/lab.log" || bench_die "lanlab up failed: $(tail -3 "$WORK/lab.log")"
    mkdir -p "$WORK/nginx-o"
    write_nginx_conf "$WORK/nginx-o" "$WORK/www" "10.77.0.100:8080"
    "$LAB" exec origin nginx -c "$WORK/nginx-o/nginx.conf" -p "$WORK/nginx-o" </dev/null >"$WORK/nginx-o/stdout" 2>&1 &
    ORIGIN_PID=$!
    track "$ORIGIN_PID"
    local i
    for ((i = 0; i < 100; i++)); do
        "$LAB" exec 4 curl -sf -o /dev/null -r 0-0 "http://10.77.0.100:8080/blob.bin" && break
        sleep 0.1
    done
    ((i < 100)) || bench_die "origin nginx did not start (see $WORK/nginx-o/error.log)"
}
ORIGIN_URL=http://10.77.0.100:8080/blob.bin

# start_node I DIR ARGS...: `modelcache serve --cache-dir DIR ARGS` on node I, in the background; waits for its
# control socket. Sets NODE_PID.
start_node() {
    local i=$1 dir=$2
    shift 2
    "$LAB" exec "$i" "$MODELCACHE_BIN" serve --cache-dir "$dir" "$@" </dev/null >>"$dir.log" 2>&1 &
    NODE_PID=$!
    track "$NODE_PID"
    local k
    for ((k = 0; k < 100; k++)); do
        [[ -S $dir/node.sock ]] && curl -sf --unix-socket "$dir/node.sock" -o /dev/null http://node/v1/local/info && return 0
        sleep 0.1
    done
    bench_die "node $i did not start (see $dir.log)"
}

part_b() {
    echo "== b. three peers in namespaces -> node 4"
    lab_up
    local i t0 t1 pids=() res
    t0=$(now)
    timeout -k 5 300 "$LAB" exec 1 "$MODELCACHE_BIN" fetch "$ORIGIN_URL" --cache-dir "$WORK/n1" --json >"$WORK/n1.fetch" 2>"$WORK/n1.fetch.err" ||
        bench_die "node 1's fetch from the origin failed: $(tail -3 "$WORK/n1.fetch.err")"
    t1=$(now)
    check_json "$WORK/n1.fetch" "$SHA" "$SIZE" origin >/dev/null || bench_die "node 1's fetch"
    local origin_s
    origin_s=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
    bench_log "node 1 fetched the blob from the origin namespace (uncapped veth) in $origin_s s ($(mbit "$SIZE" "$origin_s") Mbit/s)"
    for i in 2 3; do
        "$MODELCACHE_BIN" add "$WORK/www/blob.bin" --url "$ORIGIN_URL" --cache-dir "$WORK/n$i" >/dev/null 2>"$WORK/n$i.add.err" ||
            bench_die "add on node $i failed: $(cat "$WORK/n$i.add.err")"
    done
    for i in 1 2 3; do
        start_node "$i" "$WORK/n$i" --listen 0.0.0.0:7070 --no-mdns --name "n$i"
        pids+=("$NODE_PID")
        for ((k = 0; k < 100; k++)); do
            "$LAB" exec 4 curl -sf -o /dev/null "http://10.77.0.$i:7070/v1/info" && break
            sleep 0.1
        done
    done
    local peers=(--peer 10.77.0.1:7070 --peer 10.77.0.2:7070 --peer 10.77.0.3:7070)

    fetch4() { # NAME: one fetch on node 4 into a fresh dir; prints "wall rss_kib" into the result file
        local name=$1 dir
        dir=$(mktemp -d "$WORK/runs/b-$name.XXXX")
        res=$WORK/runs/b-$name.res
        sync
        if timed "$res" timeout -k 5 300 "$LAB" exec 4 "$MODELCACHE_BIN" fetch "$ORIGIN_URL" --cache-dir "$dir" "${peers[@]}" \
            --no-origin --no-node --json && info=$(check_json "$res.stdout" "$SHA" "$SIZE" peer); then
            bench_log "$(printf 'b %-10s %s s, %s KiB, %s CPU s, %s context switches; %s' "$name" $(cat "$res") "$info")"
        else
            echo "nan 0 nan" >"$res"
            bench_log "b $name failed: $(tail -3 "$res.stderr")"
        fi
        rm -rf "$dir"
    }
    local info uncapped
    fetch4 uncapped
    uncapped=$(cut -d' ' -f1 "$WORK/runs/b-uncapped.res")
    local uncapped_info=$info

    local tc_ok=1
    for i in 1 2 3; do
        "$LAB" exec "$i" tc qdisc add dev eth0 root tbf rate 200mbit burst 256kb latency 50ms 2>"$WORK/tc$i.err" ||
            { tc_ok=0; bench_log "tc on node $i failed: $(cat "$WORK/tc$i.err")"; }
    done
    echo
    if ((tc_ok == 0)); then
        echo "b. tc is not supported here: only the uncapped figure is reported"
        echo "   uncapped: $uncapped s = $(mbit "$SIZE" "$uncapped") Mbit/s ($uncapped_info)"
        SUMMARY+=("b: tc unsupported; uncapped 3 peers -> $(mbit "$SIZE" "$uncapped") Mbit/s")
        return 0
    fi
    # Reference: what one capped peer gives a single plain HTTP stream (128 MiB range of its blob).
    local ref
    ref=$("$LAB" exec 4 curl -sS -o /dev/null -r 0-134217727 -w '%{speed_download}' "http://10.77.0.1:7070/v1/blobs/$SHA" |
        awk '{ printf "%.0f", $1 * 8 / 1e6 }')
    bench_log "reference: curl from one capped peer (128 MiB) = $ref Mbit/s"
    for ((r = 1; r <= ROUNDS; r++)); do fetch4 "capped-r$r"; done
    local walls m
    walls=$(for ((r = 1; r <= ROUNDS; r++)); do cut -d' ' -f1 "$WORK/runs/b-capped-r$r.res"; done)
    m=$(echo "$walls" | median)
    local agg rss
    agg=$(mbit "$SIZE" "$m")
    rss=$(for ((r = 1; r <= ROUNDS; r++)); do cut -d' ' -f2 "$WORK/runs/b-capped-r$r.res"; done | median | awk '{ printf "%.1f", $1 / 1024 }')
    echo "b. $SIZE bytes from 3 peers (each egress capped at 200 Mbit/s by tbf) to node 4; median of $ROUNDS"
    local cpu csw
    cpu=$(for ((r = 1; r <= ROUNDS; r++)); do cut -d' ' -f3 "$WORK/runs/b-capped-r$r.res"; done | median)
    csw=$(for ((r = 1; r <= ROUNDS; r++)); do cut -d' ' -f4 "$WORK/runs/b-capped-r$r.res"; done | median)
    printf '%-40s %9s %10s %13s %12s %10s   %s\n' "" "wall (s)" "Mbit/s" "peak RSS MiB" "CPU s (u+s)" "ctx sw" "rounds (s)"
    printf '%-40s %9s %10s %13s %12s %10s   %s\n' "capped, 3 peers" "$m" "$agg" "$rss" "$cpu" "$csw" "$(echo $walls)"
    printf '%-40s %9s %10s %13s %12s %10s   %s\n' "uncapped, 3 peers (1 run)" "$uncapped" "$(mbit "$SIZE" "$uncapped")" \
        "$(awk '{ printf "%.1f", $2 / 1024 }' "$WORK/runs/b-uncapped.res")" "$(cut -d' ' -f3 "$WORK/runs/b-uncapped.res")" \
        "$(cut -d' ' -f4 "$WORK/runs/b-uncapped.res")" ""
    printf '%-40s %9s %10s\n' "curl from 1 capped peer (128 MiB)" "" "$ref"
    echo "last capped run's bytes per source: $info"
    # The reference is tbf's real goodput on these links, measured now: 3 x one capped peer through curl.
    local real=$((3 * ref)) share
    share=$(awk -v a="$agg" -v r="$real" 'BEGIN { if (r > 0) printf "%.0f%%", a / r * 100; else print "n/a" }')
    echo "aggregate / (3 x one capped peer by curl = $real Mbit/s) = $share   (target >= 95%); of the nominal 600: $(awk -v a="$agg" 'BEGIN { printf "%.0f%%", a / 600 * 100 }')"
    SUMMARY+=("b: 3 capped peers -> $agg Mbit/s = $share of 3 x $ref (target >= 95%); uncapped $(mbit "$SIZE" "$uncapped") Mbit/s")
    for p in "${pids[@]}"; do stop_pid "$p"; forget "$p"; done
    for i in 1 2 3; do "$LAB" exec "$i" tc qdisc del dev eth0 root 2>/dev/null; done
    echo
}

# ---------------------------------------------------------------------------------------------------------------
part_c() {
    echo "== c. discovery latency (mDNS), node a = lab node 1, node b = lab node 2"
    lab_up
    local k i
    for ((k = 1; k <= TRIALS; k++)); do make_blob "$WORK/www/c$k.bin" 16; done
    local t0 t1 a_pid b_pid
    t0=$(now)
    start_node 1 "$WORK/ca" --name a
    a_pid=$NODE_PID
    start_node 2 "$WORK/cb" --name b
    b_pid=$NODE_PID
    # Steady state first: b knows a (found over mDNS, catalogue read), a knows b.
    local seen=0
    for ((i = 0; i < 300; i++)); do
        if curl -sf --unix-socket "$WORK/cb/node.sock" http://node/v1/local/peers | jq -e 'any(.[]; .name == "a")' >/dev/null &&
            curl -sf --unix-socket "$WORK/ca/node.sock" http://node/v1/local/peers | jq -e 'any(.[]; .name == "b")' >/dev/null; then
            seen=1
            break
        fi
        sleep 0.1
    done
    t1=$(now)
    ((seen)) || bench_die "a and b did not find each other over mDNS within 30 s (see $WORK/ca.log, $WORK/cb.log)"
    local initial
    initial=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
    bench_log "a and b found each other $initial s after the first serve started"
    # Can this binary fetch --no-origin through a node? (A URL nobody holds: the answer is an error either way.)
    local mode=node
    "$LAB" exec 2 "$MODELCACHE_BIN" fetch http://10.77.0.100:8080/none.bin --cache-dir "$WORK/cb" --no-origin --json \
        >/dev/null 2>"$WORK/c-probe.err"
    if grep -q -- "--no-origin is not supported through a node" "$WORK/c-probe.err"; then
        mode=directory
        bench_log "this modelcache refuses 'fetch --no-origin' through a node: $(tail -1 "$WORK/c-probe.err")"
        bench_log "falling back: poll b's peer directory (control socket /v1/local/peers) until it lists a's new blob,"
        bench_log "then fetch through b's node with the origin allowed and check every byte came from peer a"
    fi
    # b_knows K: b's directory shows peer a with K blobs (its catalogue re-read after a's TXT changed).
    b_knows() {
        curl -sf --unix-socket "$WORK/cb/node.sock" http://node/v1/local/peers |
            jq -e --argjson k "$1" 'any(.[]; .name == "a" and .blobs == $k and (.quarantined | not))' >/dev/null
    }
    local lat=() tries=() total=()
    for ((k = 1; k <= TRIALS; k++)); do
        local url=http://10.77.0.100:8080/c$k.bin csha
        csha=$(sha256sum "$WORK/www/c$k.bin" | cut -d' ' -f1)
        timeout -k 5 60 "$LAB" exec 1 "$MODELCACHE_BIN" fetch "$url" --cache-dir "$WORK/ca" --json >"$WORK/c$k.a" 2>"$WORK/c$k.a.err" ||
            bench_die "fetch on a failed: $(tail -3 "$WORK/c$k.a.err")"
        t0=$(now)
        check_json "$WORK/c$k.a" "$csha" $((16 << 20)) origin >/dev/null || bench_die "a's fetch of c$k"
        local ok=0 n=0 info= next tk=
        while :; do
            n=$((n + 1))
            next=$(awk -v t="$(now)" 'BEGIN { printf "%.3f", t + 0.1 }')
            if [[ $mode == node ]]; then
                if timeout -k 2 10 "$LAB" exec 2 "$MODELCACHE_BIN" fetch "$url" --cache-dir "$WORK/cb" --no-origin --json \
                    >"$WORK/c$k.b" 2>"$WORK/c$k.b.err"; then
                    t1=$(now)
                    info=$(check_json "$WORK/c$k.b" "$csha" $((16 << 20)) peer) && ok=1
                    break
                fi
            elif b_knows "$k"; then
                tk=$(now)
                timeout -k 2 30 "$LAB" exec 2 "$MODELCACHE_BIN" fetch "$url" --cache-dir "$WORK/cb" --json \
                    >"$WORK/c$k.b" 2>"$WORK/c$k.b.err"
                t1=$(now)
                info=$(check_json "$WORK/c$k.b" "$csha" $((16 << 20)) peer) && ok=1
                t1=$tk
                total+=("$(awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.3f", b - a }')")
                break
            fi
            t1=$(now)
            awk -v a="$t0" -v b="$t1" 'BEGIN { exit !(b - a >= 30) }' && break
            sleep "$(awk -v n="$next" -v t="$(now)" 'BEGIN { d = n - t; printf "%.3f", (d > 0 ? d : 0) }')"
        done
        local l
        l=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
        if ((ok)); then
            lat+=("$l")
            tries+=("$n")
            if [[ $mode == node ]]; then
                bench_log "c trial $k: b fetched c$k from a $l s after a committed it ($n attempt(s)); $info"
            else
                bench_log "c trial $k: b's directory listed c$k on a $l s after a committed it ($n poll(s)); then b's fetch (through its node) done at ${total[-1]} s: $info"
            fi
        else
            lat+=("nan")
            tries+=("$n")
            bench_log "c trial $k: b did not get c$k from a within 30 s ($n attempts): $(tail -2 "$WORK/c$k.b.err" 2>/dev/null)"
        fi
    done
    local m mx
    m=$(printf '%s\n' "${lat[@]}" | median)
    mx=$(printf '%s\n' "${lat[@]}" | sort -g | tail -1)
    echo
    if [[ $mode == node ]]; then
        echo "c. time from a's fetch returning (blob committed, TXT re-published) to b's --no-origin fetch (through b's node) succeeding from a"
        printf '  trial %s: %s s (%s attempts)\n' $(for ((k = 0; k < TRIALS; k++)); do echo "$((k + 1)) ${lat[$k]} ${tries[$k]}"; done)
    else
        echo "c. (fallback: 'fetch --no-origin' through a node is refused by this build)"
        echo "   time from a's fetch returning (blob committed, TXT re-published) to b's node listing the blob on peer a;"
        echo "   then b fetched it through its node (origin allowed; every byte came from a): time to that fetch's end"
        printf '  trial %s: %s s (%s polls), fetched at %s s\n' $(for ((k = 0; k < TRIALS; k++)); do echo "$((k + 1)) ${lat[$k]} ${tries[$k]} ${total[$k]:-nan}"; done)
    fi
    echo "  median $m s, max $mx s   (target <= 2 s); initial mutual discovery after start: $initial s"
    SUMMARY+=("c ($mode mode): discovery latency median $m s, max $mx s over $TRIALS trials (target <= 2 s); initial mutual discovery $initial s")
    stop_pid "$a_pid"; forget "$a_pid"
    stop_pid "$b_pid"; forget "$b_pid"
    echo
}

[[ $PARTS == *a* ]] && part_a
[[ $PARTS == *b* ]] && part_b
[[ $PARTS == *c* ]] && part_c
echo "== summary (modelcache $MODELCACHE_BIN)"
printf '  %s\n' "${SUMMARY[@]}"
echo "  after: $(load_note)"
