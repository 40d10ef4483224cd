#!/usr/bin/env bash
# How cost grows with the number of blobs a node holds (issue 12, point 5). Node A (`serve --listen
# 127.0.0.1:PORT --no-mdns`) is filled with small random files (BLOB_BYTES each, `modelcache add FILE --url URL`
# through A's control socket, FILL_JOBS at a time) up to each N in STEPS; at each N the script measures:
#
#   fill      seconds to add the blobs of this step, and adds per second (one CLI process per file)
#   catalogue GET /v1/catalogue on A: body bytes plain and gzip (the wire) and milliseconds (median of 5 each), and
#             a peer's periodic re-read when nothing changed (If-None-Match: the ETag, answered 304; median of 10)
#   learn     a fresh node B (`serve --peer 127.0.0.1:PORT --no-mdns`, its own empty cache) started; seconds from
#             its start until its control socket answers, and until /v1/local/peers lists A with N blobs
#             (polled every 20 ms, bounded by LEARN_TIMEOUT); B's peak RSS then (it holds A's catalogue)
#   TXT       the DNS-SD TXT record A would publish (PeerTXT.encode: txtvers, pv, id, cv; ck only with a cluster
#             key), built from A's /v1/info id and catalogueVersion: wire bytes (one length byte per string)
#   hit       `modelcache fetch URL --cache-dir A --json` of a stored URL, the whole CLI process, FETCH_RUNS runs
#             after one warm-up: median and minimum (target <= 20 ms)
#   list      `modelcache list --cache-dir A`, the whole process, LIST_RUNS runs: median
#   rss       A's VmRSS and VmHWM (/proc/PID/status) after all the above
#
# Then a table, and per metric the growth exponent between steps: log(m2/m1) / log(N2/N1) (0 = constant,
# 1 = linear, 2 = quadratic).
#
#   bench/scale.sh    MODELCACHE_BIN (default .build-release/release/modelcache), STEPS ("100 1000 10000"),
#                     BLOB_BYTES (4096), FILL_JOBS (4), FETCH_RUNS (20), LIST_RUNS (5), LEARN_TIMEOUT (120),
#                     BENCH_TMP (/tmp)
#
# The URLs name 127.0.0.1:9 (discard; nothing listens): no step contacts them (add and a cache hit never do), and
# a miss by mistake would stay on loopback and fail. Every process started is stopped by its pid on exit.

set -uo pipefail
source "$(dirname "$0")/lib.sh"
STEPS=${STEPS:-"100 1000 10000"}
BLOB_BYTES=${BLOB_BYTES:-4096}
FILL_JOBS=${FILL_JOBS:-4}
FETCH_RUNS=${FETCH_RUNS:-20}
LIST_RUNS=${LIST_RUNS:-5}
LEARN_TIMEOUT=${LEARN_TIMEOUT:-120}

require_bin
ensure_tool curl curl
[[ -n $PYTHON ]] || bench_die "python3 is missing (apt-get install python3)"
for n in $STEPS; do [[ $n =~ ^[0-9]+$ ]] && ((n > 0 && n <= 1000000)) || bench_die "STEPS: '$n' is not a count in 1...1000000"; done
[[ $BLOB_BYTES =~ ^[0-9]+$ ]] && ((BLOB_BYTES > 0 && BLOB_BYTES <= 1048576)) || bench_die "BLOB_BYTES: 1...1048576"
MAX_N=$(printf '%s\n' $STEPS | sort -n | tail -1)

