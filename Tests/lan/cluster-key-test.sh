#!/usr/bin/env bash
# Real-LAN test of the cluster key (protocol §14). Four node namespaces with their own avahi-daemon, an origin (nginx):
#   a1, a2: cluster A (one key file); b1: cluster B (another key); open: no key.
#   - two clusters on one LAN share nothing: b1 holds the file; with the origin down, a2 fetches and gets nothing
#     (a2 never even lists b1: b1 announces another ck= fingerprint);
#   - a keyless node gets nothing from a keyed one (curl of the catalogue gives 401 cluster-key-required, no
#     catalogue; `fetch --peer` gets nothing);
#   - a member is served: a1 fetches from the origin, a2 takes every byte from a1 (one member's claim decides, §8);
#   - a signed request (signed here with Python's hmac, independently of the Swift code) is served once; the same
#     request replayed with curl, and a stale one, get 401.
# Prints "N passed, N failed"; exits non-zero on failure; skips (exit 0) when not root or tools are missing.
set -uo pipefail
NAME=ck NODES=4
source "$(dirname "$0")/lib.sh"
lan_setup
start_origin 24

# Key files: mode 600 (a readable one is refused, exit 64).
head -c 32 /dev/urandom >"$OUT/key-a"; head -c 32 /dev/urandom >"$OUT/key-b"
chmod 600 "$OUT/key-a" "$OUT/key-b"
cp "$OUT/key-a" "$OUT/key-open"; chmod 644 "$OUT/key-open"
"$BIN" serve --cache-dir "$OUT/refused" --no-mdns --listen 127.0.0.1:0 --cluster-key-file "$OUT/key-open" >/dev/null 2>"$OUT/refused.err"
rc=$?
check "a key file others can read is refused (exit 64, one line)" test "$rc:$(wc -l <"$OUT/refused.err")" = "64:1"

names=(a1 a2 b1 open)
keys=("$OUT/key-a" "$OUT/key-a" "$OUT/key-b" "")
for i in 1 2 3 4; do
    args=(serve --cache-dir "$OUT/node$i" --name "${names[i-1]}" -v)
    [[ -n ${keys[i-1]} ]] && args+=(--cluster-key-file "${keys[i-1]}")
    "$LAB" exec "$i" "$BIN" "${args[@]}" 2>"$OUT/node$i.log" &
    BG+=($!)
done
for i in 1 2 3 4; do
    for _ in $(seq 100); do [[ -S $OUT/node$i/node.sock ]] && break; sleep 0.1; done
done

# waitfor N CMD...: up to N tenths of a second until CMD succeeds.
waitfor() { local n=$1 _; shift; for _ in $(seq "$n"); do "$@" && return 0; sleep 0.1; done; return 1; }
peer_names() { peers_of "$1" | json '" ".join(sorted(p["name"] for p in d))' 2>/dev/null; }
peer_blobs() { peers_of "$1" | json "sum(p['blobs'] for p in d if p['name'] == '$2')" 2>/dev/null; }
has_blobs() { [[ $(peer_blobs "$1" "$2") -ge 1 ]]; }
lists() { [[ " $(peer_names "$1") " == *" $2 "* ]]; }
origin_body_bytes_to() { awk -v a="$1" '$1 == a && $2 == "GET" { s += $4 } END { print s + 0 }' "$OUT/access.log"; }

# b1 (cluster B) holds the file.
"$LAB" exec 3 "$BIN" fetch --cache-dir "$OUT/node3" --json "$URL" >"$OUT/b1.json" 2>"$OUT/b1.err"
check "b1 fetched the file from the origin" test "$(json 'd["sha256"]' <"$OUT/b1.json" 2>/dev/null)" = "$SHA"

# Discovery works (generous, bounded waits): a2 lists its member a1; b1's service (with its ck=) is on the LAN.
check "a2 found its member a1 over mDNS" waitfor 300 lists 2 a1
b1_seen() { "$LAB" exec 2 avahi-browse -r -t -p _modelcache._tcp 2>/dev/null | grep '^=.*;b1;.*"ck=' >/dev/null; }
check "b1's service and its ck= fingerprint are visible from a2's namespace" waitfor 100 b1_seen
# Give b1's announcement (made before a2 even listed a1) time to be heard and its TXT update (new catalogue) too.
sleep 3
check "a2 does not list b1 (another cluster)" bash -c "! [[ ' $(peer_names 2) ' == *' b1 '* ]]"
check "a2 does not list the keyless node" bash -c "! [[ ' $(peer_names 2) ' == *' open '* ]]"
check "the keyless node does not list a1 or b1" test -z "$(peer_names 4)"

# Two clusters share nothing: with the origin down, a2 gets nothing from b1, which holds the file.
"$LAB" exec origin ip link set eth0 down
"$LAB" exec 2 timeout 120 "$BIN" fetch --cache-dir "$OUT/node2" --json "$URL" >"$OUT/a2-offline.json" 2>"$OUT/a2-offline.err"
rc=$?
check "a2, origin down, fails instead of taking b1's copy (exit $rc)" test "$rc" -ne 0
check "a2 holds no blob afterwards" test -z "$(ls "$OUT/node2/blobs/sha256" 2>/dev/null)"
# Every request b1 refuses is logged with its client's address: a2 sent none (it never listed b1).
check "b1 received no peer request from a2" bash -c "! grep 'request refused' '$OUT/node3.log' | grep -q '10.77.0.2'"

