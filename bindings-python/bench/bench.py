"""Python rates for W1 (durable single publish) and W3 (receive+ack drain) beside the
Rust core's, measured in the same run (see docs/benchmarks.md).

Run: make bench-python   (builds the release wheel and the Rust bench binary first)
"""

from __future__ import annotations

import argparse
import pathlib
import subprocess
import tempfile
import time

import ferrymq

PAYLOAD = b"x" * 256


def fresh(dir: pathlib.Path, name: str) -> ferrymq.Queue:
    q = ferrymq.Queue(dir / name)
    q.subscribe("bench", "bench")
    return q


def w1(dir: pathlib.Path, n: int) -> float:
    q = fresh(dir, "w1.db")
    start = time.perf_counter()
    for _ in range(n):
        q.publish("bench", PAYLOAD)
    secs = time.perf_counter() - start
    q.close()
    return n / secs


def w3(dir: pathlib.Path, n: int) -> float:
    q = fresh(dir, "w3.db")
    for i in range(0, n, 1000):
        q.publish_batch([ferrymq.Message("bench", PAYLOAD) for _ in range(min(1000, n - i))])
    start = time.perf_counter()
    for _ in range(n):
        (d,) = q.receive("bench", max=1)
        d.ack()
    secs = time.perf_counter() - start
    q.close()
    return n / secs


def rust(binary: pathlib.Path, kind: str, n: int) -> float:
    out = subprocess.run([str(binary), "__run", kind, "ferrymq", str(n), "0"], capture_output=True, text=True, check=True)
    fields = dict(kv.split("=") for kv in out.stdout.split()[1:])
    return float(fields["ops"]) / float(fields["secs"])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--rust-bench", type=pathlib.Path, required=True)
    args = parser.parse_args()
    rows = []
    for name, py_fn, kind in [("W1 durable publish", w1, "publish"), ("W3 receive+ack drain", w3, "drain")]:
        py_best = rust_best = 0.0
        for _ in range(args.repeat):
            with tempfile.TemporaryDirectory() as d:
                py_best = max(py_best, py_fn(pathlib.Path(d), args.n))
            rust_best = max(rust_best, rust(args.rust_bench, kind, args.n))
        rows.append((name, py_best, rust_best))
    print(f"| workload ({args.n:,} msgs, best of {args.repeat}) | Python | Rust | Python/Rust |")
    print("|---|---:|---:|---:|")
    for name, py, rs in rows:
        print(f"| {name} | {py:,.0f} ops/s | {rs:,.0f} ops/s | {py / rs:.2f} |")


if __name__ == "__main__":
    main()
