#!/usr/bin/env bash
# A LAN on one machine: network namespaces on a bridge, one dbus-daemon + avahi-daemon per node.
# Implements the recipe of docs/lan-lab.md. Needs root.
#
#   scripts/lanlab.sh up N [--origin]   bridge namespace + N nodes at 10.77.0.1..N (each with its own
#                                       net, mount and UTS namespaces, dbus-daemon and avahi-daemon);
#                                       --origin adds a plain namespace "origin" at 10.77.0.100
#   scripts/lanlab.sh exec I CMD...     run CMD on node I (I = 1..N, or "origin"), in the current directory
#   scripts/lanlab.sh stop-avahi I      kill node I's avahi-daemon (by pid) and wait until it is gone
#   scripts/lanlab.sh start-avahi I     start node I's avahi-daemon again and wait until it is on D-Bus
#   scripts/lanlab.sh restart-avahi I [S]  stop-avahi, wait S seconds (default 0), start-avahi
#   scripts/lanlab.sh status            print namespaces and pids
#   scripts/lanlab.sh down              kill everything started (by pid), delete the namespaces
#
# Environment: MCLAB_PREFIX (namespace prefix, default "mclab"), MCLAB_STATE (state directory,
# default /tmp/modelcache-lanlab-$MCLAB_PREFIX). Labs with different prefixes can run at once:
# each has its own bridge, so their 10.77.0.x addresses never meet.
#
# Safety: avahi-daemon is never started in the root namespace: it only runs inside a node's
# network namespace, started by that node's anchor process. Every wait loop is bounded
# (50 tries x 0.1 s unless said otherwise). Everything is stopped by pid, never by name.
#
# Layout of one node: the "anchor" is a small bash supervisor running in the node's namespaces;
# it starts dbus-daemon and avahi-daemon as its own children (so it reaps them: PID 1 here may
# not), restarts avahi-daemon on SIGUSR1 if it is not running, and on SIGTERM stops both and exits.
# `exec` enters the node with `nsenter -t <anchor pid> -n -m -u`.

set -euo pipefail

PREFIX=${MCLAB_PREFIX:-mclab}
STATE=${MCLAB_STATE:-/tmp/modelcache-lanlab-$PREFIX}
SUBNET=10.77.0
ORIGIN_ADDR=$SUBNET.100
TRIES=50
[[ $PREFIX =~ ^[a-z][a-z0-9]{0,15}$ ]] || { echo "lanlab: MCLAB_PREFIX must be 1-16 lowercase letters/digits" >&2; exit 2; }
# Exactly our namespace names (so a lab with prefix "mclab2" is never touched by "mclab").
OUR_NS_RE="^$PREFIX-(lan|origin|node[0-9]+)\$"

die() { echo "lanlab: $*" >&2; exit 1; }
log() { echo "lanlab: $*" >&2; }

lan_ns() { echo "$PREFIX-lan"; }
node_ns() { echo "$PREFIX-node$1"; }
origin_ns() { echo "$PREFIX-origin"; }

# wait_until DESC CMD...: retry CMD up to $TRIES times, 0.1 s apart.
wait_until() {
    local desc=$1 i
    shift
    for ((i = 0; i < TRIES; i++)); do
        if "$@" 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    log "timed out waiting for $desc"
    return 1
}

# A live (not zombie) process whose comm starts with $2 (if given).
pid_alive() {
    local pid=$1 want=${2:-} stat comm
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    [[ -r /proc/$pid/stat ]] || return 1
    stat=$(cut -d' ' -f3 "/proc/$pid/stat" 2>/dev/null) || return 1
    [[ $stat != Z && $stat != X ]] || return 1
    if [[ -n $want ]]; then
        comm=$(cat "/proc/$pid/comm" 2>/dev/null) || return 1
        [[ $comm == "$want"* ]] || return 1
    fi
    return 0
}
pid_gone() { ! pid_alive "$1"; }

# kill_pid PID COMM: TERM the process if it is still the one we started, wait (bounded), then KILL.
kill_pid() {
    local pid=$1 want=$2
    pid_alive "$pid" "$want" || return 0
    kill -TERM "$pid" 2>/dev/null || true
    if ! wait_until "pid $pid ($want) to exit" pid_gone "$pid"; then
        kill -KILL "$pid" 2>/dev/null || true
        wait_until "pid $pid ($want) to die" pid_gone "$pid" || true
    fi
}

