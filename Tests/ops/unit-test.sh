#!/usr/bin/env bash
# The systemd unit (packaging/modelcache.service): `systemd-analyze verify` finds nothing to say (a warning is a
# failure: verify exits 0 on ignored lines), `systemd-analyze security` rates it at most 2.5, the hardening lines are
# all there, and every flag its ExecStart passes is one `modelcache serve` takes (checked on the built binary).
set -euo pipefail
cd "$(dirname "$0")/../.."
unit=packaging/modelcache.service
command -v systemd-analyze >/dev/null || { echo "SKIP: systemd-analyze is missing (scripts/install-deps --test installs systemd)"; exit 0; }
bin="${MODELCACHE_BIN:-$PWD/.build/debug/modelcache}"
[ -x "$bin" ] || { echo "FAIL: no built modelcache at $bin: run swift build first"; exit 1; }
work=$(mktemp -d /tmp/modelcache-unit.XXXXXX)
trap 'rm -rf "$work"' EXIT
fail=0
check() { if "$@"; then :; else echo "FAIL: $*"; fail=1; fi; }

# The unit names /usr/bin/modelcache; verify a copy that names a copy of the built binary (the same flags).
mkdir -p "$work/bin" "$work/unit"
cp "$bin" "$work/bin/modelcache"
sed "s#/usr/bin/modelcache#$work/bin/modelcache#g" "$unit" > "$work/unit/modelcache.service"
out=$(systemd-analyze verify "$work/unit/modelcache.service" 2>&1) || { echo "FAIL: systemd-analyze verify: $out"; fail=1; }
if [ -n "$out" ]; then echo "FAIL: systemd-analyze verify warns:"; echo "$out"; fail=1; fi
if ! systemd-analyze security --offline=true --threshold=25 "$work/unit/modelcache.service" >"$work/security.txt" 2>&1; then
  echo "FAIL: systemd-analyze security rates the unit above 2.5:"; tail -3 "$work/security.txt"; fail=1
fi

# Lines that must not vanish: readiness, its own user, the cache, restart, and the hardening.
for line in 'Type=notify' 'User=modelcache' 'Group=modelcache' 'CacheDirectory=modelcache' 'UMask=0007' \
            'Restart=on-failure' 'ProtectSystem=strict' 'ReadWritePaths=/var/cache/modelcache' 'ProtectHome=yes' \
            'PrivateTmp=yes' 'PrivateDevices=yes' 'PrivateMounts=yes' 'NoNewPrivileges=yes' 'RestrictSUIDSGID=yes' 'CapabilityBoundingSet=' \
            'SystemCallFilter=@system-service' 'RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK' \
            'After=network-online.target avahi-daemon.service' 'Wants=network-online.target avahi-daemon.service'; do
  check grep -qxF "$line" "$unit"
done
exec_line=$(grep '^ExecStart=' "$unit")
check grep -q -- '--control-socket-mode 0660' <<<"$exec_line"
check grep -q -- '--log-format logfmt' <<<"$exec_line"
check grep -q -- '--cache-dir /var/cache/modelcache' <<<"$exec_line"

# Every --flag of ExecStart is one `serve` knows, and the binary accepts the values (--help parses nothing, so ask
# serve to check them: an unknown flag or a bad value exits 64 before anything starts; a good set gets past parsing).
help=$("$bin" serve --help)
for flag in $(grep -o -- '--[a-z-]*' <<<"$exec_line"); do
  check grep -q -- "$flag" <<<"$help"
done
bad=0; "$bin" serve --cache-dir "$work/c" --control-socket-mode 0770 --no-mdns --listen 127.0.0.1:0 >/dev/null 2>&1 || bad=$?
check [ "$bad" -eq 64 ]
bad=0; "$bin" serve --cache-dir "$work/c" --log-format yaml --no-mdns --listen 127.0.0.1:0 >/dev/null 2>&1 || bad=$?
check [ "$bad" -eq 64 ]

[ "$fail" -eq 0 ] && echo "unit-test OK: verify clean, $(tail -1 "$work/security.txt" | sed 's/^→ //')"
exit "$fail"
