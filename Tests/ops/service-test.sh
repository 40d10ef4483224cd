#!/usr/bin/env bash
# `serve` as the systemd unit runs it, without systemd: the node gets $NOTIFY_SOCKET (a datagram socket this test
# binds) and must send READY=1 only once its peer port and control socket answer, and STOPPING=1 on SIGTERM; its
# stderr in --log-format logfmt is one `time=… level=… label=… msg=…` line per event. Then the shared cache: the node
# runs with umask 0007 on a setgid 2770 folder of a group, with --control-socket-mode 0660, and a user in that group
# (nobody, via setpriv) fetches through it while a user outside the group is refused. The last part needs root (it
# prints why it skips otherwise). Everything runs on loopback; every process started is stopped by its pid.
set -euo pipefail
cd "$(dirname "$0")/../.."
bin="${MODELCACHE_BIN:-$PWD/.build/debug/modelcache}"
[ -x "$bin" ] || { echo "FAIL: no built modelcache at $bin: run swift build first"; exit 1; }
command -v python3 >/dev/null || { echo "SKIP: python3 is missing (scripts/install-deps --test)"; exit 0; }
work=$(mktemp -d /tmp/modelcache-service.XXXXXX)
chmod 755 "$work"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
fail=0
check() { if "$@"; then :; else echo "FAIL: $*"; fail=1; fi; }

# A notify socket: prints each datagram as one line (newlines shown as |), for 60 s at most.
cat > "$work/notify.py" <<'EOP'
import socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
s.settimeout(1.0)
end = time.time() + 60
with open(sys.argv[2], "a", buffering=1) as out:
    while time.time() < end:
        try:
            data = s.recv(4096)
        except socket.timeout:
            continue
        out.write(data.decode("utf-8", "replace").replace("\n", "|") + "\n")
EOP
python3 "$work/notify.py" "$work/notify.sock" "$work/notify.log" & pids+=($!)
for _ in $(seq 50); do [ -S "$work/notify.sock" ] && break; sleep 0.1; done
check [ -S "$work/notify.sock" ]

NOTIFY_SOCKET="$work/notify.sock" "$bin" serve --cache-dir "$work/cache" --listen 127.0.0.1:0 --no-mdns \
  --control-socket-mode 0660 --log-format logfmt --verbose 2>"$work/serve.err" & node=$!; pids+=($node)
for _ in $(seq 200); do grep -q '^READY=1' "$work/notify.log" 2>/dev/null && break; sleep 0.1; done
check grep -q '^READY=1|STATUS=serving .* on 127.0.0.1:[1-9][0-9]*; control socket' "$work/notify.log"
# READY=1 came after the control socket was up with its mode: it answers at once, mode 0660.
check [ "$(stat -c %a "$work/cache/node.sock")" = 660 ]
check env MODELCACHE_DIR="$work/cache" "$bin" jobs
check [ "$(grep -c '^READY=1' "$work/notify.log")" -eq 1 ]
kill -TERM "$node"
status=0; wait "$node" || status=$?
check [ "$status" -eq 0 ]
for _ in $(seq 50); do grep -q '^STOPPING=1' "$work/notify.log" && break; sleep 0.1; done
check grep -q '^STOPPING=1' "$work/notify.log"
# logfmt: every stderr line is one event with the fixed keys first (the start banner too).
events=$(cat "$work/serve.err")
check [ -n "$events" ]
bad=$(grep -cvE '^time=[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z level=[a-z]+ label=[^ ]+ msg=' <<<"$events" || true)
check [ "$bad" -eq 0 ]
check grep -q 'msg="node listening" listen=127.0.0.1:[0-9]* node.id=' <<<"$events"
check grep -q 'msg="told systemd the node is ready"' <<<"$events"
check grep -q 'level=notice label=modelcache.serve msg="node serving" cache.dir=.* control.socket=.*node.sock listen=127.0.0.1:[1-9][0-9]* node.id=' <<<"$events"

