#!/usr/bin/env python3
"""A fake Hugging Face Hub for ModelCache's tests and benchmarks (standard library only).

Two listeners on loopback: the Hub (API + /resolve) and a separate "CDN" (the signed URLs the Hub's LFS 302s point
to, like cas-bridge.xethub.hf.co). It behaves like the public Hub as far as huggingface_hub 2.4.0 can tell
(/work/shared/docs/hf-client.md):

- `HEAD`/`GET /[datasets/]{repo}/resolve/{rev}/{path}`: LFS files -> 302 to the CDN with `X-Repo-Commit`,
  `X-Linked-Etag: "<sha256>"`, `X-Linked-Size`, a weak `ETag` of the redirect body (not the sha256), a
  `Content-Length` of the redirect body (not the file size), and the Xet headers of a Xet-backed repo
  (`X-Xet-Hash`, `X-Xet-Refresh-Route`, `Link: <..xet-read-token..>; rel="xet-auth", <..>;
  rel="xet-reconstruction-info"`). Non-LFS files -> 200 with `ETag: "<git blob sha1>"`, `Content-Length`,
  `X-Repo-Commit`, Range support.
- `GET /api/{models,datasets}/{repo}/revision/{rev}`: id, sha, siblings, ...
- `GET /api/{models,datasets}/{repo}/tree/{rev}[/{path}]?recursive=..&expand=..`: paginated (PAGE entries a page,
  small on purpose) with an absolute `Link: <http://127.0.0.1:HUB/...&cursor=..>; rel="next"`; LFS entries carry
  `lfs` and `xetHash`.
- `GET /api/{type}s/{repo}/xet-read-token/{rev}`: recorded as a failure (`xet_token_requests`), answered 403 so a
  client that went Xet fails fast.
- Errors as the Hub: unknown repo -> 401 (no token) / 404 (token) `X-Error-Code: RepoNotFound`; unknown revision ->
  404 `RevisionNotFound`; unknown file -> 404 `EntryNotFound` (+ X-Repo-Commit); gated repo files -> 401
  `GatedRepo` without a token, 403 `GatedRepo` with a wrong one (info and tree stay public).
- CDN: `GET`/`HEAD /xet-bridge/{sha256}?X-Amz-Expires=..&X-Amz-Signature=..` (HMAC-signed by the Hub; a bad or
  missing signature -> 403), Range -> 206; an optional per-connection rate limit.

Repos: acme/tiny-model (two commits, `main` -> newest, tag `v1.0` -> older; config.json and one LFS shard differ),
datasets/acme/tiny-dataset, acme/gated-model (token `hf_test_token`), acme/stream-model (one 24 MiB LFS file, for the
streaming check), acme/bad-model (12 MiB, for corrupted CDN bytes), acme/twin-model (16 MiB, two clients at
once) and, with `--big-mib N`, acme/big-model (two N MiB LFS files). LFS contents are generated
deterministically (seeded PRNG) into --data-dir, reused across runs.

Test hooks (on the Hub port): `GET /_stats` (JSON: requests with time, server, method, path, status, auth
none/right/wrong/other, range, body bytes, first/last body byte times; body bytes per path and in total;
xet-read-token requests), `POST /_stats/reset`, `POST /_control` with JSON `{"cdn_rate": bytes_per_s_per_connection,
"hub_rate": ..., "corrupt": [sha256, ...]}` (rates: 0 = unlimited; corrupt: the CDN flips the byte 100 bytes before
the end of those files, same size), `GET /_manifest` (every repo, commit and file with sha256/sha1/size).

    python3 Tests/hf/fakehub.py --port 0 --cdn-port 0 --ports-file PORTS.json --data-dir DIR [--big-mib 512]
"""

import argparse
import base64
import hashlib
import hmac
import json
import os
import random
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, quote, unquote, urlencode, urlsplit

MiB = 1 << 20
RIGHT_TOKEN = "hf_test_token"
PAGE = 3  # tree entries per page: small, so that a node must follow and rewrite `Link: rel="next"`
SECRET = os.urandom(16)  # signs CDN URLs


