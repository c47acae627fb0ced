#!/usr/bin/env bash
# The one entry point of the Kotlin binding.
#   bash bindings-kotlin/build.sh test     debug cdylib, generated Kotlin, mvn test (JUnit 5);
#                                          extra arguments go to mvn (-Dtest=ScenariosTest)
#   bash bindings-kotlin/build.sh bench    release cdylib, Kotlin W1/W3 beside the Rust core's
#   bash bindings-kotlin/build.sh install  release cdylib, generated Kotlin, and
#                                          `mvn install -DskipTests`: puts
#                                          dev.ferrymq:ferrymq:0.1.0 in the local Maven
#                                          repository (~/.m2), the cdylib inside the jar
#                                          under linux-x86-64/ (JNA loads it from there)
# Needs cargo, JDK 17+ and Maven (dependencies come from Maven Central). FERRYMQ_PYTHON
# names a Python with the ferrymq wheel installed: the cross-language test needs it and
# fails without it.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
CARGO="${CARGO:-cargo}"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
MVN=(mvn -q -B -f "$HERE/pom.xml")

# Builds the cdylib and uniffi-bindgen in `profile`, regenerates the Kotlin layer from the
# cdylib (library mode), and puts the cdylib where JNA finds it on the classpath.
prepare() {
    local profile="$1" dir flags=()
    if [ "$profile" = release ]; then flags=(--release); dir=release; else dir=debug; fi
    (cd "$ROOT" && "$CARGO" build -q -p ferrymq-kotlin "${flags[@]}")
    local lib="$TARGET/$dir/libferrymq_uniffi.so"
    local gen="$HERE/target/generated-sources/uniffi"
    rm -rf "$gen"
    mkdir -p "$gen" "$HERE/target/native/linux-x86-64"
    (cd "$HERE" && "$TARGET/$dir/uniffi-bindgen" generate "$lib" --language kotlin --no-format --out-dir "$gen" >/dev/null)
    cp "$lib" "$HERE/target/native/linux-x86-64/libferrymq_uniffi.so"
    # Maven copies resources only when newer: make sure the cdylib just built is the one used.
    rm -f "$HERE/target/classes/linux-x86-64/libferrymq_uniffi.so"
}

case "${1:-test}" in
    test)
        prepare debug
        FERRYMQ_PYTHON="${FERRYMQ_PYTHON:-}" "${MVN[@]}" test "${@:2}"
        ;;
    bench)
        prepare release
        (cd "$ROOT" && "$CARGO" build -q --release -p ferrymq-bench)
        "${MVN[@]}" test-compile
        "${MVN[@]}" exec:java -Dexec.args="--rust-bench $TARGET/release/ferrymq-bench ${BENCH_ARGS:-}"
        ;;
    install)
        prepare release
        "${MVN[@]}" install -DskipTests
        ;;
    *)
        echo "usage: $0 test|bench|install" >&2
        exit 2
        ;;
esac
