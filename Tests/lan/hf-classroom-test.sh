#!/usr/bin/env bash
# Real-LAN test of the Hugging Face endpoint (protocol §13), the "offline classroom": two node namespaces, each with
# its own dbus + avahi-daemon (scripts/lanlab.sh), and the fake Hub (Tests/hf/fakehub.py: Hub + CDN) in the origin
# namespace at 10.77.0.100; both nodes run `serve --hf-upstream <fake>`, neither has a --peer.
#   node 1 (the teacher's): the real huggingface_hub client (HF_ENDPOINT = node 1) downloads acme/tiny-model, one
#     file of its older commit and, with the right token, a file of the gated acme/gated-model;
#   the fake Hub is stopped (the school's Internet link is down);
#   node 2 (a pupil's) finds node 1 over mDNS, and a client (HF_ENDPOINT = node 2) gets the same files from it,
#     byte for byte; the gated file is not obtainable through node 2, with or without the token.
# Makes (or reuses) .venv-hf (Tests/hf/venv.sh). Prints "N passed, N failed"; exits non-zero on failure; skips
# (exit 0) when not root, tools are missing, or the venv cannot be made (no python3-venv, PyPI unreachable).
set -uo pipefail
NAME=hfc NODES=2
source "$(dirname "$0")/lib.sh"
lan_setup
lan_hf_venv
TOKEN=hf_test_token
MODEL=acme/tiny-model
GATED=acme/gated-model

# The fake Hub in the origin namespace, on 10.77.0.100.
start_fakehub
if [[ -z $HUB_PORT ]]; then
    check "the fake Hub started in the origin namespace" false; cat "$OUT/fakehub.log"; echo "$PASS passed, $FAIL failed"; exit 1
fi
"$LAB" exec 1 curl -sf "$HUB/_manifest" >"$OUT/manifest.json"
check "(sanity) node 1's namespace reaches the fake Hub; its CDN redirects name 10.77.0.100:$CDN_PORT" \
    bash -c "\"$LAB\" exec 1 curl -s -o /dev/null -D - '$HUB/$MODEL/resolve/main/model-00001-of-00002.safetensors' |
        grep -qi '^location: http://10.77.0.100:$CDN_PORT/'"

NODE_ARGS=(--hf-upstream "$HUB")
# LAN_CLUSTER_KEY=1: both nodes share a cluster key (protocol §14): the pupil's Hub questions to the teacher are then
# answered only because they are signed; every client runs on its node's own host, which needs no key.
if [[ -n ${LAN_CLUSTER_KEY:-} ]]; then
    head -c 32 /dev/urandom >"$OUT/cluster.key" && chmod 600 "$OUT/cluster.key"
    NODE_ARGS+=(--cluster-key-file "$OUT/cluster.key")
fi
start_nodes teacher pupil

# hf_client I HOME JSON: one huggingface_hub call (hf_client_test.py --client: op download|snapshot + its kwargs) in
# node I's namespace with HF_ENDPOINT = node I and HF_HOME = HOME; its JSON answer on stdout.
hf_client() {
    mkdir -p "$2"
    "$LAB" exec "$1" env -u HTTP_PROXY -u http_proxy -u HTTPS_PROXY -u https_proxy -u ALL_PROXY -u all_proxy \
        -u HF_TOKEN -u HUGGING_FACE_HUB_TOKEN HF_HOME="$2" HF_ENDPOINT="http://10.77.0.$1:7070" \
        HF_HUB_DISABLE_TELEMETRY=1 HF_HUB_DISABLE_UPDATE_CHECK=1 HF_HUB_DISABLE_PROGRESS_BARS=1 \
        HF_HUB_DISABLE_IMPLICIT_TOKEN=1 NO_PROXY='*' no_proxy='*' \
        timeout -k 5 150 "$HF_VENV/bin/python" Tests/hf/hf_client_test.py --client "$3"
}