def git_blob_sha1(data):
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class Blob:
    """One file's content: small ones in memory, LFS ones in a file under --data-dir."""

    def __init__(self, data=None, path=None, size=None, sha256=None):
        self.data, self.path = data, path
        if data is not None:
            self.size, self.sha256 = len(data), hashlib.sha256(data).hexdigest()
        else:
            self.size, self.sha256 = size, sha256
        self.lfs = data is None
        if self.lfs:
            self.pointer = ("version https://git-lfs.github.com/spec/v1\noid sha256:%s\nsize %d\n"
                            % (self.sha256, self.size)).encode()
            self.oid = git_blob_sha1(self.pointer)  # the tree's `oid` of an LFS file: its pointer's git sha1
            self.xet_hash = hashlib.sha256(b"xet:" + self.sha256.encode()).hexdigest()
        else:
            self.oid = git_blob_sha1(data)

    def open(self):
        return open(self.path, "rb")

    def read(self, start, end):  # [start, end)
        if self.data is not None:
            return self.data[start:end]
        with self.open() as f:
            f.seek(start)
            return f.read(end - start)


def lfs_blob(data_dir, seed, size):
    """SIZE bytes from random.Random(SEED), written once to DATA_DIR and reused (with a .sha256 sidecar)."""
    path = os.path.join(data_dir, "lfs-%d-%d.bin" % (seed, size))
    side = path + ".sha256"
    if os.path.exists(side) and os.path.exists(path) and os.path.getsize(path) == size:
        with open(side) as f:
            return Blob(path=path, size=size, sha256=f.read().strip())
    rng, h, left = random.Random(seed), hashlib.sha256(), size
    tmp = path + ".tmp%d" % os.getpid()
    with open(tmp, "wb") as f:
        while left:
            b = rng.randbytes(min(left, 8 * MiB))
            h.update(b)
            f.write(b)
            left -= len(b)
    os.replace(tmp, path)
    with open(side, "w") as f:
        f.write(h.hexdigest())
    return Blob(path=path, size=size, sha256=h.hexdigest())


def text(s):
    return Blob(data=s.encode())


GITATTRIBUTES = text("*.safetensors filter=lfs diff=lfs merge=lfs -text\n*.bin filter=lfs diff=lfs merge=lfs -text\n"
                     "*.parquet filter=lfs diff=lfs merge=lfs -text\n")


class Repo:
    def __init__(self, rtype, rid, gated=False):
        self.type, self.id, self.gated = rtype, rid, gated
        self.commits = {}  # sha -> {path: Blob}
        self.order = []  # oldest first
        self.refs = {}  # branch/tag -> sha
        self.dates = {}

    def commit(self, files, refs=()):
        n = len(self.order)
        sha = hashlib.sha1(("%s/%s@%d" % (self.type, self.id, n)).encode()).hexdigest()
        self.commits[sha] = dict(sorted(files.items()))
        self.order.append(sha)
        self.dates[sha] = "2026-11-%02dT10:00:00.000Z" % (1 + n)
        for r in refs:
            self.refs[r] = sha
        return sha

    def resolve(self, rev):
        if rev in self.refs:
            return self.refs[rev]
        if rev in self.commits:
            return rev
        return None


