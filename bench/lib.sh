# Shared helpers for the benchmarks in bench/ (sourced, not run).
# Bounded loops only; every process is started by us and stopped by its pid.

BENCH_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# The binary under test: a release build unless told otherwise.
MODELCACHE_BIN=${MODELCACHE_BIN:-$BENCH_ROOT/.build-release/release/modelcache}
# Where temp files go (the blob, nginx's root, every tool's output: all on the same disk).
BENCH_TMP=${BENCH_TMP:-/tmp}
# Size of the test blob in MiB (1 GiB by default).
BENCH_SIZE_MIB=${BENCH_SIZE_MIB:-1024}

bench_log() { echo "bench: $*" >&2; }
bench_die() { echo "bench: error: $*" >&2; exit 1; }

require_bin() {
    [[ -x $MODELCACHE_BIN ]] || bench_die "no modelcache binary at $MODELCACHE_BIN (build it as scripts/setup does: swift build -c release --build-path .build-release --static-swift-stdlib --product modelcache; or set MODELCACHE_BIN)"
    MODELCACHE_BIN=$(realpath "$MODELCACHE_BIN")
}

# ensure_tool COMMAND DEBIAN-PACKAGE: install the package with apt-get when the command is missing.
ensure_tool() {
    local cmd=$1 pkg=$2
    [[ -x $cmd ]] || command -v "$cmd" >/dev/null 2>&1 && return 0
    bench_log "installing $pkg (for $cmd)"
    if [[ $(id -u) == 0 ]]; then
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$pkg" >/dev/null || bench_die "apt-get install $pkg failed"
    else
        bench_die "$cmd is missing: apt-get install $pkg"
    fi
}

# free_port: an unused TCP port on 127.0.0.1.
free_port() {
    "$PYTHON" - <<'EOF'
import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()
EOF
}

# make_blob PATH MIB: MIB MiB of random bytes (fast: AES-CTR keystream of a random key, via openssl when present).
make_blob() {
    local path=$1 mib=$2
    if command -v openssl >/dev/null; then
        openssl enc -aes-128-ctr -pass "pass:$(head -c 32 /dev/urandom | base64)" -nosalt -pbkdf2 </dev/zero 2>/dev/null |
            head -c $((mib << 20)) >"$path"
    else
        head -c $((mib << 20)) /dev/urandom >"$path"
    fi
    [[ $(stat -c %s "$path") == $((mib << 20)) ]] || bench_die "could not write $mib MiB to $path"
}

# write_nginx_conf DIR ROOT LISTEN: an nginx config (daemon off, sendfile on, logs and temp paths in DIR)
# serving ROOT on LISTEN (HOST:PORT).
write_nginx_conf() {
    local dir=$1 root=$2 listen=$3
    mkdir -p "$dir/tmp"
    cat >"$dir/nginx.conf" <<EOF
daemon off;
master_process on;
worker_processes 1;
user root;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 256; }
http {
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 100000;
    client_body_temp_path $dir/tmp/client;
    proxy_temp_path $dir/tmp/proxy;
    fastcgi_temp_path $dir/tmp/fastcgi;
    uwsgi_temp_path $dir/tmp/uwsgi;
    scgi_temp_path $dir/tmp/scgi;
    types { application/octet-stream bin; }
    default_type application/octet-stream;
    server {
        listen $listen;
        root $root;
    }
}
EOF
}

# bench_workdir NAME: WORK, a new directory under BENCH_TMP; on exit, NGINX_PID and the tracked processes are stopped
# by pid and WORK is removed.
bench_workdir() {
    WORK=$(mktemp -d "$BENCH_TMP/modelcache-bench-$1.XXXXXX") || bench_die "cannot make a directory in $BENCH_TMP"
    NGINX_PID=
    trap 'stop_pid "$NGINX_PID"; stop_tracked; rm -rf "$WORK"' EXIT
    trap 'exit 130' INT TERM
}

# serve_blob_with_nginx WORK: writes a BENCH_SIZE_MIB random file into WORK/www and serves it with nginx on a free
# loopback port; sets SIZE, SHA, URL and NGINX_PID (the caller stops it by pid).
serve_blob_with_nginx() {
    local work=$1 port
    bench_log "writing a $BENCH_SIZE_MIB MiB random file in $work"
    mkdir -p "$work/www" "$work/nginx"
    make_blob "$work/www/blob.bin" "$BENCH_SIZE_MIB"
    SIZE=$(stat -c %s "$work/www/blob.bin")
    SHA=$(sha256sum "$work/www/blob.bin" | cut -d' ' -f1)
    port=$(free_port)
    write_nginx_conf "$work/nginx" "$work/www" "127.0.0.1:$port"
    nginx -c "$work/nginx/nginx.conf" -p "$work/nginx" </dev/null >"$work/nginx/stdout" 2>&1 &
    NGINX_PID=$!
    URL="http://127.0.0.1:$port/blob.bin"
    wait_http "$URL" || bench_die "nginx did not start (see $work/nginx/error.log)"
    bench_log "nginx (pid $NGINX_PID) serves $URL ($SIZE bytes, sha256 $SHA)"
}

