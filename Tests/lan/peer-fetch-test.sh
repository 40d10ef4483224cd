#!/usr/bin/env bash
# Real-LAN test of fetching through peers found over mDNS (issue: LAN peers). Three node namespaces, each with its
# own dbus + avahi-daemon (scripts/lanlab.sh), and an origin (nginx) in a fourth:
#   node A fetches from the origin;
#   node B, with no --peer, discovers A over mDNS; with one peer claim and an origin without digest it takes the
#   origin's bytes (protocol §8: one claim alone never decides while the origin answers);
#   node C then takes chunks from both A and B (two independent first-hand claims: peers-agree), no origin body.
# Prints "N passed, N failed"; exits non-zero on failure; skips (exit 0) when not root or tools are missing.
set -uo pipefail
NAME=pf NODES=3
source "$(dirname "$0")/lib.sh"
lan_setup
start_origin 40
start_nodes a b c

origin_body_bytes_to() { awk -v a="$1" '$1 == a && $2 == "GET" { s += $4 } END { print s + 0 }' "$OUT/access.log"; }
origin_gets_from() { awk -v a="$1" '$1 == a && $2 == "GET"' "$OUT/access.log" | wc -l; }

# A: from the origin.
"$LAB" exec 1 "$BIN" fetch --cache-dir "$OUT/node1" --json "$URL" >"$OUT/a.json" 2>"$OUT/a.err"
check "A fetched from the origin" test "$(json 'd["sources"].get("origin", 0)' <"$OUT/a.json" 2>/dev/null)" = "$SIZE"
check "A's blob has the origin's sha256" test "$(json 'd["sha256"]' <"$OUT/a.json" 2>/dev/null)" = "$SHA"

# B: discovers A over mDNS (no --peer anywhere) and sees A's new catalogue (A re-published its TXT).
found=0
for _ in $(seq 100); do
    if [[ $(peers_of 2 | json 'sum(p["blobs"] for p in d if p["name"] == "a")' 2>/dev/null) -ge 1 ]]; then found=1; break; fi
    sleep 0.1
done
check "B found A over mDNS, with A's catalogue" test $found = 1
check "B's peer A is 'found by mdns' at 10.77.0.1" test "$(peers_of 2 | json '[p["foundBy"] + " " + p["address"] for p in d if p["name"] == "a"][0]' 2>/dev/null)" = "mdns 10.77.0.1:7070"
"$LAB" exec 2 "$BIN" fetch --cache-dir "$OUT/node2" --json "$URL" >"$OUT/b.json" 2>"$OUT/b.err"
# The origin (nginx) sends no digest and answers: one peer's claim alone never decides the bytes (protocol §8), so
# B takes the origin's bytes, and becomes the second first-hand witness of the URL.
check "B, with one peer's claim and an origin without digest, took the origin's bytes" test "$(json 'd["sources"].get("origin", 0)' <"$OUT/b.json" 2>/dev/null)" = "$SIZE"
check "B's blob has the right sha256" test "$(json 'd["sha256"]' <"$OUT/b.json" 2>/dev/null)" = "$SHA"
check "B records the origin's bytes as its evidence" test "$(json 'd["digestSource"]' <"$OUT/b.json" 2>/dev/null)" = origin-bytes

# C: both A and B hold it now, first-hand: two independent claims matching the origin's size and ETag, chunks from both.
for _ in $(seq 100); do
    [[ $(peers_of 3 | json 'sum(1 for p in d if p["blobs"] >= 1)' 2>/dev/null) -ge 2 ]] && break
    sleep 0.1
done
"$LAB" exec 3 "$BIN" fetch --cache-dir "$OUT/node3" --json "$URL" >"$OUT/c.json" 2>"$OUT/c.err"
check "C took chunks from A" python3 -c "import json; d=json.load(open('$OUT/c.json')); exit(0 if d['sources'].get('peer a', 0) > 0 else 1)"
check "C took chunks from B" python3 -c "import json; d=json.load(open('$OUT/c.json')); exit(0 if d['sources'].get('peer b', 0) > 0 else 1)"
check "C's blob has the right sha256" test "$(json 'd["sha256"]' <"$OUT/c.json" 2>/dev/null)" = "$SHA"
check "the origin sent C no body byte (access log)" test "$(origin_body_bytes_to 10.77.0.3)" = 0
check "C trusted two independent peers that match the origin (peers-agree)" test "$(json 'd["digestSource"]' <"$OUT/c.json" 2>/dev/null)" = peers-agree

# The browser routes answer loopback clients only: a LAN peer is refused even with a loopback Host and the token.
web_status_from_2() { "$LAB" exec 2 curl -s -o /dev/null -w '%{http_code}' -H 'Host: 127.0.0.1:7070' "$@"; }
token1=$(cat "$OUT/node1/web-token" 2>/dev/null)
check "a LAN peer gets 403 for A's status page" test "$(web_status_from_2 http://10.77.0.1:7070/)" = 403
check "a LAN peer gets 403 for A's browser API" test "$(web_status_from_2 http://10.77.0.1:7070/v1/web/jobs)" = 403
check "a LAN peer with A's token cannot start a job" test "$(web_status_from_2 -X POST -H "X-ModelCache-Token: $token1" \
    -H 'Content-Type: application/json' -d "{\"requests\":[{\"url\":\"$URL\"}]}" http://10.77.0.1:7070/v1/web/jobs)" = 403
check "the peer API still answers the LAN peer" test "$(web_status_from_2 http://10.77.0.1:7070/v1/info)" = 200

if ((FAIL)); then
    for f in a b c; do echo "--- $f.json"; cat "$OUT/$f.json" "$OUT/$f.err" 2>/dev/null; done
    echo "--- access.log"; cat "$OUT/access.log"
    for i in 1 2 3; do echo "--- node$i.log"; tail -20 "$OUT/node$i.log"; done
fi
echo "$PASS passed, $FAIL failed"
((FAIL == 0))