def build_repos(data_dir, big_mib):
    os.makedirs(data_dir, exist_ok=True)
    repos = {}

    tiny = Repo("model", "acme/tiny-model")
    readme = text("---\nlicense: mit\n---\n# tiny-model\nA model for ModelCache's tests.\n")
    tok = text(json.dumps({"version": "1.0", "model": {"type": "BPE", "vocab": {"a": 0, "b": 1}}}, indent=2) + "\n")
    shard1 = lfs_blob(data_dir, 11, 24 * MiB)
    old = {".gitattributes": GITATTRIBUTES, "README.md": readme,
           "config.json": text('{\n  "model_type": "tiny",\n  "hidden_size": 64,\n  "revision": 1\n}\n'),
           "model-00001-of-00002.safetensors": shard1,
           "model-00002-of-00002.safetensors": lfs_blob(data_dir, 12, 12 * MiB),
           "tokenizer/tokenizer.json": tok}
    tiny.commit(old, refs=["v1.0"])
    new = dict(old)
    new["config.json"] = text('{\n  "model_type": "tiny",\n  "hidden_size": 64,\n  "revision": 2\n}\n')
    new["model-00002-of-00002.safetensors"] = lfs_blob(data_dir, 13, 12 * MiB)
    tiny.commit(new, refs=["main"])
    repos[("model", tiny.id)] = tiny

    ds = Repo("dataset", "acme/tiny-dataset")
    ds.commit({".gitattributes": GITATTRIBUTES, "README.md": text("# tiny-dataset\n"),
               "data/train-00000-of-00001.parquet": lfs_blob(data_dir, 21, 8 * MiB),
               "data/meta.json": text('{"rows": 1000}\n')}, refs=["main"])
    repos[("dataset", ds.id)] = ds

    gated = Repo("model", "acme/gated-model", gated=True)
    gated.commit({".gitattributes": GITATTRIBUTES, "README.md": text("# gated-model\nAsk for access.\n"),
                  "config.json": text('{"model_type": "gated"}\n'),
                  "model.safetensors": lfs_blob(data_dir, 31, 8 * MiB)}, refs=["main"])
    repos[("model", gated.id)] = gated

    stream = Repo("model", "acme/stream-model")
    stream.commit({".gitattributes": GITATTRIBUTES, "config.json": text('{"model_type": "stream"}\n'),
                   "stream.safetensors": lfs_blob(data_dir, 41, 24 * MiB)}, refs=["main"])
    repos[("model", stream.id)] = stream

    bad = Repo("model", "acme/bad-model")  # its CDN bytes can be corrupted (/_control "corrupt")
    bad.commit({".gitattributes": GITATTRIBUTES, "model.safetensors": lfs_blob(data_dir, 61, 12 * MiB)},
               refs=["main"])
    repos[("model", bad.id)] = bad

    twin = Repo("model", "acme/twin-model")  # for two clients asking for the same cold file at once
    twin.commit({".gitattributes": GITATTRIBUTES, "model.safetensors": lfs_blob(data_dir, 71, 16 * MiB)},
                refs=["main"])
    repos[("model", twin.id)] = twin

    if big_mib:
        big = Repo("model", "acme/big-model")
        big.commit({".gitattributes": GITATTRIBUTES, "README.md": text("# big-model\n"),
                    "config.json": text('{"model_type": "big"}\n'),
                    "model-00001-of-00002.safetensors": lfs_blob(data_dir, 51, big_mib * MiB),
                    "model-00002-of-00002.safetensors": lfs_blob(data_dir, 52, big_mib * MiB)}, refs=["main"])
        repos[("model", big.id)] = big
    return repos


