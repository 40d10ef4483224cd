#!/usr/bin/env bash
# Swarm benchmark (issue "Swarm"): N nodes in network namespaces (one avahi-daemon each, scripts/lanlab.sh), a file
# of MIB MiB on an nginx origin whose link is capped at RATE with tc, all nodes started within a second. Measured in
# one run, one tool after the other: N x aria2c -x8 -s8; BitTorrent (python3-libtorrent 2.0, the origin as a BEP 19
# web seed, Local Service Discovery on); N x modelcache (nodes found each other over mDNS; --sha256 given, as a model
# manifest gives it). For each: origin bytes / file size (nginx access log) and the last node's time / one
# download's time at the origin's rate.
#
#   sudo bench/swarm.sh [N=8] [MIB=256] [RATE_MBIT=200]        MODELCACHE_BIN (default .build-release/release/modelcache)
#   TOOLS="aria2c libtorrent modelcache" (which rounds run; e.g. TOOLS=modelcache for quick iterations)
#   CURVE="2 4 8" (optional): after the rounds, modelcache again with only the first n nodes running and fetching, for
#   each n <= N (fresh caches, nodes restarted), one line per n: origin bytes / size and last node / one download.
# Each line also gives the CPU seconds per node: the median and the most of the per-node commands (fetch CLI, aria2c,
# the libtorrent client: /usr/bin/time around each), the `serve` processes' (/proc/PID/stat before and after the
# round, summed over the nodes, then per node), and nginx's.
set -uo pipefail
N=${1:-8} MIB=${2:-256} RATE_MBIT=${3:-200}
TOOLS=${TOOLS:-aria2c libtorrent modelcache} CURVE=${CURVE:-}
wants() { [[ " $TOOLS " == *" $1 "* ]]; }
export MODELCACHE_BIN=${MODELCACHE_BIN:-.build-release/release/modelcache}
NAME=bsw NODES=$N
source "$(dirname "$0")/../Tests/lan/lib.sh"
wants aria2c && ! command -v aria2c >/dev/null && skip "aria2c is not installed (apt-get install aria2)"
wants libtorrent && ! /usr/bin/python3 -c "import libtorrent" 2>/dev/null && skip "python3-libtorrent is not installed (apt-get install python3-libtorrent)"
lan_setup
start_origin "$MIB"
if ip netns exec "$MCLAB_PREFIX-origin" tc qdisc add dev eth0 root tbf rate "${RATE_MBIT}mbit" burst 256kb latency 50ms 2>"$OUT/tc.err"; then
    echo "origin link capped at $RATE_MBIT Mbit/s (tc tbf on the origin's egress)"
else
    echo "WARNING: tc unavailable ($(head -c 200 "$OUT/tc.err")); the origin is not capped"
fi
ONE=$(python3 -c "print($SIZE * 8 / ($RATE_MBIT * 1e6))")
echo "file: $MIB MiB; one download at the origin's rate: ${ONE}s; $N nodes; $(nproc) cores"
RESULTS=()

origin_bytes() { awk '$2 == "GET" { s += $4 } END { print s + 0 }' "$OUT/access.log"; }

# proc_cpu PID: CPU seconds (user + system, every thread) a running process used so far; 0 when it is gone.
proc_cpu() {
    [[ -n $1 && -r /proc/$1/stat ]] || { echo 0; return; }
    awk -v hz="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); printf "%.2f\n", ($12 + $13) / hz }' "/proc/$1/stat"
}
# serve_cpu: the CPU seconds of every running `modelcache serve` started by this script (NODE_PIDS' processes and
# their descendants: `lanlab exec` may run the node as a child), summed.
serve_cpu() {
    local p total=0 c
    for p in $(for q in "${NODE_PIDS[@]}"; do echo "$q"; pgrep -P "$q"; for r in $(pgrep -P "$q"); do pgrep -P "$r"; done; done | sort -u); do
        [[ $(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null) == *" serve "* ]] || continue
        c=$(proc_cpu "$p")
        total=$(awk -v a="$total" -v b="$c" 'BEGIN { print a + b }')
    done
    echo "$total"
}
# nginx_cpu: the origin nginx's CPU seconds (its master and workers).
nginx_cpu() {
    local m p total=0
    m=$(cat "$OUT/nginx.pid" 2>/dev/null) || { echo 0; return; }
    for p in "$m" $(pgrep -P "$m"); do total=$(awk -v a="$total" -v b="$(proc_cpu "$p")" 'BEGIN { print a + b }'); done
    echo "$total"
}