# A keyless machine gets nothing from a keyed node: 401 cluster-key-required, no catalogue, no bytes.
status=$("$LAB" exec 4 curl -s -o "$OUT/open-cat.json" -w '%{http_code}' http://10.77.0.3:7070/v1/catalogue)
check "curl of b1's catalogue from the keyless node: 401" test "$status" = 401
check "the 401 says cluster-key-required and holds no catalogue" bash -c "grep -q cluster-key-required '$OUT/open-cat.json' && ! grep -q '$SHA' '$OUT/open-cat.json'"
status=$("$LAB" exec 4 curl -s -o "$OUT/open-blob" -w '%{http_code}' "http://10.77.0.3:7070/v1/blobs/$SHA")
check "curl of b1's blob from the keyless node: 401, no byte of the file" test "$status:$(stat -c %s "$OUT/open-blob")" = "401:$(stat -c %s "$OUT/open-cat.json")"
status=$("$LAB" exec 4 curl -s -o /dev/null -w '%{http_code}' http://10.77.0.3:7070/)
check "b1's status page from another machine: 401 too" test "$status" = 401
"$LAB" exec 4 "$BIN" fetch --cache-dir "$OUT/direct4" --no-node --no-origin --peer 10.77.0.3:7070 --json "$URL" >/dev/null 2>"$OUT/open-fetch.err"
check "fetch --peer b1 from the keyless node gets nothing" test $? -ne 0
"$LAB" exec 4 "$BIN" fetch --cache-dir "$OUT/direct4" --no-node --no-origin --peer 10.77.0.3:7070 --cluster-key-file "$OUT/key-a" \
    --json "$URL" >/dev/null 2>"$OUT/wrongkey-fetch.err"
check "fetch --peer b1 with cluster A's key gets nothing" test $? -ne 0

# A member is served: a1 fetches from the origin, a2 takes every byte from a1 (origin up, no digest: §8 members).
"$LAB" exec origin ip link set eth0 up
waitfor 100 "$LAB" exec 1 curl -fsI "$URL" >/dev/null 2>&1
"$LAB" exec 1 "$BIN" fetch --cache-dir "$OUT/node1" --json "$URL" >"$OUT/a1.json" 2>"$OUT/a1.err"
check "a1 fetched the file from the origin" test "$(json 'd["sources"].get("origin", 0)' <"$OUT/a1.json" 2>/dev/null)" = "$SIZE"
check "a2 sees a1's catalogue with the file" waitfor 300 has_blobs 2 a1
"$LAB" exec 2 "$BIN" fetch --cache-dir "$OUT/node2" --json "$URL" >"$OUT/a2.json" 2>"$OUT/a2.err"
check "a2 took every byte from its member a1" test "$(json 'd["sources"].get("peer a1", 0)' <"$OUT/a2.json" 2>/dev/null)" = "$SIZE"
check "a2's blob has the origin's sha256" test "$(json 'd["sha256"]' <"$OUT/a2.json" 2>/dev/null)" = "$SHA"
check "the origin sent a2 no body byte" test "$(origin_body_bytes_to 10.77.0.2)" = 0

# Replay and staleness, with curl, on a request signed independently (Python's hmac over protocol §14's string).
sign() {  # sign KEYFILE METHOD TARGET TIME NONCE -> curl -H arguments, one per line
    python3 - "$@" <<'EOP'
import hmac, hashlib, sys
key = open(sys.argv[1], "rb").read()
method, target, time, nonce = sys.argv[2:6]
s = "\n".join(["modelcache-cluster-v1", method, target, time, nonce]).encode()
print(f"X-ModelCache-Cluster-Time: {time}\nX-ModelCache-Cluster-Nonce: {nonce}\nX-ModelCache-Cluster-Signature: {hmac.new(key, s, hashlib.sha256).hexdigest()}")
EOP
}
signed_get() {  # signed_get KEYFILE TIME NONCE URLPATH -> status (from a2, to a1)
    local hdrs=() line
    while IFS= read -r line; do hdrs+=(-H "$line"); done < <(sign "$1" GET "$4" "$2" "$3")
    "$LAB" exec 2 curl -s -o "$OUT/signed.out" -w '%{http_code}' "${hdrs[@]}" "http://10.77.0.1:7070$4"
}
nonce=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
now=$(date +%s)
check "a signed request is served (200)" test "$(signed_get "$OUT/key-a" "$now" "$nonce" /v1/catalogue)" = 200
check "and it holds the catalogue" grep -q "$SHA" "$OUT/signed.out"
check "the same request replayed: 401" test "$(signed_get "$OUT/key-a" "$now" "$nonce" /v1/catalogue)" = 401
check "a stale request (5 minutes old): 401" test "$(signed_get "$OUT/key-a" "$((now - 300))" "$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')" /v1/catalogue)" = 401
check "a request signed with cluster B's key: 401" test "$(signed_get "$OUT/key-b" "$now" "$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')" /v1/catalogue)" = 401
check "a1 logged the refused replay" bash -c "grep 'request refused' '$OUT/node1.log' | grep -q replay"

if ((FAIL)); then
    for f in b1 a2-offline a1 a2; do echo "--- $f"; cat "$OUT/$f.json" "$OUT/$f.err" 2>/dev/null; done
    for i in 1 2 3 4; do echo "--- node$i.log"; tail -20 "$OUT/node$i.log"; echo "--- peers of node$i"; peers_of $i; echo; done
fi
echo "$PASS passed, $FAIL failed"
((FAIL == 0))
