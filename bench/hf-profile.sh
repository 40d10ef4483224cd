#!/usr/bin/env bash
# Where the CPU goes when huggingface_hub's snapshot_download runs through a node (issue 12 §3 and §6), next to the
# same download straight from the fake Hub. For each mode, `perf record -a -g` samples the WHOLE machine while the
# real client downloads acme/big-model (bench/hf-lib.sh: 2 LFS files, BENCH_SIZE_MIB in all, from the fake Hub of the
# tests on loopback) into a fresh HF_HOME:
#
#   straight   from the fake Hub's CDN (Python sendfile), no node;
#   cold       through node A with an empty cache (A downloads from the CDN and streams to the client);
#   bwarm      through a new node B (--peer A, empty cache) while A holds the files: every byte from peer A.
#
# Each process's samples (the client, the fake Hub, node A, node B) are sorted by what they were doing
# (bench/perf_categories.py: SHA-256, socket reads, page-cache writes, read-back, write-back, page faults, the rest)
# and printed in CPU seconds per GiB, with the wall time of the call. Then a probe of this machine's page cache:
# 1 GiB written with 256 KiB pwrites into a preallocated file, by one process alone and by two at once (the
# client and a node each write a copy: two writers), in CPU seconds per GiB of each writer.
#
#   sudo bench/hf-profile.sh    MODELCACHE_BIN, BENCH_SIZE_MIB (1024), ROUNDS (3; the median round of each mode is
#                               printed), MODES ("straight cold bwarm"), BENCH_TMP (/tmp), PERF_HZ (999)
#
# Needs root (perf -a) and linux-perf (installed with apt-get when missing). Every process started is stopped by
# its pid; traffic stays on 127.0.0.1; no mDNS. About 1 min per round.

set -uo pipefail
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/hf-lib.sh"
ROUNDS=${ROUNDS:-3}
MODES=${MODES:-straight cold bwarm}
PERF_HZ=${PERF_HZ:-999}

[[ $(id -u) == 0 ]] || { bench_log "skipped: perf -a needs root"; exit 0; }
require_bin
ensure_tool perf linux-perf
hf_client_venv
bench_workdir hf-profile
mkdir -p "$WORK/runs"

bench_log "before: $(load_note)"
start_fake_hub

# profile MODE ROUND: one snapshot_download under `perf record -a -g`; writes "WALL" and one JSON line per process
# (NAME {category: CPU s}) to runs/MODE.ROUND.
profile() {
    local mode=$1 round=$2 home=$WORK/runs/home ep xetoff= out a_pid b_pid=
    start_node a
    a_pid=$NODE_PID
    case $mode in
        straight) ep=$HUB xetoff=1 ;;
        cold) ep=$NODE_URL ;;
        bwarm)
            snapshot_client "$home" "$NODE_URL" >/dev/null || bench_die "warming A failed: $(tail -3 "$home.err")"
            start_node b "127.0.0.1:${NODE_URL##*:}"
            b_pid=$NODE_PID ep=$NODE_URL ;;
    esac
    sync
    out=$(perf record -q -a -g -F "$PERF_HZ" -o "$WORK/perf.data" -- bash -c "$(declare -f snapshot_client)
        WORK=$WORK VPY=$VPY; snapshot_client $home $ep $xetoff" 2>/dev/null) ||
        bench_die "$mode $round failed: $(tail -3 "$home.err")"
    perf script -i "$WORK/perf.data" -F comm,pid,ip,sym 2>/dev/null >"$WORK/samples"
    {
        echo "${out% *}"
        for who in "client $(cat "$home.pid")" "fake-hub $FAKE_PID" "node-A $a_pid" "node-B $b_pid"; do
            [[ -n ${who#* } ]] || continue
            echo "${who% *} $("$PYTHON" "$BENCH_ROOT/bench/perf_categories.py" --hz "$PERF_HZ" --client-pid "${who#* }" \
                --wall 0 <"$WORK/samples")"
        done
    } >"$WORK/runs/$mode.$round"
    bench_log "$(printf '%-9s round %s: %s s' "$mode" "$round" "${out% *}")"
    rm -rf "$home" "$home.pid" "$home.err" "$WORK/perf.data" "$WORK/samples"
    for p in $b_pid $a_pid; do stop_pid "$p"; forget "$p"; done
    rm -rf "$WORK/node-a" "$WORK/node-b"
}

for ((r = 1; r <= ROUNDS; r++)); do
    for m in $MODES; do profile "$m" "$r"; done
done

# page_cache_probe N: N processes at once each pwrite 1 GiB (256 KiB writes) into their own preallocated file;
# prints each writer's CPU seconds.
page_cache_probe() {
    local n=$1 i
    for ((i = 0; i < n; i++)); do
        "$PYTHON" - "$WORK/probe.$i" <<'EOF' &
import os, resource, sys
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)
os.posix_fallocate(fd, 0, 1 << 30)
buf = os.urandom(256 << 10)
r0 = resource.getrusage(resource.RUSAGE_SELF)
for i in range(4096):
    os.pwrite(fd, buf, i * len(buf))
r1 = resource.getrusage(resource.RUSAGE_SELF)
os.close(fd)
os.unlink(sys.argv[1])
print("%.2f" % (r1.ru_utime + r1.ru_stime - r0.ru_utime - r0.ru_stime))
EOF
    done
    wait
}
alone=$(page_cache_probe 1; page_cache_probe 1; page_cache_probe 1)
two=$(page_cache_probe 2; page_cache_probe 2)
bench_log "after: $(load_note)"

echo
echo "snapshot_download acme/big-model ($((2 * HALF_MIB)) MiB), huggingface_hub $HF_VERSION: CPU seconds per GiB of each"
echo "process by what it did (perf, whole machine, $(nproc) cores); the median round of $ROUNDS for each mode; $(date -u +%F)"
"$PYTHON" - "$WORK/runs" "$ROUNDS" "$BENCH_SIZE_MIB" $MODES <<'EOF'
import json, os, sys
runs, rounds, gib, modes = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]) / 1024, sys.argv[4:]
cats = ["sha256", "socket read", "file write", "read-back", "write-back", "page faults", "other (client)"]
print("%-9s %-9s %6s  %s  %6s" % ("mode", "process", "wall s", " ".join("%11s" % c[:11] for c in cats), "total"))
for m in modes:
    rs = []
    for r in range(1, rounds + 1):
        lines = open(os.path.join(runs, "%s.%d" % (m, r))).read().split("\n")
        rs.append((float(lines[0]), [l.split(" ", 1) for l in lines[1:] if l.strip()]))
    wall, procs = sorted(rs)[len(rs) // 2]
    for name, js in procs:
        cpu = json.loads(js)["cpu"]
        own = [cpu.get(c, 0.0) / gib for c in cats]
        print("%-9s %-9s %6.3f  %s  %6.2f" % (m, name, wall, " ".join("%11.2f" % v for v in own), sum(own)))
EOF
echo "page cache, 1 GiB in 256 KiB pwrites to a preallocated file, CPU s per writer: alone $(echo $alone);" \
    "two writers at once $(echo $two)"
exit 0
