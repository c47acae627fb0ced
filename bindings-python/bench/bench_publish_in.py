"""publish_in from Python's sqlite3 beside Queue.publish, Queue.transaction + tx.publish
and a bare sqlite3 INSERT, in one run (see docs/benchmarks.md, "publish_in from Python's
sqlite3"). Each workload runs on a fresh file in its own child process, so only one
SQLite library has the file open in a process at a time.

Run: make python-wheel && target/venv-test/bin/python bindings-python/bench/bench_publish_in.py
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sqlite3
import subprocess
import sys
import tempfile
import time

import ferrymq

PAYLOAD = b"x" * 256


def setup(db: pathlib.Path) -> None:
    with ferrymq.Queue(db) as q:
        q.subscribe("bench", "bench")
        with q.transaction() as tx:
            tx.execute("CREATE TABLE bare(id INTEGER PRIMARY KEY, payload BLOB NOT NULL)")


def sqlite3_run(db: pathlib.Path, n: int, per_tx: int, publish: bool) -> float:
    # synchronous=NORMAL in WAL: what ferrymq's own connections use (its default).
    conn = sqlite3.connect(db, timeout=30)
    conn.execute("PRAGMA synchronous=NORMAL")
    start = time.perf_counter()
    for _ in range(n // per_tx):
        with conn:
            for _ in range(per_tx):
                if publish:
                    ferrymq.publish_in(conn, "bench", PAYLOAD)
                else:
                    conn.execute("INSERT INTO bare(payload) VALUES (?)", (PAYLOAD,))
    secs = time.perf_counter() - start
    conn.close()
    return n / secs


def queue_run(db: pathlib.Path, n: int, per_tx: int) -> float:
    with ferrymq.Queue(db) as q:
        start = time.perf_counter()
        if per_tx == 0:
            for _ in range(n):
                q.publish("bench", PAYLOAD)
        else:
            for _ in range(n // per_tx):
                with q.transaction() as tx:
                    for _ in range(per_tx):
                        tx.publish("bench", PAYLOAD)
        secs = time.perf_counter() - start
    return n / secs


def child(kind: str, per_tx: int, n: int) -> float:
    with tempfile.TemporaryDirectory() as d:
        db = pathlib.Path(d) / "b.db"
        setup(db)
        if kind == "publish_in":
            return sqlite3_run(db, n, per_tx, True)
        if kind == "bare":
            return sqlite3_run(db, n, per_tx, False)
        return queue_run(db, n, per_tx)


WORKLOADS = [
    ("bare sqlite3 INSERT, 1 per tx", "bare", 1),
    ("Queue.publish", "queue", 0),
    ("Queue.transaction + tx.publish, 1 per tx", "queue", 1),
    ("publish_in on sqlite3, 1 per tx", "publish_in", 1),
    ("bare sqlite3 INSERT, 100 per tx", "bare", 100),
    ("Queue.transaction + tx.publish, 100 per tx", "queue", 100),
    ("publish_in on sqlite3, 100 per tx", "publish_in", 100),
]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--child", nargs=3, metavar=("KIND", "PER_TX", "N"))
    args = parser.parse_args()
    if args.child:
        kind, per_tx, n = args.child
        print(json.dumps(child(kind, int(per_tx), int(n))))
        return
    best: dict[str, float] = {}
    for _ in range(args.repeat):
        for name, kind, per_tx in WORKLOADS:
            out = subprocess.run(
                [sys.executable, __file__, "--child", kind, str(per_tx), str(args.n)],
                capture_output=True, text=True, check=True,
            )
            best[name] = max(best.get(name, 0.0), float(json.loads(out.stdout)))
    base = best["Queue.publish"]
    print(f"| workload ({args.n:,} msgs of 256 B, best of {args.repeat}) | msgs/s | / Queue.publish |")
    print("|---|---:|---:|")
    for name, _, _ in WORKLOADS:
        print(f"| {name} | {best[name]:,.0f} | {best[name] / base:.2f} |")


if __name__ == "__main__":
    main()