# same REPO REV ANSWER-FILE [PATH]: the client's answer (a snapshot dir, or PATH's file) has exactly the bytes of
# REPO at REV (a ref or a commit) per the fake's /_manifest; says what differs.
same() {
    python3 - "$OUT/manifest.json" "$@" <<'EOF'
import hashlib, json, os, sys
man, repo, rev, answer = sys.argv[1:5]
path = sys.argv[5] if len(sys.argv) > 5 else None
r = next(x for x in json.load(open(man)) if x["id"] == repo)
files = next(c for c in r["commits"] if c["sha"] == r["refs"].get(rev, rev))["files"]
try:
    a = json.load(open(answer))
except ValueError:
    print("  no JSON answer: %r" % open(answer).read()[-800:]); sys.exit(1)
if not a.get("ok"):
    print("  client error %s: %s" % (a.get("error"), a.get("message"))); sys.exit(1)
def sha(p):
    h = hashlib.sha256()
    with open(p, "rb") as f:
        for b in iter(lambda: f.read(1 << 20), b""):
            h.update(b)
    return h.hexdigest()
want = {path: files[path]} if path else files
got = {path: a["path"]} if path else {p: os.path.join(a["dir"], p) for p in files}
bad = [p for p in want if not os.path.isfile(got[p]) or sha(got[p]) != want[p]["sha256"]]
if not path:
    have = {os.path.relpath(os.path.join(b, n), a["dir"]) for b, _, ns in os.walk(a["dir"]) for n in ns}
    bad += ["extra " + p for p in sorted(have - set(files)) if not p.startswith(".cache/")]
if bad:
    print("  differ: %s" % bad); sys.exit(1)
EOF
}
sha256_of() {  # sha256_of REPO REV PATH (from the manifest)
    python3 -c "import json,sys; r=next(x for x in json.load(open('$OUT/manifest.json')) if x['id']=='$1');
print(next(c for c in r['commits'] if c['sha']==r['refs'].get('$2','$2'))['files']['$3']['sha256'])"
}
tx_bytes() { "$LAB" exec "$1" ip -s -j link show dev eth0 | json 'd[0]["stats64"]["tx"]["bytes"]'; }  # tx_bytes I
catalogue_of() {  # signed with the cluster key when there is one (the peer API wants it even from loopback)
    local hdrs=()
    if [[ -n ${LAN_CLUSTER_KEY:-} ]]; then
        mapfile -t hdrs < <(python3 - "$OUT/cluster.key" <<'EOP'
import hmac, hashlib, os, sys, time
key, t, n = open(sys.argv[1], "rb").read(), str(int(time.time())), os.urandom(16).hex()
s = "\n".join(["modelcache-cluster-v1", "GET", "/v1/catalogue", t, n]).encode()
for h in (f"X-ModelCache-Cluster-Time: {t}", f"X-ModelCache-Cluster-Nonce: {n}",
          f"X-ModelCache-Cluster-Signature: {hmac.new(key, s, hashlib.sha256).hexdigest()}"):
    print("-H"); print(h)
EOP
)
    fi
    "$LAB" exec "$1" curl -sf ${hdrs[@]+"${hdrs[@]}"} "http://10.77.0.$1:7070/v1/catalogue"
}
# not_listed I SHA256: "yes" only when the catalogue was read and does not list it ("unread" when it was not).
not_listed() { local c; c=$(catalogue_of "$1") || { echo unread; return; }; grep -qE "$2" <<<"$c" && echo no || echo yes; }
# in_catalogue I SHA256...: node I's /v1/catalogue lists every one of these blobs.
in_catalogue() {
    local i=$1; shift
    catalogue_of "$i" | python3 -c "import json,sys; have={b['sha256'] for b in json.load(sys.stdin)['blobs']};
missing=[s for s in sys.argv[1:] if s not in have]; print('  missing: %s' % missing) if missing else None; sys.exit(bool(missing))" "$@"
}

OLD=$(python3 -c "import json; print(next(x for x in json.load(open('$OUT/manifest.json')) if x['id']=='$MODEL')['refs']['v1.0'])")
SHARD2=model-00002-of-00002.safetensors  # differs between main and v1.0

# 1. The teacher's node, the Hub up.
hf_client 1 "$OUT/home1" "{\"op\": \"snapshot\", \"repo_id\": \"$MODEL\"}" >"$OUT/t-snap.json" 2>"$OUT/t-snap.err"
check "node 1, Hub up: snapshot_download $MODEL (main): every file identical" same "$MODEL" main "$OUT/t-snap.json"
hf_client 1 "$OUT/home1" "{\"op\": \"download\", \"repo_id\": \"$MODEL\", \"revision\": \"v1.0\", \"filename\": \"$SHARD2\"}" \
    >"$OUT/t-old.json" 2>"$OUT/t-old.err"
