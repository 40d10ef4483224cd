#!/usr/bin/env bash
# Real-LAN test of `modelcache hf import` and `modelcache hf download` (protocol §15): two node namespaces, each with
# its own dbus + avahi-daemon (scripts/lanlab.sh), the fake Hub (Tests/hf/fakehub.py) in the origin namespace.
#   The teacher's workstation already has acme/tiny-model in its Hugging Face cache (the real client fetched it
#   straight from the fake Hub); node 1 runs and `hf import` adopts that cache (hard links, no copy);
#   the fake Hub is stopped; the pupil's node 2 finds node 1 over mDNS (no --peer) and `modelcache hf download`
#   there lays out the snapshot from node 1's bytes, which the real client then finds with HF_HUB_OFFLINE=1.
# Prints "N passed, N failed"; exits non-zero on failure; skips (exit 0) when not root, tools are missing, or the
# venv cannot be made.
set -uo pipefail
NAME=hfi NODES=2
source "$(dirname "$0")/lib.sh"
lan_setup
lan_hf_venv
MODEL=acme/tiny-model

start_fakehub
"$LAB" exec 1 curl -sf "$HUB/_manifest" >"$OUT/manifest.json"
check "(sanity) the fake Hub answers in the origin namespace" test -s "$OUT/manifest.json"

# client I HF_HOME ENDPOINT JSON [VAR=VALUE…]: one huggingface_hub call in namespace I (hf_client_test.py --client).
client() {
    local i=$1 home=$2 endpoint=$3 spec=$4; shift 4
    "$LAB" exec "$i" env -u HTTP_PROXY -u http_proxy -u HTTPS_PROXY -u https_proxy -u HF_TOKEN HF_HOME="$home" \
        HF_ENDPOINT="$endpoint" HF_HUB_DISABLE_TELEMETRY=1 HF_HUB_DISABLE_UPDATE_CHECK=1 HF_HUB_DISABLE_PROGRESS_BARS=1 \
        NO_PROXY='*' no_proxy='*' "$@" timeout -k 5 150 "$HF_VENV/bin/python" Tests/hf/hf_client_test.py --client "$spec"
}
# identical DIR: DIR holds exactly the files of $MODEL main, byte for byte (per the fake's manifest).
identical() {
    python3 - "$OUT/manifest.json" "$MODEL" "$1" <<'EOP'
import hashlib, json, os, sys
r = next(x for x in json.load(open(sys.argv[1])) if x["id"] == sys.argv[2])
files = next(c for c in r["commits"] if c["sha"] == r["refs"]["main"])["files"]
d = sys.argv[3]
bad = [p for p, f in files.items() if not os.path.isfile(os.path.join(d, p))
       or hashlib.sha256(open(os.path.join(d, p), "rb").read()).hexdigest() != f["sha256"]]
print("  differ: %s" % bad) if bad else None
sys.exit(1 if bad or not files else 0)
EOP
}

# 1. The teacher's Hugging Face cache, filled straight from the Hub (Xet off: the fake's Xet answers 403).
mkdir -p "$OUT/teacher-hf"
client 1 "$OUT/teacher-hf" "$HUB" "{\"op\": \"snapshot\", \"repo_id\": \"$MODEL\"}" HF_HUB_DISABLE_XET=1 >"$OUT/t.json" 2>"$OUT/t.err"
check "the teacher's client fills its Hub cache from the fake Hub" identical "$(json 'd["dir"]' <"$OUT/t.json" 2>/dev/null)"

NODE_ARGS=(--hf-upstream "$HUB")
start_nodes teacher pupil
"$LAB" exec 1 "$BIN" hf import "$OUT/teacher-hf/hub" --cache-dir "$OUT/node1" >"$OUT/import.out" 2>"$OUT/import.err"
check "node 1: hf import exits 0, hashing and linking every blob" grep -q "^6 linked, 0 copied, 0 known, 0 refused" "$OUT/import.out"
SHARD=$(python3 -c "import json; r=next(x for x in json.load(open('$OUT/manifest.json')) if x['id']=='$MODEL');
print(next(c for c in r['commits'] if c['sha']==r['refs']['main'])['files']['model-00001-of-00002.safetensors']['sha256'])")
check "node 1's blob and the Hub cache's are one file (same inode)" test \
    "$(stat -c %i "$OUT/node1/blobs/sha256/$SHARD")" = "$(stat -c %i "$OUT/teacher-hf/hub/models--acme--tiny-model/blobs/$SHARD")"

# 2. The Internet link goes down.
kill -TERM "$FAKE" 2>/dev/null
for _ in $(seq 50); do kill -0 "$FAKE" 2>/dev/null || break; sleep 0.1; done
check "the fake Hub is stopped" bash -c "! \"$LAB\" exec 2 curl -s -m 3 -o /dev/null '$HUB/_manifest'"

# 3. The pupil's node finds the teacher's over mDNS with the imported blobs, and hf download gets the snapshot.
found=0
for _ in $(seq 200); do
    [[ $(peers_of 2 | json 'sum(p["blobs"] for p in d if p["address"] == "10.77.0.1:7070")' 2>/dev/null) -ge 6 ]] && { found=1; break; }
    sleep 0.1
done
check "node 2 found node 1 over mDNS, listing the imported blobs" test $found = 1
"$LAB" exec 2 env HF_HOME="$OUT/pupil-hf" "$BIN" hf download "$MODEL" --cache-dir "$OUT/node2" >"$OUT/download.out" 2>"$OUT/download.err"
SNAP=$(tail -1 "$OUT/download.out")
check "node 2, Hub down: modelcache hf download prints the snapshot; every file identical" identical "$SNAP"
check "node 2's fetches took bytes from peer node 1 and none from the origin" bash -c \
    "grep -q 'sources=peer ' '$OUT/node2.log' && ! grep 'fetched' '$OUT/node2.log' | grep -q 'origin='"
client 2 "$OUT/pupil-hf" "http://10.77.0.2:7070" "{\"op\": \"snapshot\", \"repo_id\": \"$MODEL\", \"local_files_only\": true}" \
    HF_HUB_OFFLINE=1 >"$OUT/p.json" 2>"$OUT/p.err"
check "the pupil's client finds it with HF_HUB_OFFLINE=1 (local_files_only)" test "$(json 'd.get("dir")' <"$OUT/p.json" 2>/dev/null)" = "$SNAP"

if ((FAIL)); then
    for f in t.json t.err import.out import.err download.out download.err p.json p.err; do echo "--- $f"; tail -8 "$OUT/$f" 2>/dev/null; done
    for i in 1 2; do echo "--- node$i.log"; tail -20 "$OUT/node$i.log"; done
fi
echo "$PASS passed, $FAIL failed"
((FAIL == 0))