class State:
    def __init__(self, repos):
        self.repos = repos
        self.lock = threading.Lock()
        self.by_sha256 = {}
        for r in repos.values():
            for files in r.commits.values():
                for b in files.values():
                    if b.lfs:
                        self.by_sha256[b.sha256] = b
        self.hub_base = self.cdn_base = ""
        self.cdn_rate = 0
        self.hub_rate = 0
        self.corrupt = set()  # sha256s whose CDN bytes get one byte flipped (100 bytes before the end)
        self.reset()

    def reset(self):
        with self.lock:
            self.requests = []
            self.body_bytes = {}
            self.body_bytes_total = 0
            self.xet_token_requests = []
            self.t0 = time.time()

    def record(self, entry):
        with self.lock:
            self.requests.append(entry)
            if entry.get("file_body"):
                self.body_bytes[entry["path"]] = self.body_bytes.get(entry["path"], 0) + entry["sent"]
                self.body_bytes_total += entry["sent"]

    def stats(self):
        with self.lock:
            return {"requests": list(self.requests), "body_bytes": dict(self.body_bytes),
                    "body_bytes_total": self.body_bytes_total, "xet_token_requests": list(self.xet_token_requests),
                    "cdn_rate": self.cdn_rate, "hub_rate": self.hub_rate}

    def manifest(self):
        out = []
        for r in self.repos.values():
            out.append({"type": r.type, "id": r.id, "gated": r.gated, "refs": r.refs, "commits": [
                {"sha": c, "files": {p: {"sha256": b.sha256, "sha1": b.oid if not b.lfs else None, "size": b.size,
                                         "lfs": b.lfs, "etag": b.sha256 if b.lfs else b.oid}
                                     for p, b in r.commits[c].items()}} for c in r.order]})
        return out

    def sign(self, sha256, expires):
        return hmac.new(SECRET, ("%s:%d" % (sha256, expires)).encode(), hashlib.sha256).hexdigest()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fakehub/1"
    role = "hub"
    state = None  # set per server class

    def log_message(self, fmt, *args):  # quiet; everything is in /_stats
        pass

    # -- plumbing -------------------------------------------------------------------------------------------------
    def auth(self):
        a = self.headers.get("Authorization")
        if not a:
            return "none"
        return "right" if a == "Bearer " + RIGHT_TOKEN else "wrong"

    def begin(self):
        self.entry = {"t": time.time(), "server": self.role, "method": self.command, "path": self.path,
                      "status": None, "auth": self.auth(), "range": self.headers.get("Range"),
                      "ua": self.headers.get("User-Agent", ""), "sent": 0, "t_first": None, "t_done": None,
                      "file_body": False}

    def finish_entry(self):
        self.state.record(self.entry)

    def send(self, status, headers=(), body=b"", ctype="application/json; charset=utf-8"):
        self.entry["status"] = status
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Request-Id", "Root=1-%08x-%s" % (int(time.time()), os.urandom(12).hex()))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD" and body:
            self.wfile.write(body)

    def send_json(self, status, obj, headers=()):
        self.send(status, headers, json.dumps(obj).encode())

    def error(self, status, code, message, headers=()):
        h = [("X-Error-Message", message)] + list(headers)
        if code:
            h.append(("X-Error-Code", code))
        self.send_json(status, {"error": message}, h)

    def send_range(self, blob, extra_headers, rate, ctype="application/octet-stream", corrupt=False):
        """200 or 206 of BLOB's bytes, honouring Range; throttled to RATE bytes/s when set."""
        size, start, end = blob.size, 0, blob.size
        status = 200
        rng = self.headers.get("Range")
        headers = list(extra_headers) + [("Accept-Ranges", "bytes")]
        if rng:
            try:
                unit, spec = rng.split("=", 1)
                a, b = spec.split(",")[0].strip().split("-", 1)
                if unit.strip() != "bytes":
                    raise ValueError
                if a == "":
                    start, end = max(0, size - int(b)), size
                else:
                    start, end = int(a), (min(size, int(b) + 1) if b else size)
                if start >= size or start >= end:
                    self.entry["status"] = 416
                    self.send_response(416)
                    self.send_header("Content-Range", "bytes */%d" % size)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                status = 206
                headers.append(("Content-Range", "bytes %d-%d/%d" % (start, end - 1, size)))
            except ValueError:
                start, end, status = 0, size, 200
        self.entry["status"] = status
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(end - start))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        if self.command == "HEAD":
            return
        self.entry["file_body"] = True
        try:
            self.entry["t_first"] = time.time()
            if corrupt:  # the same size, one byte flipped 100 bytes before the end of the file
                data = bytearray(blob.read(start, end))
                flip = blob.size - 100
                if start <= flip < end:
                    data[flip - start] ^= 0xFF
                self.entry["corrupted"] = start <= flip < end
                self.wfile.write(bytes(data))
                self.entry["sent"] = end - start
            elif blob.data is not None and not rate:
                self.wfile.write(blob.data[start:end])
                self.entry["sent"] = end - start
            elif not rate:
                with blob.open() as f:
                    self.entry["sent"] = self.connection.sendfile(f, start, end - start)
            else:
                pos, t0, slice_ = start, time.time(), 64 * 1024
                with blob.open() if blob.data is None else _Mem(blob.data) as f:
                    f.seek(start)
                    while pos < end:
                        n = min(slice_, end - pos)
                        b = f.read(n)
                        self.wfile.write(b)
                        pos += n
                        self.entry["sent"] = pos - start
                        ahead = (pos - start) / rate - (time.time() - t0)
                        if ahead > 0:
                            time.sleep(ahead)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        finally:
            self.entry["t_done"] = time.time()

    def read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def handle_any(self):
        self.begin()
        try:
            self.route()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        finally:
            self.finish_entry()

    do_GET = do_HEAD = do_POST = handle_any

    def route(self):
        raise NotImplementedError


class _Mem:
    def __init__(self, data):
        self.data, self.pos = data, 0

    def __enter__(self):
        return self

    def __exit__(self, *a):
        return False

    def seek(self, p):
        self.pos = p

    def read(self, n):
        b = self.data[self.pos:self.pos + n]
        self.pos += len(b)
        return b


