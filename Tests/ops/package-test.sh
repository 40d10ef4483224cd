#!/usr/bin/env bash
# The .deb as a lab admin installs it: scripts/package --debug (the debug build relinked with Swift's runtime inside),
# dpkg -i into this machine, then the installed /usr/bin/modelcache runs with no toolchain: ldd lists no Swift
# library, and `--version` and a real fetch from a loopback origin run under `env -i PATH=/usr/bin:/bin` in a mount
# namespace where /opt/swift is an empty tmpfs. Also checked: the user and group postinst made, the conffile, the unit
# verified by systemd-analyze with its real ExecStart path. Removed with dpkg --purge at the end (the test's own
# user and group too, when it made them). Root only; TIMINGS: prints how long packaging took.
set -euo pipefail
cd "$(dirname "$0")/../.."
[ "$(id -u)" -eq 0 ] || { echo "SKIP: package-test installs a .deb into this machine: run as root"; exit 0; }
for c in dpkg-deb unshare ldd python3 sha256sum; do
  command -v "$c" >/dev/null || { echo "SKIP: $c is missing (scripts/install-deps --test)"; exit 0; }
done
if dpkg -s modelcache >/dev/null 2>&1 || [ -e /usr/bin/modelcache ]; then
  echo "SKIP: a modelcache package (or /usr/bin/modelcache) is already installed here; the test would replace it"; exit 0
fi
work=$(mktemp -d /tmp/modelcache-pkgtest.XXXXXX)
origin_pid=""
had_user=""; getent passwd modelcache >/dev/null && had_user=1
had_group=""; getent group modelcache >/dev/null && had_group=1
installed=""
cleanup() {
  [ -n "$origin_pid" ] && kill "$origin_pid" 2>/dev/null
  if [ -n "$installed" ]; then dpkg --purge modelcache >/dev/null 2>&1 || echo "warning: dpkg --purge modelcache failed" >&2; fi
  [ -z "$had_user" ] && getent passwd modelcache >/dev/null && userdel modelcache 2>/dev/null
  [ -z "$had_group" ] && getent group modelcache >/dev/null && groupdel modelcache 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
fail=0
check() { if "$@"; then :; else echo "FAIL: $*"; fail=1; fi; }

start=$SECONDS
# The relink replaces the debug binary the later tests use; a failed link would delete it, so it is kept aside first.
built_bin=.build/debug/modelcache
[ -x "$built_bin" ] && cp -p "$built_bin" "$work/modelcache.before"
if ! scripts/package --debug > "$work/package.log" 2>&1; then
  echo "FAIL: scripts/package --debug:"; tail -20 "$work/package.log"
  [ -x "$built_bin" ] || { [ -e "$work/modelcache.before" ] && cp -p "$work/modelcache.before" "$built_bin"; }
  exit 1
fi
deb=$(tail -n1 "$work/package.log")
echo "TIMING: scripts/package --debug took $((SECONDS - start)) s ($(grep '^built ' "$work/package.log"))"
check [ -f "$deb" ]
dpkg-deb --info "$deb" > "$work/info.txt"
# Every directory in the package is 0755 and root's (its ./ too: dpkg-deb keeps the staging folder's mode).
check [ -z "$(dpkg-deb -c "$deb" | awk '$1 ~ /^d/ && ($1 != "drwxr-xr-x" || $2 != "root/root")')" ]
check grep -q '^ Depends: .*libavahi-client3.*avahi-daemon' "$work/info.txt"
check grep -qx '/etc/modelcache/config.toml' <(dpkg-deb --ctrl-tarfile "$deb" | tar -xOf - ./conffiles)

dpkg -i "$deb" > "$work/dpkg.log" 2>&1 || { echo "FAIL: dpkg -i $deb:"; tail -20 "$work/dpkg.log"; installed=1; exit 1; }
installed=1
check [ -x /usr/bin/modelcache ]
check [ -f /lib/systemd/system/modelcache.service ]
check [ -f /etc/modelcache/config.toml ]
check bash -c 'getent passwd modelcache >/dev/null'
check bash -c 'getent group modelcache >/dev/null'
check [ "$(id -gn modelcache)" = modelcache ]
if command -v systemd-analyze >/dev/null; then
  out=$(systemd-analyze verify /lib/systemd/system/modelcache.service 2>&1) || fail=1
  [ -z "$out" ] || { echo "FAIL: systemd-analyze verify on the installed unit: $out"; fail=1; }
fi

# No Swift library from the toolchain: none linked, and none reachable.
if ldd /usr/bin/modelcache | grep -E 'libswift|libFoundation|libdispatch|/opt/swift'; then
  echo "FAIL: /usr/bin/modelcache links the Swift toolchain's libraries"; fail=1
fi
no_toolchain() {  # runs "$@" with an empty environment and /opt/swift hidden
  env -i PATH=/usr/bin:/bin unshare -m sh -c 'mount -t tmpfs none /opt/swift 2>/dev/null || true
    [ -z "$(ls -A /opt/swift 2>/dev/null)" ] || { echo "cannot hide /opt/swift" >&2; exit 99; }
    exec "$@"' sh "$@"
}
version=$(sed -n 's/.*string = "\(.*\)".*/\1/p' Sources/ModelCacheCore/Version.swift)
got=$(no_toolchain /usr/bin/modelcache --version 2>&1) || true
check [ "$got" = "$version" ]

# A real fetch from a loopback origin into a fresh cache.
mkdir -p "$work/www"
head -c $((3 * 1024 * 1024 + 17)) /dev/urandom > "$work/www/model.bin"
expected=$(sha256sum "$work/www/model.bin" | cut -d' ' -f1)
python3 -u -m http.server --bind 127.0.0.1 --directory "$work/www" 0 > "$work/origin.log" 2>&1 & origin_pid=$!
port=""
for _ in $(seq 100); do
  port=$(sed -n 's/.*port \([0-9]*\).*/\1/p' "$work/origin.log" | head -1)
  [ -n "$port" ] && break; sleep 0.1
done
[ -n "$port" ] || { echo "FAIL: the loopback origin did not start"; exit 1; }
path=$(no_toolchain /usr/bin/modelcache fetch --cache-dir "$work/cache" --no-node --sha256 "$expected" "http://127.0.0.1:$port/model.bin" 2>"$work/fetch.err" | tail -n1) || true
[ -n "$path" ] || { echo "FAIL: fetch with the installed binary:"; cat "$work/fetch.err"; fail=1; }
check [ "$(sha256sum "$path" 2>/dev/null | cut -d' ' -f1)" = "$expected" ]
case "$path" in "$work/cache/"*) ;; *) echo "FAIL: the blob is not in the test's cache: $path"; fail=1 ;; esac

# Removal: purge takes the binary, the unit and the conffile.
dpkg --purge modelcache > "$work/purge.log" 2>&1 || { echo "FAIL: dpkg --purge:"; cat "$work/purge.log"; fail=1; }
installed=""
check [ ! -e /usr/bin/modelcache ]
check [ ! -e /lib/systemd/system/modelcache.service ]
check [ ! -e /etc/modelcache/config.toml ]
[ "$fail" -eq 0 ] && echo "package-test OK: $deb installed, ran without the toolchain, fetched $expected, purged"
exit "$fail"
