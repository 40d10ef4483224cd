# Shared by the real-LAN tests (sourced, not run). Each test sets NAME (a short lowercase tag) and NODES (how many
# node namespaces), then calls lan_setup; it gets $LAB, $BIN, $OUT, check, start_origin, start_nodes, peers_of, json.
# Everything started goes into BG and is stopped by pid on exit, then the lab is taken down.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT" || exit 1
BIN=${MODELCACHE_BIN:-.build/debug/modelcache}
LAB=$ROOT/scripts/lanlab.sh
PASS=0 FAIL=0
BG=()
LAB_UP=0

skip() { echo "SKIP: $*"; exit 0; }

check() {  # check DESC CMD...
    local desc=$1; shift
    if "$@"; then echo "PASS: $desc"; PASS=$((PASS + 1)); else echo "FAIL: $desc"; FAIL=$((FAIL + 1)); fi
}

lan_cleanup() {
    local p
    for p in "${BG[@]}"; do kill -TERM "$p" 2>/dev/null; done
    for p in "${BG[@]}"; do wait "$p" 2>/dev/null; done
    ((LAB_UP)) && "$LAB" down >/dev/null 2>&1
    [[ -n ${KEEP_OUTPUT:-} ]] || rm -rf "$OUT"
}

# lan_setup: checks root and tools, brings up $NODES nodes and an origin namespace.
lan_setup() {
    export MCLAB_PREFIX=${MCLAB_PREFIX:-mc$NAME$$}
    export MCLAB_STATE=${MCLAB_STATE:-/tmp/modelcache-lanlab-$MCLAB_PREFIX}
    [[ $(id -u) == 0 ]] || skip "needs root (creates network namespaces)"
    local tool
    for tool in ip nsenter avahi-daemon dbus-daemon nginx python3 curl; do
        command -v "$tool" >/dev/null || skip "$tool is not installed (scripts/install-deps)"
    done
    [[ -x $BIN ]] || { echo "FAIL: no modelcache binary at $BIN"; echo "0 passed, 1 failed"; exit 1; }
    BIN=$(realpath "$BIN")
    OUT=$(mktemp -d "/tmp/modelcache-$NAME-test.XXXXXX")
    trap lan_cleanup EXIT
    "$LAB" up "$NODES" --origin >"$OUT/lab.log" 2>&1 || { cat "$OUT/lab.log"; echo "FAIL: lab did not come up"; echo "0 passed, 1 failed"; exit 1; }
    LAB_UP=1
}

# start_origin MIB: nginx in the origin namespace serving $URL (a random file of MIB MiB, sha256 $SHA, size $SIZE);
# its access log ($OUT/access.log) has: address, method, status, body bytes sent.
start_origin() {
    mkdir -p "$OUT/www"
    chmod 755 "$OUT" "$OUT/www"  # nginx workers run as www-data
    head -c $(($1 * 1024 * 1024)) /dev/urandom >"$OUT/www/model.safetensors"
    SIZE=$(stat -c %s "$OUT/www/model.safetensors")
    SHA=$(sha256sum "$OUT/www/model.safetensors" | cut -d' ' -f1)
    cat >"$OUT/nginx.conf" <<EOC
daemon off;
worker_processes 1;
pid $OUT/nginx.pid;
error_log $OUT/nginx-error.log;
events {}
http {
  log_format mc '\$remote_addr \$request_method \$status \$body_bytes_sent';
  access_log $OUT/access.log mc;
  sendfile on;
  server { listen 10.77.0.100:8080; root $OUT/www; }
}
EOC
    "$LAB" exec origin nginx -c "$OUT/nginx.conf" 2>>"$OUT/nginx-error.log" &
    BG+=($!)
    URL=http://10.77.0.100:8080/model.safetensors
    local _
    for _ in $(seq 50); do "$LAB" exec 1 curl -fsI "$URL" >/dev/null 2>&1 && break; sleep 0.1; done
    : >"$OUT/access.log"
}

# start_nodes NAME...: `modelcache serve` (mDNS on) on nodes 1..N with those names; waits for their sockets.
# Extra `serve` arguments for every node: the array NODE_ARGS (e.g. NODE_ARGS=(--hf-upstream URL)).
start_nodes() {
    local i=1 name _
    for name in "$@"; do
        "$LAB" exec "$i" "$BIN" serve --cache-dir "$OUT/node$i" --name "$name" -v ${NODE_ARGS[@]+"${NODE_ARGS[@]}"} \
            2>"$OUT/node$i.log" &
        BG+=($!)
        i=$((i + 1))
    done
    for ((i = 1; i <= $#; i++)); do
        for _ in $(seq 100); do [[ -S $OUT/node$i/node.sock ]] && break; sleep 0.1; done
    done
}

# lan_hf_venv: the Hugging Face client's virtualenv (Tests/hf/venv.sh): skips when it cannot be made here.
lan_hf_venv() {
    source Tests/hf/venv.sh
    hf_venv || case $? in 2) skip "$HF_VENV_WHY" ;; *) check "made $HF_VENV ($HF_VENV_WHY)" false; echo "$PASS passed, $FAIL failed"; exit 1 ;; esac
}

# start_fakehub: Tests/hf/fakehub.py (Hub + CDN) in the origin namespace on 10.77.0.100 (its CDN redirects name the
# host it listens on); sets FAKE (its pid, also in BG), HUB_PORT, CDN_PORT and HUB (empty ports: it did not start).
start_fakehub() {
    chmod 755 "$OUT"
    "$LAB" exec origin python3 "$ROOT/Tests/hf/fakehub.py" --host 10.77.0.100 --port 0 --cdn-port 0 \
        --ports-file "$OUT/fakehub-ports.json" --data-dir "$OUT/fakehub-data" >"$OUT/fakehub.log" 2>&1 &
    FAKE=$!
    BG+=("$FAKE")
    local _
    for _ in $(seq 600); do [[ -s $OUT/fakehub-ports.json ]] && break; kill -0 "$FAKE" 2>/dev/null || break; sleep 0.1; done
    HUB_PORT=$(json 'd["hub"]' <"$OUT/fakehub-ports.json" 2>/dev/null)
    CDN_PORT=$(json 'd["cdn"]' <"$OUT/fakehub-ports.json" 2>/dev/null)
    HUB=http://10.77.0.100:$HUB_PORT
}

peers_of() { curl -s --unix-socket "$OUT/node$1/node.sock" http://node/v1/local/peers; }
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