check "node 1, Hub up: hf_hub_download $SHARD2 at v1.0: identical" same "$MODEL" v1.0 "$OUT/t-old.json" "$SHARD2"
hf_client 1 "$OUT/home1g" "{\"op\": \"download\", \"repo_id\": \"$GATED\", \"filename\": \"model.safetensors\", \"token\": \"$TOKEN\"}" \
    >"$OUT/t-gated.json" 2>"$OUT/t-gated.err"
check "node 1, Hub up: the gated file with the right token: identical" same "$GATED" main "$OUT/t-gated.json" model.safetensors
GATED_SHA=$(sha256_of "$GATED" main model.safetensors)
mapfile -t MAIN_SHAS < <(python3 -c "import json; r=next(x for x in json.load(open('$OUT/manifest.json')) if x['id']=='$MODEL');
print('\n'.join(sorted({f['sha256'] for f in next(c for c in r['commits'] if c['sha']==r['refs']['main'])['files'].values()})))")
OLD_SHARD2_SHA=$(sha256_of "$MODEL" v1.0 "$SHARD2")
check "node 1's catalogue lists every blob of $MODEL main and $SHARD2 of v1.0" in_catalogue 1 "${MAIN_SHAS[@]}" "$OLD_SHARD2_SHA"
check "node 1 stored the gated blob but its catalogue does not list it" test -f "$OUT/node1/blobs/sha256/$GATED_SHA" -a "$(not_listed 1 "$GATED_SHA")" = yes

# 2. The Internet link goes down: the fake Hub is stopped.
kill -TERM "$FAKE" 2>/dev/null
for _ in $(seq 50); do kill -0 "$FAKE" 2>/dev/null || break; sleep 0.1; done
check "the fake Hub is stopped (its pid is gone)" bash -c "! kill -0 $FAKE 2>/dev/null"
check "the fake Hub is stopped (node 2's namespace: connection refused)" bash -c "! \"$LAB\" exec 2 curl -s -m 3 -o /dev/null '$HUB/_manifest'"

# 3. The pupil's node finds the teacher's over mDNS (no --peer anywhere), with its catalogue.
N1_BLOBS=$(catalogue_of 1 | json 'len(d["blobs"])' 2>/dev/null)
# Node 1 is looked up by its address: avahi may have renamed its service "teacher #2" (a collision while the
# namespace's daemon re-registered its host name); that is discovery working, not this test's subject.
found=0
for _ in $(seq 200); do
    if [[ $(peers_of 2 | json 'sum(p["blobs"] for p in d if p["address"] == "10.77.0.1:7070")' 2>/dev/null) -ge ${N1_BLOBS:-1} ]]; then found=1; break; fi
    sleep 0.1
done
TEACHER=$(peers_of 2 | json '[p["name"] for p in d if p["address"] == "10.77.0.1:7070"][0]' 2>/dev/null)
[[ $TEACHER == teacher ]] || echo "  note: node 1's service is published as '$TEACHER'"
check "node 2 found node 1 over mDNS, with its catalogue ($N1_BLOBS blobs)" test $found = 1
check "node 2's peer at 10.77.0.1:7070 ('$TEACHER') is found by mdns" test \
    "$(peers_of 2 | json '[p["foundBy"] for p in d if p["address"] == "10.77.0.1:7070"][0]' 2>/dev/null)" = "mdns"

# 4. The pupil's client, Hub down: the same files through node 2, from node 1.
check "(before) node 2's catalogue holds none of $MODEL's blobs" test "$(not_listed 2 "$(IFS='|'; echo "${MAIN_SHAS[*]}")")" = yes
TX1_BEFORE=$(tx_bytes 1)
hf_client 2 "$OUT/home2" "{\"op\": \"snapshot\", \"repo_id\": \"$MODEL\"}" >"$OUT/p-snap.json" 2>"$OUT/p-snap.err"
check "node 2, Hub down: snapshot_download $MODEL (main): every file identical" same "$MODEL" main "$OUT/p-snap.json"
hf_client 2 "$OUT/home2" "{\"op\": \"download\", \"repo_id\": \"$MODEL\", \"revision\": \"$OLD\", \"filename\": \"$SHARD2\"}" \
    >"$OUT/p-old.json" 2>"$OUT/p-old.err"
check "node 2, Hub down: hf_hub_download $SHARD2 at the older commit (by hash): identical" \
    same "$MODEL" "$OLD" "$OUT/p-old.json" "$SHARD2"
check "node 2's catalogue now lists every one of those blobs (they came from node 1: the Hub is gone)" \
    in_catalogue 2 "${MAIN_SHAS[@]}" "$OLD_SHARD2_SHA"
TX1=$(($(tx_bytes 1 || echo 0) - ${TX1_BEFORE:-0}))
WANT=$(python3 -c "import json; r=next(x for x in json.load(open('$OUT/manifest.json')) if x['id']=='$MODEL');
c={c['sha']: c['files'] for c in r['commits']}; print(sum(f['size'] for f in c[r['refs']['main']].values()) + c['$OLD']['$SHARD2']['size'])")
echo "  node 1's eth0 sent $TX1 bytes while node 2's client ran (the files: $WANT bytes)"
check "node 1 sent at least those files' bytes on the LAN meanwhile (its eth0 counters)" test "${TX1:-0}" -ge "$WANT"
# Node 2's engine logs each fetch's bytes per source: every LFS blob it fetched came from peer "teacher" alone.
check "node 2's log: its fetches took bytes from peer '$TEACHER' and none from the origin" bash -c \
    "grep -qF 'sources=peer $TEACHER=' '$OUT/node2.log' && ! grep 'fetched' '$OUT/node2.log' | grep -q 'origin='"
check "the fake Hub is still stopped" bash -c "! kill -0 $FAKE 2>/dev/null && ! \"$LAB\" exec 2 curl -s -m 3 -o /dev/null '$HUB/_manifest'"

# 5. The gated file is not obtainable through node 2 with the Hub down (nobody can check a token), with or without
# the token: raw requests (no file bytes), then the real client (an error). The two clients run at once: each may
# retry the node's 503 for a while before giving up.
for auth in "" "Authorization: Bearer $TOKEN"; do
    code=$("$LAB" exec 2 curl -s -m 30 -o "$OUT/gated-raw.body" -w '%{http_code}' ${auth:+-H "$auth"} \
        "http://10.77.0.2:7070/$GATED/resolve/main/model.safetensors")
    n=$(stat -c %s "$OUT/gated-raw.body" 2>/dev/null || echo 0)
    how="without a token"; [[ -n $auth ]] && how="with the right token"
    echo "  GET of the gated file on node 2 $how -> $code, $n bytes"
    check "node 2, Hub down: raw GET of the gated file $how: refused, no file bytes" \
        test "$code" != 200 -a "$n" -lt 4096
done
hf_client 2 "$OUT/home2g1" "{\"op\": \"download\", \"repo_id\": \"$GATED\", \"filename\": \"model.safetensors\"}" \
    >"$OUT/p-gated1.json" 2>"$OUT/p-gated1.err" &
G1=$!
BG+=("$G1")
hf_client 2 "$OUT/home2g2" "{\"op\": \"download\", \"repo_id\": \"$GATED\", \"filename\": \"model.safetensors\", \"token\": \"$TOKEN\"}" \
    >"$OUT/p-gated2.json" 2>"$OUT/p-gated2.err" &
G2=$!
BG+=("$G2")
wait "$G1" "$G2"
for f in p-gated1 p-gated2; do
    echo "  client on node 2, gated file ($f): $(json '"%s: %s" % (d.get("error"), d.get("message", "")[:160]) if not d["ok"] else "ok"' <"$OUT/$f.json" 2>/dev/null)"
done
client_error() { json 'd["ok"] is False' <"$1" 2>/dev/null | grep -x True >/dev/null; }
check "node 2, Hub down: hf_hub_download of the gated file without a token: the client gets an error" client_error "$OUT/p-gated1.json"
check "node 2, Hub down: hf_hub_download of the gated file with the right token: the client gets an error" client_error "$OUT/p-gated2.json"
check "node 2 holds no gated byte (no blob, not in its catalogue)" test ! -e "$OUT/node2/blobs/sha256/$GATED_SHA" -a "$(not_listed 2 "$GATED_SHA")" = yes

if ((FAIL)); then
    for f in t-snap t-old t-gated p-snap p-old p-gated1 p-gated2; do echo "--- $f"; cat "$OUT/$f.json" 2>/dev/null; tail -5 "$OUT/$f.err" 2>/dev/null; done
    echo "--- fakehub.log"; tail -5 "$OUT/fakehub.log"
    for i in 1 2; do echo "--- node$i.log"; tail -25 "$OUT/node$i.log"; done
fi
echo "$PASS passed, $FAIL failed"
((FAIL == 0))
