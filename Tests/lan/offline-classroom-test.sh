#!/usr/bin/env bash
# Real-LAN test of the offline classroom (issue 17, items 5 and 8): four node namespaces, each with its own dbus +
# avahi-daemon (scripts/lanlab.sh), and nginx in the origin namespace at 10.77.0.100 serving two 96 MiB models
# (and a small third file); no node has a --peer.
#   node 1 (the teacher's) fetches the three files while the origin is up;
#   the origin's link is set DOWN (its eth0, inside its namespace: connects time out, nothing is refused);
#   nodes 2-4 (students) find the teacher over mDNS and, at the same time, each fetch both models through their own
#     node: none fails, every file has the origin's sha256, no byte came from the origin and the teacher served
#     some; each fetch's seconds are printed and bounded by OFFLINE_MAX_SECONDS (default 60; the target is 2);
#   node 2 is restarted while offline, finds the teacher again and fetches the third file from it.
# Prints "N passed, N failed"; exits non-zero on failure; skips (exit 0) when not root or tools are missing.
set -uo pipefail
NAME=offline NODES=4
source "$(dirname "$0")/lib.sh"
MAX=${OFFLINE_MAX_SECONDS:-60}
[[ $MAX =~ ^[0-9]+(\.[0-9]+)?$ ]] || { echo "OFFLINE_MAX_SECONDS must be a number of seconds"; exit 2; }
lan_setup

# The origin: model A (start_origin's file), model B and a small file C, all random.
start_origin 96
URL_A=$URL SHA_A=$SHA SIZE_A=$SIZE
head -c $((96 * 1024 * 1024)) /dev/urandom >"$OUT/www/model-b.safetensors"
head -c $((16 * 1024 * 1024)) /dev/urandom >"$OUT/www/tokenizer.bin"
SIZE_B=$SIZE_A URL_B=http://10.77.0.100:8080/model-b.safetensors SHA_B=$(sha256sum "$OUT/www/model-b.safetensors" | cut -d' ' -f1)
URL_C=http://10.77.0.100:8080/tokenizer.bin SHA_C=$(sha256sum "$OUT/www/tokenizer.bin" | cut -d' ' -f1)

FIRST_NODE=${#BG[@]}
start_nodes teacher s2 s3 s4
node_pid() { echo "${BG[$((FIRST_NODE + $1 - 1))]}"; }

# fetch_on I URL OUTNAME: `modelcache fetch --json` through node I; its answer in $OUT/OUTNAME.json (stderr .err),
# its exit status in .status and its seconds in .seconds.
fetch_on() {
    local start end rc
    start=$(date +%s.%N)
    "$LAB" exec "$1" timeout -k 5 300 "$BIN" fetch --cache-dir "$OUT/node$1" --json "$2" >"$OUT/$3.json" 2>"$OUT/$3.err"
    rc=$?
    end=$(date +%s.%N)
    echo "$rc" >"$OUT/$3.status"
    python3 -c "print('%.2f' % ($end - $start))" >"$OUT/$3.seconds"
}
# file_sha OUTNAME: the sha256 of the bytes at the path a fetch answered (read from disk, not taken from its JSON).
file_sha() { local p; p=$(json 'd["path"]' <"$OUT/$1.json" 2>/dev/null) && [[ -f $p ]] && sha256sum "$p" | cut -d' ' -f1; }
# from_peers_only OUTNAME SIZE TEACHER: every byte from peers, none from the origin, some from TEACHER.
from_peers_only() {
    python3 - "$OUT/$1.json" "$2" "$3" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1])); size = int(sys.argv[2]); teacher = "peer " + sys.argv[3]
s = d.get("sources", {})
ok = s.get("origin", 0) == 0 and sum(v for k, v in s.items() if k.startswith("peer ")) >= size and s.get(teacher, 0) > 0
if not ok: print("  sources: %s" % s)
sys.exit(0 if ok else 1)
EOF
}
# sees_teacher I: node I lists the peer at 10.77.0.1:7070, found by mDNS, with at least 3 blobs (bounded, 20 s).
sees_teacher() {
    local _
    for _ in $(seq 200); do
        [[ $(peers_of "$1" | json 'sum(p["blobs"] for p in d if p["address"] == "10.77.0.1:7070" and p["foundBy"] == "mdns")' 2>/dev/null) -ge 3 ]] && return 0
        sleep 0.1
    done
    return 1
}

# 1. The teacher, the origin up.
for f in A B C; do
    u=URL_$f s=SHA_$f
    fetch_on 1 "${!u}" "t$f"
    check "teacher fetched file $f from the origin (exit 0)" test "$(cat "$OUT/t$f.status")" = 0
    check "teacher's file $f has the origin's sha256" test "$(file_sha "t$f")" = "${!s}"
done

# 2. The uplink goes down: the origin's link, not its server.
"$LAB" exec origin ip link set eth0 down
check "the origin's link is down (node 2: no answer within 3 s)" bash -c "! \"$LAB\" exec 2 curl -s -m 3 -o /dev/null '$URL_A'"
check "the origin's server still runs (its pid is alive)" kill -0 "${BG[0]}"

