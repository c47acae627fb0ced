#!/usr/bin/env bash
# `make dist`: every release artifact for x86-64 Linux (glibc 2.17+) into dist/, from a clean
# checkout. Needs what `make test` needs (cargo, Python 3.9+, Node 20+ with npm, JDK 17 and
# Maven); the rest (maturin, zig via the `ziglang` wheel, cargo-zigbuild, auditwheel) is
# installed from PyPI into target/dist-tools. Zig links against glibc 2.17's symbols, so
# the wheel is manylinux2014 and the .node / .so load on the same systems, without Docker.
#
#   dist/ferrymq-V-cp39-abi3-manylinux_2_17_x86_64...whl   Python 3.9+ (abi3), stubs, py.typed
#   dist/ferrymq-V.tar.gz                                  the sdist (builds with Rust anywhere)
#   dist/ferrymq-V.tgz, dist/ferrymq-linux-x64-gnu-V.tgz   npm: the JS package and its addon
#   dist/ferrymq-V.jar, -sources.jar, -javadoc.jar, .pom   Maven dev.ferrymq:ferrymq:V
#   dist/*.cdx.json                                        a CycloneDX SBOM per artifact
#   dist/SHA256SUMS
# The other platforms are built by .github/workflows/release.yml with the same scripts.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
TOOLS="$ROOT/target/dist-tools"
# cargo-zigbuild keeps symlinks to its own binary (`ar`, `lib`) in the user's cache and
# never refreshes them: a cache made by another checkout's tools points at a binary that
# may be gone, and every C build (SQLite) then fails. The cache lives with the tools.
export XDG_CACHE_HOME="$TOOLS/cache"
TRIPLE=x86_64-unknown-linux-gnu
GLIBC=2.17
REL="$CARGO_TARGET_DIR/$TRIPLE/release"
DIST="$ROOT/dist"
PYTHON="${PYTHON:-python3}"
# SQLCipher's crypto: OpenSSL built from source once (openssl-src, with zig as its C
# compiler; feature vendored-openssl) and linked statically into every artifact, so none
# needs the user's libcrypto or a newer glibc than 2.17.
# Release builds strip debug info by default, which zig's linker turns into stripping the
# whole symbol table: uniffi-bindgen then finds no UNIFFI_META_* symbols to generate the
# Kotlin layer from. So link unstripped, generate from that, and strip the copies that ship
# (the dynamic symbols Node, JNA and CPython look up stay).
export CARGO_PROFILE_RELEASE_STRIP=none
shipped() { # shipped LIB DEST: a stripped copy
    cp "$1" "$2"
    if command -v strip >/dev/null; then strip --strip-unneeded "$2"; else echo "no strip: $2 keeps its symbols"; fi
}

step() { printf '\n== %s (%ss)\n' "$1" "$SECONDS"; }

step "version"
"$PYTHON" scripts/dist/version.py check
VERSION="$("$PYTHON" scripts/dist/version.py)"

step "build tools (target/dist-tools)"
if ! "$TOOLS/bin/python" -c 'import sys' 2>/dev/null; then
    "$PYTHON" -m venv "$TOOLS"
fi
"$TOOLS/bin/pip" install -q --disable-pip-version-check -r scripts/dist/requirements.txt
export PATH="$TOOLS/bin:$PATH"

rm -rf "$DIST"
mkdir -p "$DIST"

step "native libraries for Node and the JVM (cargo zigbuild, glibc $GLIBC)"
cargo zigbuild -q --release --locked --target "$TRIPLE.$GLIBC" -p ferrymq-node -p ferrymq-kotlin \
    --features ferrymq-node/vendored-openssl,ferrymq-kotlin/vendored-openssl

