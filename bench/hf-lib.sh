# Shared set-up of the Hugging Face benchmarks (hf-snapshot.sh, hf-profile.sh); sourced after lib.sh, with WORK set.
# The real huggingface_hub client in its venv, the fake Hub of the tests serving acme/big-model (two LFS files of
# BENCH_SIZE_MIB/2 MiB and 3 small files) on loopback, and nodes with --hf-upstream pointing at it.

HF_VERSION=2.4.0
VENV=$BENCH_ROOT/.venv-hf
VPY=$VENV/bin/python
BENCH_HF_DATA=${BENCH_HF_DATA:-$BENCH_TMP/modelcache-bench-hf-data}
HALF_MIB=$((BENCH_SIZE_MIB / 2))

# hf_client_venv: makes $VENV with huggingface_hub==$HF_VERSION from PyPI unless it has it already.
hf_client_venv() {
    "$VPY" -c "import sys, huggingface_hub; sys.exit(huggingface_hub.__version__ != '$HF_VERSION')" 2>/dev/null && return 0
    bench_log "making $VENV (huggingface_hub==$HF_VERSION from PyPI)"
    rm -rf "$VENV"
    "$PYTHON" -m venv "$VENV" || bench_die "python3 -m venv failed (apt-get install python3-venv)"
    "$VENV/bin/pip" install -q --disable-pip-version-check "huggingface_hub==$HF_VERSION" || bench_die "pip install failed"
}

# start_fake_hub: the fake Hub on free loopback ports (tracked); sets FAKE_PID and HUB (its URL), and writes its
# manifest (every file's sha256) to $WORK/manifest.json.
start_fake_hub() {
    mkdir -p "$BENCH_HF_DATA"
    bench_log "fake Hub: acme/big-model, 2 x $HALF_MIB MiB (generated once into $BENCH_HF_DATA)"
    "$PYTHON" "$BENCH_ROOT/Tests/hf/fakehub.py" --data-dir "$BENCH_HF_DATA" --big-mib "$HALF_MIB" \
        --ports-file "$WORK/ports.json" </dev/null >"$WORK/fakehub.log" 2>&1 &
    FAKE_PID=$!
    track "$FAKE_PID"
    for _ in $(seq 600); do [[ -s $WORK/ports.json ]] && break; kill -0 "$FAKE_PID" 2>/dev/null || break; sleep 0.1; done
    [[ -s $WORK/ports.json ]] || bench_die "the fake Hub did not start: $(tail -5 "$WORK/fakehub.log")"
    HUB=http://127.0.0.1:$("$PYTHON" -c "import json; print(json.load(open('$WORK/ports.json'))['hub'])")
    curl -sf "$HUB/_manifest" >"$WORK/manifest.json" || bench_die "no /_manifest from the fake Hub"
}

# start_node NAME [PEER]: a node on a free port with an empty cache, its Hub endpoint upstream the fake (tracked);
# sets NODE_URL and NODE_PID.
start_node() {
    local name=$1 peer=${2:-} port
    port=$(free_port)
    rm -rf "$WORK/node-$name"
    "$MODELCACHE_BIN" serve --cache-dir "$WORK/node-$name" --listen "127.0.0.1:$port" --no-mdns --name "$name" \
        --hf-upstream "$HUB" ${peer:+--peer "$peer"} </dev/null >"$WORK/node-$name.log" 2>&1 &
    NODE_PID=$!
    track "$NODE_PID"
    NODE_URL=http://127.0.0.1:$port
    wait_http "$NODE_URL/v1/info" 200 || bench_die "node $name did not start: $(tail -5 "$WORK/node-$name.log")"
}

# snapshot_client HOME ENDPOINT [XET_OFF]: snapshot_download of acme/big-model into HF_HOME=HOME (made empty) from
# ENDPOINT, in a fresh Python process that writes its pid to HOME.pid before the call. Prints "WALL CPU": the
# seconds of the call alone and the client's CPU seconds during it, after checking every file's sha256 against the
# fake's manifest (outside the timing). Its stderr goes to HOME.err.
snapshot_client() {
    local home=$1 ep=$2 xetoff=${3:-}
    rm -rf "$home"
    mkdir -p "$home"
    env -u HF_TOKEN -u HF_HUB_OFFLINE -u HF_HUB_DISABLE_XET HF_HOME="$home" HF_ENDPOINT="$ep" \
        HF_HUB_DISABLE_TELEMETRY=1 HF_HUB_DISABLE_PROGRESS_BARS=1 HF_HUB_DISABLE_IMPLICIT_TOKEN=1 \
        ${xetoff:+HF_HUB_DISABLE_XET=1} timeout -k 5 600 "$VPY" - "$WORK/manifest.json" "$home.pid" 2>"$home.err" <<'EOF'
import hashlib, json, os, sys, time
import resource
from huggingface_hub import snapshot_download
def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime
open(sys.argv[2], "w").write(str(os.getpid()))
c0 = cpu()
t0 = time.perf_counter()
d = snapshot_download("acme/big-model")
t = time.perf_counter() - t0
c = cpu() - c0
repo = next(r for r in json.load(open(sys.argv[1])) if r["id"] == "acme/big-model")
files = next(c for c in repo["commits"] if c["sha"] == repo["refs"]["main"])["files"]
for p, f in files.items():
    h = hashlib.sha256()
    with open(os.path.join(d, p), "rb") as fh:
        for b in iter(lambda: fh.read(1 << 22), b""):
            h.update(b)
    if h.hexdigest() != f["sha256"]:
        sys.exit("wrong bytes in %s" % p)
print("%.3f %.2f" % (t, c))
EOF
}
