#!/usr/bin/env bash
# The registry mirror (protocol §16) with real parts: the reference registry (Debian's docker-registry) on loopback as
# the upstream, filled by skopeo from an OCI layout this test builds (random layers) and, through the distribution
# API with curl, an image shaped like an Ollama model (application/vnd.ollama.image.* layers). Then, all on loopback,
# nodes with --registry-mirror and static peers (no mDNS):
#   - skopeo pulls through node A and gets the upstream's digests; an Ollama-style pull (manifest, then each blob) too,
#     with the upstream picked by a path prefix; as root, containerd's ctr (a throw-away containerd: its own root,
#     state and socket; --hosts-dir with a hosts.toml pointing at node A) pulls the same image, same digests;
#   - four fresh nodes pulling the image at once take each layer's bytes from the upstream about once (the registry's
#     access log counts them);
#   - with the upstream stopped, node B (peer: A) pulls the image: every blob from A;
#   - a second registry that wants a password (htpasswd) as node P's first mirror: skopeo gets nothing without the
#     password, the image with it; its layer stays private on node P.
# Every process started here is stopped by its pid. Prints "N passed, N failed"; exits non-zero on failure; skips
# (exit 0) when docker-registry, skopeo or the binary is missing (scripts/install-deps --test).
set -uo pipefail
cd "$(dirname "$0")/../.."
BIN=${MODELCACHE_BIN:-$PWD/.build/debug/modelcache}
PATH=$PATH:/usr/sbin:/sbin
for tool in docker-registry skopeo curl python3 sha256sum; do
    command -v "$tool" >/dev/null 2>&1 || { echo "SKIP registry-test: $tool is not installed (scripts/install-deps --test)"; exit 0; }
done
[ -x "$BIN" ] || { echo "SKIP registry-test: no modelcache binary at $BIN (swift build first)"; exit 0; }

OUT=$(mktemp -d /tmp/modelcache-registry.XXXXXX)
PIDS=()
REGISTRY_PID=
PASS=0 FAIL=0
stop_pid() {
    kill "$1" 2>/dev/null
    for _ in $(seq 50); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done
    kill -9 "$1" 2>/dev/null
}
cleanup() {
    for pid in "${PIDS[@]}"; do stop_pid "$pid"; done
    [ -n "${KEEP:-}" ] || rm -rf "$OUT"
}
trap cleanup EXIT
check() {  # WHAT COMMAND...: one line, ok or FAIL, counted
    local what=$1 verdict=FAIL; shift
    "$@" && verdict=ok
    printf '%-4s %s\n' "$verdict" "$what"
    if [ "$verdict" = ok ]; then PASS=$((PASS + 1)); else FAIL=$((FAIL + 1)); fi
}
wait_http() {  # URL: until something answers there (at most 100 tries, 10 s)
    local tries=0
    until curl -s -o /dev/null --max-time 1 "$1"; do
        tries=$((tries + 1))
        [ "$tries" -lt 100 ] || return 1
        sleep 0.1
    done
}

read -r R_PORT P_PORT A_PORT B_PORT C1 C2 C3 C4 PN_PORT < <(python3 -c '
import socket
ss = [socket.socket() for _ in range(9)]
for s in ss: s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in ss))')
REG=127.0.0.1:$R_PORT
PRIV=127.0.0.1:$P_PORT
mkdir -p "$OUT/logs" "$OUT/registry"
: >"$OUT/empty.toml"
export MODELCACHE_CONFIG=$OUT/empty.toml XDG_CONFIG_HOME=$OUT/xdg

# The upstream: the reference registry, its combined access log on stdout ("GET /v2/… HTTP/1.1" STATUS BYTES).
source Tests/ops/registry-lib.sh
registry_config "$REG" "$OUT/registry" >"$OUT/registry.yml"
start_registry() {
    docker-registry serve "$OUT/registry.yml" >>"$OUT/logs/registry.log" 2>&1 &
    REGISTRY_PID=$!
    PIDS+=("$REGISTRY_PID")
    wait_http "http://$REG/v2/"
}
start_registry || { echo "FAIL docker-registry did not start"; tail -20 "$OUT/logs/registry.log"; exit 1; }

