#!/usr/bin/env bash
# Where the CPU goes in a 1 GiB origin fetch, next to curl's (issue 12 §1 and §6): nginx (sendfile on) serves one
# random file on 127.0.0.1; `perf record -a` samples the WHOLE machine (every core, every process, idle included)
# while `modelcache fetch URL --cache-dir FRESH` runs, then while `curl -o FILE URL` runs; ROUNDS (3) of each, in
# alternating order. The samples are sorted by what they were doing:
#
#   sha256          SHA-256 compression (chunk digests and the whole-blob digest; swift-crypto's BoringSSL, SHA-NI)
#   socket read     read()/recvmsg() of the HTTP bodies, with the copy out of the socket
#   file write      pwrite()/write() into the page cache (the copy, ext4's block mapping, page allocation)
#   read-back       pread() of bytes already written (the whole-blob hasher behind the connections)
#   write-back      sync_file_range()/fsync() started by the fetcher
#   page faults     first touches of new anonymous memory (buffers)
#   other (client)  everything else the client process did (event loops, scheduling, Swift runtime, softirqs)
#   nginx           the server
#   kernel threads  kworkers (write-back the client did not start itself), ksoftirqd
#
# Idle time is not sampled (a tickless idle core takes no timer samples): it is printed as wall x cores - busy.
# and printed in CPU seconds (samples / frequency), with the wall time, for the median round of each tool. It also
# prints SHA-256's speed on one core (`openssl speed -evp sha256`, 1 MiB blocks), so the cost of the two digests the
# guarantees need (every chunk, then the whole file) reads as a floor: a verified fetch on this machine cannot take
# less than (2 x sha256 + the socket reads and file writes + nginx, each at the cheaper run's cost) / cores.
#
#   bench/fetch-profile.sh     MODELCACHE_BIN, BENCH_SIZE_MIB (1024), ROUNDS (3), BENCH_TMP (/tmp), PERF_HZ (999)
#
# Needs root (perf -a) and linux-perf (installed with apt-get when missing). Every process started is stopped by
# its pid; traffic stays on 127.0.0.1.

set -uo pipefail
source "$(dirname "$0")/lib.sh"
ROUNDS=${ROUNDS:-3}
PERF_HZ=${PERF_HZ:-999}

[[ $(id -u) == 0 ]] || { bench_log "skipped: perf -a needs root"; exit 0; }
require_bin
ensure_tool perf linux-perf
ensure_tool curl curl
ensure_tool nginx nginx-light

bench_workdir profile

bench_log "before: $(load_note)"
mkdir -p "$WORK/runs"
serve_blob_with_nginx "$WORK"

# profile TOOL ROUND: one fetch under `perf record -a -g`; writes the per-category CPU seconds to runs/TOOL.ROUND.
profile() {
    local tool=$1 round=$2 dir=$WORK/runs/$1.$2.out cmd
    mkdir -p "$dir"
    case $tool in
        modelcache) cmd=("$MODELCACHE_BIN" fetch "$URL" --cache-dir "$dir/cache" --json) ;;
        curl) cmd=(curl -sS -o "$dir/blob.bin" "$URL") ;;
    esac
    sync
    # The wall time is the tool's own (perf's start and its writing of the samples are not in it).
    perf record -q -a -g -F "$PERF_HZ" -o "$WORK/runs/perf.data" -- /usr/bin/time -f %e -o "$dir/wall" \
        sh -c 'echo $$ >"$0"; exec "$@"' "$dir/pid" "${cmd[@]}" \
        >"$dir/stdout" 2>"$dir/stderr" || { bench_log "$tool $round failed: $(tail -2 "$dir/stderr")"; rm -rf "$dir"; return 1; }
    perf script -i "$WORK/runs/perf.data" -F comm,pid,ip,sym 2>/dev/null |
        "$PYTHON" "$BENCH_ROOT/bench/perf_categories.py" --hz "$PERF_HZ" --client-pid "$(cat "$dir/pid")" \
            --wall "$(cat "$dir/wall")" >"$WORK/runs/$tool.$round" ||
        bench_die "could not sort the samples of $tool $round"
    bench_log "$(printf '%-5s %-10s %s' "$round" "$tool" "$(tr '\n' ' ' <"$WORK/runs/$tool.$round")")"
    rm -rf "$dir" "$WORK/runs/perf.data"
}

for ((r = 1; r <= ROUNDS; r++)); do
    if ((r % 2)); then order=(modelcache curl); else order=(curl modelcache); fi
    for t in "${order[@]}"; do profile "$t" "r$r" || exit 1; done
done
SHA_MBS=$(openssl speed -seconds 2 -bytes 1048576 -evp sha256 2>/dev/null | awk '$1 == "sha256" { sub(/k$/, "", $2); printf "%.0f", $2 / 1000 }')
bench_log "after: $(load_note)"

echo
echo "CPU seconds by what they did, whole machine ($(nproc) cores), one $SIZE-byte fetch from nginx on loopback;"
echo "the round with the median wall time of $ROUNDS for each tool; $(date -u +%F)"
"$PYTHON" - "$WORK/runs" "$ROUNDS" "$(nproc)" "$SIZE" "${SHA_MBS:-0}" <<'EOF'
import json, os, sys
runs, rounds, cores, size, sha_mbs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
def median_run(tool):
    rs = [json.load(open(os.path.join(runs, "%s.r%d" % (tool, r)))) for r in range(1, rounds + 1)]
    return sorted(rs, key=lambda r: r["wall"])[len(rs) // 2]
m, c = median_run("modelcache"), median_run("curl")
cats = ["sha256", "socket read", "file write", "read-back", "write-back", "page faults", "other (client)", "nginx", "kernel threads", "other"]
print("%-16s %12s %10s" % ("", "modelcache", "curl"))
print("%-16s %12.3f %10.3f" % ("wall s", m["wall"], c["wall"]))
for k in cats:
    print("%-16s %12.3f %10.3f" % (k, m["cpu"].get(k, 0.0), c["cpu"].get(k, 0.0)))
busy = lambda r: sum(v for k, v in r["cpu"].items() if k != "idle")
print("%-16s %12.3f %10.3f" % ("busy CPU s", busy(m), busy(c)))
# Idle cores are barely sampled (a tickless idle core takes no timer samples): idle is the rest of wall x cores.
print("%-16s %12.3f %10.3f" % ("idle (the rest)", max(0.0, m["wall"] * cores - busy(m)), max(0.0, c["wall"] * cores - busy(c))))
print("wall / curl: %.2f" % (m["wall"] / c["wall"]))
if sha_mbs > 0:
    one_pass = size / (sha_mbs * 1e6)
    # A lower bound: each copy and the server at the cheaper of the two runs' costs.
    least = lambda k: min(m["cpu"].get(k, 0.0), c["cpu"].get(k, 0.0))
    floor = (2 * one_pass + least("socket read") + least("file write") + least("nginx")) / cores
    print("sha256 on one core: %.0f MB/s, %.3f s a pass over the file; floor for a verified fetch: (2 passes + the"
          " cheaper run's socket reads, file writes and nginx) / %d cores = %.3f s (%.2f x curl)" % (sha_mbs, one_pass, cores, floor, floor / c["wall"]))
EOF
exit 0
