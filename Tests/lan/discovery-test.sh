#!/usr/bin/env bash
# LAN integration test of mDNS discovery (AvahiDiscovery through `modelcache discover`), on a lab of
# network namespaces with one avahi-daemon each (scripts/lanlab.sh, docs/lan-lab.md).
#
#   sudo Tests/lan/discovery-test.sh        MODELCACHE_BIN=path/to/modelcache (default .build/debug/modelcache)
#
# Checks: two nodes see each other with the right address, port and TXT record and never
# themselves; a TXT update is heard; node 1 sees node 2 again after node 2's avahi-daemon restarts,
# and node 2 reports one outage and recovers; a node whose daemon starts late reports one outage,
# then finds its peer; services with hostile TXT records are ignored; a name collision is resolved
# by renaming ("same #2") and both nodes still see each other; with no D-Bus/avahi at all
# there is exactly one `unavailable` event and one warning. Prints "N passed, N failed"; exits
# non-zero on any failure; skips (exit 0) when not root or tools are missing. Set KEEP_OUTPUT=1
# to keep the event logs.

set -uo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT" || exit 1
BIN=${MODELCACHE_BIN:-.build/debug/modelcache}
LAB=$ROOT/scripts/lanlab.sh
# A prefix of our own, so this run cannot clash with another lab (or another run).
export MCLAB_PREFIX=${MCLAB_PREFIX:-mcdt$$}
export MCLAB_STATE=${MCLAB_STATE:-/tmp/modelcache-lanlab-$MCLAB_PREFIX}

skip() {
    echo "SKIP: $*"
    exit 0
}
[[ $(id -u) == 0 ]] || skip "needs root (creates network namespaces)"
for tool in ip nsenter unshare setsid avahi-daemon dbus-daemon dbus-send python3; do
    command -v "$tool" >/dev/null || skip "$tool is not installed (apt-get install -y avahi-daemon dbus iproute2 util-linux python3)"
done
if [[ ! -x $BIN ]]; then
    echo "FAIL: no modelcache binary at $BIN (run swift build, or set MODELCACHE_BIN)"
    exit 1
fi
BIN=$(realpath "$BIN")
HAVE_PUBLISH=0
command -v avahi-publish >/dev/null && HAVE_PUBLISH=1

OUT=$(mktemp -d /tmp/modelcache-discovery-test.XXXXXX)
BG=()
LAB_UP=0

cleanup() {
    local p
    for p in "${BG[@]}"; do kill -TERM "$p" 2>/dev/null; done
    for p in "${BG[@]}"; do wait "$p" 2>/dev/null; done
    ((LAB_UP)) && "$LAB" down >/dev/null 2>&1
    if [[ ${KEEP_OUTPUT:-0} == 1 ]]; then echo "event logs kept in $OUT"; else rm -rf "$OUT"; fi
}
trap cleanup EXIT

PASSED=0
FAILED=0
forget_bg() { # PID: drop it from BG (it has been waited for)
    local keep=() p
    for p in "${BG[@]}"; do [[ $p == "$1" ]] || keep+=("$p"); done
    BG=("${keep[@]}")
}

pass() { echo "PASS: $1"; PASSED=$((PASSED + 1)); }
fail() { echo "FAIL: $1"; FAILED=$((FAILED + 1)); }

cat >"$OUT/check.py" <<'EOF'
import json, sys

def load(path):
    events = []
    for line in open(path, encoding="utf-8"):
        line = line.strip()
        if line:
            events.append(json.loads(line))
    return events

ev = load(sys.argv[1])

def idx(kind, instance=None, host=None, port=None, id=None, cv=None, after=-1):
    """Indices of matching events after index `after`."""
    out = []
    for i, e in enumerate(ev):
        if i <= after or e["event"] != kind:
            continue
        if instance is not None and e.get("instance") != instance: continue
        if host is not None and e.get("host") != host: continue
        if port is not None and e.get("port") != port: continue
        if id is not None and e.get("txt", {}).get("id") != id: continue
        if cv is not None and e.get("txt", {}).get("cv") != cv: continue
        out.append(i)
    return out

def first(xs, default=None):
    return xs[0] if xs else default

ok = eval(sys.argv[2])
if not ok:
    sys.stderr.write("    events in %s:\n" % sys.argv[1])
    for e in ev:
        sys.stderr.write("      %s\n" % json.dumps(e, sort_keys=True))
sys.exit(0 if ok else 1)
EOF

# check DESCRIPTION EVENTS-FILE PYTHON-EXPRESSION
check() {
    if python3 "$OUT/check.py" "$OUT/$2.jsonl" "$3"; then pass "$1"; else fail "$1"; fi
}

