#!/usr/bin/env bash
# Real-LAN swarm test: four node namespaces, each with its own dbus + avahi-daemon (scripts/lanlab.sh), that found
# each other over mDNS, start the same download together; the origin (nginx in a fifth namespace, its link capped
# with tc when the kernel allows it) must send at most 1.25x the file's bytes in all (its access log proves it).
# Prints "N passed, N failed"; exits non-zero on failure; skips (exit 0) when not root or tools are missing.
set -uo pipefail
NAME=sw NODES=4
source "$(dirname "$0")/lib.sh"
lan_setup
start_origin 64

# Cap the origin's uplink (200 Mbit/s) when tc works here; say so when it does not.
if ip netns exec "$MCLAB_PREFIX-origin" tc qdisc add dev eth0 root tbf rate 200mbit burst 256kb latency 50ms 2>"$OUT/tc.err"; then
    echo "origin link capped at 200 Mbit/s"
else
    echo "note: tc is not available here ($(head -c 200 "$OUT/tc.err")); the origin is not rate-capped"
fi

start_nodes n1 n2 n3 n4

# Every node must have found the three others over mDNS (bounded wait).
for i in 1 2 3 4; do
    ok=0
    for _ in $(seq 100); do
        [[ $(peers_of "$i" | json 'sum(1 for p in d if p["foundBy"] == "mdns")' 2>/dev/null) == 3 ]] && { ok=1; break; }
        sleep 0.1
    done
    check "node $i found the 3 others over mDNS" test $ok = 1
done

# All four start together (the trusted digest comes with the request, as a model manifest would give it).
for i in 1 2 3 4; do
    "$LAB" exec "$i" "$BIN" fetch --cache-dir "$OUT/node$i" --sha256 "$SHA" --json "$URL" >"$OUT/f$i.json" 2>"$OUT/f$i.err" &
    FETCH[$i]=$!
done
for i in 1 2 3 4; do wait "${FETCH[$i]}"; done

for i in 1 2 3 4; do
    check "node $i has the right blob" test "$(json 'd["sha256"]' <"$OUT/f$i.json" 2>/dev/null)" = "$SHA"
done
SERVED=$(awk '$2 == "GET" { s += $4 } END { print s + 0 }' "$OUT/access.log")
RATIO=$(python3 -c "print(round($SERVED / $SIZE, 3))")
echo "origin sent $SERVED bytes = ${RATIO}x the file"
check "the origin sent at most 1.25x the file in all (access log)" python3 -c "exit(0 if $SERVED <= 1.25 * $SIZE else 1)"
check "the nodes took chunks from each other" python3 -c "
import json
peer = sum(v for i in range(1, 5) for k, v in json.load(open('$OUT/f%d.json' % i))['sources'].items() if k.startswith('peer '))
exit(0 if peer > 0 else 1)"

if ((FAIL)); then
    for i in 1 2 3 4; do echo "--- f$i"; cat "$OUT/f$i.json" "$OUT/f$i.err" 2>/dev/null; echo "--- node$i.log"; tail -15 "$OUT/node$i.log"; done
fi
echo "$PASS passed, $FAIL failed"
((FAIL == 0))
