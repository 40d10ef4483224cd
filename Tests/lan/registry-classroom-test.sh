#!/usr/bin/env bash
# Real-LAN test of the registry mirror (protocol §16), the offline classroom for images: two node namespaces, each
# with its own dbus + avahi-daemon (scripts/lanlab.sh), and the reference registry (docker-registry) in the origin
# namespace at 10.77.0.100:5000, filled by skopeo from an OCI layout built here (Tests/ops/oci_layout.py); both nodes
# run `serve --registry-mirror 10.77.0.100:5000=http://10.77.0.100:5000`, neither has a --peer.
#   node 1 (the teacher's): skopeo pulls the image through it;
#   the registry is stopped (the school's Internet link is down);
#   node 2 (a pupil's) finds node 1 over mDNS, and skopeo pulls the same image through node 2: same digests, every
#   blob from node 1.
# Prints "N passed, N failed"; exits non-zero on failure; skips (exit 0) when not root or tools are missing.
set -uo pipefail
NAME=oci NODES=2
source "$(dirname "$0")/lib.sh"
for tool in docker-registry skopeo; do command -v "$tool" >/dev/null || skip "$tool is not installed (scripts/install-deps --test)"; done
lan_setup
REG=10.77.0.100:5000
chmod 755 "$OUT"

source Tests/ops/registry-lib.sh
registry_config "$REG" "$OUT/registry" >"$OUT/registry.yml"
"$LAB" exec origin docker-registry serve "$OUT/registry.yml" >"$OUT/registry.log" 2>&1 &
REGISTRY=$!
BG+=("$REGISTRY")
for _ in $(seq 100); do "$LAB" exec origin curl -s -o /dev/null -m 1 "http://$REG/v2/" && break; sleep 0.1; done
python3 Tests/ops/oci_layout.py "$OUT/layout" 24 4
"$LAB" exec origin skopeo copy -q --dest-tls-verify=false "oci:$OUT/layout:v1" "docker://$REG/library/tiny:v1" >"$OUT/push.log" 2>&1
check "skopeo filled the registry in the origin namespace" test $? = 0
UP_DIGEST=$(python3 -c "import json; print(json.load(open('$OUT/layout/index.json'))['manifests'][0]['digest'])")
LAYERS=$(python3 -c "
import json; m=json.load(open('$OUT/layout/blobs/sha256/' + json.load(open('$OUT/layout/index.json'))['manifests'][0]['digest'][7:]))
print(' '.join(l['digest'][7:] for l in m['layers']))")

NODE_ARGS=(--registry-mirror "$REG=http://$REG" --hf-upstream none)
start_nodes teacher pupil
pull() {  # pull I DEST: skopeo in node I's namespace copies the image through node I
    "$LAB" exec "$1" skopeo copy -q --src-tls-verify=false "docker://10.77.0.$1:7070/library/tiny:v1" "oci:$2:v1" >"$2.log" 2>&1
}
digest_of() { python3 -c "import json; print(json.load(open('$1/index.json'))['manifests'][0]['digest'])" 2>/dev/null; }

# 1. The teacher's node, the registry up.
for _ in $(seq 100); do "$LAB" exec 1 curl -s -o /dev/null -m 1 "http://10.77.0.1:7070/v2/" && break; sleep 0.1; done
pull 1 "$OUT/pull1"
check "node 1, registry up: skopeo pulled the image with the registry's digest" test "$(digest_of "$OUT/pull1")" = "$UP_DIGEST"

# 2. The Internet link goes down: the registry is stopped.
kill -TERM "$REGISTRY" 2>/dev/null
for _ in $(seq 50); do kill -0 "$REGISTRY" 2>/dev/null || break; sleep 0.1; done
check "the registry is stopped (node 2's namespace: connection refused)" bash -c "! \"$LAB\" exec 2 curl -s -m 3 -o /dev/null 'http://$REG/v2/'"

# 3. The pupil's node finds the teacher's over mDNS, with its catalogue (the layers and the config).
teacher_blobs() { peers_of 2 | json 'sum(p["blobs"] for p in d if p["address"] == "10.77.0.1:7070")' 2>/dev/null; }
tries=0
until [[ $(teacher_blobs) -ge 3 ]] || ((++tries > 200)); do sleep 0.1; done
check "node 2 found node 1 over mDNS, with its catalogue (the config and two layers)" test "$(teacher_blobs)" -ge 3
TEACHER=$(peers_of 2 | json '[p["name"] for p in d if p["address"] == "10.77.0.1:7070"][0]' 2>/dev/null)

# 4. The pupil's pull, registry down: the manifest from node 1's answer, every layer from node 1.
pull 2 "$OUT/pull2"
check "node 2, registry down: skopeo pulled the image with the same digest" test "$(digest_of "$OUT/pull2")" = "$UP_DIGEST"
missing=0
for l in $LAYERS; do [[ -f $OUT/pull2/blobs/sha256/$l ]] || missing=1; done
check "... every layer, by its digest" test $missing = 0
check "node 2's log: its fetches took bytes from peer '$TEACHER' and none from the registry" bash -c \
    "grep -qF 'sources=peer $TEACHER=' '$OUT/node2.log' && ! grep 'fetched' '$OUT/node2.log' | grep -q 'origin='"

if ((FAIL)); then
    for f in push.log pull1.log pull2.log registry.log node1.log node2.log; do echo "--- $f"; tail -15 "$OUT/$f" 2>/dev/null; done
fi
echo "$PASS passed, $FAIL failed"
((FAIL == 0))