require_root() { [[ $(id -u) == 0 ]] || die "needs root (network namespaces)"; }
require_up() { [[ -f $STATE/nodes ]] || die "no lab is up (state: $STATE)"; }
node_count() { cat "$STATE/nodes"; }

anchor_of() {
    local i=$1 pid
    [[ $i =~ ^[0-9]+$ ]] && ((i >= 1 && i <= $(node_count))) || die "no node '$i' (nodes are 1..$(node_count))"
    pid=$(cat "$STATE/node$i.anchor" 2>/dev/null) || die "node $i has no anchor"
    pid_alive "$pid" || die "node $i's anchor ($pid) is not running"
    echo "$pid"
}

# Runs inside a node's own net+mount+UTS namespaces (as the anchor). Args: I HOST STATE.
write_node_init() {
    cat >"$STATE/node-init.sh" <<'EOS'
set -u
I=$1 HOST=$2 STATE=$3 NETNS=${4:-}
CONF=$STATE/avahi-node$I.conf
# Never run the daemons outside the node's own network namespace (in the root namespace they would
# announce on the real LAN): fail closed unless we are in exactly the namespace lanlab created.
if [ -z "$NETNS" ] || [ "$(readlink /proc/self/ns/net)" != "net:[$NETNS]" ]; then
    echo "node-init: refusing to start: not in the node's network namespace (want net:[$NETNS], in $(readlink /proc/self/ns/net))" >&2
    exit 1
fi
hostname "$HOST"
# Private /run/dbus and /run/avahi-daemon: this mount namespace's own, invisible outside.
mount -t tmpfs -o mode=0755 none /run/dbus
mkdir -p /run/avahi-daemon
mount -t tmpfs -o mode=0755 none /run/avahi-daemon
chown avahi:avahi /run/avahi-daemon
ip link set lo up

DBUS=
AVAHI=
SLEEP=
avahi_on_bus() {
    dbus-send --system --print-reply --dest=org.freedesktop.DBus / org.freedesktop.DBus.NameHasOwner \
        string:org.freedesktop.Avahi 2>/dev/null | grep 'boolean true' >/dev/null
}
start_avahi() {
    if [ -n "$AVAHI" ] && kill -0 "$AVAHI" 2>/dev/null; then return 0; fi
    avahi-daemon --no-chroot --no-proc-title -f "$CONF" </dev/null >>"$STATE/node$I.avahi.log" 2>&1 &
    AVAHI=$!
    local n=0
    while [ $n -lt 50 ] && ! avahi_on_bus; do sleep 0.1; n=$((n + 1)); done
    echo "$AVAHI" >"$STATE/node$I.avahi.tmp" && mv "$STATE/node$I.avahi.tmp" "$STATE/node$I.avahi"
}
stop_all() {
    for p in $SLEEP $AVAHI $DBUS; do kill -TERM "$p" 2>/dev/null; done
    local n=0
    while [ $n -lt 50 ] && { kill -0 "$AVAHI" 2>/dev/null || kill -0 "$DBUS" 2>/dev/null; }; do sleep 0.1; n=$((n + 1)); done
    for p in $AVAHI $DBUS; do kill -KILL "$p" 2>/dev/null; done
    wait 2>/dev/null
}
trap 'start_avahi' USR1
trap 'stop_all; exit 0' TERM INT

dbus-daemon --system --nofork --nopidfile </dev/null >>"$STATE/node$I.dbus.log" 2>&1 &
DBUS=$!
echo "$DBUS" >"$STATE/node$I.dbus"
n=0
while [ $n -lt 50 ] && ! [ -S /run/dbus/system_bus_socket ]; do sleep 0.1; n=$((n + 1)); done
start_avahi
echo $$ >"$STATE/node$I.anchor"
# Stay alive (and reap children) until told to stop.
while :; do
    if [ -z "$SLEEP" ] || ! kill -0 "$SLEEP" 2>/dev/null; then
        sleep 3600 &
        SLEEP=$!
    fi
    wait "$SLEEP"
done
EOS
}

write_avahi_conf() {
    local i=$1
    cat >"$STATE/avahi-node$i.conf" <<EOC
[server]
use-ipv4=yes
use-ipv6=no
allow-interfaces=eth0
ratelimit-interval-usec=1000000
ratelimit-burst=1000
[wide-area]
enable-wide-area=no
[publish]
publish-hinfo=no
publish-workstation=no
EOC
    chmod 0644 "$STATE/avahi-node$i.conf"
}