# wait_http URL [TRIES]: until URL answers (0.1 s apart, bounded).
wait_http() {
    local url=$1 tries=${2:-100} i
    for ((i = 0; i < tries; i++)); do
        curl -sf -o /dev/null -r 0-0 "$url" && return 0
        sleep 0.1
    done
    return 1
}

# stop_pid PID: TERM, wait up to 5 s, then KILL. Only for pids we started.
stop_pid() {
    local pid=$1 i
    [[ -n $pid ]] || return 0
    kill -TERM "$pid" 2>/dev/null || return 0
    for ((i = 0; i < 50; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

# timed OUTFILE CMD...: run CMD under /usr/bin/time -v; prints "WALL_SECONDS MAXRSS_KIB CPU_SECONDS CONTEXT_SWITCHES"
# (CPU: user + system; context switches: voluntary + involuntary, every thread) into OUTFILE.
# CMD's stdout goes to OUTFILE.stdout, its stderr and time's report to OUTFILE.time.
timed() {
    local out=$1
    shift
    /usr/bin/time -v -o "$out.time" "$@" >"$out.stdout" 2>"$out.stderr"
    local rc=$?
    awk -F': ' '
        /Elapsed \(wall clock\) time/ {
            n = split($NF, p, ":"); s = 0
            for (i = 1; i <= n; i++) s = s * 60 + p[i]
            wall = s
        }
        /Maximum resident set size/ { rss = $NF }
        /User time \(seconds\)|System time \(seconds\)/ { cpu += $NF }
        /context switches/ { csw += $NF }
        END { printf "%.3f %d %.2f %d\n", wall, rss, cpu, csw }' "$out.time" >"$out"
    return $rc
}

# proc_cpu PID: the CPU seconds (user + system, every thread) a running process has used so far; 0 when it is gone.
proc_cpu() {
    local pid=$1
    [[ -n $pid && -r /proc/$pid/stat ]] || { echo 0; return; }
    # Fields 14 and 15 (utime, stime) count after the command, which may hold spaces: cut at its closing parenthesis.
    awk -v hz="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); printf "%.2f\n", ($12 + $13) / hz }' "/proc/$pid/stat"
}

# median: the median of the numbers on stdin (one per line).
median() { sort -g | awk '{ a[NR] = $1 } END { if (NR == 0) print "nan"; else if (NR % 2) print a[(NR + 1) / 2]; else printf "%.3f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

# A plain python3 (the system one starts faster than a pyenv shim); standard library only.
PYTHON=${PYTHON:-$(if [[ -x /usr/bin/python3 ]]; then echo /usr/bin/python3; else command -v python3; fi)}

# load_note: the load average and any busy process (other work on this 2-core box skews every figure).
load_note() {
    echo "load average: $(cut -d' ' -f1-3 /proc/loadavg); busy processes: $(ps -eo pcpu=,comm= --sort=-pcpu | awk '$1 >= 20 { printf "%s(%s%%) ", $2, $1 }')"
}

# Background processes of a benchmark: `track PID` after starting one; `forget PID` once it was stopped by hand;
# `stop_tracked` (from the script's EXIT trap) stops what is left, newest first.
PIDS=()
track() { PIDS+=("$1"); }
forget() {
    local keep=() p
    for p in "${PIDS[@]}"; do [[ $p == "$1" ]] || keep+=("$p"); done
    PIDS=("${keep[@]}")
}
stop_tracked() {
    local i
    for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do stop_pid "${PIDS[$i]}"; done
}

# ms_runs RUNS CMD...: runs CMD RUNS times after one warm-up (the last run's stdout in $WORK/run.out, stderr in
# $WORK/run.out.err); prints "MEDIAN_MS MIN_MS". Fails when a run fails. Needs WORK and PYTHON.
ms_runs() {
    "$PYTHON" - "$WORK/run.out" "$@" <<'EOF'
import signal, statistics, subprocess, sys, time
out, runs, cmd = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
# Bounded by an alarm, not by subprocess's timeout=: with a timeout Python polls the child with sleeps of up to 50 ms,
# which added ~16 ms to a 16 ms process (measured 2026-12-03); a plain wait() is one blocking waitpid.
def too_long(*_):
    raise TimeoutError
signal.signal(signal.SIGALRM, too_long)
times = []
for i in range(runs + 1):
    with open(out, "wb") as o, open(out + ".err", "wb") as e:
        signal.alarm(300)
        t0 = time.perf_counter()
        p = subprocess.Popen(cmd, stdout=o, stderr=e, stdin=subprocess.DEVNULL)
        try:
            rc = p.wait()
        except TimeoutError:
            p.kill(); p.wait()
            sys.exit("bench: %s took over 300 s" % cmd[:2])
        t = (time.perf_counter() - t0) * 1000
        signal.alarm(0)
    if rc != 0:
        sys.stderr.write("bench: %s failed (exit %d): %s\n" % (cmd[:2], rc, open(out + ".err").read()[-300:]))
        sys.exit(1)
    if i > 0: times.append(t)
print("%.1f %.1f" % (statistics.median(times), min(times)))
EOF
}
