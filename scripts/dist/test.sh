#!/usr/bin/env bash
# `make test-dist`: installs dist/ the way a user does, on what behaves like a machine
# without Rust, and runs the README's examples plus a cross-language publish/receive.
#   - a temporary HOME (empty pip/npm/Maven caches, no ~/.m2, no ~/.cargo), the artifacts
#     copied out of the tree, every step run outside the tree;
#   - PATH=/usr/local/bin:/usr/bin:/bin, checked to have no cargo or rustc; CARGO_*,
#     RUSTUP_*, FERRYMQ_NODE_ADDON, PYTHONPATH and NODE_PATH unset;
#   - Python: a fresh venv per interpreter (3.9 and 3.13 from pyenv's versions or
#     /usr/bin, each skipped with a message when absent), `pip install --no-index` of the
#     wheel (nothing else may be fetched, nothing compiled); the README's example;
#   - Node: an empty npm project, `npm install --offline` of the two tarballs; the README's
#     example as an ES module, a CommonJS `require`, and the loader's error without the
#     platform package;
#   - JVM: an empty Maven project whose one dependency is dev.ferrymq:ferrymq, installed
#     from dist/ into the project's own local repository (the rest from Maven Central);
#     the README's Kotlin example;
#   - cross-language: Python publishes; Node and Kotlin receive and answer; Python
#     receives the answers.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VERSION="$(python3 "$ROOT/scripts/dist/version.py")"
[ -f "$ROOT/dist/SHA256SUMS" ] || { echo "test-dist: no dist/ (run make dist first)" >&2; exit 1; }
REAL_HOME="$HOME"
PYENV_VERSIONS="${PYENV_ROOT:-$REAL_HOME/.pyenv}/versions"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/ferrymq-test-dist.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
step() { printf '\n== %s (%ss)\n' "$1" "$SECONDS"; }

# The README's code block that follows a heading, e.g. block "## Python in ten lines" python.
block() {
    awk -v head="$1" -v lang="$2" '
        $0 == head { found = 1; next }
        found && $0 == "```" lang { inside = 1; next }
        inside && $0 == "```" { exit }
        inside { print }' "$ROOT/README.md"
}

step "the user's machine: $WORK"
mkdir -p "$WORK/home" "$WORK/dist" "$WORK/examples"
cp "$ROOT"/dist/* "$WORK/dist/"
(cd "$WORK/dist" && sha256sum -c --quiet SHA256SUMS)
block "## Python in ten lines" python > "$WORK/examples/readme.py"
block "## Node in ten lines" js > "$WORK/examples/readme.mjs"
block "## Kotlin in a dozen lines" kotlin > "$WORK/examples/Readme.kt"
for f in readme.py readme.mjs Readme.kt; do
    [ -s "$WORK/examples/$f" ] || { echo "test-dist: no README example for $f" >&2; exit 1; }
done
KOTLIN_VERSION="$(sed -n 's:.*<kotlin.version>\(.*\)</kotlin.version>.*:\1:p' "$WORK/dist/ferrymq-$VERSION.pom")"
PY_CANDIDATES=()
# FERRYMQ_TEST_PYTHONS="/path/python3.9 /path/python3.13" names the interpreters (CI).
read -r -a PY_CANDIDATES <<< "${FERRYMQ_TEST_PYTHONS:-}"
for v in 3.9 3.13; do
    [ -z "${FERRYMQ_TEST_PYTHONS:-}" ] || break
    found=""
    for p in "$PYENV_VERSIONS"/$v.*/bin/python$v /usr/bin/python$v /usr/local/bin/python$v; do
        if [ -x "$p" ] && "$p" -c 'import venv' 2>/dev/null; then found="$p"; break; fi
    done
    if [ -n "$found" ]; then PY_CANDIDATES+=("$found"); else echo "SKIP Python $v: no interpreter found (pyenv versions, /usr/bin, /usr/local/bin)"; fi
done
# The distribution's own Python too (Debian's /usr/bin/python3), when it is another version.
if [ -z "${FERRYMQ_TEST_PYTHONS:-}" ] && [ -x /usr/bin/python3 ] && /usr/bin/python3 -c 'import venv, ensurepip' 2>/dev/null &&
    /usr/bin/python3 -c 'import sys; sys.exit(sys.version_info[:2] in ((3, 9), (3, 13)))'; then
    PY_CANDIDATES+=(/usr/bin/python3)