step "Python wheel (maturin --zig, manylinux2014) and sdist"
# Its own target dir: maturin's zig wrapper differs from cargo-zigbuild's, and sharing one
# would rebuild SQLite (and all above it) each time the other tool ran.
# OpenSSL: the static one the step above built (the same zig, the same glibc), rather
# than a second build from source.
# libsqlite3-sys asks for `-lcrypto` as a dynamic library and zig will not fall back to
# an archive, so the directory it is given holds a libcrypto.so that is a linker script
# naming the archive: the linker pulls in the static code, and no artifact needs a
# libcrypto (auditwheel below would refuse the wheel otherwise).
OSSL="$(ls -d "$CARGO_TARGET_DIR/$TRIPLE"/release/build/openssl-sys-*/out/openssl-build/install | head -n 1)"
[ -f "$OSSL/lib/libcrypto.a" ] || { echo "no static libcrypto under $OSSL" >&2; exit 1; }
CRYPTO="$CARGO_TARGET_DIR/dist-stage/openssl"
mkdir -p "$CRYPTO"
echo "INPUT($OSSL/lib/libcrypto.a)" > "$CRYPTO/libcrypto.so"
CARGO_TARGET_DIR="$CARGO_TARGET_DIR/dist-python" OPENSSL_LIB_DIR="$CRYPTO" OPENSSL_INCLUDE_DIR="$OSSL/include" \
    maturin build -q --release --locked --strip --zig --compatibility manylinux2014 -i python3 \
    -m bindings-python/Cargo.toml -o "$DIST"
maturin sdist -m bindings-python/Cargo.toml -o "$DIST"
audit="$(auditwheel show "$DIST"/ferrymq-"$VERSION"-*.whl)"
echo "$audit"
tr '\n' ' ' <<< "$audit" | grep -q 'consistent with the following platform tag: *"manylinux_2_17_x86_64"' ||
    { echo "the wheel is not manylinux_2_17" >&2; exit 1; }

step "npm packages"
STAGE="$CARGO_TARGET_DIR/dist-stage/npm"
LIBS="$CARGO_TARGET_DIR/dist-stage/lib"
mkdir -p "$LIBS"
shipped "$REL/libferrymq_node.so" "$LIBS/libferrymq_node.so"
shipped "$REL/libferrymq_uniffi.so" "$LIBS/libferrymq_uniffi.so"
node scripts/dist/node-package.js "$STAGE" "linux-x64-gnu=$LIBS/libferrymq_node.so"
for dir in "$STAGE"/*/; do
    (cd "$dir" && npm pack -q --pack-destination "$DIST" >/dev/null)
done
# npm names a tarball after the package (ferrymq-V.tgz, ferrymq-linux-x64-gnu-V.tgz).

step "Maven artifacts (jar with linux-x86-64/libferrymq_uniffi.so, sources, Dokka javadoc)"
bash bindings-kotlin/build.sh dist "$REL/uniffi-bindgen" "$REL/libferrymq_uniffi.so" \
    "linux-x86-64=$LIBS/libferrymq_uniffi.so"
for suffix in .jar -sources.jar -javadoc.jar; do
    cp "bindings-kotlin/target/ferrymq-$VERSION$suffix" "$DIST/"
done
cp bindings-kotlin/pom.xml "$DIST/ferrymq-$VERSION.pom"

step "SBOMs (CycloneDX)"
sbom() { "$PYTHON" scripts/dist/sbom.py --version "$VERSION" "$@"; }
for f in "$DIST"/ferrymq-"$VERSION"-*.whl "$DIST/ferrymq-$VERSION.tar.gz"; do
    sbom --artifact "$f" --name ferrymq --purl "pkg:pypi/ferrymq@$VERSION" --crate ferrymq-python --out "$f.cdx.json"
done
sbom --artifact "$DIST/ferrymq-$VERSION.tgz" --name ferrymq --purl "pkg:npm/ferrymq@$VERSION" \
    --crate ferrymq-node --out "$DIST/ferrymq-$VERSION.tgz.cdx.json"
sbom --artifact "$DIST/ferrymq-linux-x64-gnu-$VERSION.tgz" --name ferrymq-linux-x64-gnu \
    --purl "pkg:npm/ferrymq-linux-x64-gnu@$VERSION" --crate ferrymq-node \
    --out "$DIST/ferrymq-linux-x64-gnu-$VERSION.tgz.cdx.json"
sbom --artifact "$DIST/ferrymq-$VERSION.jar" --name ferrymq --purl "pkg:maven/dev.ferrymq/ferrymq@$VERSION" \
    --crate ferrymq-kotlin --merge bindings-kotlin/target/ferrymq-maven.cdx.json \
    --out "$DIST/ferrymq-$VERSION.jar.cdx.json"

step "SHA256SUMS"
(cd "$DIST" && sha256sum -- * > SHA256SUMS)

step "done"
(cd "$DIST" && ls -l | awk 'NR > 1 { printf "%10d  %s\n", $5, $9 }')
