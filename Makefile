# The task file. CI runs `make test` (through .ci/run); the README's two commands are
# `make demo` and `make test`.
CARGO ?= cargo
DEMO_DB ?= ferrymq-demo.db

.PHONY: demo test lint fmt test-rust examples bench bench-quick clean

## The main job: the payment demo on an embedded default db file.
demo:
	$(CARGO) run -q -p ferrymq-examples --bin demo -- $(DEMO_DB)

## Every test: format and lint checks, the Rust suites, and every example.
test: lint test-rust examples

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

## Benchmarks against bare SQLite (see docs/benchmarks.md).
bench:
	$(CARGO) run --release -p ferrymq-bench

bench-quick:
	$(CARGO) run --release -p ferrymq-bench -- --quick

clean:
	$(CARGO) clean
	rm -f $(DEMO_DB) $(DEMO_DB)-wal $(DEMO_DB)-shm