# An OCI layout with two random gzip layers (64 MiB and 6 MiB: 16 and 2 chunks of 4 MiB) and a config.
python3 Tests/ops/oci_layout.py "$OUT/layout" 64 6
skopeo copy -q --dest-tls-verify=false "oci:$OUT/layout:v1" "docker://$REG/library/tiny:v1" >"$OUT/logs/push.log" 2>&1
check "skopeo filled the upstream registry from the OCI layout" test $? = 0
UP_DIGEST=$(skopeo inspect --tls-verify=false --format '{{.Digest}}' "docker://$REG/library/tiny:v1" 2>/dev/null)
UP_LAYERS=$(skopeo inspect --tls-verify=false --format '{{.Layers}}' "docker://$REG/library/tiny:v1" 2>/dev/null)

# An Ollama-shaped model pushed with the distribution API: a Docker schema 2 manifest with Ollama's media types.
python3 - "$OUT/ollama" <<'PY'
import hashlib, json, os, sys
root = sys.argv[1]; os.makedirs(root)
blobs = {"model": os.urandom(9 << 20), "template": b"{{ .Prompt }}", "params": b'{"stop":["<|end|>"]}'}
desc = lambda kind, b: {"mediaType": "application/vnd.ollama.image." + kind, "digest": "sha256:" + hashlib.sha256(b).hexdigest(), "size": len(b)}
config = json.dumps({"model_format": "gguf", "model_family": "llama", "file_type": "Q4_0"}).encode()
manifest = {"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "digest": "sha256:" + hashlib.sha256(config).hexdigest(), "size": len(config)},
            "layers": [desc(k, b) for k, b in blobs.items()]}
for b in list(blobs.values()) + [config]:
    open(f"{root}/{hashlib.sha256(b).hexdigest()}", "wb").write(b)
