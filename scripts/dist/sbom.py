#!/usr/bin/env python3
"""Writes a CycloneDX 1.5 JSON SBOM for one artifact of `make dist`.

The artifacts ship no registry dependency of their own except the jar's Maven ones; what
they carry is the Rust code linked into the native library (the ferrymq core, SQLite via
libsqlite3-sys `bundled`, tokio, pyo3 / napi / uniffi, ...). Those crates are read from
`cargo metadata` (the resolved graph of the binding crate: normal dependencies only, for
the given target) with their SHA-256 checksums from Cargo.lock, and listed as components
of the artifact. `--merge BOM.json` adds the components of a BOM made by a registry's own
CycloneDX tool (cyclonedx-maven-plugin for the jar's Maven dependencies).

usage: sbom.py --artifact FILE --name NAME --version V --purl PURL --crate ferrymq-python
               [--target TRIPLE] [--merge BOM.json] --out OUT.cdx.json
"""

import argparse
import datetime
import hashlib
import json
import os
import subprocess
import uuid


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def lock_checksums(root):
    """name@version -> checksum, from Cargo.lock (a flat TOML list; no TOML parser needed)."""
    sums, name, version, in_package = {}, None, None, False
    with open(os.path.join(root, "Cargo.lock")) as f:
        for line in f:
            line = line.strip()
            if line.startswith("["):
                in_package = line == "[[package]]"
                name = version = None
            elif not in_package:
                continue
            elif line.startswith("name = "):
                name = line.split('"')[1]
            elif line.startswith("version = "):
                version = line.split('"')[1]
            elif line.startswith("checksum = "):
                sums[f"{name}@{version}"] = line.split('"')[1]
    return sums


def rust_components(root, crate, target):
    meta = json.loads(
        subprocess.check_output(
            ["cargo", "metadata", "--format-version", "1", "--locked", "--filter-platform", target],
            cwd=root,
        )
    )
    packages = {p["id"]: p for p in meta["packages"]}
    nodes = {n["id"]: n for n in meta["resolve"]["nodes"]}
    start = next(p["id"] for p in meta["packages"] if p["name"] == crate)
    # Normal dependencies only: build scripts and proc macros run at build time and are
    # not in the library (proc macros are kept: their expansion is).
    seen, todo = set(), [start]
    while todo:
        pid = todo.pop()
        for dep in nodes[pid]["deps"]:
            if any(k["kind"] is None for k in dep["dep_kinds"]) and dep["pkg"] not in seen:
                seen.add(dep["pkg"])
                todo.append(dep["pkg"])
    sums = lock_checksums(root)
    out = []
    for pid in sorted(seen, key=lambda i: (packages[i]["name"], packages[i]["version"])):
        p = packages[pid]
        c = {
            "type": "library",
            "bom-ref": f"pkg:cargo/{p['name']}@{p['version']}",
            "name": p["name"],
            "version": p["version"],
            "purl": f"pkg:cargo/{p['name']}@{p['version']}",
        }
        if p.get("license"):
            c["licenses"] = [{"expression": p["license"]}]
        if p.get("description"):
            c["description"] = " ".join(p["description"].split())
        checksum = sums.get(f"{p['name']}@{p['version']}")
        if checksum:
            c["hashes"] = [{"alg": "SHA-256", "content": checksum}]
        if p["source"] is None:
            c["description"] = "ferrymq's own crate (" + c.get("description", "") + ")"
        out.append(c)
    return out


def main():
    ap = argparse.ArgumentParser()
    for a in ("--artifact", "--name", "--version", "--purl", "--crate", "--out"):
        ap.add_argument(a, required=True)
    ap.add_argument("--target", default="x86_64-unknown-linux-gnu")
    ap.add_argument("--merge")
    ap.add_argument("--license", default="Apache-2.0")
    args = ap.parse_args()
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

    components = rust_components(root, args.crate, args.target)
    if args.merge:
        with open(args.merge) as f:
            other = json.load(f)
        refs = {c["bom-ref"] for c in components}
        components += [c for c in other.get("components", []) if c.get("bom-ref") not in refs]
    bom = {
        "bomFormat": "CycloneDX",
        "specVersion": "1.5",
        "serialNumber": f"urn:uuid:{uuid.uuid4()}",
        "version": 1,
        "metadata": {
            "timestamp": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "tools": {"components": [{"type": "application", "name": "ferrymq scripts/dist/sbom.py"}]},
            "component": {
                "type": "library",
                "bom-ref": args.purl,
                "name": args.name,
                "version": args.version,
                "purl": args.purl,
                "licenses": [{"expression": args.license}],
                "hashes": [{"alg": "SHA-256", "content": sha256(args.artifact)}],
                "properties": [{"name": "ferrymq:file", "value": os.path.basename(args.artifact)}],
            },
        },
        "components": components,
        "dependencies": [{"ref": args.purl, "dependsOn": [c["bom-ref"] for c in components if "bom-ref" in c]}],
    }
    with open(args.out, "w") as f:
        json.dump(bom, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