WORK=$(mktemp -d "$BENCH_TMP/modelcache-bench-scale.XXXXXX")
cleanup() {
    stop_tracked
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

URL_BASE="http://127.0.0.1:9/scale"
bench_log "before: $(load_note)"
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
bench_log "writing $MAX_N files of $BLOB_BYTES random bytes in $WORK/files"
"$PYTHON" - "$WORK/files" "$MAX_N" "$BLOB_BYTES" <<'EOF' || bench_die "could not write the files"
import os, sys
d, n, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
os.makedirs(d)
for i in range(n):
    with open(os.path.join(d, "%06d.bin" % i), "wb") as f:
        f.write(os.urandom(size))
EOF

proc_kib() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status" 2>/dev/null; }

PA=$(free_port)
"$MODELCACHE_BIN" serve --cache-dir "$WORK/a" --listen "127.0.0.1:$PA" --no-mdns --name a </dev/null >"$WORK/a.log" 2>&1 &
A_PID=$!
track "$A_PID"
wait_http "http://127.0.0.1:$PA/v1/info" 300 || bench_die "node A did not start (see $WORK/a.log)"
bench_log "node A (pid $A_PID) on 127.0.0.1:$PA, cache $WORK/a"

RESULTS=$WORK/results.tsv
echo -e "n\tfill_s\tadds_per_s\tcat_bytes\tcat_gzip_bytes\tcat_ms\tcat_gzip_ms\tcat_304_ms\tb_up_s\tlearn_s\tb_hwm_mib\ttxt_bytes\thit_ms\thit_min_ms\tlist_ms\ta_rss_mib\ta_hwm_mib" >"$RESULTS"
have=0
for n in $(printf '%s\n' $STEPS | sort -n); do
    echo "== N = $n"
    t0=$(date +%s%N)
    seq "$have" $((n - 1)) | xargs -P "$FILL_JOBS" -I{} sh -c \
        'f=$(printf "%06d" "$1"); "$2" add "$3/files/$f.bin" --url "$4/$f.bin" --cache-dir "$3/a" >/dev/null 2>>"$3/add.err" || exit 255' \
        sh {} "$MODELCACHE_BIN" "$WORK" "$URL_BASE" || bench_die "add failed: $(tail -3 "$WORK/add.err")"
    t1=$(date +%s%N)
    fill_s=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", (b - a) / 1e9 }')
    adds=$(awk -v a="$t0" -v b="$t1" -v k=$((n - have)) 'BEGIN { printf "%.0f", k / ((b - a) / 1e9) }')
    have=$n
    count=$("$MODELCACHE_BIN" list --cache-dir "$WORK/a" --json | "$PYTHON" -c 'import json,sys; print(len(json.load(sys.stdin)))')
    [[ $count == "$n" ]] || bench_die "A lists $count blobs, expected $n"
    bench_log "filled to $n in $fill_s s ($adds adds/s)"

    # The catalogue on the wire (plain and gzip), median of 5 reads each.
    cat_plain=$("$PYTHON" - "http://127.0.0.1:$PA/v1/catalogue" "$n" <<'EOF'
import gzip, json, statistics, sys, time, urllib.error, urllib.request
url, n = sys.argv[1], int(sys.argv[2])
def read(gz):
    req = urllib.request.Request(url, headers={"Accept-Encoding": "gzip"} if gz else {})
    t0 = time.perf_counter()
    with urllib.request.urlopen(req, timeout=120) as r:
        body = r.read()
        enc = r.headers.get("Content-Encoding")
    return (time.perf_counter() - t0) * 1000, body, enc
def poll():  # what a peer's periodic re-read costs when nothing changed: If-None-Match, answered 304
    etag = urllib.request.urlopen(url, timeout=120).headers["ETag"]
    times = []
    for _ in range(10):
        req = urllib.request.Request(url, headers={"If-None-Match": etag, "Accept-Encoding": "gzip"})
        t0 = time.perf_counter()
        try:
            urllib.request.urlopen(req, timeout=120).read()
            sys.exit("bench: the catalogue did not answer 304 to its own ETag")
        except urllib.error.HTTPError as e:
            if e.code != 304: raise
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)
out = []
for gz in (False, True):
    runs = [read(gz) for _ in range(5)]
    body, enc = runs[0][1], runs[0][2]
    plain = gzip.decompress(body) if enc == "gzip" else body
    blobs = len(json.loads(plain)["blobs"])
    if blobs != n or (gz and enc != "gzip"):
        sys.exit("bench: the catalogue lists %d blobs (expected %d), encoding %s" % (blobs, n, enc))
    out += [len(body), statistics.median(t for t, _, _ in runs)]
print("%d %d %.1f %.1f %.1f" % (out[0], out[2], out[1], out[3], poll()))
EOF
    ) || bench_die "reading A's catalogue failed"
    read -r cat_bytes cat_gzip cat_ms cat_gzip_ms cat_304_ms <<<"$cat_plain"

    # A second node learns A's catalogue.
    pb=$(free_port)
    rm -rf "$WORK/b"
    tb0=$(date +%s%N)
    "$MODELCACHE_BIN" serve --cache-dir "$WORK/b" --listen "127.0.0.1:$pb" --no-mdns --name b --peer "127.0.0.1:$PA" </dev/null >"$WORK/b.log" 2>&1 &
    B_PID=$!
    track "$B_PID"
    up_s=nan learn_s=nan
    for ((i = 0; i < LEARN_TIMEOUT * 50; i++)); do
        if peers=$(curl -sf --unix-socket "$WORK/b/node.sock" http://node/v1/local/peers 2>/dev/null); then
            [[ $up_s == nan ]] && up_s=$(awk -v a="$tb0" -v b="$(date +%s%N)" 'BEGIN { printf "%.3f", (b - a) / 1e9 }')
            if "$PYTHON" -c 'import json,sys; sys.exit(0 if any(p.get("blobs") == int(sys.argv[1]) for p in json.loads(sys.argv[2])) else 1)' "$n" "$peers"; then
                learn_s=$(awk -v a="$tb0" -v b="$(date +%s%N)" 'BEGIN { printf "%.3f", (b - a) / 1e9 }')
                break
            fi
        fi
        sleep 0.02
    done
    b_hwm=$(proc_kib "$B_PID" VmHWM)
    stop_pid "$B_PID"
    forget "$B_PID"
    [[ $learn_s != nan ]] || bench_die "node B did not learn A's $n blobs in $LEARN_TIMEOUT s (see $WORK/b.log)"
    bench_log "B answered after $up_s s, listed A's $n blobs after $learn_s s"

    # The TXT record A would publish (PeerTXT.encode), from its /v1/info.
    txt_bytes=$(curl -sf "http://127.0.0.1:$PA/v1/info" | "$PYTHON" -c '
import json, sys
i = json.load(sys.stdin)
strings = ["txtvers=1", "pv=%s" % i["protocol"], "id=%s" % i["id"], "cv=%s" % i["catalogueVersion"]]
print(sum(1 + len(s.encode()) for s in strings))') || bench_die "reading A's /v1/info failed"

    # A cache hit, the whole CLI process; and list.
    k=$((n / 2))
    url="$URL_BASE/$(printf %06d "$k").bin"
    hit=$(ms_runs "$FETCH_RUNS" "$MODELCACHE_BIN" fetch "$url" --cache-dir "$WORK/a" --json) || bench_die "cache-hit fetch failed"
    "$PYTHON" -c 'import json,sys; r = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1]); sys.exit(0 if r["cached"] else 1)' "$WORK/run.out" ||
        bench_die "fetch of $url was not a cache hit: $(cat "$WORK/run.out")"
    read -r hit_ms hit_min <<<"$hit"
    list=$(ms_runs "$LIST_RUNS" "$MODELCACHE_BIN" list --cache-dir "$WORK/a") || bench_die "list failed"
    list_ms=${list% *}

    a_rss=$(proc_kib "$A_PID" VmRSS)
    a_hwm=$(proc_kib "$A_PID" VmHWM)
    mib() { awk -v k="${1:-0}" 'BEGIN { printf "%.1f", k / 1024 }'; }
    echo -e "$n\t$fill_s\t$adds\t$cat_bytes\t$cat_gzip\t$cat_ms\t$cat_gzip_ms\t$cat_304_ms\t$up_s\t$learn_s\t$(mib "$b_hwm")\t$txt_bytes\t$hit_ms\t$hit_min\t$list_ms\t$(mib "$a_rss")\t$(mib "$a_hwm")" >>"$RESULTS"
    bench_log "catalogue $cat_bytes B ($cat_gzip B gzip) in $cat_ms ms (304 in $cat_304_ms ms); TXT $txt_bytes B; hit $hit_ms ms (min $hit_min); list $list_ms ms; A RSS $(mib "$a_rss") MiB"
done
bench_log "after: $(load_note)"

echo
echo "== results (load average before: $LOAD_BEFORE; after: $(cut -d' ' -f1-3 /proc/loadavg))"
"$PYTHON" - "$RESULTS" <<'EOF'
import csv, math, sys
rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
cols = [k for k in rows[0] if k != "n"]
print("| metric | " + " | ".join("N=%s" % r["n"] for r in rows) + " | growth exponent per step |")
print("|---|" + "---|" * len(rows) + "---|")
for c in cols:
    vals = [r[c] for r in rows]
    exps = []
    for a, b in zip(rows, rows[1:]):
        try:
            x, y = float(a[c]), float(b[c])
            exps.append("%.2f" % (math.log(y / x) / math.log(float(b["n"]) / float(a["n"]))))
        except (ValueError, ZeroDivisionError):
            exps.append("?")
    print("| %s | %s | %s |" % (c, " | ".join(vals), ", ".join(exps)))
EOF
