#!/usr/bin/env python3
"""Builds an OCI image layout for the registry tests (protocol §16): random gzip layers of the given sizes (MiB) and
an image config, tagged v1 in index.json. Usage: oci_layout.py DIR MIB [MIB...]"""
import gzip, hashlib, io, json, os, sys, tarfile

root, sizes = sys.argv[1], [int(s) for s in sys.argv[2:]] or [8]
os.makedirs(root + "/blobs/sha256")


def put(b):
    d = hashlib.sha256(b).hexdigest()
    with open(f"{root}/blobs/sha256/{d}", "wb") as f:
        f.write(b)
    return {"digest": "sha256:" + d, "size": len(b)}


layers, diffs = [], []
for n, mib in enumerate(sizes):
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as t:
        info = tarfile.TarInfo(f"layer{n}.bin")
        info.size = mib << 20
        t.addfile(info, io.BytesIO(os.urandom(info.size)))
    diffs.append("sha256:" + hashlib.sha256(raw.getvalue()).hexdigest())
    layers.append(dict(put(gzip.compress(raw.getvalue(), compresslevel=1, mtime=0)),
                       mediaType="application/vnd.oci.image.layer.v1.tar+gzip"))
config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": diffs},
                     "config": {}}).encode()
manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                       "config": dict(put(config), mediaType="application/vnd.oci.image.config.v1+json"),
                       "layers": layers}).encode()
m = dict(put(manifest), mediaType="application/vnd.oci.image.manifest.v1+json",
         annotations={"org.opencontainers.image.ref.name": "v1"})
with open(root + "/index.json", "w") as f:
    json.dump({"schemaVersion": 2, "manifests": [m]}, f)
with open(root + "/oci-layout", "w") as f:
    json.dump({"imageLayoutVersion": "1.0.0"}, f)
