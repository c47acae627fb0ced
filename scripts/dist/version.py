#!/usr/bin/env python3
"""The version of every ferrymq package comes from one place: Cargo.toml's
`[workspace.package] version`. The Rust crates and the Python wheel (maturin, `dynamic =
["version"]`) read it from there; npm and Maven cannot, so their files carry a copy that
this script checks and rewrites.

  version.py            prints the version
  version.py check      fails (exit 1), naming each file, when a copy disagrees
  version.py bump X.Y.Z writes X.Y.Z into Cargo.toml and every copy, then checks
"""

import glob
import json
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SEMVER = re.compile(r"^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$")


def read(rel):
    with open(os.path.join(ROOT, rel)) as f:
        return f.read()


def write(rel, text):
    with open(os.path.join(ROOT, rel), "w") as f:
        f.write(text)


# Each copy: (file, regex whose group 2 is the version, with groups 1 and 3 around it).
WORKSPACE = ("Cargo.toml", r'(\[workspace\.package\][^\[]*?\nversion = ")([^"]+)(")')
COPIES = [
    ("bindings-node/package.json", r'(\A\{\s*"name": "ferrymq",\s*"version": ")([^"]+)(")'),
    ("bindings-node/package-lock.json", r'(\A\{\s*"name": "ferrymq",\s*"version": ")([^"]+)(")'),
    ("bindings-node/package-lock.json", r'("": \{\s*"name": "ferrymq",\s*"version": ")([^"]+)(")'),
    ("examples/payment-pipeline/package-lock.json", r'("\.\./\.\./bindings-node": \{\s*"name": "ferrymq",\s*"version": ")([^"]+)(")'),
    ("bindings-kotlin/pom.xml", r"(<artifactId>ferrymq</artifactId>\s*<version>)([^<]+)(</version>)"),
    ("examples/payment-pipeline/production-service/pom.xml", r"(<groupId>dev\.ferrymq</groupId>\s*<artifactId>ferrymq</artifactId>\s*<version>)([^<]+)(</version>)"),
    ("bindings-kotlin/README.md", r"(<artifactId>ferrymq</artifactId><version>)([^<]+)(</version>)"),
] + [
    (os.path.relpath(p, ROOT), r'(\A\{\s*"name": "ferrymq-[a-z0-9-]+",\s*"version": ")([^"]+)(")')
    for p in sorted(glob.glob(os.path.join(ROOT, "bindings-node/npm/*/package.json")))
]
# Prose and commands that name `dev.ferrymq:ferrymq:X.Y.Z` or a dist/ file
# (`ferrymq-X.Y.Z.jar`, `ferrymq-linux-x64-gnu-X.Y.Z.tgz`): every occurrence.
MENTIONS = [
    "README.md",
    "bindings-python/README.md",
    "bindings-node/README.md",
    "bindings-kotlin/README.md",
    "bindings-kotlin/build.sh",
]
MENTION = r"(dev\.ferrymq:ferrymq:|\bferrymq-(?:[a-z][a-z0-9]*-)*)(\d+\.\d+\.\d+)()"
# Files that must keep reading the workspace version instead of carrying one.
INHERIT = [
    ("bindings-python/pyproject.toml", r'dynamic = \["version"\]'),
    ("bindings-python/Cargo.toml", r"version\.workspace = true"),
    ("bindings-node/Cargo.toml", r"version\.workspace = true"),
    ("bindings-kotlin/Cargo.toml", r"version\.workspace = true"),
    ("core/Cargo.toml", r"version\.workspace = true"),
]


def workspace_version():
    m = re.search(WORKSPACE[1], read(WORKSPACE[0]))
    if not m:
        sys.exit("version.py: no [workspace.package] version in Cargo.toml")
    return m.group(2)


def problems(version):
    out = []
    for rel, pattern in COPIES:
        m = re.search(pattern, read(rel))
        if not m:
            out.append(f"{rel}: the version field was not found (pattern {pattern})")
        elif m.group(2) != version:
            out.append(f"{rel}: {m.group(2)} (Cargo.toml says {version})")
    for rel in MENTIONS:
        for m in re.finditer(MENTION, read(rel)):
            if m.group(2) != version:
                out.append(f"{rel}: {m.group(0)} (Cargo.toml says {version})")
    for rel, pattern in INHERIT:
        if not re.search(pattern, read(rel)):
            out.append(f"{rel}: must take the version from the workspace ({pattern!r} not found)")
    return out


def check():
    version = workspace_version()
    bad = problems(version)
    for line in bad:
        print(f"version mismatch: {line}", file=sys.stderr)
    if bad:
        print("fix with: scripts/bump-version " + version, file=sys.stderr)
        sys.exit(1)
    print(f"version {version}: Cargo.toml, pyproject (dynamic), package.json files, pom.xml files and READMEs agree")


def bump(new):
    if not SEMVER.match(new):
        sys.exit(f"version.py: {new!r} is not a version like 1.2.3")
    for rel, pattern in [WORKSPACE] + COPIES:
        text, n = re.subn(pattern, lambda m: m.group(1) + new + m.group(3), read(rel), count=1)
        if n != 1:
            sys.exit(f"version.py: no version field in {rel}")
        write(rel, text)
    for rel in MENTIONS:
        write(rel, re.sub(MENTION, lambda m: m.group(1) + new + m.group(3), read(rel)))
    # Cargo.lock records the workspace members' versions.
    subprocess.check_call(["cargo", "update", "--workspace", "--offline", "--quiet"], cwd=ROOT)
    check()


if __name__ == "__main__":
    if len(sys.argv) == 1:
        print(workspace_version())
    elif sys.argv[1] == "check":
        check()
    elif sys.argv[1] == "bump" and len(sys.argv) == 3:
        bump(sys.argv[2])
    else:
        sys.exit(__doc__)
