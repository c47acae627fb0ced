#!/usr/bin/env bash
# The Android library: dev.ferrymq:ferrymq-android:VERSION as an AAR, assembled without
# Gradle from the JVM jar (the same Kotlin classes; JNA finds the library through
# System.loadLibrary on Android) and the cdylibs cargo-ndk built per ABI:
#   bash scripts/dist/android-aar.sh JAR JNILIBS OUTDIR
#     JAR      dist/ferrymq-VERSION.jar
#     JNILIBS  a folder of ABI folders: arm64-v8a/libferrymq_uniffi.so, x86_64/libferrymq_uniffi.so
# writes OUTDIR/ferrymq-android-VERSION.aar and .pom. The POM depends on JNA's Android AAR
# (net.java.dev.jna:jna, type aar), which carries libjnidispatch.so for each ABI.
# Run by .github/workflows/release.yml (the NDK is not on the development machines).
set -euo pipefail
JAR="$(realpath "$1")"
JNILIBS="$(realpath "$2")"
OUT="$(realpath "$3")"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VERSION="$(python3 "$ROOT/scripts/dist/version.py")"
pom() { sed -n "s:.*<$1>\(.*\)</$1>.*:\1:p" "$ROOT/bindings-kotlin/pom.xml" | head -1; }

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$WORK/classes" "$WORK/aar/jni"
(cd "$WORK/classes" && unzip -q "$JAR" && rm -rf linux-* darwin-* win32-* META-INF/maven)
(cd "$WORK/classes" && zip -q -r -X "$WORK/aar/classes.jar" .)
for abi in "$JNILIBS"/*/; do
    abi="$(basename "$abi")"
    mkdir -p "$WORK/aar/jni/$abi"
    cp "$JNILIBS/$abi/libferrymq_uniffi.so" "$WORK/aar/jni/$abi/"
done
cat > "$WORK/aar/AndroidManifest.xml" <<'EOF'
<?xml version="1.0" encoding="utf-8"?>
<manifest xmlns:android="http://schemas.android.com/apk/res/android" package="dev.ferrymq">
    <uses-sdk android:minSdkVersion="24" />
</manifest>
EOF
: > "$WORK/aar/R.txt"
mkdir -p "$OUT"
rm -f "$OUT/ferrymq-android-$VERSION.aar"
(cd "$WORK/aar" && zip -q -r -X "$OUT/ferrymq-android-$VERSION.aar" .)

cat > "$OUT/ferrymq-android-$VERSION.pom" <<EOF
<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>dev.ferrymq</groupId>
  <artifactId>ferrymq-android</artifactId>
  <version>$VERSION</version>
  <packaging>aar</packaging>
  <name>ferrymq for Android</name>
  <description>Kotlin binding of ferrymq for Android (arm64-v8a, x86_64): a durable message queue in one SQLite file</description>
  <url>https://example.invalid/ferrymq</url>
  <licenses><license><name>Apache-2.0</name><url>https://www.apache.org/licenses/LICENSE-2.0.txt</url></license></licenses>
  <dependencies>
    <dependency><groupId>org.jetbrains.kotlin</groupId><artifactId>kotlin-stdlib</artifactId><version>$(pom kotlin.version)</version></dependency>
    <dependency><groupId>org.jetbrains.kotlinx</groupId><artifactId>kotlinx-coroutines-core-jvm</artifactId><version>$(pom coroutines.version)</version></dependency>
    <dependency><groupId>net.java.dev.jna</groupId><artifactId>jna</artifactId><version>$(pom jna.version)</version><type>aar</type></dependency>
  </dependencies>
</project>
EOF
echo "wrote $OUT/ferrymq-android-$VERSION.aar ($(cd "$WORK/aar" && find jni -name '*.so' | tr '\n' ' '))"
