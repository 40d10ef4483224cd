#!/usr/bin/env bash
# How cost grows with the bytes a node holds (issue 12 §5): the same number of blobs (FILES, 20), each SIZE MiB, for
# each SIZE in SIZES_MIB ("1024 10240": 20 GiB, then 200 GiB). The files are sparse (each one's index in its first
# bytes, the rest a hole, so every blob differs) and sit in a Hugging Face Hub cache layout; `modelcache hf import
# --public` hashes each once and hard-links it into a fresh cache: no byte is copied and no disk space is used (the
# script stops if the import copied anything). Reading a hole costs no disk, so the import's time is its hashing.
#
# At each size, for node A (`serve --listen 127.0.0.1:PORT --no-mdns` on that cache):
#   import     wall and CPU seconds of the import, against `openssl dgst -sha256` reading the same files (SHA-NI)
#   start      seconds from A's start until /v1/info answers
#   catalogue  GET /v1/catalogue: bytes plain and gzip, milliseconds (median of 5)
#   manifest   GET /v1/blobs/{sha256}/manifest of one blob: bytes, milliseconds (median of 5)
#   learn      a fresh node B (`serve --peer A`): seconds from its start until /v1/local/peers lists A with FILES blobs
#   hit        `modelcache fetch URL --cache-dir A --json` of an imported URL, the whole process: median ms of 10
#   list       `modelcache list --cache-dir A`, the whole process: median ms of 5
#   rss        A's VmRSS and VmHWM after all the above
# Then a table with each metric's growth exponent against the bytes held: log(m2/m1) / log(bytes2/bytes1).
#
#   bench/big-node.sh    MODELCACHE_BIN (default .build-release/release/modelcache), SIZES_MIB ("1024 10240"),
#                        FILES (20), BENCH_TMP (/tmp)
#
# Everything stays on loopback; every process started is stopped by its pid; every wait is bounded.

set -uo pipefail
source "$(dirname "$0")/lib.sh"
SIZES_MIB=${SIZES_MIB:-"1024 10240"}
FILES=${FILES:-20}

require_bin
ensure_tool /usr/bin/time time
ensure_tool curl curl
ensure_tool openssl openssl
[[ -n $PYTHON ]] || bench_die "python3 is missing (apt-get install python3)"
[[ $FILES =~ ^[0-9]+$ ]] && ((FILES > 0 && FILES <= 1000)) || bench_die "FILES: 1...1000"
for s in $SIZES_MIB; do [[ $s =~ ^[0-9]+$ ]] && ((s > 0 && s <= 1048576)) || bench_die "SIZES_MIB: '$s' is not 1...1048576"; done

WORK=$(mktemp -d "$BENCH_TMP/modelcache-bench-big.XXXXXX") || bench_die "cannot make a directory in $BENCH_TMP"
trap 'stop_tracked; rm -rf "$WORK"' EXIT
trap 'exit 130' INT TERM
bench_log "before: $(load_note)"
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
COMMIT=0123456789abcdef0123456789abcdef01234567
RESULTS=$WORK/results.tsv
echo -e "gib\tfiles\topenssl_s\timport_s\timport_cpu_s\tstart_s\tcat_bytes\tcat_gzip_bytes\tcat_ms\tmanifest_bytes\tmanifest_ms\tlearn_s\thit_ms\tlist_ms\ta_rss_mib\ta_hwm_mib" >"$RESULTS"

