#!/usr/bin/env python3
"""`modelcache hf download` and `modelcache hf import` with the real huggingface_hub (issue 14). Run by
Tests/hf/hf-download-test.sh with the .venv-hf python. Reuses hf_client_test.Test (fake Hub, nodes, one client call
per process). Loopback only; everything started is stopped by pid. Prints PASS/FAIL lines and "N passed, N failed".

    .venv-hf/bin/python Tests/hf/hf_download_test.py --bin .build/debug/modelcache [--keep]
"""

import json
import os
import stat
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import hf_client_test  # noqa: E402

MiB = 1 << 20
TOKEN = hf_client_test.TOKEN


class DownloadTest(hf_client_test.Test):
    extra_env = {}

    def env(self, home, endpoint):
        e = super().env(home, endpoint)
        e.update(self.extra_env)
        return e

    def offline(self, home, **spec):
        """One client call with HF_HUB_OFFLINE=1 (no request at all) and local_files_only."""
        self.extra_env = {"HF_HUB_OFFLINE": "1"}
        try:
            return self.client(home, "http://127.0.0.1:9", local_files_only=True, **spec)
        finally:
            self.extra_env = {}

    def mc(self, node, home, *args, token=None, timeout=180):
        """`modelcache hf ARGS --cache-dir <node's cache>` with HF_HOME=home: (exit status, stdout, stderr)."""
        env = self.env(home, "http://127.0.0.1:9")
        env.pop("HF_ENDPOINT", None)
        if token:
            env["HF_TOKEN"] = token
        argv = [self.bin, "hf"] + list(args) + ["--cache-dir", os.path.join(self.out, "node-" + node)]
        try:
            r = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return 124, "", "timed out after %d s" % timeout
        with open(os.path.join(self.out, "mc.log"), "a") as f:
            f.write("$ %s\n%s%s(exit %d)\n" % (" ".join(argv), r.stdout, r.stderr, r.returncode))
        return r.returncode, r.stdout, r.stderr

    @staticmethod
    def last(out):
        lines = out.strip().splitlines()
        return lines[-1] if lines else ""

    def files_in(self, d):
        have = set()
        for base, _, files in os.walk(d):
            for n in files:
                have.add(os.path.relpath(os.path.join(base, n), d))
        return have

    def store_blob(self, node, sha):
        return os.path.join(self.out, "node-" + node, "blobs", "sha256", sha)

    # =========================================================================================================
    def run(self):
        self.start_fake()
        self.manifest = self.fake("/_manifest")
        self.a_url, _ = self.start_node("a")
        self.info("fake Hub %s, node A %s, output %s" % (self.hub, self.a_url, self.out))
        self.run_steps([self.scenario_download, self.scenario_select, self.scenario_import])
        if self.failed:
            for n in ("a", "i", "b"):
                t = self.tail("node-%s.log" % n, 25)
                if t:
                    print("--- node-%s.log (last 25 lines)\n%s" % (n, t))
            print("--- mc.log (last 40 lines)\n" + self.tail("mc.log", 40))
        print("%d passed, %d failed" % (self.passed, self.failed), flush=True)
        return 1 if self.failed else 0

    # -- a, b -------------------------------------------------------------------------------------------------
    def scenario_download(self):
        """a/b. modelcache hf download through node A; the client finds every file offline; one copy on disk"""
        main = self.commit("acme/tiny-model")
        home = self.new_home()
        rc, out, err = self.mc("a", home, "download", "acme/tiny-model")
        snap = os.path.join(home, "hub", "models--acme--tiny-model", "snapshots", main["sha"])
        self.check("hf download acme/tiny-model: exit 0, prints the snapshot path last", rc == 0 and self.last(out) == snap,
                   "exit %d, last line %r, stderr %s" % (rc, self.last(out), err[-800:]))
        self.check("the snapshot holds every file of main, identical", not self.snapshot_problems(snap, main),
                   str(self.snapshot_problems(snap, main)))
        ref = os.path.join(home, "hub", "models--acme--tiny-model", "refs", "main")
        self.check("refs/main names the commit", os.path.exists(ref) and open(ref).read() == main["sha"])
        link = os.path.join(snap, "tokenizer", "tokenizer.json")
        target = os.readlink(link) if os.path.islink(link) else ""
        tok = main["files"]["tokenizer/tokenizer.json"]
        self.check("snapshot files are relative symlinks as the client makes them (../../../blobs/<git sha1>)",
                   target == "../../../blobs/" + tok["etag"], "readlink -> %r" % target)
        r = self.offline(home, op="snapshot", repo_id="acme/tiny-model")
        self.check("snapshot_download(local_files_only, HF_HUB_OFFLINE=1) returns that snapshot",
                   r["ok"] and r["dir"] == snap, self.describe(r))
        ok = True
        detail = ""
        for p, f in main["files"].items():
            r = self.offline(home, op="download", repo_id="acme/tiny-model", filename=p)
            if not (r["ok"] and self.sha256(r["path"]) == f["sha256"]):
                ok, detail = False, "%s: %s" % (p, self.describe(r))
                break
        self.check("hf_hub_download(local_files_only, HF_HUB_OFFLINE=1) returns every file, identical", ok, detail)

        # b. one copy: the Hub cache's LFS blobs are the store's blobs (same inode, 0444); du counts them once.
        lfs = [f for f in main["files"].values() if f["lfs"]]
        same = all(os.stat(os.path.join(home, "hub", "models--acme--tiny-model", "blobs", f["sha256"])).st_ino
                   == os.stat(self.store_blob("a", f["sha256"])).st_ino for f in lfs)
        modes = {stat.S_IMODE(os.stat(self.store_blob("a", f["sha256"])).st_mode) for f in lfs}
        self.check("b. Hub cache blobs are hard links of the store's blobs (same inode), mode 0444",
                   same and modes == {0o444}, "same inode %s, modes %s" % (same, [oct(m) for m in modes]))
        du = subprocess.run(["du", "-s", "-B1", "-c", os.path.join(self.out, "node-a", "blobs"), os.path.join(home, "hub")],
                            capture_output=True, text=True).stdout.strip().splitlines()
        total = int(du[-1].split()[0]) if du else -1
        size = sum(f["size"] for f in main["files"].values())
        self.check("b. du of the store and the Hub cache together counts the model once (%d bytes for %d)" % (total, size),
                   0 < total < size + 2 * MiB, "du: %s" % du)
        rc, out, err = self.mc("a", home, "download", "acme/tiny-model")
        self.check("a second hf download: the same path, every blob already present",
                   rc == 0 and self.last(out) == snap and "%d present" % len(main["files"]) in err, err[-400:])
        self.home_download = home

        # The Hub cache already has a repo (the client fetched it straight from the Hub): adopted, not downloaded
        # again; a wrong blob there is downloaded and replaced.
        home = self.new_home()
        self.extra_env = {"HF_HUB_DISABLE_XET": "1"}
        try:
            r1 = self.client(home, self.hub, op="snapshot", repo_id="acme/stream-model")
            r2 = self.client(home, self.hub, op="snapshot", repo_id="acme/bad-model")
        finally:
            self.extra_env = {}
        stream = self.commit("acme/stream-model")["files"]["stream.safetensors"]["sha256"]
        bad = self.commit("acme/bad-model")
        hub_stream = os.path.join(home, "hub", "models--acme--stream-model", "blobs", stream)
        hub_bad = os.path.join(home, "hub", "models--acme--bad-model", "blobs", bad["files"]["model.safetensors"]["sha256"])
        os.chmod(hub_bad, 0o644)
        with open(hub_bad, "r+b") as f:
            f.seek(5)
            f.write(b"X")
        rc, out, err = self.mc("a", home, "download", "acme/stream-model")
        self.check("hf download of a repo the Hub cache has: its blobs adopted (same inode in the store), not fetched",
                   r1["ok"] and rc == 0 and os.stat(hub_stream).st_ino == os.stat(self.store_blob("a", stream)).st_ino,
                   "%s exit %d %s" % (self.describe(r1), rc, err[-400:]))
        rc, out, err = self.mc("a", home, "download", "acme/bad-model")
        snap = os.path.join(home, "hub", "models--acme--bad-model", "snapshots", bad["sha"])
        self.check("hf download over a wrong Hub cache blob: reported, downloaded, replaced (snapshot identical)",
                   r2["ok"] and rc == 0 and "blob is wrong" in err and not self.snapshot_problems(snap, bad),
                   "%s exit %d %s %s" % (self.describe(r2), rc, self.snapshot_problems(snap, bad), err[-400:]))

    # -- f ----------------------------------------------------------------------------------------------------
    def scenario_select(self):
        """f. --include/--exclude, --revision by tag and by commit, one file, datasets, --local-dir"""
        old = self.commit("acme/tiny-model", "v1.0")
        home = self.new_home()
        rc, out, err = self.mc("a", home, "download", "acme/tiny-model", "--revision", "v1.0",
                               "--include", "*.json", "--exclude", "tokenizer/*")
        snap = os.path.join(home, "hub", "models--acme--tiny-model", "snapshots", old["sha"])
        have = self.files_in(snap) if os.path.isdir(snap) else set()
        self.check("--revision v1.0 --include '*.json' --exclude 'tokenizer/*': only config.json of v1.0",
                   rc == 0 and self.last(out) == snap and have == {"config.json"}
                   and self.sha256(os.path.join(snap, "config.json")) == old["files"]["config.json"]["sha256"],
                   "exit %d, files %s, %s" % (rc, sorted(have), err[-400:]))
        ref = os.path.join(home, "hub", "models--acme--tiny-model", "refs", "v1.0")
        self.check("refs/v1.0 names the tag's commit", os.path.exists(ref) and open(ref).read() == old["sha"])
        r = self.offline(home, op="snapshot", repo_id="acme/tiny-model", revision="v1.0", allow_patterns=["*.json"],
                         ignore_patterns=["tokenizer/*"])
        self.check("snapshot_download(v1.0, same patterns, offline) finds it", r["ok"] and r["dir"] == snap, self.describe(r))
        r = self.offline(home, op="snapshot", repo_id="acme/tiny-model", revision="v1.0")
        self.check("snapshot_download(v1.0, no patterns, offline) says the snapshot is incomplete (as the client would)",
                   not r["ok"] and r["error"] == "IncompleteSnapshotError", self.describe(r))

        shard = "model-00002-of-00002.safetensors"
        rc, out, err = self.mc("a", home, "download", "acme/tiny-model", shard, "--revision", old["sha"])
        path = os.path.join(home, "hub", "models--acme--tiny-model", "snapshots", old["sha"], shard)
        self.check("one file by commit: prints the file's path; bytes identical",
                   rc == 0 and self.last(out) == path and self.sha256(path) == old["files"][shard]["sha256"],
                   "exit %d, %r, %s" % (rc, self.last(out), err[-400:]))
        r = self.offline(home, op="download", repo_id="acme/tiny-model", filename=shard, revision=old["sha"])
        self.check("hf_hub_download(commit, offline) finds it", r["ok"] and r["path"] == path, self.describe(r))

        ds = self.commit("acme/tiny-dataset")
        rc, out, err = self.mc("a", home, "download", "acme/tiny-dataset", "--repo-type", "dataset")
        snap = os.path.join(home, "hub", "datasets--acme--tiny-dataset", "snapshots", ds["sha"])
        self.check("--repo-type dataset: datasets--acme--tiny-dataset snapshot, identical",
                   rc == 0 and self.last(out) == snap and not self.snapshot_problems(snap, ds),
                   "exit %d %r %s %s" % (rc, self.last(out), self.snapshot_problems(snap, ds), err[-400:]))
        r = self.offline(home, op="snapshot", repo_id="acme/tiny-dataset", repo_type="dataset")
        self.check("snapshot_download(dataset, offline) returns it", r["ok"] and r["dir"] == snap, self.describe(r))

        gated = self.commit("acme/gated-model")
        rc, out, err = self.mc("a", home, "download", "acme/gated-model")
        self.check("a gated repo without a token: refused with the Hub's GatedRepo (exit 3)",
                   rc == 3 and "GatedRepo" in err, "exit %d %s" % (rc, err[-300:]))
        self.fake("/_stats/reset", {})
        rc, out, err = self.mc("a", home, "download", "acme/gated-model", "--token", TOKEN)
        # Gating is per repo: once a file of it was refused to an anonymous request, neither the CLI (its HEADs) nor
        # the node (its check that a file may be shared) asks anonymously for the repo's other files.
        anonymous = [r for r in self.fake("/_stats")["requests"] if r["auth"] == "none" and "/acme/gated-model/resolve/" in r["path"]]
        self.check("a gated repo with --token: at most 2 anonymous requests for its %d files (CLI, node), not some each" % len(gated["files"]),
                   len(gated["files"]) > 2 and len(anonymous) <= 2, "anonymous: %s" % [(r["method"], r["path"]) for r in anonymous])
        snap = os.path.join(home, "hub", "models--acme--gated-model", "snapshots", gated["sha"])
        lst = json.loads(subprocess.run([self.bin, "list", "--json", "--cache-dir", os.path.join(self.out, "node-a")],
                                        capture_output=True, text=True).stdout or "[]")
        private = {r["sha256"]: r.get("isPrivate") for r in lst}
        gsha = gated["files"]["model.safetensors"]["sha256"]
        self.check("a gated repo with --token: the snapshot, identical; its blob private on the node",
                   rc == 0 and self.last(out) == snap and not self.snapshot_problems(snap, gated) and private.get(gsha) is True,
                   "exit %d %s %s private=%s" % (rc, self.snapshot_problems(snap, gated), err[-300:], private.get(gsha)))

        home2 = self.new_home()
        rc, out, err = self.mc("a", home2, "download", "acme/twin-model", "--detach")
        job = self.last(out)
        w = subprocess.run([self.bin, "wait", job, "--cache-dir", os.path.join(self.out, "node-a")], capture_output=True,
                           text=True, timeout=120)
        rc2, out2, err2 = self.mc("a", home2, "download", "acme/twin-model")
        twin = self.commit("acme/twin-model")
        snap = os.path.join(home2, "hub", "models--acme--twin-model", "snapshots", twin["sha"])
        self.check("--detach prints the job's id; wait follows it; the same command then lays the files out",
                   rc == 0 and job and not job.startswith("/") and w.returncode == 0 and rc2 == 0 and self.last(out2) == snap
                   and not self.snapshot_problems(snap, twin),
                   "detach %d %r; wait %d %s; again %d %s" % (rc, job, w.returncode, w.stderr[-200:], rc2, err2[-300:]))

        local = os.path.join(self.out, "local-ds")
        rc, out, err = self.mc("a", home, "download", "acme/tiny-dataset", "--repo-type", "dataset", "--local-dir", local)
        meta = os.path.join(local, ".cache", "huggingface", "download", "data", "meta.json.metadata")
        self.check("--local-dir: the files (own copies), the client's .metadata, prints the folder",
                   rc == 0 and self.last(out) == local and not self.snapshot_problems(local, ds) and os.path.exists(meta)
                   and open(meta).read().startswith(ds["sha"] + "\n"),
                   "exit %d %r %s %s" % (rc, self.last(out), self.snapshot_problems(local, ds), err[-400:]))
        r = self.offline(home, op="snapshot", repo_id="acme/tiny-dataset", repo_type="dataset", local_dir=local)
        self.check("snapshot_download(local_dir, offline) accepts it", r["ok"], self.describe(r))

    # -- c, d, e ----------------------------------------------------------------------------------------------
    def scenario_import(self):
        """c/d/e. A Hub cache filled by the client from the fake Hub, imported on node I; node B gets it from I offline"""
        main = self.commit("acme/tiny-model")
        home = self.new_home()
        self.extra_env = {"HF_HUB_DISABLE_XET": "1"}  # straight from the fake Hub, whose Xet answers 403
        try:
            for spec in [dict(repo_id="acme/tiny-model"), dict(repo_id="acme/tiny-dataset", repo_type="dataset"),
                         dict(repo_id="acme/gated-model", token=TOKEN), dict(repo_id="acme/twin-model")]:
                r = self.client(home, self.hub, op="snapshot", **spec)
                if not self.check("setup: the client downloads %s straight from the fake Hub" % spec["repo_id"], r["ok"],
                                  self.describe(r)):
                    return
        finally:
            self.extra_env = {}
        hub = os.path.join(home, "hub")
        twin = self.commit("acme/twin-model")["files"]["model.safetensors"]["sha256"]
        twin_blob = os.path.join(hub, "models--acme--twin-model", "blobs", twin)
        os.chmod(twin_blob, 0o644)
        with open(twin_blob, "r+b") as f:  # d. one byte changed in the Hub cache
            f.seek(1000)
            b = f.read(1)
            f.seek(1000)
            f.write(bytes([b[0] ^ 1]))

        self.start_node("i")
        rc, out, err = self.mc("i", home, "import", hub)
        self.check("d. hf import: the tampered blob is refused (exit 5, REFUSED line), not stored",
                   rc == 5 and "REFUSED acme/twin-model" in err and not os.path.exists(self.store_blob("i", twin)),
                   "exit %d, %s" % (rc, err[-800:]))
        shard = main["files"]["model-00001-of-00002.safetensors"]["sha256"]
        hub_shard = os.path.join(hub, "models--acme--tiny-model", "blobs", shard)
        self.check("hf import links (same inode as the Hub cache's blob, now 0444)",
                   os.path.exists(self.store_blob("i", shard))
                   and os.stat(hub_shard).st_ino == os.stat(self.store_blob("i", shard)).st_ino
                   and stat.S_IMODE(os.stat(hub_shard).st_mode) == 0o444, out + err[-400:])
        rc2, out2, err2 = self.mc("i", home, "import", hub)
        self.check("a second hf import hashes nothing new (0 linked, 0 copied; the tampered one refused again)",
                   rc2 == 5 and self.last(out2).startswith("0 linked, 0 copied,"), out2 + err2[-300:])

        gated = self.commit("acme/gated-model")["files"]["model.safetensors"]["sha256"]
        lst = json.loads(subprocess.run([self.bin, "list", "--json", "--cache-dir", os.path.join(self.out, "node-i")],
                                        capture_output=True, text=True).stdout or "[]")
        private = {r["sha256"]: r.get("isPrivate") for r in lst}
        self.check("e. the gated repo's blob is imported as private, the public ones not",
                   private.get(gated) is True and private.get(shard) is False, "list: %s" % private)

        self.watch_scenario(hub)

        # Node B, the fake Hub stopped: everything comes from node I.
        self.stop("fakehub")
        i_port = None
        for line in open(os.path.join(self.out, "node-i.log"), errors="replace"):
            if "node listening" in line and "127.0.0.1:" in line:
                i_port = line.split("127.0.0.1:")[1].split()[0].strip('"')
        b_url, _ = self.start_node("b", peers=["127.0.0.1:" + i_port])
        time.sleep(1.5)  # node B reads I's catalogue
        h2 = self.new_home()
        r = self.client(h2, b_url, op="snapshot", repo_id="acme/tiny-model")
        self.check("c. fake Hub down: snapshot_download through node B (HF_ENDPOINT) gets main from node I, identical",
                   r["ok"] and not self.snapshot_problems(r["dir"], main), self.describe(r) + str(self.snapshot_problems(r.get("dir"), main)))
        h3 = self.new_home()
        rc, out, err = self.mc("b", h3, "download", "acme/tiny-model")
        snap = os.path.join(h3, "hub", "models--acme--tiny-model", "snapshots", main["sha"])
        self.check("c. fake Hub down: modelcache hf download on node B gets the snapshot from node I",
                   rc == 0 and self.last(out) == snap and not self.snapshot_problems(snap, main),
                   "exit %d %r %s %s" % (rc, self.last(out), self.snapshot_problems(snap, main), err[-600:]))
        ds = self.commit("acme/tiny-dataset")
        r = self.client(self.new_home(), b_url, op="snapshot", repo_id="acme/tiny-dataset", repo_type="dataset")
        self.check("c. the imported dataset too", r["ok"] and not self.snapshot_problems(r["dir"], ds), self.describe(r))
        r = self.client(self.new_home(), b_url, op="download", repo_id="acme/gated-model", filename="model.safetensors",
                        token=TOKEN)
        self.check("e. the gated file is not served through node B from node I (private)", not r["ok"], self.describe(r))
        st, _, body = self.raw("http://127.0.0.1:" + i_port, "GET", "/v1/blobs/" + gated)
        self.check("e. node I's peer API refuses the gated blob (404)", st == 404, "status %d" % st)

    def wait_for(self, path, seconds=30):
        for _ in range(seconds * 10):
            if os.path.exists(path):
                return True
            time.sleep(0.1)
        return False

    def watch_scenario(self, hub):
        """serve --hf-import: imported at start, and again when the client downloads into the Hub cache"""
        shard = self.commit("acme/tiny-model")["files"]["model-00001-of-00002.safetensors"]["sha256"]
        self.start_node("w", extra=["--hf-import", hub])
        ok = self.wait_for(self.store_blob("w", shard))
        self.check("serve --hf-import: the Hub cache is imported at start (linked)",
                   ok and os.stat(self.store_blob("w", shard)).st_ino
                   == os.stat(os.path.join(hub, "models--acme--tiny-model", "blobs", shard)).st_ino,
                   self.tail("node-w.log", 10))
        stream = self.commit("acme/stream-model")["files"]["stream.safetensors"]["sha256"]
        self.extra_env = {"HF_HUB_DISABLE_XET": "1"}
        try:
            r = self.client(os.path.dirname(hub), self.hub, op="snapshot", repo_id="acme/stream-model")
        finally:
            self.extra_env = {}
        self.check("serve --hf-import: a repo the client downloads later is imported by itself (inotify)",
                   r["ok"] and self.wait_for(self.store_blob("w", stream)), self.describe(r) + self.tail("node-w.log", 10))
        log = ""
        for _ in range(300):
            log = open(os.path.join(self.out, "node-w.log"), errors="replace").read()
            if log.count("hf-import done") >= 2:
                break
            time.sleep(0.1)
        self.check("serve --hf-import: the tampered blob is reported once, not hashed again while unchanged",
                   log.count("hf-import done") >= 2 and log.count("REFUSED acme/twin-model") == 1,
                   "%d runs, %d REFUSED lines" % (log.count("hf-import done"), log.count("REFUSED acme/twin-model")))
        self.stop("node-w")


if __name__ == "__main__":
    hf_client_test.main(DownloadTest)