# veth NAME-IN-LAN NAMESPACE ADDRESS: a host namespace plugged into the bridge.
plug() {
    local vname=$1 ns=$2 addr=$3
    ip -n "$(lan_ns)" link add "$vname" type veth peer name eth0 netns "$ns"
    ip -n "$(lan_ns)" link set "$vname" master br0
    ip -n "$(lan_ns)" link set "$vname" up
    ip -n "$ns" addr add "$addr/24" dev eth0
    ip -n "$ns" link set eth0 up
    ip -n "$ns" link set lo up
}

avahi_on_bus_in() { # anchor
    nsenter -t "$1" -n -m -u -- dbus-send --system --print-reply --dest=org.freedesktop.DBus / \
        org.freedesktop.DBus.NameHasOwner string:org.freedesktop.Avahi 2>/dev/null | grep 'boolean true' >/dev/null
}

start_node() {
    local i=$1 ns
    ns=$(node_ns "$i")
    write_avahi_conf "$i"
    rm -f "$STATE/node$i.anchor" "$STATE/node$i.avahi" "$STATE/node$i.dbus"
    # The namespace's inode: node-init checks it runs in exactly that network namespace.
    local netns
    netns=$(stat -L -c %i "/run/netns/$ns") || die "cannot stat /run/netns/$ns"
    # One process tree per node: ip netns exec (net ns) -> unshare (mount + UTS ns) -> anchor.
    setsid ip netns exec "$ns" unshare -m -u --propagation private \
        bash "$STATE/node-init.sh" "$i" "$PREFIX-node$i" "$STATE" "$netns" </dev/null >>"$STATE/node$i.log" 2>&1 &
    # dbus (5 s) + avahi (5 s) start-up bounds inside, so allow 2 x 50 tries here.
    TRIES=100 wait_until "node $i to start (see $STATE/node$i.log)" test -s "$STATE/node$i.anchor" || return 1
    local anchor
    anchor=$(cat "$STATE/node$i.anchor")
    wait_until "node $i's avahi-daemon on D-Bus" avahi_on_bus_in "$anchor" || return 1
}

cmd_up() {
    require_root
    local n=${1:-} origin=0
    shift || true
    [[ $n =~ ^[0-9]+$ ]] && ((n >= 1 && n <= 50)) || die "usage: lanlab.sh up N [--origin] (N = 1..50)"
    for a in "$@"; do
        case $a in
            --origin) origin=1 ;;
            *) die "unknown option $a" ;;
        esac
    done
    [[ ! -e $STATE/nodes ]] || die "a lab is already up (state: $STATE); run 'lanlab.sh down' first"
    ip netns list | awk '{print $1}' | grep -Eq "$OUR_NS_RE" && die "namespaces named $PREFIX-* exist already; run 'lanlab.sh down' or pick another MCLAB_PREFIX"
    command -v avahi-daemon >/dev/null && command -v dbus-daemon >/dev/null && command -v dbus-send >/dev/null ||
        die "needs avahi-daemon, dbus-daemon and dbus-send (apt-get install avahi-daemon dbus)"
    mkdir -p "$STATE"
    chmod 0755 "$STATE"
    echo "$n" >"$STATE/nodes"
    echo "$origin" >"$STATE/origin"
    write_node_init
    ip netns add "$(lan_ns)"
    ip -n "$(lan_ns)" link add br0 type bridge
    ip -n "$(lan_ns)" link set br0 up
    ip -n "$(lan_ns)" link set lo up
    local i
    for ((i = 1; i <= n; i++)); do
        ip netns add "$(node_ns "$i")"
        plug "v$i" "$(node_ns "$i")" "$SUBNET.$i"
    done
    if ((origin)); then
        ip netns add "$(origin_ns)"
        plug vorigin "$(origin_ns)" "$ORIGIN_ADDR"
    fi
    for ((i = 1; i <= n; i++)); do
        start_node "$i" || die "node $i failed to start"
    done
    log "up: $n node(s) at $SUBNET.1..$SUBNET.$n$( ((origin)) && echo ", origin at $ORIGIN_ADDR"); state in $STATE"
}