for size in $SIZES_MIB; do
    echo "== $FILES files of $size MiB"
    repo=$WORK/hub/models--bench--big
    mkdir -p "$repo/blobs" "$repo/snapshots/$COMMIT" "$repo/refs"
    printf %s "$COMMIT" >"$repo/refs/main"
    openssl_ns=0
    for ((i = 0; i < FILES; i++)); do
        f=$repo/blobs/new
        truncate -s "${size}M" "$f" && printf 'modelcache big-node bench, file %d of %d MiB' "$i" "$size" | dd of="$f" conv=notrunc status=none ||
            bench_die "cannot write a sparse file in $repo"
        t0=$(date +%s%N)
        sha=$(openssl dgst -sha256 -r "$f" | cut -d' ' -f1)
        openssl_ns=$((openssl_ns + $(date +%s%N) - t0))
        mv "$f" "$repo/blobs/$sha" && ln -s "../../blobs/$sha" "$repo/snapshots/$COMMIT/file-$i.bin" || bench_die "cannot lay out the Hub cache"
    done
    openssl_s=$(awk -v n="$openssl_ns" 'BEGIN { printf "%.2f", n / 1e9 }')
    bench_log "hashed $FILES sparse files with openssl in $openssl_s s; disk: $(df -h --output=used "$WORK" | tail -1) used"

    timed "$WORK/import" "$MODELCACHE_BIN" hf import --public --cache-dir "$WORK/a" "$WORK/hub" || bench_die "import failed: $(tail -3 "$WORK/import.stderr")"
    grep -q "^$FILES linked, 0 copied" "$WORK/import.stdout" || bench_die "the import did not link every file: $(cat "$WORK/import.stdout")"
    read -r import_s _ import_cpu _ <"$WORK/import"
    bench_log "import: $(cat "$WORK/import.stdout") in $import_s s, $import_cpu CPU-s"

    pa=$(free_port)
    ta=$(date +%s%N)
    "$MODELCACHE_BIN" serve --cache-dir "$WORK/a" --listen "127.0.0.1:$pa" --no-mdns --name a </dev/null >"$WORK/a.log" 2>&1 &
    A_PID=$!
    track "$A_PID"
    for ((i = 0; i < 1500; i++)); do curl -sf -o /dev/null "http://127.0.0.1:$pa/v1/info" && break; sleep 0.02; done
    start_s=$(awk -v a="$ta" -v b="$(date +%s%N)" 'BEGIN { printf "%.3f", (b - a) / 1e9 }')
    curl -sf -o /dev/null "http://127.0.0.1:$pa/v1/info" || bench_die "node A did not start (see $WORK/a.log)"

    pb=$(free_port)
    measured=$("$PYTHON" - "$MODELCACHE_BIN" "$WORK" "$pa" "$pb" "$FILES" "$COMMIT" <<'EOF'
import gzip, json, statistics, subprocess, sys, time, urllib.request
binary, work, pa, pb, files, commit = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]), sys.argv[6]
base = "http://127.0.0.1:%s" % pa

def get(url, headers={}):
    t0 = time.perf_counter()
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=120) as r:
        body, enc = r.read(), r.headers.get("Content-Encoding")
    return (time.perf_counter() - t0) * 1000, body, enc

def median_get(url, headers={}):
    runs = [get(url, headers) for _ in range(5)]
    return statistics.median(t for t, _, _ in runs), runs[0][1], runs[0][2]

cat_ms, cat, _ = median_get(base + "/v1/catalogue")
blobs = json.loads(cat)["blobs"]
if len(blobs) != files: sys.exit("bench: A's catalogue lists %d blobs, expected %d" % (len(blobs), files))
_, cat_gz, enc = get(base + "/v1/catalogue", {"Accept-Encoding": "gzip"})
if enc != "gzip" or gzip.decompress(cat_gz) != cat: sys.exit("bench: the gzip catalogue differs")
sha = json.loads(subprocess.run([binary, "list", "--cache-dir", work + "/a", "--json"], capture_output=True, check=True).stdout)[0]["sha256"]
man_ms, manifest, _ = median_get(base + "/v1/blobs/%s/manifest" % sha)

# A second node learns A's catalogue.
t0 = time.perf_counter()
b = subprocess.Popen([binary, "serve", "--cache-dir", work + "/b", "--listen", "127.0.0.1:" + pb, "--no-mdns", "--name", "b",
                      "--peer", "127.0.0.1:" + pa], stdin=subprocess.DEVNULL, stdout=open(work + "/b.log", "wb"), stderr=subprocess.STDOUT)