# discover NODE NAME ARGS...: `modelcache discover ARGS` on NODE in the background; events in
# $OUT/NAME.jsonl. $DISCOVER_ENV (VAR=value words) is put in its environment.
DISCOVER_ENV=
discover() {
    local node=$1 name=$2
    shift 2
    # shellcheck disable=SC2086
    "$LAB" exec "$node" env $DISCOVER_ENV "$BIN" discover -v "$@" >"$OUT/$name.jsonl" 2>"$OUT/$name.err" &
    BG+=($!)
    echo "$!" >"$OUT/$name.pid"
}

# finish NAME...: wait for those discover runs and check each exited 0.
finish() {
    local name pid rc
    for name in "$@"; do
        pid=$(cat "$OUT/$name.pid")
        wait "$pid"
        rc=$?
        forget_bg "$pid"
        if ((rc == 0)); then pass "$name: discover exited 0"; else fail "$name: discover exited $rc (stderr: $(tail -3 "$OUT/$name.err" | tr '\n' ' '))"; fi
    done
}

# Peers keep a withdrawn record for 1 s after its goodbye: let the previous phase fade out.
settle() { sleep 1.5; }

ID_A=aaaaaaaaaaaaaaa1
ID_B=bbbbbbbbbbbbbbb2

echo "== bringing up 2 nodes + origin (prefix $MCLAB_PREFIX)"
LAB_UP=1
if ! "$LAB" up 2 --origin; then
    fail "lanlab up"
    echo "$PASSED passed, $FAILED failed"
    exit 1
fi

echo "== 1. mutual discovery, TXT, TXT update"
discover 1 a1 --publish-port 7070 --name a --node-id $ID_A --catalogue-version 5 --bump-after 3 --seconds 8
discover 2 b1 --publish-port 7070 --name b --node-id $ID_B --catalogue-version 7 --seconds 8
finish a1 b1
check "node 1 found b at 10.77.0.2:7070 with b's TXT" a1 \
    "idx('found', 'b', host='10.77.0.2', port=7070, id='$ID_B', cv=7)"
check "node 2 found a at 10.77.0.1:7070 with a's TXT" b1 \
    "idx('found', 'a', host='10.77.0.1', port=7070, id='$ID_A', cv=5)"
check "node 1 never reports itself" a1 "not idx('found', 'a') and not idx('found', id='$ID_A')"
check "node 2 never reports itself" b1 "not idx('found', 'b') and not idx('found', id='$ID_B')"
check "node 1: one 'available', no 'unavailable'" a1 "len(idx('available')) == 1 and not idx('unavailable')"
check "node 2: one 'available', no 'unavailable'" b1 "len(idx('available')) == 1 and not idx('unavailable')"
check "TXT update: node 2 hears a's catalogue version go 5 -> 6" b1 \
    "first(idx('found', 'a', cv=6, host='10.77.0.1'), -1) > first(idx('found', 'a', cv=5), 99)"
check "node 2 did not lose a" b1 "not idx('lost', 'a')"
settle

echo "== 2. avahi-daemon restart on node 2 while both run"
discover 1 a2 --publish-port 7070 --name a --node-id $ID_A --seconds 12
discover 2 b2 --publish-port 7070 --name b --node-id $ID_B --seconds 12
sleep 3.5
if "$LAB" restart-avahi 2 2; then pass "restart node 2's avahi-daemon"; else fail "restart node 2's avahi-daemon"; fi
finish a2 b2
check "node 1 found b before the restart, lost it, then found it again (same address, TXT)" a2 \
    "first(idx('found', 'b', host='10.77.0.2', id='$ID_B'), 99) < first(idx('lost', 'b'), -1) < first(idx('found', 'b', host='10.77.0.2', port=7070, id='$ID_B', after=first(idx('lost', 'b'), 99)), -1)"
check "node 1's own daemon stayed up: no 'unavailable'" a2 "not idx('unavailable')"
check "node 2: exactly one 'unavailable', then 'available'" b2 \
    "len(idx('unavailable')) == 1 and idx('available', after=idx('unavailable')[0])"
check "node 2 found a again after its daemon came back" b2 \
    "idx('found', 'a', host='10.77.0.1', id='$ID_A', after=first(idx('available', after=first(idx('unavailable'), 99)), 99))"
if [[ $(grep -c 'warning' "$OUT/b2.err") == 1 ]]; then pass "node 2 logged one warning for the outage"; else fail "node 2 logged $(grep -c warning "$OUT/b2.err") warnings for one outage"; fi
settle

echo "== 3. avahi-daemon missing when discovery starts, started later"
"$LAB" stop-avahi 2 || fail "stop node 2's avahi-daemon"
discover 1 a3 --publish-port 7070 --name a --node-id $ID_A --seconds 8
discover 2 b3 --publish-port 7070 --name b --node-id $ID_B --seconds 8
sleep 2
if "$LAB" start-avahi 2; then pass "start node 2's avahi-daemon"; else fail "start node 2's avahi-daemon"; fi
finish a3 b3
check "node 2: one 'unavailable' first, then 'available', then found a" b3 \
    "ev[0]['event'] == 'unavailable' and len(idx('unavailable')) == 1 and idx('found', 'a', host='10.77.0.1', id='$ID_A', after=first(idx('available'), 99))"