cmd_exec() {
    require_up
    local i=${1:-}
    shift || true
    (($# > 0)) || die "usage: lanlab.sh exec I CMD..."
    if [[ $i == origin ]]; then
        [[ $(cat "$STATE/origin") == 1 ]] || die "no origin namespace (use 'up N --origin')"
        exec ip netns exec "$(origin_ns)" "$@"
    fi
    local anchor
    anchor=$(anchor_of "$i")
    exec nsenter -t "$anchor" -n -m -u --wd="$PWD" -- "$@"
}

cmd_stop_avahi() {
    require_up
    local i=${1:-} anchor pid
    anchor=$(anchor_of "$i")
    pid=$(cat "$STATE/node$i.avahi" 2>/dev/null || true)
    [[ -n $pid ]] || return 0
    kill_pid "$pid" avahi-daemon
    pid_gone "$pid" || die "node $i's avahi-daemon ($pid) did not stop"
}

cmd_start_avahi() {
    require_up
    local i=${1:-} anchor old
    anchor=$(anchor_of "$i")
    old=$(cat "$STATE/node$i.avahi" 2>/dev/null || true)
    if pid_alive "$old" avahi-daemon; then return 0; fi
    rm -f "$STATE/node$i.avahi"
    kill -USR1 "$anchor"
    TRIES=100 wait_until "node $i's avahi-daemon to restart" test -s "$STATE/node$i.avahi" || die "node $i: avahi-daemon did not start (see $STATE/node$i.avahi.log)"
    wait_until "node $i's avahi-daemon on D-Bus" avahi_on_bus_in "$anchor" || die "node $i: avahi-daemon not on D-Bus"
}

cmd_restart_avahi() {
    local i=${1:-} down=${2:-0}
    [[ $down =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "usage: lanlab.sh restart-avahi I [SECONDS-DOWN]"
    cmd_stop_avahi "$i"
    # mDNS peers keep a goodbye'd record for 1 s: a restart faster than that may go unnoticed.
    sleep "$down"
    cmd_start_avahi "$i"
}

cmd_status() {
    require_up
    local i n
    n=$(node_count)
    for ((i = 1; i <= n; i++)); do
        printf 'node%s %s.%s anchor=%s dbus=%s avahi=%s\n' "$i" "$SUBNET" "$i" \
            "$(cat "$STATE/node$i.anchor" 2>/dev/null)" "$(cat "$STATE/node$i.dbus" 2>/dev/null)" "$(cat "$STATE/node$i.avahi" 2>/dev/null)"
    done
    [[ $(cat "$STATE/origin" 2>/dev/null) == 1 ]] && echo "origin $ORIGIN_ADDR namespace=$(origin_ns)"
    return 0
}

cmd_down() {
    require_root
    local i n ns pid
    if [[ -f $STATE/nodes ]]; then
        n=$(node_count)
        for ((i = 1; i <= n; i++)); do
            # The anchor stops its own avahi-daemon and dbus-daemon on TERM; check each by pid anyway.
            pid=$(cat "$STATE/node$i.anchor" 2>/dev/null || true)
            [[ -n $pid ]] && kill_pid "$pid" bash
            for f in avahi:avahi-daemon dbus:dbus-daemon; do
                pid=$(cat "$STATE/node$i.${f%%:*}" 2>/dev/null || true)
                [[ -n $pid ]] && kill_pid "$pid" "${f#*:}"
            done
        done
    fi
    # Anything else still running inside our namespaces was started there by a lab user:
    # stop it by pid before deleting the namespaces.
    for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep -E "$OUR_NS_RE" || true); do
        for pid in $(ip netns pids "$ns" 2>/dev/null || true); do
            log "stopping leftover pid $pid ($(cat /proc/"$pid"/comm 2>/dev/null)) in $ns"
            kill_pid "$pid" ""
        done
        ip netns del "$ns" || log "could not delete namespace $ns"
    done
    rm -rf "$STATE"
    log "down"
}

main() {
    local cmd=${1:-}
    shift || true
    case $cmd in
        up) cmd_up "$@" ;;
        exec) cmd_exec "$@" ;;
        stop-avahi) cmd_stop_avahi "$@" ;;
        start-avahi) cmd_start_avahi "$@" ;;
        restart-avahi) cmd_restart_avahi "$@" ;;
        status) cmd_status ;;
        down) cmd_down ;;
        *)
            awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"
            [[ -z $cmd || $cmd == -h || $cmd == --help || $cmd == help ]] || exit 2
            ;;
    esac
}

main "$@"
