# The task file. CI runs `make test` (through .ci/run); the README's two commands are
# `make demo` and `make test`.
CARGO ?= cargo
DEMO_DB ?= ferrymq-demo.db

PYTHON ?= python3
VENV := target/venv-test

.PHONY: demo test lint fmt test-rust examples test-python python-wheel test-node node-addon bench bench-quick bench-python bench-node clean

## The main job: the payment demo on an embedded default db file.
demo:
	$(CARGO) run -q -p ferrymq-examples --bin demo -- $(DEMO_DB)

## Every test: format and lint checks, the Rust suites, every example, the Python and
## Node packages.
test: lint test-rust examples test-python test-node

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

test-rust:
	$(CARGO) test --workspace

# Each example runs on a fresh file so none rots.
examples:
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
	$(CARGO) run -q -p ferrymq-examples --bin demo -- "$$tmp/demo.db" && \
	$(CARGO) run -q -p ferrymq-examples --bin order_outbox -- "$$tmp/outbox.db"

# The wheel, built the way `pip install ./bindings-python` builds it (release, abi3),
# installed in a fresh virtualenv.
python-wheel:
	rm -rf $(VENV) target/wheels
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q maturin pytest mypy
	$(VENV)/bin/maturin build -q --release -m bindings-python/Cargo.toml -o target/wheels
	$(VENV)/bin/pip install -q target/wheels/ferrymq-*.whl

# pytest (incl. a Rust consumer of Python-published messages), mypy --strict on the tests
# and the package, and stubtest of the .pyi against the built module.
test-python: python-wheel
	$(CARGO) build -q -p ferrymq-examples --bin rust_consumer
	cd bindings-python && ../$(VENV)/bin/pytest -q
	cd bindings-python && ../$(VENV)/bin/mypy --strict tests bench
	cd bindings-python && ../$(VENV)/bin/python -m mypy.stubtest ferrymq._native

# The addon, built by the package's own `npm install` (release, scripts/build.js), which
# also installs the dev tools (typescript) the type-check needs.
node-addon:
	cd bindings-node && npm install --no-audit --no-fund --loglevel=error

# node:test (incl. a Node consumer of a Python producer, hence the wheel's venv, and the
# mixed Node/Python/Rust contention run, hence the example binaries) and tsc over
# index.d.ts, the tests and the benchmark.
test-node: node-addon python-wheel
	$(CARGO) build -q -p ferrymq-examples --bins
	cd bindings-node && FERRYMQ_PYTHON=$(CURDIR)/$(VENV)/bin/python npm test --silent
	cd bindings-node && npx tsc -p tsconfig.json

## Benchmarks against bare SQLite (see docs/benchmarks.md).
bench:
	$(CARGO) run --release -p ferrymq-bench

bench-quick:
	$(CARGO) run --release -p ferrymq-bench -- --quick

bench-python: python-wheel
	$(CARGO) build -q --release -p ferrymq-bench
	$(VENV)/bin/python bindings-python/bench/bench.py --rust-bench target/release/ferrymq-bench

bench-node: node-addon
	$(CARGO) build -q --release -p ferrymq-bench
	cd bindings-node && node bench/bench.js --rust-bench ../target/release/ferrymq-bench

clean:
	$(CARGO) clean
	rm -f $(DEMO_DB) $(DEMO_DB)-wal $(DEMO_DB)-shm