check "node 1 found b once node 2's daemon was up" a3 "idx('found', 'b', host='10.77.0.2', id='$ID_B')"
settle

echo "== 4. hostile TXT records are ignored"
if ((HAVE_PUBLISH)); then
    pub() { # NAME PORT TXT...
        "$LAB" exec 2 avahi-publish -s "$@" >>"$OUT/publish.log" 2>&1 &
        BG+=($!)
        PUB+=($!)
    }
    PUB=()
    HUGE=$(printf '9%.0s' $(seq 1 200))
    pub evil-txtvers _modelcache._tcp 7071 txtvers=2 pv=1 id=cccccccccccccccc cv=1
    pub evil-noid _modelcache._tcp 7072 txtvers=1 pv=1 cv=1
    pub evil-dup _modelcache._tcp 7073 txtvers=1 pv=1 id=cccccccccccccccc id=dddddddddddddddd cv=1
    pub evil-huge _modelcache._tcp 7074 txtvers=1 pv=1 id=cccccccccccccccc "cv=$HUGE"
    pub evil-upper _modelcache._tcp 7075 txtvers=1 pv=1 id=CCCCCCCCCCCCCCCC cv=1
    pub evil-binary _modelcache._tcp 7076 txtvers=1 pv=1 $'id=cccccccccccccc\xff\xfe' cv=1
    pub evil-noeq _modelcache._tcp 7077 txtvers pv id cv
    pub evil-empty _modelcache._tcp 7078
    pub good _modelcache._tcp 7079 txtvers=1 pv=1 id=eeeeeeeeeeeeeeee cv=3 extra=ignored
    sleep 1
    discover 1 a4 --seconds 4
    finish a4
    for p in "${PUB[@]}"; do kill -TERM "$p" 2>/dev/null; wait "$p" 2>/dev/null; forget_bg "$p"; done
    check "node 1 found the well-formed service (unknown key ignored)" a4 \
        "idx('found', 'good', host='10.77.0.2', port=7079, id='eeeeeeeeeeeeeeee', cv=3)"
    check "node 1 reported none of the hostile services" a4 \
        "not [e for e in ev if e['event'] == 'found' and e['instance'].startswith('evil')]"
else
    echo "SKIP: avahi-publish not installed (apt-get install avahi-utils): hostile TXT phase"
fi
settle

echo "== 5. name collision: both nodes publish \"same\""
discover 1 a5 --publish-port 7070 --name same --node-id $ID_A --seconds 6
discover 2 b5 --publish-port 7070 --name same --node-id $ID_B --seconds 6
finish a5 b5
check "node 1 found node 2's service under its own name or a renamed one" a5 \
    "idx('found', host='10.77.0.2', id='$ID_B') and all(ev[i]['instance'] in ('same', 'same #2') for i in idx('found'))"
check "node 2 found node 1's service under its own name or a renamed one" b5 \
    "idx('found', host='10.77.0.1', id='$ID_A') and all(ev[i]['instance'] in ('same', 'same #2') for i in idx('found'))"
if python3 -c '
import json, sys
names = set()
for f in sys.argv[1:]:
    for line in open(f):
        e = json.loads(line)
        if e["event"] == "found": names.add(e["instance"])
sys.exit(0 if names == {"same", "same #2"} else 1)' "$OUT/a5.jsonl" "$OUT/b5.jsonl"; then
    pass "one node kept \"same\", the other became \"same #2\""
else
    fail "collision renaming (names seen: $(grep -ho '"instance":"[^"]*"' "$OUT/a5.jsonl" "$OUT/b5.jsonl" | sort -u | tr '\n' ' '))"
fi
settle

echo "== 6. no D-Bus and no avahi-daemon at all (origin namespace)"
# The origin namespace has no D-Bus of its own; point the client at a bus that does not exist so
# that it cannot reach a system bus of the root namespace either.
DISCOVER_ENV="DBUS_SYSTEM_BUS_ADDRESS=unix:path=$OUT/no-such-bus"
discover origin o6 --seconds 3
DISCOVER_ENV=
finish o6
check "exactly one 'unavailable', nothing else" o6 "len(ev) == 1 and ev[0]['event'] == 'unavailable'"
if [[ $(grep -c 'warning' "$OUT/o6.err") == 1 ]]; then pass "one warning logged"; else fail "$(grep -c warning "$OUT/o6.err") warnings logged (want 1)"; fi

echo "$PASSED passed, $FAILED failed"
((FAILED == 0))