# json: the same events, each line one JSON object with the fixed keys.
"$bin" serve --cache-dir "$work/cache" --listen 127.0.0.1:0 --no-mdns --log-format json --verbose 2>"$work/json.err" & node=$!; pids+=($node)
for _ in $(seq 200); do grep -q 'node listening' "$work/json.err" 2>/dev/null && break; sleep 0.1; done
kill -TERM "$node"; wait "$node" || true
check python3 -c '
import json, sys
lines = list(open(sys.argv[1]))
objs = [json.loads(l) for l in lines]
assert objs and all(list(o)[:4] == ["time", "level", "label", "msg"] for o in objs), objs
assert any(o["msg"] == "node listening" and "node.id" in o for o in objs), objs
assert any(o["msg"] == "node serving" and o["level"] == "notice" for o in objs), objs
' "$work/json.err"

if [ "$(id -u)" -ne 0 ] || ! command -v setpriv >/dev/null || ! getent group users >/dev/null || ! id nobody >/dev/null 2>&1; then
  echo "SKIP (shared cache part): needs root, setpriv (util-linux), the group 'users' and the user 'nobody'"
  [ "$fail" -eq 0 ] && echo "service-test OK (notify, logfmt)"; exit "$fail"
fi
# The shared cache, as the unit makes it (CacheDirectoryMode=2770, UMask=0007), group 'users' for the test.
mkdir -p "$work/www" "$work/shared"
chgrp users "$work/shared"; chmod 2770 "$work/shared"
head -c $((2 * 1024 * 1024 + 5)) /dev/urandom > "$work/www/model.bin"
expected=$(sha256sum "$work/www/model.bin" | cut -d' ' -f1)
python3 -u -m http.server --bind 127.0.0.1 --directory "$work/www" 0 > "$work/origin.log" 2>&1 & pids+=($!)
port=""
for _ in $(seq 100); do port=$(sed -n 's/.*port \([0-9]*\).*/\1/p' "$work/origin.log" | head -1); [ -n "$port" ] && break; sleep 0.1; done
check [ -n "$port" ]
(umask 0007; exec "$bin" serve --cache-dir "$work/shared" --listen 127.0.0.1:0 --no-mdns --control-socket-mode 0660 \
  2>"$work/shared.err") & node=$!; pids+=($node)
for _ in $(seq 200); do [ -S "$work/shared/node.sock" ] && [ "$(stat -c %a "$work/shared/node.sock")" = 660 ] && break; sleep 0.1; done
check [ "$(stat -c %a "$work/shared/index.sqlite")" = 660 ]
as_member() { setpriv --reuid=nobody --regid=nogroup --groups="$(getent group users | cut -d: -f3)" -- env -i PATH=/usr/bin:/bin MODELCACHE_DIR="$work/shared" "$@"; }
as_outsider() { setpriv --reuid=nobody --regid=nogroup --clear-groups -- env -i PATH=/usr/bin:/bin MODELCACHE_DIR="$work/shared" "$@"; }
path=$(as_member "$bin" fetch --sha256 "$expected" "http://127.0.0.1:$port/model.bin" 2>"$work/member.err" | tail -n1) || true
[ -n "$path" ] || { echo "FAIL: a group member's fetch through the node:"; cat "$work/member.err"; fail=1; }
check [ "$(sha256sum "$path" 2>/dev/null | cut -d' ' -f1)" = "$expected" ]
check [ "$(stat -c %U "$path" 2>/dev/null)" = root ]  # written by the node, not by the member's process
# A hit as the member reads (and touches) the shared index; an outsider cannot even reach the folder.
again=$(as_member "$bin" fetch "http://127.0.0.1:$port/model.bin" 2>>"$work/member.err" | tail -n1) || true
check [ "$again" = "$path" ]
out=0; as_outsider "$bin" fetch "http://127.0.0.1:$port/model.bin" >/dev/null 2>"$work/outsider.err" || out=$?
check [ "$out" -ne 0 ]
kill -TERM "$node"; wait "$node" || true
[ "$fail" -eq 0 ] && echo "service-test OK (notify, logfmt, a group member fetched through a shared node)"
exit "$fail"
