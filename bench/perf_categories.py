#!/usr/bin/env python3
"""Sorts `perf script -F comm,pid,ip,sym` samples of a whole-machine profile (`perf record -a -g`) by what they were
doing, for bench/fetch-profile.sh. Reads the samples on stdin; prints one JSON object: {"wall": s, "cpu": {category:
CPU seconds}} (samples / --hz). A sample's category is decided by its process (--client-pid, nginx, kernel threads,
idle, other) and, for the client, by the first kind of work in CLIENT_KINDS that a frame of its stack names."""
import argparse
import json
import sys

# Client stack frames, checked in order: the first that matches any frame of the stack names the category.
CLIENT_KINDS = [
    ("sha256", ("sha256_block_data_order",)),
    ("read-back", ("__x64_sys_pread64",)),
    ("file write", ("__x64_sys_pwrite64", "ext4_buffered_write_iter", "ext4_file_write_iter")),
    ("write-back", ("__x64_sys_sync_file_range", "__x64_sys_fsync", "__x64_sys_fdatasync")),
    ("socket read", ("tcp_recvmsg", "sock_recvmsg", "sock_read_iter", "__libc_recv")),
    ("page faults", ("asm_exc_page_fault", "exc_page_fault")),
]


def category(comm, frames):
    """The kind of work of one sample: by process first, then (for the client) by the first matching frame."""
    if comm == "swapper":
        return "idle"
    if comm.startswith("nginx"):
        return "nginx"
    if comm.startswith(("kworker", "ksoftirqd", "jbd2", "rcu", "kswapd", "migration")):
        return "kernel threads"
    if comm != "client":
        return "other"
    for kind, names in CLIENT_KINDS:
        if any(any(n in f for n in names) for f in frames):
            return kind
    return "other (client)"


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--hz", type=float, required=True)
    p.add_argument("--client-pid", required=True, help="the client's process id (all its threads count as the client)")
    p.add_argument("--wall", type=float, required=True)
    a = p.parse_args()
    # The client's threads have their own names (NIO-ELT-…, default-qos…): the client is known by its pid.
    samples = []
    head, frames = None, []
    for line in sys.stdin:
        if not line.strip():
            continue
        if line.startswith("\t"):  # a frame: "\tADDRESS SYMBOL"
            parts = line.split(None, 1)
            frames.append(parts[1].strip() if len(parts) > 1 else "")
            continue
        if head is not None:  # a sample's head: "COMM PID" (a command may hold spaces)
            samples.append((head, frames))
        parts = line.split()
        head, frames = (" ".join(parts[:-1]), parts[-1]), []
    if head is not None:
        samples.append((head, frames))
    cpu = {}
    for (comm, pid), fr in samples:
        k = category("client" if pid == a.client_pid else comm, fr)
        cpu[k] = cpu.get(k, 0.0) + 1.0 / a.hz
    json.dump({"wall": a.wall, "cpu": {k: round(v, 3) for k, v in cpu.items()}}, sys.stdout)
    print()


if __name__ == "__main__":
    main()