class HubHandler(Handler):
    role = "hub"

    def route(self):
        st = self.state
        u = urlsplit(self.path)
        segs = [s for s in u.path.split("/") if s != ""]
        if u.path == "/_stats" and self.command == "GET":
            self.entry["internal"] = True
            return self.send_json(200, st.stats())
        if u.path == "/_stats/reset" and self.command == "POST":
            self.entry["internal"] = True
            st.reset()
            return self.send_json(200, {"ok": True})
        if u.path == "/_control" and self.command == "POST":
            self.entry["internal"] = True
            cfg = json.loads(self.read_body() or b"{}")
            with st.lock:
                if "cdn_rate" in cfg:
                    st.cdn_rate = int(cfg["cdn_rate"])
                if "hub_rate" in cfg:
                    st.hub_rate = int(cfg["hub_rate"])
                if "corrupt" in cfg:
                    st.corrupt = set(cfg["corrupt"])
            return self.send_json(200, {"cdn_rate": st.cdn_rate, "hub_rate": st.hub_rate,
                                        "corrupt": sorted(st.corrupt)})
        if u.path == "/_manifest":
            self.entry["internal"] = True
            return self.send_json(200, st.manifest())
        if self.command == "POST":
            self.read_body()
        if len(segs) >= 3 and segs[0] == "api" and segs[1] in ("models", "datasets", "spaces"):
            return self.api(segs[1][:-1], segs[2:], parse_qs(u.query))
        if "resolve" in segs:
            i = segs.index("resolve")
            rtype = "model"
            head = segs[:i]
            if head and head[0] in ("datasets", "spaces", "models"):
                rtype = head[0][:-1]
                head = head[1:]
            if head and len(segs) >= i + 3:
                return self.resolve(rtype, "/".join(unquote(s) for s in head), unquote(segs[i + 1]),
                                    unquote("/".join(segs[i + 2:])))
        return self.error(404, None, "Sorry, we can't find the page you are looking for.")

    # -- helpers ---------------------------------------------------------------------------------------------
    def repo_or_error(self, rtype, rid):
        repo = self.state.repos.get((rtype, rid))
        if repo is None:
            # The Hub does not tell an anonymous client whether a private repo exists: 401 without a token.
            self.error(401 if self.entry["auth"] == "none" else 404, "RepoNotFound", "Repository not found")
        return repo

    def api(self, rtype, rest, query):
        # {ns}/{name}/{action}/... or {name}/{action}/...
        actions = ("revision", "tree", "xet-read-token", "paths-info", "refs")
        if len(rest) >= 3 and rest[2] in actions:
            rid, action, tail = unquote(rest[0]) + "/" + unquote(rest[1]), rest[2], rest[3:]
        elif len(rest) >= 2 and rest[1] in actions:
            rid, action, tail = unquote(rest[0]), rest[1], rest[2:]
        elif len(rest) == 2 and self.command == "GET":
            rid, action, tail = unquote(rest[0]) + "/" + unquote(rest[1]), "revision", ["main"]
        else:
            return self.error(404, None, "Sorry, we can't find the page you are looking for.")
        if action == "xet-read-token":
            with self.state.lock:
                self.state.xet_token_requests.append({"t": time.time(), "path": self.path})
            return self.error(403, None, "fakehub: xet-read-token requested: the client went Xet "
                                         "(a node in front of the Hub must strip the Xet headers and xetHash)")
        repo = self.repo_or_error(rtype, rid)
        if repo is None:
            return
        if action == "revision":
            rev = unquote("/".join(tail)) if tail else "main"
            sha = repo.resolve(rev)
            if sha is None:
                return self.error(404, "RevisionNotFound", "Invalid rev id: %s" % rev)
            return self.send_json(200, self.info(repo, sha))
        if action == "tree":
            if not tail:
                return self.error(404, None, "Sorry, we can't find the page you are looking for.")
            rev = unquote(tail[0])
            sha = repo.resolve(rev)
            if sha is None:
                return self.error(404, "RevisionNotFound", "Invalid rev id: %s" % rev)
            prefix = unquote("/".join(tail[1:])).strip("/")
            return self.tree(repo, sha, rev, prefix, query)
        return self.error(404, None, "Sorry, we can't find the page you are looking for.")

    def info(self, repo, sha):
        files = repo.commits[sha]
        d = {"_id": hashlib.sha1(repo.id.encode()).hexdigest()[:24], "id": repo.id, "author": repo.id.split("/")[0],
             "sha": sha, "lastModified": repo.dates[sha], "private": False, "disabled": False,
             "gated": "manual" if repo.gated else False, "tags": ["fake"], "downloads": 0, "likes": 0,
             "siblings": [{"rfilename": p} for p in files], "createdAt": repo.dates[repo.order[0]],
             "usedStorage": sum(b.size for b in files.values())}
        if repo.type == "model":
            d.update({"modelId": repo.id, "library_name": "transformers", "pipeline_tag": "text-generation"})
        else:
            d.update({"description": "", "cardData": {}})
        return d

    def tree(self, repo, sha, rev, prefix, query):
        recursive = (query.get("recursive", ["false"])[0] == "true")
        files = repo.commits[sha]
        entries, dirs = [], set()
        for p, b in files.items():
            if prefix and not p.startswith(prefix + "/"):
                continue
            rel = p[len(prefix) + 1:] if prefix else p
            parts = rel.split("/")
            for k in range(1, len(parts)):
                dirs.add("/".join(([prefix] if prefix else []) + parts[:k]))
            if len(parts) > 1 and not recursive:
                continue
            e = {"type": "file", "oid": b.oid, "size": b.size, "path": p}
            if b.lfs:
                e["lfs"] = {"oid": b.sha256, "size": b.size, "pointerSize": len(b.pointer)}
                e["xetHash"] = b.xet_hash
            entries.append(e)
        if prefix and not entries and not dirs:
            return self.error(404, "EntryNotFound", "Entry not found", [("X-Repo-Commit", sha)])
        for dname in dirs:
            depth_ok = recursive or dname.count("/") == (prefix.count("/") + 1 if prefix else 0)
            if depth_ok:
                entries.append({"type": "directory", "oid": hashlib.sha1(("tree:" + dname).encode()).hexdigest(),
                                "size": 0, "path": dname})
        entries.sort(key=lambda e: (e["path"].count("/"), e["type"] != "directory", e["path"]))
        cursor = query.get("cursor", [None])[0]
        start = int(base64.urlsafe_b64decode(cursor.encode()).decode()) if cursor else 0
        page = entries[start:start + PAGE]
        headers = []
        if start + PAGE < len(entries):
            q = {k: v[0] for k, v in query.items() if k != "cursor"}
            q["cursor"] = base64.urlsafe_b64encode(str(start + PAGE).encode()).decode()
            path = "/api/%ss/%s/tree/%s" % (repo.type, repo.id, quote(rev, safe=""))
            if prefix:
                path += "/" + quote(prefix)
            headers.append(("Link", '<%s%s?%s>; rel="next"' % (self.state.hub_base, path, urlencode(q))))
        return self.send_json(200, page, headers)

    def resolve(self, rtype, rid, rev, path):
        st = self.state
        repo = self.repo_or_error(rtype, rid)
        if repo is None:
            return
        kind = "model" if rtype == "model" else rtype
        if repo.gated and self.entry["auth"] != "right":
            if self.entry["auth"] == "none":
                return self.error(401, "GatedRepo", "Access to %s %s is restricted. You must have access to it and "
                                  "be authenticated to access it. Please log in." % (kind, rid))
            return self.error(403, "GatedRepo", "Access to %s %s is restricted and you are not in the authorized "
                              "list. Visit https://huggingface.co/%s to ask for access." % (kind, rid, rid))
        sha = repo.resolve(rev)
        if sha is None:
            return self.error(404, "RevisionNotFound", "Invalid rev id: %s" % rev)
        blob = repo.commits[sha].get(path)
        if blob is None:
            return self.error(404, "EntryNotFound", "Entry not found", [("X-Repo-Commit", sha)])
        common = [("X-Repo-Commit", sha), ("Vary", "Origin, Accept"),
                  ("Access-Control-Expose-Headers", "X-Repo-Commit,X-Request-Id,X-Error-Code,X-Error-Message,"
                   "X-Total-Count,ETag,Link,Accept-Ranges,Content-Range,X-Linked-Size,X-Linked-ETag,X-Xet-Hash")]
        fname = path.rsplit("/", 1)[-1]
        if not blob.lfs:
            return self.send_range(blob, common + [("ETag", '"%s"' % blob.oid)], st.hub_rate,
                                   ctype="text/plain; charset=utf-8")
        expires = int(time.time()) + 3600
        q = urlencode({"X-Amz-Algorithm": "AWS4-HMAC-SHA256", "X-Amz-Expires": "3600", "X-Amz-Date": str(expires),
                       "X-Amz-Signature": st.sign(blob.sha256, expires),
                       "response-content-disposition": "inline; filename*=UTF-8''%s;" % quote(fname)})
        location = "%s/xet-bridge/%s?%s" % (st.cdn_base, blob.sha256, q)
        body = ("Found. Redirecting to %s" % location).encode()
        token_route = "%s/api/%ss/%s/xet-read-token/%s" % (st.hub_base, repo.type, repo.id, sha)
        headers = common + [
            ("Location", location),
            ("ETag", 'W/"%x-%s"' % (len(body), base64.b64encode(hashlib.sha1(body).digest()).decode()[:27])),
            ("X-Linked-Etag", '"%s"' % blob.sha256),
            ("X-Linked-Size", str(blob.size)),
            ("X-Xet-Hash", blob.xet_hash),
            ("X-Xet-Refresh-Route", "/api/%ss/%s/xet-read-token/%s" % (repo.type, repo.id, sha)),
            ("Link", '<%s>; rel="xet-auth", <%s/v1/reconstructions/%s>; rel="xet-reconstruction-info"'
             % (token_route, st.cdn_base, blob.xet_hash)),
            ("Accept-Ranges", "bytes"),
        ]
        return self.send(302, headers, body, ctype="text/plain; charset=utf-8")