# round NAME: runs "$OUT/cmd-NAME.sh I" on every node at once; each writes $OUT/NAME.done.I (an epoch time) when done.
# An optional second argument runs it on nodes 1..n only (n <= N); the line is labelled "NAME nN".
round() {
    local name=$1 n=${2:-$N} i pids=() start last label=$1
    [[ -n ${2:-} ]] && label="$1 n$n"
    : >"$OUT/access.log"
    rm -f "$OUT/$name".done.*
    rm -f "$OUT/$name".cpu.*
    echo "load before $label: $(cut -d' ' -f1-3 /proc/loadavg)"
    local serve0 nginx0 serve1 nginx1
    serve0=$(serve_cpu) nginx0=$(nginx_cpu)
    start=$(date +%s.%N)
    for ((i = 1; i <= n; i++)); do
        "$LAB" exec "$i" /usr/bin/time -f "%U %S" -o "$OUT/$name.cpu.$i" bash "$OUT/cmd-$name.sh" "$i" >"$OUT/$name.$i.log" 2>&1 &
        pids+=($!)
    done
    for p in "${pids[@]}"; do wait "$p"; done
    serve1=$(serve_cpu) nginx1=$(nginx_cpu)
    last=$(cat "$OUT/$name".done.* 2>/dev/null | awk '$1 > m { m = $1 } END { printf "%.6f\n", m }')
    local done_count; done_count=$(ls "$OUT/$name".done.* 2>/dev/null | wc -l)
    local served; served=$(origin_bytes)
    local line
    line=$(python3 -c "
s, size, one = $served, $SIZE, $ONE
t = ${last:-0} - $start
print(f'%-28s origin bytes / size = %5.2f   last node %6.1f s = %5.2f x one download   (%d/%d nodes done)' % ('$label', s / size, t, t / one, $done_count, $n))")
    echo "  node times (s after the start): $(cat "$OUT/$name".done.* 2>/dev/null | awk -v s="$start" '{ printf "%.1f ", $1 - s }' | tr ' ' '\n' | sort -n | tr '\n' ' ')"
    echo "$line   load after: $(cut -d' ' -f1-3 /proc/loadavg)"
    local cpu
    cpu=$(cat "$OUT/$name".cpu.* 2>/dev/null | awk 'NF == 2 { print $1 + $2 }' | sort -g |
        awk -v n="$n" -v s0="$serve0" -v s1="$serve1" -v g0="$nginx0" -v g1="$nginx1" '
        { c[++k] = $1 }
        END {
            if (k == 0) { print "CPU: not recorded"; exit }
            med = (k % 2) ? c[(k + 1) / 2] : (c[k / 2] + c[k / 2 + 1]) / 2
            printf "CPU s per node: command median %.2f, most %.2f; serve %.2f; nginx %.2f in all", med, c[k], (s1 - s0) / n, g1 - g0
        }')
    echo "  $cpu"
    line="$line
    $cpu"
    RESULTS+=("$line")
}

# --- 1. aria2c on every node
if wants aria2c; then
cat >"$OUT/cmd-aria2c.sh" <<EOC
mkdir -p $OUT/aria.\$1 && aria2c -x8 -s8 --allow-overwrite=true --auto-file-renaming=false --file-allocation=none \
  --console-log-level=warn --summary-interval=0 -d $OUT/aria.\$1 -o f "$URL" && date +%s.%N >$OUT/aria2c.done.\$1
rm -rf $OUT/aria.\$1
EOC
round aria2c
fi

# --- 2. BitTorrent: libtorrent 2.0, the origin as a web seed (BEP 19), LSD on; every node keeps seeding until all are done
if wants libtorrent; then
cat >"$OUT/mktorrent.py" <<EOC
import libtorrent as lt
fs = lt.file_storage()
lt.add_files(fs, "$OUT/www/model.safetensors")
t = lt.create_torrent(fs, 1 << 20)
t.add_url_seed("http://10.77.0.100:8080/")
lt.set_piece_hashes(t, "$OUT/www")
open("$OUT/model.torrent", "wb").write(lt.bencode(t.generate()))
EOC
/usr/bin/python3 "$OUT/mktorrent.py"
cat >"$OUT/lt-node.py" <<'EOC'
import libtorrent as lt, os, sys, time
i, out = sys.argv[1], sys.argv[2]
s = lt.session({"listen_interfaces": "0.0.0.0:6881", "enable_lsd": True, "enable_dht": False, "enable_upnp": False,
                "enable_natpmp": False, "allow_multiple_connections_per_ip": True, "alert_mask": 0})
os.makedirs(f"{out}/lt.{i}", exist_ok=True)
h = s.add_torrent({"ti": lt.torrent_info(f"{out}/model.torrent"), "save_path": f"{out}/lt.{i}"})
deadline = time.time() + 600
while not h.status().is_seeding and time.time() < deadline:
    time.sleep(0.05)
if h.status().is_seeding:
    open(f"{out}/libtorrent.done.{i}", "w").write("%.6f\n" % time.time())
while not os.path.exists(f"{out}/lt.stop") and time.time() < deadline:
    time.sleep(0.2)
EOC
cat >"$OUT/cmd-libtorrent.sh" <<EOC
/usr/bin/python3 $OUT/lt-node.py \$1 $OUT
EOC
( for _ in $(seq 6000); do [[ $(ls "$OUT"/libtorrent.done.* 2>/dev/null | wc -l) -ge $N ]] && break; sleep 0.1; done; touch "$OUT/lt.stop" ) &
BG+=($!)
round libtorrent
rm -rf "$OUT"/lt.[0-9]*
fi

# --- 3. modelcache: a node per namespace, found over mDNS, all fetching at once
# wait_mdns K: nodes 1..K each list the K-1 others as found over mDNS (bounded).
wait_mdns() {
    local k=$1 i
    for ((i = 1; i <= k; i++)); do
        for _ in $(seq 150); do
            [[ $(peers_of "$i" | json 'sum(1 for p in d if p["foundBy"] == "mdns")' 2>/dev/null) == $((k - 1)) ]] && break
            sleep 0.1
        done
    done
}
cat >"$OUT/cmd-modelcache.sh" <<EOC
$BIN fetch --cache-dir $OUT/node\$1 --sha256 $SHA --json "$URL" >$OUT/mc.\$1.json && date +%s.%N >$OUT/modelcache.done.\$1
EOC
names=(); for ((i = 1; i <= N; i++)); do names+=("n$i"); done
NODE_PIDS=()
if wants modelcache; then
    first=${#BG[@]}
    start_nodes "${names[@]}"
    NODE_PIDS=("${BG[@]:first}")
    wait_mdns "$N"
    round modelcache
fi
# --- 4. the curve: only nodes 1..n run (stopped by pid and their caches removed between sizes)
for n in $CURVE; do
    ((n >= 2 && n <= N)) || { echo "CURVE: $n is outside 2..$N; skipped"; continue; }
    # stop the nodes of the previous round (the `serve` processes start_nodes added to BG), by pid
    for p in "${NODE_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
    for p in "${NODE_PIDS[@]}"; do wait "$p" 2>/dev/null; done
    for ((i = 1; i <= N; i++)); do rm -rf "$OUT/node$i"; done
    first=${#BG[@]}
    start_nodes "${names[@]:0:n}"
    NODE_PIDS=("${BG[@]:first}")
    wait_mdns "$n"
    round modelcache "$n"
done
echo
echo "== summary ($(date -u +%Y-%m-%d), $N nodes, $MIB MiB, origin capped at $RATE_MBIT Mbit/s, $(nproc) cores)"
printf '%s\n' "${RESULTS[@]}"