open(root + "/manifest.json", "w").write(json.dumps(manifest))
PY
push_ok=1
for f in "$OUT"/ollama/*; do
    [ "$(basename "$f")" = manifest.json ] && continue
    loc=$(curl -s -D - -o /dev/null -X POST "http://$REG/v2/library/llama/blobs/uploads/" | tr -d '\r' | awk 'tolower($1) == "location:" { print $2 }')
    case $loc in http*) ;; *) loc="http://$REG$loc" ;; esac
    sep='?'; case $loc in *\?*) sep='&' ;; esac
    curl -s -f -o /dev/null -X PUT -H 'Content-Type: application/octet-stream' --data-binary "@$f" \
        "$loc${sep}digest=sha256:$(basename "$f")" || push_ok=0
done
curl -s -f -o /dev/null -X PUT -H 'Content-Type: application/vnd.docker.distribution.manifest.v2+json' \
    --data-binary "@$OUT/ollama/manifest.json" "http://$REG/v2/library/llama/manifests/8b" || push_ok=0
check "the Ollama-shaped model was pushed to the upstream" test $push_ok = 1

# A private registry: a second docker-registry that wants a password (htpasswd, bcrypt) for everything.
python3 -c "import crypt; print('alice:' + crypt.crypt('s3cret', crypt.mksalt(crypt.METHOD_BLOWFISH)))" >"$OUT/htpasswd" 2>/dev/null
{ registry_config "$PRIV" "$OUT/registry-private"
  printf '%s\n' 'auth:' '  htpasswd:' '    realm: private' "    path: $OUT/htpasswd"; } >"$OUT/registry-private.yml"
docker-registry serve "$OUT/registry-private.yml" >"$OUT/logs/registry-private.log" 2>&1 &
PIDS+=($!)
wait_http "http://$PRIV/v2/"
python3 Tests/ops/oci_layout.py "$OUT/layout-private" 2
skopeo copy -q --dest-tls-verify=false --dest-creds alice:s3cret "oci:$OUT/layout-private:v1" "docker://$PRIV/team/secret:v1" \
    >"$OUT/logs/push-private.log" 2>&1
check "skopeo filled the private registry (with its password)" test $? = 0
PRIV_LAYER=$(python3 -c "import json; m=json.load(open('$OUT/layout-private/blobs/sha256/' + json.load(open('$OUT/layout-private/index.json'))['manifests'][0]['digest'][7:])); print(m['layers'][0]['digest'])")

serve() {  # NAME PORT [--peer ...]: a node with the upstream under two names (containerd's ns, and a path prefix)
    local name=$1 port=$2; shift 2
    "$BIN" serve --cache-dir "$OUT/$name" --listen "127.0.0.1:$port" --no-mdns --hf-upstream none --name "$name" \
        --registry-mirror "$REG=http://$REG" --registry-mirror "upstream.test=http://$REG" "$@" >"$OUT/logs/$name.log" 2>&1 &
    PIDS+=($!)
}
serve a "$A_PORT"
wait_http "http://127.0.0.1:$A_PORT/v1/info" || { echo "FAIL node A did not start"; cat "$OUT/logs/a.log"; exit 1; }
check "GET /v2/ on the node answers as a registry" \
    bash -c "curl -s -D - -o /dev/null http://127.0.0.1:$A_PORT/v2/ | grep -qi '^docker-distribution-api-version: registry/2.0'"

pull() {  # NODE_PORT DEST: skopeo copies the image through a node into an OCI layout
    skopeo copy -q --src-tls-verify=false "docker://127.0.0.1:$1/library/tiny:v1" "oci:$2:v1" >"$2.log" 2>&1
}
manifest_digest() { python3 -c "import json; print(json.load(open('$1/index.json'))['manifests'][0]['digest'])" 2>/dev/null; }
pull "$A_PORT" "$OUT/pull-a"
check "skopeo pulled the image through node A" test $? = 0
check "... with the upstream's manifest digest ($UP_DIGEST)" test "$(manifest_digest "$OUT/pull-a")" = "$UP_DIGEST"
check "... and its layers' digests" test "$(skopeo inspect --format '{{.Layers}}' "oci:$OUT/pull-a:v1" 2>/dev/null)" = "$UP_LAYERS"
check "node A shows the pull as jobs titled with the image" \
    bash -c "curl -s http://127.0.0.1:$A_PORT/v1/jobs 2>/dev/null | grep -q 'library/tiny:v1' || MODELCACHE_DIR=$OUT/a $BIN jobs 2>/dev/null | grep -q 'library/tiny:v1'"

# Ollama's way (manifest with Docker's Accept, then each blob), the upstream named by a path prefix.
ollama_ok=1
M=$(curl -s -f -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
    "http://127.0.0.1:$A_PORT/v2/upstream.test/library/llama/manifests/8b") || ollama_ok=0
echo "$M" >"$OUT/ollama-pulled.json"
for d in $(python3 -c "import json,sys; m=json.load(open('$OUT/ollama-pulled.json')); print(' '.join(x['digest'] for x in [m['config']]+m['layers']))" 2>/dev/null); do
    got=$(curl -s -f "http://127.0.0.1:$A_PORT/v2/upstream.test/library/llama/blobs/$d" | sha256sum | cut -d' ' -f1)
    [ "sha256:$got" = "$d" ] || ollama_ok=0
done
check "an Ollama-style pull through node A (path prefix upstream.test/) gets every blob with its digest" test $ollama_ok = 1
check "... and the manifest the upstream holds" cmp -s "$OUT/ollama-pulled.json" <(tr -d '\n' <"$OUT/ollama/manifest.json"; echo)
check "skopeo reads the Ollama manifest through the node" \
    bash -c "skopeo inspect --raw --tls-verify=false docker://127.0.0.1:$A_PORT/upstream.test/library/llama:8b | grep -q vnd.ollama.image.model"

# The private registry as a node's first mirror (node P): its /v2/ passes the registry's challenge on, so clients send
# their password. Nothing without it; with it, the image; its layer stays on node P (not in its catalogue) and is not
# served again without the password.
"$BIN" serve --cache-dir "$OUT/p" --listen "127.0.0.1:$PN_PORT" --no-mdns --hf-upstream none --name p \
    --registry-mirror "$PRIV=http://$PRIV" --registry-mirror "$REG=http://$REG" >"$OUT/logs/p.log" 2>&1 &
PIDS+=($!)
wait_http "http://127.0.0.1:$PN_PORT/v1/info" || echo "node P did not start"
PA=http://127.0.0.1:$PN_PORT/v2/team/secret
check "private registry, no credentials: /v2/ on node P answers 401 with the registry's Basic challenge" \
    bash -c "curl -s -D - -o /dev/null http://127.0.0.1:$PN_PORT/v2/ | grep -qi '^www-authenticate: basic'"
check "... and so does the manifest" \
    bash -c "curl -s -D - -o /dev/null -H 'Accept: application/vnd.oci.image.manifest.v1+json' $PA/manifests/v1 | grep -qi '^www-authenticate: basic'"
skopeo copy -q --src-tls-verify=false "docker://127.0.0.1:$PN_PORT/team/secret:v1" "oci:$OUT/pull-private-anon:v1" \
    >"$OUT/pull-private-anon.log" 2>&1
check "... and skopeo without credentials gets no image" test $? != 0
skopeo copy -q --src-tls-verify=false --src-creds alice:s3cret "docker://127.0.0.1:$PN_PORT/team/secret:v1" \
    "oci:$OUT/pull-private:v1" >"$OUT/pull-private.log" 2>&1
check "skopeo with the credentials pulled the private image through node P" \
    test "$(manifest_digest "$OUT/pull-private")" = "$(manifest_digest "$OUT/layout-private")"
check "... its layer is on node P but not in its catalogue" bash -c "
    ls $OUT/p/blobs/sha256/ 2>/dev/null | grep -q ${PRIV_LAYER:7} &&
    ! curl -s http://127.0.0.1:$PN_PORT/v1/catalogue | grep -q ${PRIV_LAYER:7}"
check "... and not served without the credentials (401)" \
    test "$(curl -s -o /dev/null -w '%{http_code}' "$PA/blobs/$PRIV_LAYER")" = 401
check "... but with them (curl -u), byte for byte" \
    test "sha256:$(curl -s -u alice:s3cret "$PA/blobs/$PRIV_LAYER" | sha256sum | cut -d' ' -f1)" = "$PRIV_LAYER"

# containerd (root only): a throw-away daemon; its hosts.toml sends the upstream's pulls to node A.
if [ "$(id -u)" = 0 ] && command -v containerd >/dev/null && command -v ctr >/dev/null; then
    C=$OUT/containerd
    mkdir -p "$C/root" "$C/state" "$C/certs.d/$REG"
    cat >"$C/certs.d/$REG/hosts.toml" <<TOML
server = "http://$REG"

[host."http://127.0.0.1:$A_PORT"]
  capabilities = ["pull", "resolve"]
TOML
    cat >"$C/config.toml" <<TOML
version = 2
root = "$C/root"
state = "$C/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$C/sock"
TOML
    containerd --config "$C/config.toml" >"$OUT/logs/containerd.log" 2>&1 &
    PIDS+=($!)
    for _ in $(seq 100); do [ -S "$C/sock" ] && break; sleep 0.1; done
    ctr -a "$C/sock" -n test content fetch --hosts-dir "$C/certs.d" "$REG/library/tiny:v1" >"$OUT/logs/ctr.log" 2>&1
    check "ctr pulled the image through node A (hosts.toml)" test $? = 0
    check "... with the upstream's manifest digest" \
        bash -c "ctr -a '$C/sock' -n test images ls 2>/dev/null | grep -q '${UP_DIGEST}'"
    check "... from node A: no request of containerd's reached the upstream" bash -c "! grep -q '\"containerd/' '$OUT/logs/registry.log'"
else
    echo "skip containerd part: needs root and containerd"
fi

# Four fresh nodes pull at once (each the others' peer): each layer's bytes leave the upstream about once. Each node's
# origin rate is capped (an uplink, not loopback's GB/s) so that a chunk takes long enough for the others to hear of it.
serve c1 "$C1" --max-origin-rate 8M --peer "127.0.0.1:$C2" --peer "127.0.0.1:$C3" --peer "127.0.0.1:$C4"
serve c2 "$C2" --max-origin-rate 8M --peer "127.0.0.1:$C1" --peer "127.0.0.1:$C3" --peer "127.0.0.1:$C4"
serve c3 "$C3" --max-origin-rate 8M --peer "127.0.0.1:$C1" --peer "127.0.0.1:$C2" --peer "127.0.0.1:$C4"
serve c4 "$C4" --max-origin-rate 8M --peer "127.0.0.1:$C1" --peer "127.0.0.1:$C2" --peer "127.0.0.1:$C3"
for p in "$C1" "$C2" "$C3" "$C4"; do wait_http "http://127.0.0.1:$p/v1/info" || echo "node on $p did not start"; done
sleep 1  # the nodes read each other's catalogues
MARK=$(wc -l <"$OUT/logs/registry.log")
for p in "$C1" "$C2" "$C3" "$C4"; do pull "$p" "$OUT/pull-$p" & done
wait $(jobs -p | tail -4) 2>/dev/null
all_same=1
for p in "$C1" "$C2" "$C3" "$C4"; do [ "$(manifest_digest "$OUT/pull-$p")" = "$UP_DIGEST" ] || all_same=0; done
check "four nodes pulling at once all got the image with the upstream's digest" test $all_same = 1
big_ok=0 total_size=0 total_sent=0
for layer in $(python3 -c "import json; m=json.load(open('$OUT/layout/index.json')); print(m['manifests'][0]['digest'][7:])"); do
    mf=$OUT/layout/blobs/sha256/$layer
    for d in $(python3 -c "import json; m=json.load(open('$mf')); print(' '.join(l['digest']+':'+str(l['size']) for l in m['layers']))"); do
        digest=${d%:*}; size=${d##*:}
        sent=$(tail -n +"$((MARK + 1))" "$OUT/logs/registry.log" | grep "\"GET /v2/library/tiny/blobs/$digest" |
            awk '{ for (i = 1; i <= NF; i++) if ($i ~ /^HTTP\//) { s += $(i + 2) } } END { print s + 0 }')
        echo "  layer ${digest:7:12}: $size bytes, the upstream sent $sent for four nodes"
        total_size=$((total_size + size)) total_sent=$((total_sent + sent))
        # The 64 MiB layer (16 chunks): about once. A layer of 2 chunks may go out up to once per node: nodes that start
        # together pick their first chunk before they hear of each other (swarm, protocol §11).
        if ((size > 32 << 20)); then python3 -c "import sys; sys.exit(0 if 0 < $sent <= 1.5 * $size else 1)" && big_ok=1; fi
    done
done
check "the 64 MiB layer left the upstream about once (at most 1.5x its size) for four nodes pulling at once" test $big_ok = 1
check "the whole image left it less than twice ($total_sent for $total_size bytes), not four times" \
    python3 -c "import sys; sys.exit(0 if 0 < $total_sent < 2 * $total_size else 1)"

# The upstream stopped: node B (peer A) pulls the image, every blob from A.
stop_pid "$REGISTRY_PID"
serve b "$B_PORT" --peer "127.0.0.1:$A_PORT"
wait_http "http://127.0.0.1:$B_PORT/v1/info" || echo "node B did not start"
sleep 1
pull "$B_PORT" "$OUT/pull-b"
check "with the upstream stopped, node B pulled the image from node A" test "$(manifest_digest "$OUT/pull-b")" = "$UP_DIGEST"
check "... every layer digest as the upstream's" test "$(skopeo inspect --format '{{.Layers}}' "oci:$OUT/pull-b:v1" 2>/dev/null)" = "$UP_LAYERS"
check "... its bytes from a peer (metrics), none from the origin" bash -c "
    m=\$(curl -s http://127.0.0.1:$B_PORT/metrics)
    echo \"\$m\" | grep -q '^modelcache_received_bytes_total{source=\"peer\"' &&
    ! echo \"\$m\" | grep -q '^modelcache_received_bytes_total{source=\"origin\"} [1-9]'"

echo "$PASS passed, $FAIL failed"
if ((FAIL)); then
    for f in logs/a.log logs/b.log logs/c1.log logs/registry.log logs/ctr.log pull-a.log pull-b.log; do
        [ -f "$OUT/$f" ] && { echo "--- $f"; tail -15 "$OUT/$f"; }
    done
    exit 1
fi