class CdnHandler(Handler):
    role = "cdn"

    def route(self):
        st = self.state
        u = urlsplit(self.path)
        segs = [s for s in u.path.split("/") if s]
        q = parse_qs(u.query)
        if len(segs) != 2 or segs[0] != "xet-bridge" or self.command not in ("GET", "HEAD"):
            return self.send(404, body=b"<Error><Code>NoSuchKey</Code></Error>", ctype="application/xml")
        blob = st.by_sha256.get(segs[1])
        try:
            expires = int(q["X-Amz-Date"][0])
            ok = hmac.compare_digest(q["X-Amz-Signature"][0], st.sign(segs[1], expires)) and expires > time.time()
        except (KeyError, ValueError):
            ok = False
        if blob is None or not ok:
            return self.send(403, body=b"<Error><Code>AccessDenied</Code><Message>Request has expired or signature "
                                       b"does not match</Message></Error>", ctype="application/xml")
        disp = q.get("response-content-disposition", [None])[0]
        headers = [("ETag", '"%s-%d"' % (hashlib.md5(blob.sha256.encode()).hexdigest(), 1 + blob.size // (64 * MiB))),
                   ("Last-Modified", "Sun, 01 Nov 2026 10:00:00 GMT"), ("Cache-Control", "public, max-age=604800")]
        if disp:
            headers.append(("Content-Disposition", disp))
        with st.lock:
            rate, corrupt = st.cdn_rate, blob.sha256 in st.corrupt
        return self.send_range(blob, headers, rate, corrupt=corrupt)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0, help="Hub port (0: any free one)")
    ap.add_argument("--cdn-port", type=int, default=0, help="CDN port (0: any free one)")
    ap.add_argument("--ports-file", help="write {\"hub\": PORT, \"cdn\": PORT} here once listening")
    ap.add_argument("--data-dir", required=True, help="where the generated LFS contents are kept (reused)")
    ap.add_argument("--big-mib", type=int, default=0, help="add acme/big-model with two LFS files of this many MiB")
    ap.add_argument("--cdn-rate", type=int, default=0, help="per-connection CDN rate, bytes/s (0 = unlimited)")
    a = ap.parse_args()

    state = State(build_repos(a.data_dir, a.big_mib))
    state.cdn_rate = a.cdn_rate
    hub_cls = type("H", (HubHandler,), {"state": state})
    cdn_cls = type("C", (CdnHandler,), {"state": state})
    ThreadingHTTPServer.daemon_threads = True
    ThreadingHTTPServer.request_queue_size = 64
    hub = ThreadingHTTPServer((a.host, a.port), hub_cls)
    cdn = ThreadingHTTPServer((a.host, a.cdn_port), cdn_cls)
    state.hub_base = "http://%s:%d" % (a.host, hub.server_address[1])
    state.cdn_base = "http://%s:%d" % (a.host, cdn.server_address[1])
    threading.Thread(target=cdn.serve_forever, daemon=True).start()
    ports = {"hub": hub.server_address[1], "cdn": cdn.server_address[1], "pid": os.getpid()}
    if a.ports_file:
        tmp = a.ports_file + ".tmp"
        with open(tmp, "w") as f:
            json.dump(ports, f)
        os.replace(tmp, a.ports_file)
    print("fakehub: hub %s cdn %s" % (state.hub_base, state.cdn_base), flush=True)
    try:
        hub.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    import signal
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
    main()