learn = None
try:
    for _ in range(6000):
        r = subprocess.run(["curl", "-sf", "--unix-socket", work + "/b/node.sock", "http://node/v1/local/peers"], capture_output=True)
        if r.returncode == 0 and any(p.get("blobs") == files for p in json.loads(r.stdout)):
            learn = time.perf_counter() - t0
            break
        time.sleep(0.02)
finally:
    b.terminate()
    try: b.wait(timeout=10)
    except subprocess.TimeoutExpired: b.kill(); b.wait()
if learn is None: sys.exit("bench: node B did not list A's %d blobs within 120 s" % files)

print("%d %d %.1f %d %.1f %.3f" % (len(cat), len(cat_gz), cat_ms, len(manifest), man_ms, learn))
EOF
    ) || bench_die "measuring node A failed"
    read -r cat_bytes cat_gzip cat_ms manifest_bytes manifest_ms learn_s <<<"$measured"
    url="https://huggingface.co/bench/big/resolve/$COMMIT/file-0.bin"
    hit=$(ms_runs 10 "$MODELCACHE_BIN" fetch "$url" --cache-dir "$WORK/a" --json) || bench_die "cache-hit fetch failed"
    "$PYTHON" -c 'import json,sys; sys.exit(0 if json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])["cached"] else 1)' "$WORK/run.out" ||
        bench_die "the fetch of $url was not a cache hit: $(cat "$WORK/run.out")"
    hit_ms=${hit% *}
    list=$(ms_runs 5 "$MODELCACHE_BIN" list --cache-dir "$WORK/a") || bench_die "list failed"
    list_ms=${list% *}
    a_rss=$(awk '$1 == "VmRSS:" { printf "%.1f", $2 / 1024 }' "/proc/$A_PID/status")
    a_hwm=$(awk '$1 == "VmHWM:" { printf "%.1f", $2 / 1024 }' "/proc/$A_PID/status")
    stop_pid "$A_PID"
    forget "$A_PID"
    gib=$(awk -v s="$size" -v n="$FILES" 'BEGIN { printf "%g", s * n / 1024 }')
    echo -e "$gib\t$FILES\t$openssl_s\t$import_s\t$import_cpu\t$start_s\t$cat_bytes\t$cat_gzip\t$cat_ms\t$manifest_bytes\t$manifest_ms\t$learn_s\t$hit_ms\t$list_ms\t$a_rss\t$a_hwm" >>"$RESULTS"
    bench_log "$gib GiB: start $start_s s; catalogue $cat_bytes B ($cat_gzip gzip) $cat_ms ms; manifest $manifest_bytes B $manifest_ms ms; B learned in $learn_s s; hit $hit_ms ms; list $list_ms ms; A RSS $a_rss MiB (peak $a_hwm)"
    rm -rf "$WORK/hub" "$WORK/a" "$WORK/b"
done
bench_log "after: $(load_note)"

echo
echo "== results ($FILES blobs at each size; load average before: $LOAD_BEFORE; after: $(cut -d' ' -f1-3 /proc/loadavg))"
"$PYTHON" - "$RESULTS" <<'EOF'
import csv, math, sys
rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
print("| metric | " + " | ".join("%s GiB" % r["gib"] for r in rows) + " | growth exponent against the bytes |")
print("|---|" + "---|" * len(rows) + "---|")
for c in rows[0]:
    if c in ("gib", "files"): continue
    exps = []
    for a, b in zip(rows, rows[1:]):
        try: exps.append("%.2f" % (math.log(float(b[c]) / float(a[c])) / math.log(float(b["gib"]) / float(a["gib"]))))
        except (ValueError, ZeroDivisionError): exps.append("?")
    print("| %s | %s | %s |" % (c, " | ".join(r[c] for r in rows), ", ".join(exps)))
r = rows[-1]
print("import / openssl at %s GiB: %.2f" % (r["gib"], float(r["import_s"]) / float(r["openssl_s"])))
EOF