fi
[ ${#PY_CANDIDATES[@]} -gt 0 ] || PY_CANDIDATES=("$(command -v python3)")

export HOME="$WORK/home"
export PATH=/usr/local/bin:/usr/bin:/bin
export npm_config_update_notifier=false
unset CARGO CARGO_HOME CARGO_TARGET_DIR RUSTUP_HOME RUSTUP_TOOLCHAIN RUSTC FERRYMQ_NODE_ADDON \
    PYTHONPATH NODE_PATH VIRTUAL_ENV MAVEN_OPTS PYENV_VERSION 2>/dev/null || true
for tool in cargo rustc rustup; do
    if command -v "$tool" >/dev/null; then
        echo "test-dist: $tool is on PATH ($(command -v "$tool")); this test needs a machine without Rust" >&2
        exit 1
    fi
done
cd "$WORK"

step "Python: fresh venvs, pip install the wheel"
for py in "${PY_CANDIDATES[@]}"; do
    venv="$WORK/venv-$("$py" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
    "$py" -m venv "$venv"
    start=$EPOCHREALTIME
    "$venv/bin/pip" install -q --no-index --disable-pip-version-check "$WORK"/dist/ferrymq-"$VERSION"-*.whl
    end=$EPOCHREALTIME
    echo "$("$venv/bin/python" --version): pip install of the wheel took $(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.2f", b - a }') s"
    "$venv/bin/python" - "$WORK" <<'EOF'
import os, sys, ferrymq, ferrymq._native
pkg = os.path.dirname(ferrymq.__file__)
assert pkg.startswith(sys.argv[1]), f"ferrymq imported from {pkg}, not the venv"
for f in ("py.typed", "_native.pyi"):
    assert os.path.exists(os.path.join(pkg, f)), f"{f} missing from the wheel"
print("imported", ferrymq.__name__, "from", pkg)
EOF
    mkdir -p "$venv/run" && (cd "$venv/run" && "$venv/bin/python" "$WORK/examples/readme.py")
    # The operator command comes with the wheel (console script, linked into _native).
    "$venv/bin/ferrymq" --help >/dev/null
    rc=0; "$venv/bin/ferrymq" --db "$venv/run/missing.db" stats 2>/dev/null || rc=$?
    [ "$rc" -eq 3 ] || { echo "test-dist: ferrymq on a missing file exited $rc, not 3" >&2; exit 1; }
    echo "pip: $("$venv/bin/ferrymq" --version) runs"
done
PY="$venv/bin/python"
"$PY" - <<'EOF'
from importlib.metadata import metadata
m = metadata("ferrymq")
for field in ("License", "Requires-Python", "Summary"):
    assert m.get(field), f"wheel metadata has no {field}"
assert m.get_all("Project-URL"), "wheel metadata has no Project-URL"
assert any(c.startswith("Typing") for c in m.get_all("Classifier")), "no classifiers"
print("metadata:", m["Name"], m["Version"], m["License"], "requires-python", m["Requires-Python"])
EOF

step "Node: an empty project, npm install of the two tarballs"
mkdir -p "$WORK/node-app" && cd "$WORK/node-app"
npm init -y >/dev/null
npm install --offline --no-audit --no-fund --loglevel=error \
    "$WORK/dist/ferrymq-$VERSION.tgz" "$WORK/dist/ferrymq-linux-x64-gnu-$VERSION.tgz"
test -f node_modules/ferrymq/index.d.ts
cp "$WORK/examples/readme.mjs" .
node readme.mjs
node -e '
const path = require("node:path")
const { Queue, FerrymqError } = require("ferrymq")
const where = require.resolve("ferrymq")
if (!where.startsWith(process.cwd())) throw new Error("ferrymq resolved to " + where)
const q = new Queue(path.join(process.cwd(), "cjs.db"))
q.subscribe("g", "t"); q.publish("t", "from require")
q.receive("g", { max: 1 }).then(async ([d]) => {
  if (d.payload.toString() !== "from require") throw new Error("got " + d.payload)
  d.ack(); await q.close(); console.log("require(\"ferrymq\") works, FerrymqError:", typeof FerrymqError)
})'
# The operator command comes with the npm package (bin, linked into the addon).
node_modules/.bin/ferrymq --help >/dev/null
echo "npm: $(node_modules/.bin/ferrymq --version) runs"
# Without the platform package the loader must say which platform it looked for.
mkdir -p "$WORK/node-noaddon/node_modules" && cp -r node_modules/ferrymq "$WORK/node-noaddon/node_modules/"
if (cd "$WORK/node-noaddon" && node -e 'require("ferrymq")' 2> err.txt); then
    echo "test-dist: ferrymq loaded without its platform package" >&2; exit 1
fi
grep -q "linux-x64-gnu" "$WORK/node-noaddon/err.txt" ||
    { cat "$WORK/node-noaddon/err.txt"; echo "test-dist: the loader's error does not name the platform" >&2; exit 1; }
echo "without ferrymq-linux-x64-gnu: $(grep -o 'ferrymq: no native addon[^.]*' "$WORK/node-noaddon/err.txt")"

step "JVM: an empty Maven project depending on dev.ferrymq:ferrymq:$VERSION"
M2="$WORK/m2"
MVN=(mvn -B -q -Dstyle.color=never -Dmaven.repo.local="$M2")
# `mvn install` from dist/ into the project's own local repository.
"${MVN[@]}" org.apache.maven.plugins:maven-install-plugin:3.1.4:install-file \
    -Dfile="$WORK/dist/ferrymq-$VERSION.jar" -DpomFile="$WORK/dist/ferrymq-$VERSION.pom" \
    -Dsources="$WORK/dist/ferrymq-$VERSION-sources.jar" -Djavadoc="$WORK/dist/ferrymq-$VERSION-javadoc.jar"
mkdir -p "$WORK/jvm-app/src/main/kotlin" && cd "$WORK/jvm-app"
cp "$WORK/examples/Readme.kt" src/main/kotlin/Readme.kt
cat > src/main/kotlin/Main.kt <<'EOF'
import ferrymq.Queue
import kotlinx.coroutines.runBlocking
import kotlin.time.Duration.Companion.seconds

// readme DB: the README's example. cross DB: receive Python's three messages, answer once.
fun main(args: Array<String>) {
    when (args[0]) {
        "readme" -> payments(args[1])
        "cross" -> runBlocking {
            Queue.open(args[1]).use { q ->
                val got = q.receive("jvm", max = 10, wait = 5.seconds)
                val texts = got.map { String(it.payload) }.sorted()
                check(texts == listOf("py-1", "py-2", "py-3")) { "jvm received $texts" }
                got.forEach { it.ack() }
                q.publish("back", "jvm-done")
                println("jvm received $texts")
            }
        }
    }
}
EOF
cat > pom.xml <<EOF
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>example</groupId>
  <artifactId>jvm-app</artifactId>
  <version>1</version>
  <properties>
    <project.build.sourceEncoding>UTF-8</project.build.sourceEncoding>
    <kotlin.compiler.jvmTarget>17</kotlin.compiler.jvmTarget>
    <kotlin.compiler.daemon>false</kotlin.compiler.daemon>
  </properties>
  <dependencies>
    <dependency>
      <groupId>dev.ferrymq</groupId>
      <artifactId>ferrymq</artifactId>
      <version>$VERSION</version>
    </dependency>
  </dependencies>
  <build>
    <sourceDirectory>src/main/kotlin</sourceDirectory>
    <plugins>
      <plugin>
        <groupId>org.jetbrains.kotlin</groupId>
        <artifactId>kotlin-maven-plugin</artifactId>
        <version>$KOTLIN_VERSION</version>
        <executions><execution><id>compile</id><goals><goal>compile</goal></goals></execution></executions>
      </plugin>
      <plugin>
        <groupId>org.codehaus.mojo</groupId>
        <artifactId>exec-maven-plugin</artifactId>
        <version>3.5.1</version>
        <configuration><mainClass>MainKt</mainClass><cleanupDaemonThreads>false</cleanupDaemonThreads></configuration>
      </plugin>
    </plugins>
  </build>
</project>
EOF
"${MVN[@]}" compile
"${MVN[@]}" exec:java -Dexec.args="readme $WORK/jvm-app/bank.db"
echo "the README's Kotlin example ran against dev.ferrymq:ferrymq:$VERSION from $M2"

step "cross-language: Python publishes, Node and Kotlin receive and answer, Python receives"
DB="$WORK/cross.db"
"$PY" - "$DB" <<'EOF'
import sys, ferrymq
with ferrymq.Queue(sys.argv[1]) as q:
    for g in ("node", "jvm"):
        q.subscribe(g, "cross")
    q.subscribe("python", "back")
    for i in (1, 2, 3):
        q.publish("cross", f"py-{i}".encode(), key=f"k{i}")
print("python published py-1..3")
EOF
(cd "$WORK/node-app" && node -e '
const { Queue } = require("ferrymq")
const q = new Queue(process.argv[1])
q.receive("node", { max: 10, waitMs: 5000 }).then(async (ds) => {
  const texts = ds.map((d) => d.payload.toString()).sort()
  if (texts.join() !== "py-1,py-2,py-3") throw new Error("node received " + texts)
  ds.forEach((d) => d.ack()); q.publish("back", "node-done"); await q.close()
  console.log("node received", texts.join(" "))
})' "$DB")
(cd "$WORK/jvm-app" && "${MVN[@]}" exec:java -Dexec.args="cross $DB")
"$PY" - "$DB" <<'EOF'
import sys, ferrymq
with ferrymq.Queue(sys.argv[1]) as q:
    got = sorted(d.payload.decode() for d in q.receive("python", max=10, wait=5.0))
    assert got == ["jvm-done", "node-done"], got
print("python received", " ".join(got))
EOF

step "test-dist passed"