# 3. Three students find the teacher over mDNS, then fetch both models at once, each through its own node.
for i in 2 3 4; do check "student node $i found the teacher over mDNS with its catalogue" sees_teacher "$i"; done
TEACHER=$(peers_of 2 | json '[p["name"] for p in d if p["address"] == "10.77.0.1:7070"][0]' 2>/dev/null)
[[ $TEACHER == teacher ]] || echo "  note: node 1's service is published as '$TEACHER'"
STUDENTS=()
for i in 2 3 4; do
    (fetch_on "$i" "$URL_A" "s${i}A"; fetch_on "$i" "$URL_B" "s${i}B") &
    STUDENTS+=($!)
    BG+=($!)
done
wait "${STUDENTS[@]}"
for i in 2 3 4; do
    for f in A B; do
        s=SHA_$f z=SIZE_$f
        echo "  student $i, model $f: $(cat "$OUT/s$i$f.seconds") s (exit $(cat "$OUT/s$i$f.status"))"
        check "student $i fetched model $f offline (exit 0)" test "$(cat "$OUT/s$i$f.status")" = 0
        check "student $i's model $f has the origin's sha256" test "$(file_sha "s$i$f")" = "${!s}"
        check "student $i's model $f came from peers, some of it from the teacher, none from the origin" \
            from_peers_only "s$i$f" "${!z}" "$TEACHER"
        check "student $i's model $f took at most ${MAX} s (OFFLINE_MAX_SECONDS)" \
            python3 -c "import sys; sys.exit(0 if float('$(cat "$OUT/s$i$f.seconds")') <= $MAX else 1)"
    done
done

# 4. A student's node restarted while offline finds the teacher again and fetches the third file from it.
P2=$(node_pid 2)
kill -TERM "$P2"
for _ in $(seq 100); do kill -0 "$P2" 2>/dev/null || break; sleep 0.1; done
check "student node 2 stopped (pid $P2 gone)" bash -c "! kill -0 $P2 2>/dev/null"
"$LAB" exec 2 "$BIN" serve --cache-dir "$OUT/node2" --name s2 -v 2>>"$OUT/node2.log" &
BG+=($!)
for _ in $(seq 100); do peers_of 2 >/dev/null 2>&1 && break; sleep 0.1; done
check "restarted student node 2 found the teacher again over mDNS" sees_teacher 2
fetch_on 2 "$URL_C" s2C
echo "  restarted student 2, file C: $(cat "$OUT/s2C.seconds") s (exit $(cat "$OUT/s2C.status"))"
check "restarted student 2 fetched file C offline (exit 0)" test "$(cat "$OUT/s2C.status")" = 0
check "restarted student 2's file C has the origin's sha256" test "$(file_sha s2C)" = "$SHA_C"
SIZE_C=$(stat -c %s "$OUT/www/tokenizer.bin")
check "restarted student 2's file C came from the teacher, none from the origin" from_peers_only s2C "$SIZE_C" "$TEACHER"
check "the origin's link is still down" bash -c "! \"$LAB\" exec 3 curl -s -m 3 -o /dev/null '$URL_A'"

# 5. The teacher adds a file from a USB stick through its node: its TXT record's catalogue version (cv=) changes at
#    once (seen from student 3's namespace with avahi-browse), so students re-read its catalogue without waiting for
#    their next poll; `rm` changes it again.
# teacher_cv: the cv= of the teacher's TXT record as student 3's avahi sees it (empty when not seen).
teacher_cv() { "$LAB" exec 3 avahi-browse -r -t -p _modelcache._tcp 2>/dev/null | awk -F';' '$1 == "=" && $4 == "teacher" { print $NF }' | grep -o 'cv=[0-9]*' | head -1; }
# cv_moves_from OLD: bounded wait (10 s) for the teacher's cv to differ from OLD.
cv_moves_from() { local _ c; for _ in $(seq 20); do c=$(teacher_cv); [[ -n $c && $c != "$1" ]] && return 0; sleep 0.5; done; return 1; }
if command -v avahi-browse >/dev/null; then
    CV0=$(teacher_cv)
    check "student 3 sees the teacher's TXT record with a catalogue version ($CV0)" test -n "$CV0"
    head -c $((64 * 1024)) /dev/urandom >"$OUT/usb.bin"
    check "the teacher adds a file from a USB stick through its node" \
        "$LAB" exec 1 "$BIN" add --cache-dir "$OUT/node1" "$OUT/usb.bin" --url http://10.77.0.100:8080/usb.bin
    check "the teacher's TXT record moved past $CV0 after the add" cv_moves_from "$CV0"
    CV1=$(teacher_cv)
    check "the teacher removes it through its node" "$LAB" exec 1 "$BIN" rm --cache-dir "$OUT/node1" http://10.77.0.100:8080/usb.bin
    check "the teacher's TXT record moved past $CV1 after the rm" cv_moves_from "$CV1"
else
    echo "SKIP: avahi-browse not installed (apt-get install avahi-utils): TXT re-publish phase"
fi

if ((FAIL)); then
    for f in tA tB tC s2A s2B s3A s3B s4A s4B s2C; do echo "--- $f"; cat "$OUT/$f.json" 2>/dev/null; tail -3 "$OUT/$f.err" 2>/dev/null; done
    for i in 1 2 3 4; do echo "--- node$i.log"; tail -15 "$OUT/node$i.log"; done
fi
echo "$PASS passed, $FAIL failed"
((FAIL == 0))
