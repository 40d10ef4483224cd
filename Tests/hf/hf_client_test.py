#!/usr/bin/env python3
"""The real huggingface_hub client through a ModelCache node (issue #5). Run by Tests/hf/hf-client-test.sh, which
makes the virtualenv (.venv-hf, huggingface_hub pinned, hf-xet kept) and runs this with that venv's python.

Starts Tests/hf/fakehub.py (Hub + CDN on loopback), node A (`serve --no-mdns --hf-upstream <fake>`), later node B
(`--peer A`), and small TCP proxies of its own; every client call is a separate process (huggingface_hub reads
HF_HOME/HF_ENDPOINT at import) with a fresh HF_HOME. Prints PASS/FAIL lines, "N passed, N failed"; exit 1 on a
failure. Everything it starts is stopped by pid on exit. Loopback only.

    .venv-hf/bin/python Tests/hf/hf_client_test.py --bin .build/debug/modelcache [--keep]
    .venv-hf/bin/python Tests/hf/hf_client_test.py --client '{"op": "download", ...}'   (one client call, JSON out)
"""

import argparse
import hashlib
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
MiB = 1 << 20
TOKEN = "hf_test_token"


# ---------------------------------------------------------------------------------------------------------------
# One client call (in its own process): --client JSON -> JSON on stdout.
def client_main(spec):
    import huggingface_hub as hh
    op = spec.pop("op")
    try:
        if op == "download":
            p = hh.hf_hub_download(**spec)
            out = {"ok": True, "path": p, "blob": os.path.realpath(p)}
        elif op == "snapshot":
            out = {"ok": True, "dir": hh.snapshot_download(**spec)}
        else:
            raise SystemExit("unknown op " + op)
    except Exception as e:  # noqa: BLE001 - the test wants the client's exception class
        out = {"ok": False, "error": type(e).__name__, "mro": [c.__name__ for c in type(e).__mro__],
               "message": " | ".join(l for l in str(e).splitlines() if l.strip())[:600]}
    print(json.dumps(out))


# ---------------------------------------------------------------------------------------------------------------
class Test:
    def __init__(self, args):
        self.bin = args.bin
        self.keep = args.keep
        self.py = sys.executable
        self.hf_cli = os.path.join(os.path.dirname(self.py), "hf")
        self.out = tempfile.mkdtemp(prefix="modelcache-hf-test.")
        self.procs = {}  # name -> Popen
        self.passed = self.failed = 0
        self.failures = []
        self.homes = 0
        self.proxies = []

    # -- reporting --------------------------------------------------------------------------------------------
    def check(self, desc, ok, detail=""):
        if ok:
            self.passed += 1
            print("PASS: " + desc, flush=True)
        else:
            self.failed += 1
            print("FAIL: " + desc + (("\n      " + detail.replace("\n", "\n      ")) if detail else ""), flush=True)
            self.failures.append(desc)
        return ok

    def info(self, msg):
        print("INFO: " + msg, flush=True)

    # -- processes --------------------------------------------------------------------------------------------
    def start(self, name, argv, log):
        f = open(os.path.join(self.out, log), "ab")
        p = subprocess.Popen(argv, stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=ROOT)
        f.close()
        self.procs[name] = p
        return p

    def stop(self, name):
        p = self.procs.pop(name, None)
        if p is None:
            return
        if p.poll() is None:
            p.terminate()
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)

    def cleanup(self):
        for px in self.proxies:
            px.close()
        for name in list(self.procs)[::-1]:
            self.stop(name)
        if not self.keep and not self.failed:
            shutil.rmtree(self.out, ignore_errors=True)
        else:
            print("output kept in " + self.out, flush=True)

    @staticmethod
    def free_port():
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        return port

    def start_fake(self):
        ports = os.path.join(self.out, "fakehub-ports.json")
        if os.path.exists(ports):
            os.remove(ports)
        argv = [self.py, os.path.join(HERE, "fakehub.py"), "--data-dir", os.path.join(self.out, "fakehub-data"),
                "--ports-file", ports, "--port", str(getattr(self, "hub_port", 0)),
                "--cdn-port", str(getattr(self, "cdn_port", 0))]
        self.start("fakehub", argv, "fakehub.log")
        for _ in range(300):
            if os.path.exists(ports):
                break
            if self.procs["fakehub"].poll() is not None:
                raise RuntimeError("fakehub exited: " + open(os.path.join(self.out, "fakehub.log")).read()[-2000:])
            time.sleep(0.1)
        d = json.load(open(ports))
        self.hub_port, self.cdn_port = d["hub"], d["cdn"]
        self.hub = "http://127.0.0.1:%d" % self.hub_port

    def start_node(self, name, peers=(), extra=()):
        port = self.free_port()
        argv = [self.bin, "serve", "--cache-dir", os.path.join(self.out, "node-" + name), "--listen",
                "127.0.0.1:%d" % port, "--no-mdns", "--name", name, "--hf-upstream", self.hub, "-v"]
        for p in peers:
            argv += ["--peer", p]
        argv += list(extra)
        self.start("node-" + name, argv, "node-%s.log" % name)
        url = "http://127.0.0.1:%d" % port
        for _ in range(200):
            if self.procs["node-" + name].poll() is not None:
                raise RuntimeError("node %s exited: %s" % (name, self.tail("node-%s.log" % name)))
            try:
                urllib.request.urlopen(url + "/v1/info", timeout=2).read()
                return url, port
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("node %s did not answer /v1/info in 20 s" % name)

    def tail(self, log, n=40):
        try:
            with open(os.path.join(self.out, log), errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""

    # -- fake hub ---------------------------------------------------------------------------------------------
    def fake(self, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.hub + path, data=data, method="POST" if data is not None else "GET")
        return json.load(urllib.request.urlopen(req, timeout=10))

    def file_bytes(self):
        """(LFS bytes the CDN sent, non-LFS body bytes the Hub sent), from /_stats."""
        st = self.fake("/_stats")
        cdn = sum(r["sent"] for r in st["requests"] if r["server"] == "cdn" and r["file_body"])
        hub = sum(r["sent"] for r in st["requests"] if r["server"] == "hub" and r["file_body"])
        return cdn, hub

    # -- client -----------------------------------------------------------------------------------------------
    def new_home(self):
        self.homes += 1
        h = os.path.join(self.out, "home%d" % self.homes)
        os.makedirs(h)
        return h

    def env(self, home, endpoint):
        env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING", "TRANSFORMERS_"))}
        env.update(HF_HOME=home, HF_ENDPOINT=endpoint, HF_HUB_DISABLE_TELEMETRY="1",
                   HF_HUB_DISABLE_UPDATE_CHECK="1", HF_HUB_DISABLE_PROGRESS_BARS="1",
                   HF_HUB_DISABLE_IMPLICIT_TOKEN="1", NO_PROXY="*", no_proxy="*")
        env.pop("HTTP_PROXY", None), env.pop("http_proxy", None), env.pop("HTTPS_PROXY", None)
        env.pop("https_proxy", None), env.pop("ALL_PROXY", None), env.pop("all_proxy", None)
        return env

    def client(self, home, endpoint, timeout=120, **spec):
        t0 = time.time()
        try:
            r = subprocess.run([self.py, os.path.abspath(__file__), "--client", json.dumps(spec)],
                               env=self.env(home, endpoint), capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return {"ok": False, "error": "Timeout", "mro": [], "message": "client still running after %d s" % timeout}
        lines = r.stdout.strip().splitlines()
        try:
            out = json.loads(lines[-1])
        except (IndexError, ValueError):
            out = {"ok": False, "error": "ClientCrash", "mro": [], "message": (r.stdout + r.stderr)[-1500:]}
        out["seconds"] = time.time() - t0
        out["stderr"] = r.stderr[-1500:]
        return out

    # -- expectations -----------------------------------------------------------------------------------------
    def repo(self, rid):
        return next(r for r in self.manifest if r["id"] == rid)

    def commit(self, rid, ref="main"):
        r = self.repo(rid)
        sha = r["refs"].get(ref, ref)
        return next(c for c in r["commits"] if c["sha"] == sha)

    @staticmethod
    def sha256(path):
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for b in iter(lambda: f.read(MiB), b""):
                h.update(b)
        return h.hexdigest()

    def snapshot_problems(self, d, commit):
        """Differences between snapshot dir D and COMMIT's files (missing, wrong bytes, extra)."""
        if not d or not os.path.isdir(d):
            return ["no snapshot dir %r" % d]
        probs = []
        for p, f in commit["files"].items():
            fp = os.path.join(d, p)
            if not os.path.exists(fp):
                probs.append("missing " + p)
            elif self.sha256(fp) != f["sha256"]:
                probs.append("%s: sha256 %s, expected %s (size %d, expected %d)"
                             % (p, self.sha256(fp), f["sha256"], os.path.getsize(fp), f["size"]))
        have = set()
        for base, _, files in os.walk(d):
            for n in files:
                have.add(os.path.relpath(os.path.join(base, n), d))
        extra = sorted(have - set(commit["files"]) - {p for p in have if p.startswith(".cache/")})
        if extra:
            probs.append("extra files: %s" % extra)
        return probs

    @staticmethod
    def describe(r):
        if r.get("ok"):
            return "ok (%.1f s)" % r["seconds"]
        return "%s: %s%s" % (r["error"], r["message"], ("\n  stderr: " + r["stderr"][-600:]) if r.get("stderr") else "")

    def raw(self, base, method, path, headers=None, read=True):
        """One plain HTTP request (http.client, no redirects followed): (status, headers dict lower-cased, body)."""
        host, port = base.split("//")[1].split(":")
        c = http.client.HTTPConnection(host, int(port), timeout=30)
        try:
            c.request(method, path, headers=headers or {})
            r = c.getresponse()
            body = r.read() if read else b""
            return r.status, {k.lower(): v for k, v in r.getheaders()}, body
        finally:
            c.close()

    # =========================================================================================================
    def run(self):
        self.start_fake()
        self.manifest = self.fake("/_manifest")
        self.a_url, self.a_port = self.start_node("a")
        self.info("fake Hub %s (CDN port %d), node A %s, output %s" % (self.hub, self.cdn_port, self.a_url, self.out))
        steps = [self.scenario_a, self.scenario_b, self.scenario_c, self.scenario_e, self.scenario_f,
                 self.scenario_h, self.scenario_i, self.scenario_j, self.scenario_k, self.scenario_d,
                 self.scenario_g]
        self.run_steps(steps)
        if self.failed:
            st = None
            try:
                st = self.fake("/_stats")
            except OSError:
                pass
            if st:
                print("--- last requests the fake Hub/CDN saw (server method status auth range sent path):")
                for r in [r for r in st["requests"] if not r.get("internal")][-25:]:
                    print("  %s %s %s %s %s %s %s" % (r["server"], r["method"], r["status"], r["auth"], r["range"],
                                                    r["sent"], r["path"][:140]))
            for n in ("a", "b"):
                t = self.tail("node-%s.log" % n, 30)
                if t:
                    print("--- node-%s.log (last 30 lines)\n%s" % (n, t))
        print("%d passed, %d failed" % (self.passed, self.failed), flush=True)
        return 1 if self.failed else 0

    def run_steps(self, steps):
        for step in steps:
            print("== " + (step.__doc__ or step.__name__).strip().splitlines()[0], flush=True)
            t0 = time.time()
            try:
                step()
            except Exception:  # noqa: BLE001 - a broken scenario is a failure, the others still run
                self.check("%s ran to the end" % step.__name__, False, traceback.format_exc()[-1500:])
            self.info("%s took %.1f s" % (step.__name__, time.time() - t0))

    # -- a ----------------------------------------------------------------------------------------------------
    def scenario_a(self):
        """a. hf_hub_download of an LFS and a non-LFS file through node A"""
        main = self.commit("acme/tiny-model")
        lfs, small = "model-00001-of-00002.safetensors", "config.json"
        # The node's own answers first: these say precisely what is wrong when the client's view fails.
        st, h, _ = self.raw(self.a_url, "HEAD", "/acme/tiny-model/resolve/main/" + lfs,
                            {"Accept-Encoding": "identity"})
        f = main["files"][lfs]
        size = h.get("x-linked-size") or h.get("content-length")
        etag = (h.get("x-linked-etag") or h.get("etag") or "").lstrip("W/").strip('"')
        self.check("node HEAD /resolve (LFS): 200, X-Repo-Commit, sha256 etag, real size, no Location",
                   st == 200 and h.get("x-repo-commit") == main["sha"] and etag == f["sha256"]
                   and size == str(f["size"]) and "location" not in h,
                   "HEAD -> %d %s" % (st, h))
        xet = [k for k in h if k.startswith("x-xet")] + (["link: " + h["link"]] if "xet" in h.get("link", "") else [])
        self.check("node HEAD /resolve (LFS): no Xet headers (X-Xet-*, Link rel=xet-auth)", not xet, "left: %s" % xet)
        st, h, _ = self.raw(self.a_url, "HEAD", "/acme/tiny-model/resolve/main/" + small,
                            {"Accept-Encoding": "identity"})
        f2 = main["files"][small]
        etag = (h.get("x-linked-etag") or h.get("etag") or "").lstrip("W/").strip('"')
        self.check("node HEAD /resolve (non-LFS): 200, X-Repo-Commit, git sha1 etag, real size",
                   st == 200 and h.get("x-repo-commit") == main["sha"] and etag == f2["sha1"]
                   and (h.get("x-linked-size") or h.get("content-length")) == str(f2["size"]),
                   "HEAD -> %d %s" % (st, h))

        home = self.new_home()
        self.home_a = home
        r = self.client(home, self.a_url, op="download", repo_id="acme/tiny-model", filename=lfs)
        ok = r["ok"] and self.sha256(r["path"]) == f["sha256"]
        self.check("hf_hub_download LFS file through A: bytes identical (sha256)", ok,
                   self.describe(r) if not r["ok"] else "got sha256 %s size %d" % (self.sha256(r["path"]),
                                                                              os.path.getsize(r["path"])))
        if r["ok"]:
            self.check("... stored by the client under its sha256 (the node's etag for LFS)",
                       os.path.basename(r["blob"]) == f["sha256"], "blob name %s" % os.path.basename(r["blob"]))
        r = self.client(home, self.a_url, op="download", repo_id="acme/tiny-model", filename=small)
        ok = r["ok"] and self.sha256(r["path"]) == f2["sha256"]
        self.check("hf_hub_download non-LFS file through A: bytes identical", ok,
                   self.describe(r) if not r["ok"] else "got %r" % open(r["path"], "rb").read()[:200])
        if r["ok"]:
            self.check("... stored under its git blob sha1 (the Hub's etag)",
                       os.path.basename(r["blob"]) == f2["sha1"], "blob name %s" % os.path.basename(r["blob"]))
        # Range on the node: what a resuming client sends.
        st, h, body = self.raw(self.a_url, "GET", "/acme/tiny-model/resolve/main/" + lfs,
                               {"Range": "bytes=10485760-10485859"})
        want = open(os.path.join(self.out, "fakehub-data", "lfs-11-%d.bin" % (24 * MiB)), "rb").read()[
            10485760:10485860]
        self.check("node GET /resolve with Range: 206 and the right 100 bytes", st == 206 and body == want,
                   "-> %d %s, %d bytes%s" % (st, h, len(body), "" if body == want else " (wrong bytes)"))

    # -- b ----------------------------------------------------------------------------------------------------
    def scenario_b(self):
        """b. snapshot_download (main, an older commit by hash), `hf download`, a dataset"""
        main, old = self.commit("acme/tiny-model"), self.commit("acme/tiny-model", "v1.0")
        # The node's tree listing: no `Link: rel="next"` off the node, no entry with xetHash.
        path = "/api/models/acme/tiny-model/tree/%s?recursive=true&expand=false" % main["sha"]
        entries, links, bad_links, status = [], 0, [], []
        for _ in range(20):
            st, h, body = self.raw(self.a_url, "GET", path)
            status.append(st)
            if st != 200:
                break
            try:
                entries += json.loads(body)
            except ValueError:
                status.append("not JSON: %r" % body[:200])
                break
            link = h.get("link", "")
            if 'rel="next"' not in link:
                break
            links += 1
            nxt = link.split("<", 1)[1].split(">", 1)[0]
            if not nxt.startswith(self.a_url + "/"):
                bad_links.append(nxt)
                break
            path = nxt[len(self.a_url):]
        # The fake pages its listing (3 entries a page); a node may merge the pages or rewrite each Link to itself.
        self.info("node's tree listing: %d page(s) through the node" % (links + 1))
        self.check("node's tree listing: 200, no Link rel=next pointing off the node (merged or rewritten)",
                   not bad_links and all(s == 200 for s in status),
                   "statuses %s, %d next links, not pointing at the node: %s" % (status, links, bad_links))
        files = {e.get("path") for e in entries if isinstance(e, dict) and e.get("type") == "file"}
        self.check("node's tree listing: all files of the commit", files == set(main["files"]),
                   "got %s" % sorted(files))
        xet = [e.get("path") for e in entries if isinstance(e, dict) and "xetHash" in e]
        lfs = [e for e in entries if isinstance(e, dict) and e.get("lfs")]
        self.check("node's tree listing: LFS entries keep `lfs`, no entry has `xetHash`", not xet and len(lfs) == 2,
                   "xetHash on %s; %d entries with lfs" % (xet, len(lfs)))
        st, h, body = self.raw(self.a_url, "GET", "/api/models/acme/tiny-model/revision/main")
        try:
            j = json.loads(body)
        except ValueError:
            j = {}
        self.check("node's /api/models/acme/tiny-model/revision/main: 200 with id and sha",
                   st == 200 and j.get("id") == "acme/tiny-model" and j.get("sha") == main["sha"],
                   "-> %d %s" % (st, body[:300]))

        home = self.new_home()
        r = self.client(home, self.a_url, op="snapshot", repo_id="acme/tiny-model")
        probs = self.snapshot_problems(r.get("dir"), main) if r["ok"] else [self.describe(r)]
        self.check("snapshot_download acme/tiny-model (main) through A: every file identical", not probs,
                   "\n".join(probs))
        r = self.client(home, self.a_url, op="snapshot", repo_id="acme/tiny-model", revision=old["sha"])
        probs = self.snapshot_problems(r.get("dir"), old) if r["ok"] else [self.describe(r)]
        self.check("snapshot_download acme/tiny-model at the older commit (by hash): every file identical",
                   not probs, "\n".join(probs))

        home = self.new_home()
        env = self.env(home, self.a_url)
        try:
            p = subprocess.run([self.hf_cli, "download", "acme/tiny-model"], env=env, capture_output=True, text=True,
                               timeout=120)
            rc, outp = p.returncode, (p.stdout + p.stderr)[-1500:]
        except subprocess.TimeoutExpired:
            rc, outp = -1, "timed out after 120 s"
        d = os.path.join(home, "hub", "models--acme--tiny-model", "snapshots", main["sha"])
        probs = self.snapshot_problems(d, main) if rc == 0 else ["hf download exited %d: %s" % (rc, outp)]
        self.check("`hf download acme/tiny-model` through A: exit 0, every file identical", not probs,
                   "\n".join(probs))

        home = self.new_home()
        ld = os.path.join(home, "local")
        r = self.client(home, self.a_url, op="snapshot", repo_id="acme/tiny-model", local_dir=ld)
        probs = self.snapshot_problems(ld, main) if r["ok"] else [self.describe(r)]
        self.check("snapshot_download(local_dir=...) through A: every file identical", not probs, "\n".join(probs))

        ds = self.commit("acme/tiny-dataset")
        home = self.new_home()
        r = self.client(home, self.a_url, op="snapshot", repo_id="acme/tiny-dataset", repo_type="dataset")
        probs = self.snapshot_problems(r.get("dir"), ds) if r["ok"] else [self.describe(r)]
        self.check("snapshot_download of dataset acme/tiny-dataset through A: every file identical", not probs,
                   "\n".join(probs))

    # -- c ----------------------------------------------------------------------------------------------------
    def scenario_c(self):
        """c. a second download (fresh HF_HOME) comes from the node's cache"""
        main = self.commit("acme/tiny-model")
        cdn0, hub0 = self.file_bytes()
        self.check("(sanity) the fake's CDN sent file bodies for the first downloads", cdn0 > 0, "cdn=%d" % cdn0)
        home = self.new_home()
        r = self.client(home, self.a_url, op="snapshot", repo_id="acme/tiny-model")
        probs = self.snapshot_problems(r.get("dir"), main) if r["ok"] else [self.describe(r)]
        r2 = self.client(home, self.a_url, op="snapshot", repo_id="acme/tiny-dataset", repo_type="dataset")
        probs += self.snapshot_problems(r2.get("dir"), self.commit("acme/tiny-dataset")) if r2["ok"] else \
            [self.describe(r2)]
        self.check("second snapshot_download (model + dataset, fresh HF_HOME): every file identical", not probs,
                   "\n".join(probs))
        cdn1, hub1 = self.file_bytes()
        st = self.fake("/_stats")
        self.check("... the fake CDN sent no LFS byte for it", cdn1 == cdn0,
                   "CDN sent %d more bytes: %s" % (cdn1 - cdn0, self.body_requests(st, "cdn", 8)))
        self.check("... the fake Hub sent no non-LFS file body for it", hub1 == hub0,
                   "Hub sent %d more file-body bytes: %s" % (hub1 - hub0, self.body_requests(st, "hub", 8)))

    @staticmethod
    def body_requests(st, server, n):
        rs = [r for r in st["requests"] if r["server"] == server and r["file_body"]][-n:]
        return "; ".join("%s %s %s range=%s sent=%d" % (r["method"], r["path"][:90], r["status"], r["range"],
                                                       r["sent"]) for r in rs)

    # -- d ----------------------------------------------------------------------------------------------------
    def scenario_d(self):
        """d. no Xet: no xet-read-token request reached the fake"""
        st = self.fake("/_stats")
        x = st["xet_token_requests"]
        self.check("no xet-read-token request ever reached the fake Hub", not x,
                   "%d requests, first: %s" % (len(x), x[:3]))
        cdn_auth = [r for r in st["requests"] if r["server"] == "cdn" and r["auth"] != "none"]
        self.check("no request to the CDN carried an Authorization header (tokens stay on the Hub's host)",
                   not cdn_auth, "; ".join("%s %s auth=%s" % (r["method"], r["path"][:80], r["auth"])
                                           for r in cdn_auth[:3]))
        cdn_direct = [r for r in st["requests"] if r["server"] == "cdn" and "hf_hub" in r["ua"]]
        self.check("the client never went to the CDN itself (no hf_hub user-agent there)", not cdn_direct,
                   "; ".join("%s %s ua=%s" % (r["method"], r["path"][:80], r["ua"]) for r in cdn_direct[:3]))

    # -- e ----------------------------------------------------------------------------------------------------
    def scenario_e(self):
        """e. gated repo acme/gated-model"""
        g = self.commit("acme/gated-model")
        f = g["files"]["model.safetensors"]
        r = self.client(self.new_home(), self.a_url, op="download", repo_id="acme/gated-model",
                        filename="model.safetensors")
        self.check("no token: GatedRepoError", not r["ok"] and r["error"] == "GatedRepoError", self.describe(r))
        r = self.client(self.new_home(), self.a_url, op="download", repo_id="acme/gated-model",
                        filename="model.safetensors", token="hf_wrong_token")
        self.check("wrong token: GatedRepoError", not r["ok"] and r["error"] == "GatedRepoError", self.describe(r))
        r = self.client(self.new_home(), self.a_url, op="download", repo_id="acme/gated-model",
                        filename="model.safetensors", token=TOKEN)
        self.check("right token: identical bytes", r["ok"] and self.sha256(r["path"]) == f["sha256"],
                   self.describe(r))
        r = self.client(self.new_home(), self.a_url, op="snapshot", repo_id="acme/gated-model", token=TOKEN)
        probs = self.snapshot_problems(r.get("dir"), g) if r["ok"] else [self.describe(r)]
        self.check("right token: snapshot_download identical", not probs, "\n".join(probs))
        st = self.fake("/_stats")
        fwd = [x for x in st["requests"] if "/acme/gated-model/resolve/" in x["path"] and x["auth"] == "right"]
        self.check("the node passed the client's Authorization to the Hub for the gated files", bool(fwd),
                   "no gated /resolve request with the right token reached the fake")
        try:
            cat = json.load(urllib.request.urlopen(self.a_url + "/v1/catalogue", timeout=10))
            shas = {b.get("sha256") for b in cat.get("blobs", [])}
            public = self.commit("acme/tiny-model")["files"]["model-00001-of-00002.safetensors"]["sha256"]
            self.check("(sanity) A's /v1/catalogue lists a public LFS blob it holds", public in shas,
                       "catalogue: %s" % json.dumps(cat)[:400])
            self.check("the gated blob is absent from A's /v1/catalogue", f["sha256"] not in shas,
                       "catalogue lists %s" % f["sha256"])
        except (OSError, ValueError) as e:
            self.check("A's /v1/catalogue readable", False, repr(e))
        st_, h, body = self.raw(self.a_url, "GET", "/v1/blobs/" + f["sha256"], {"Range": "bytes=0-15"})
        self.info("peer API GET /v1/blobs/<gated sha256> on A -> %d (%d bytes)" % (st_, len(body)))
        # Another client, no token, after the blob is in A's cache.
        r = self.client(self.new_home(), self.a_url, op="download", repo_id="acme/gated-model",
                        filename="model.safetensors")
        self.check("a second client without a token (blob cached on A): an error (GatedRepoError), not the bytes",
                   not r["ok"] and r["error"] == "GatedRepoError", self.describe(r))
        st_, h, body = self.raw(self.a_url, "GET", "/acme/gated-model/resolve/main/model.safetensors")
        self.check("raw GET of the gated file without a token: 401/403, no file bytes",
                   st_ in (401, 403) and len(body) < 4096 and h.get("x-error-code") == "GatedRepo",
                   "-> %d %s (%d bytes)" % (st_, h, len(body)))
        st_, h, body = self.raw(self.a_url, "GET", "/acme/gated-model/resolve/main/model.safetensors",
                                {"Authorization": "Bearer hf_wrong_token"})
        self.check("raw GET of the gated file with a wrong token: 403 GatedRepo, no file bytes",
                   st_ == 403 and len(body) < 4096 and h.get("x-error-code") == "GatedRepo",
                   "-> %d %s (%d bytes)" % (st_, h, len(body)))

    # -- f ----------------------------------------------------------------------------------------------------
    def scenario_f(self):
        """f. errors the client understands"""
        cases = [
            ("unknown repo -> RepositoryNotFoundError", "RepositoryNotFoundError",
             dict(op="download", repo_id="acme/no-such-model", filename="config.json")),
            ("unknown file -> RemoteEntryNotFoundError (an EntryNotFoundError)", "RemoteEntryNotFoundError",
             dict(op="download", repo_id="acme/tiny-model", filename="no-such-file.json")),
            ("unknown revision -> RevisionNotFoundError", "RevisionNotFoundError",
             dict(op="download", repo_id="acme/tiny-model", filename="config.json", revision="no-such-branch")),
            ("snapshot_download of an unknown repo -> RepositoryNotFoundError", "RepositoryNotFoundError",
             dict(op="snapshot", repo_id="acme/no-such-model")),
            ("snapshot_download of an unknown revision -> RevisionNotFoundError", "RevisionNotFoundError",
             dict(op="snapshot", repo_id="acme/tiny-model", revision="no-such-branch")),
            ("unknown dataset -> RepositoryNotFoundError", "RepositoryNotFoundError",
             dict(op="download", repo_id="acme/no-such-dataset", filename="x.json", repo_type="dataset")),
        ]
        for desc, want, spec in cases:
            r = self.client(self.new_home(), self.a_url, **spec)
            self.check(desc, not r["ok"] and r["error"] == want, self.describe(r))
        for path, code in [("/acme/no-such-model/resolve/main/config.json", "RepoNotFound"),
                           ("/acme/tiny-model/resolve/main/no-such-file.json", "EntryNotFound"),
                           ("/acme/tiny-model/resolve/no-such-branch/config.json", "RevisionNotFound")]:
            st, h, _ = self.raw(self.a_url, "HEAD", path)
            self.check("node HEAD %s: X-Error-Code %s" % (path, code), h.get("x-error-code") == code
                       and 400 <= st < 500, "-> %d %s" % (st, h))

    # -- h ----------------------------------------------------------------------------------------------------
    def scenario_h(self):
        """h. an interrupted client download resumes with Range (one process)"""
        f = self.commit("acme/tiny-model")["files"]["model-00001-of-00002.safetensors"]
        px = Proxy(self.a_port, cut_after=15 * MiB)
        self.proxies.append(px)
        r = self.client(self.new_home(), px.url, op="download", repo_id="acme/tiny-model",
                        filename="model-00001-of-00002.safetensors")
        log = px.snapshot()
        self.check("the proxy cut the client's GET once, after 15 MiB of body", px.cuts == 1,
                   "cuts=%d; proxy log: %s" % (px.cuts, px.describe()))
        self.check("the client's download completed, byte-identical", r["ok"] and self.sha256(r["path"]) ==
                   f["sha256"], self.describe(r))
        resumed = [e for e in log if e["method"] == "GET" and (e["range"] or "").replace(" ", "") ==
                   "bytes=10485760-"]
        self.check("the client resumed with `Range: bytes=10485760-` and the node answered 206",
                   any(e["status"] == 206 for e in resumed), "proxy log: %s" % px.describe())
        px.close()

    # -- i ----------------------------------------------------------------------------------------------------
    def scenario_i(self):
        """i. streaming: on a cold miss the client's first body byte comes before the CDN has sent the file"""
        f = self.commit("acme/stream-model")["files"]["stream.safetensors"]
        rate = 2 * MiB
        self.fake("/_control", {"cdn_rate": rate})
        px = Proxy(self.a_port)
        self.proxies.append(px)
        try:
            r = self.client(self.new_home(), px.url, op="download", repo_id="acme/stream-model",
                            filename="stream.safetensors")
        finally:
            self.fake("/_control", {"cdn_rate": 0})
        self.check("cold download through A with a slow CDN (%d MiB/s a connection): identical bytes"
                   % (rate // MiB), r["ok"] and self.sha256(r["path"]) == f["sha256"], self.describe(r))
        st = self.fake("/_stats")
        cdn = [x for x in st["requests"] if x["server"] == "cdn" and f["sha256"] in x["path"] and x["file_body"]]
        gets = [e for e in px.snapshot() if e["method"] == "GET" and e["status"] in (200, 206)
                and e["t_first_body"]]
        if not cdn or not gets:
            self.check("streaming order measurable (CDN transfer and the client's GET recorded)", False,
                       "CDN requests for the blob: %d; client GETs with a body: %s" % (len(cdn), px.describe()))
            return
        cdn_first = min(x["t_first"] for x in cdn)
        cdn_done = max(x["t_done"] for x in cdn)
        client_first = min(e["t_first_body"] for e in gets)
        self.info("CDN: first byte +%.2f s, last byte +%.2f s, %d request(s); client's first body byte +%.2f s "
                  "(times from the CDN's first byte)" % (0, cdn_done - cdn_first, len(cdn), client_first - cdn_first))
        self.check("the client's first body byte arrived before the CDN finished sending the file",
                   client_first < cdn_done, "client first body byte %.3f s after the CDN's last byte"
                   % (client_first - cdn_done))

    # -- j ----------------------------------------------------------------------------------------------------
    def scenario_j(self):
        """j. corrupted CDN bytes (same size): the client never keeps wrong bytes (it checks only the size)"""
        f = self.commit("acme/bad-model")["files"]["model.safetensors"]
        self.fake("/_control", {"corrupt": [f["sha256"]]})
        try:
            r = self.client(self.new_home(), self.a_url, timeout=90, op="download", repo_id="acme/bad-model",
                            filename="model.safetensors")
        finally:
            self.fake("/_control", {"corrupt": []})
        st = self.fake("/_stats")
        bad = [x for x in st["requests"] if x.get("corrupted")]
        self.check("(sanity) the CDN sent the corrupted byte to the node", bool(bad), "no corrupted response")
        got = self.sha256(r["path"]) if r["ok"] else None
        self.check("the client got an error or the right bytes, never the corrupted ones",
                   not r["ok"] or got == f["sha256"],
                   "client returned a file with sha256 %s (expected %s or an error)" % (got, f["sha256"]))
        self.info("client with corrupted CDN bytes: %s" % self.describe(r).splitlines()[0])
        r = self.client(self.new_home(), self.a_url, op="download", repo_id="acme/bad-model",
                        filename="model.safetensors")
        self.check("CDN fixed: a new client gets the right bytes (nothing wrong was cached)",
                   r["ok"] and self.sha256(r["path"]) == f["sha256"], self.describe(r))

    # -- k ----------------------------------------------------------------------------------------------------
    def scenario_k(self):
        """k. two clients ask for the same cold file at once: both get it, the CDN sends it about once"""
        f = self.commit("acme/twin-model")["files"]["model.safetensors"]
        self.fake("/_control", {"cdn_rate": 4 * MiB})
        res, homes = [None, None], [self.new_home(), self.new_home()]

        def run(i):
            res[i] = self.client(homes[i], self.a_url, op="download", repo_id="acme/twin-model",
                                 filename="model.safetensors")
        try:
            ts = [threading.Thread(target=run, args=(i,)) for i in (0, 1)]
            for t in ts:
                t.start()
                time.sleep(0.3)
            for t in ts:
                t.join(150)
        finally:
            self.fake("/_control", {"cdn_rate": 0})
        for i, r in enumerate(res):
            self.check("client %d: identical bytes" % (i + 1), r is not None and r["ok"] and
                       self.sha256(r["path"]) == f["sha256"], self.describe(r) if r else "no result")
        st = self.fake("/_stats")
        sent = sum(x["sent"] for x in st["requests"] if x["server"] == "cdn" and f["sha256"] in x["path"])
        self.check("the CDN sent the file about once (<= 1.1 x %d MiB), not once per client" % (f["size"] // MiB),
                   sent <= 1.1 * f["size"], "CDN sent %.1f MiB" % (sent / MiB))

    # -- g ----------------------------------------------------------------------------------------------------
    def scenario_g(self):
        """g. offline LAN: node B (--peer A), fake Hub stopped, serves the snapshot"""
        main, old = self.commit("acme/tiny-model"), self.commit("acme/tiny-model", "v1.0")
        self.stop("fakehub")
        try:
            socket.create_connection(("127.0.0.1", self.hub_port), timeout=2).close()
            down = False
        except OSError:
            down = True
        self.check("(sanity) the fake Hub is stopped (connection refused)", down)
        b_url, _ = self.start_node("b", peers=["127.0.0.1:%d" % self.a_port])
        home = self.new_home()
        r = self.client(home, b_url, op="snapshot", repo_id="acme/tiny-model")
        probs = self.snapshot_problems(r.get("dir"), main) if r["ok"] else [self.describe(r)]
        self.check("snapshot_download acme/tiny-model (main) through B, Hub down: every file identical", not probs,
                   "\n".join(probs))
        r = self.client(home, b_url, op="snapshot", repo_id="acme/tiny-model", revision=old["sha"])
        probs = self.snapshot_problems(r.get("dir"), old) if r["ok"] else [self.describe(r)]
        self.check("snapshot_download at the older commit (by hash) through B, Hub down: identical", not probs,
                   "\n".join(probs))
        r = self.client(self.new_home(), b_url, op="download", repo_id="acme/tiny-model", filename="config.json")
        self.check("hf_hub_download config.json (main) through B, Hub down: identical",
                   r["ok"] and self.sha256(r["path"]) == main["files"]["config.json"]["sha256"], self.describe(r))
        r = self.client(self.new_home(), b_url, op="snapshot", repo_id="acme/tiny-dataset", repo_type="dataset")
        probs = self.snapshot_problems(r.get("dir"), self.commit("acme/tiny-dataset")) if r["ok"] else \
            [self.describe(r)]
        self.check("snapshot_download of the dataset through B, Hub down: identical", not probs, "\n".join(probs))
        # Nobody can check a token with the Hub down: B must not hand out the gated file (raw requests: a client
        # would retry a 5xx for ~23 s before giving up).
        path = "/acme/gated-model/resolve/main/model.safetensors"
        for hdr in ({}, {"Authorization": "Bearer " + TOKEN}):
            st, h, body = self.raw(b_url, "GET", path, hdr)
            self.check("B, Hub down: GET of the gated file %s: refused, no file bytes"
                       % ("with the right token" if hdr else "without a token"), st != 200 and len(body) < 4096,
                       "-> %d %s (%d bytes)" % (st, h, len(body)))
        for url, n in ((b_url, "B"), (self.a_url, "A")):
            st, h, _ = self.raw(url, "HEAD", "/acme/never-seen-model/resolve/main/config.json")
            self.check("%s, Hub down, unknown repo: 502/503/504 (not 404)" % n, st in (502, 503, 504),
                       "-> %d %s" % (st, h))


# ---------------------------------------------------------------------------------------------------------------
class Proxy:
    """A TCP proxy on 127.0.0.1 in front of a node: one request per connection (it adds `Connection: close`),
    logs each request (method, path, Range, status, body bytes, time of the first body byte) and, with
    CUT_AFTER, cuts the first 200 GET response after that many body bytes (once)."""

    def __init__(self, target_port, cut_after=None):
        self.target = target_port
        self.cut_after = cut_after
        self.cuts = 0
        self.log = []
        self.lock = threading.Lock()
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(32)
        self.url = "http://127.0.0.1:%d" % self.sock.getsockname()[1]
        self.closed = False
        threading.Thread(target=self.accept, daemon=True).start()

    def close(self):
        if not self.closed:
            self.closed = True
            try:
                self.sock.close()
            except OSError:
                pass

    def snapshot(self):
        with self.lock:
            return [dict(e) for e in self.log]

    def describe(self):
        return "; ".join("%s %s range=%s -> %s body=%d%s" % (e["method"], e["path"][:80], e["range"], e["status"],
                                                           e["body"], " CUT" if e["cut"] else "")
                         for e in self.snapshot())

    def accept(self):
        while not self.closed:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.serve, args=(c,), daemon=True).start()

    def serve(self, c):
        u = None
        try:
            c.settimeout(60)
            buf = b""
            while b"\r\n\r\n" not in buf and len(buf) < 65536:
                b = c.recv(65536)
                if not b:
                    return
                buf += b
            head, rest = buf.split(b"\r\n\r\n", 1)
            lines = head.decode("latin-1").split("\r\n")
            method, path = lines[0].split(" ")[:2]
            hdrs = [l for l in lines[1:] if l.split(":")[0].strip().lower() not in ("connection", "keep-alive")]
            rng = next((l.split(":", 1)[1].strip() for l in hdrs if l.lower().startswith("range:")), None)
            e = {"t": time.time(), "method": method, "path": path, "range": rng, "status": None, "body": 0,
                 "t_first_body": None, "cut": False}
            with self.lock:
                self.log.append(e)
            u = socket.create_connection(("127.0.0.1", self.target), timeout=60)
            u.sendall(("\r\n".join([lines[0]] + hdrs + ["Connection: close", "", ""])).encode("latin-1") + rest)
            resp, clen, got_head = b"", None, False
            while True:
                b = u.recv(256 * 1024)
                if not b:
                    break
                if not got_head:
                    resp += b
                    if b"\r\n\r\n" not in resp:
                        continue
                    rh, b = resp.split(b"\r\n\r\n", 1)
                    got_head = True
                    rl = rh.decode("latin-1").split("\r\n")
                    e["status"] = int(rl[0].split(" ")[1])
                    for l in rl[1:]:
                        if l.lower().startswith("content-length:"):
                            clen = int(l.split(":", 1)[1])
                    c.sendall(rh + b"\r\n\r\n")
                    if method == "HEAD":
                        clen = 0
                if b:
                    cut_here = False
                    with self.lock:
                        if (self.cut_after and not self.cuts and method == "GET" and e["status"] == 200
                                and e["body"] + len(b) >= self.cut_after):
                            b = b[:self.cut_after - e["body"]]
                            self.cuts += 1
                            cut_here = e["cut"] = True
                    if e["t_first_body"] is None:
                        e["t_first_body"] = time.time()
                    c.sendall(b)
                    e["body"] += len(b)
                    if cut_here:
                        return
                if clen is not None and got_head and e["body"] >= clen:
                    break
        except (OSError, ValueError, IndexError):
            pass
        finally:
            for s in (c, u):
                if s is not None:
                    try:
                        s.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
                    s.close()


def main(test_class=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin")
    ap.add_argument("--keep", action="store_true", help="keep the output directory")
    ap.add_argument("--client", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.client:
        return client_main(json.loads(a.client))
    t = (test_class or Test)(a)
    signal.signal(signal.SIGTERM, lambda *x: sys.exit(143))
    signal.signal(signal.SIGINT, lambda *x: sys.exit(130))
    rc = 1
    try:
        rc = t.run()
    except Exception:  # noqa: BLE001
        traceback.print_exc()
        print("FAIL: test setup\n%d passed, %d failed" % (t.passed, t.failed + 1))
        t.failed += 1
    finally:
        t.cleanup()
    sys.exit(rc)


if __name__ == "__main__":
    main()
