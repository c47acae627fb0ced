"""How fast a consumer in another process sees a message: published with Queue.publish,
and with publish_in on a sqlite3 connection. The consumer waits in receive(); the payload
carries the publish time (CLOCK_MONOTONIC is shared by the processes of one machine).

Run: target/venv-test/bin/python bindings-python/bench/bench_wake.py [N]
"""

from __future__ import annotations

import pathlib
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time

import ferrymq

CONSUMER = """
import sys, time, ferrymq
q = ferrymq.Queue(sys.argv[1])
n = int(sys.argv[2])
print("READY", flush=True)
lat = []
while len(lat) < n:
    for d in q.receive("g", max=1, wait=5.0):
        lat.append(time.monotonic_ns() - int(d.payload))
        d.ack()
print(" ".join(map(str, lat)), flush=True)
"""


def run(how: str, n: int) -> list[float]:
    with tempfile.TemporaryDirectory() as tmp:
        db = pathlib.Path(tmp) / "q.db"
        q = ferrymq.Queue(db)
        q.subscribe("g", "t")
        consumer = subprocess.Popen(
            [sys.executable, "-c", CONSUMER, str(db), str(n)], stdout=subprocess.PIPE, text=True
        )
        assert consumer.stdout is not None
        assert consumer.stdout.readline().strip() == "READY"
        conn = sqlite3.connect(db, isolation_level=None)
        conn.execute("PRAGMA synchronous=NORMAL")
        for _ in range(n):
            time.sleep(0.005)
            body = str(time.monotonic_ns()).encode()
            if how == "publish":
                q.publish("t", body)
            else:
                conn.execute("BEGIN IMMEDIATE")
                ferrymq.publish_in(conn, "t", body)
                conn.execute("COMMIT")
        out, _ = consumer.communicate(timeout=120)
        conn.close()
        q.close()
        return [int(x) / 1000 for x in out.split()]


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 500
    print(f"{'how':<12} {'p50 us':>8} {'p99 us':>8}  (n={n}, consumer in another process)")
    for how in ["publish", "publish_in", "publish", "publish_in"]:
        lat = sorted(run(how, n))
        p50 = statistics.median(lat)
        p99 = lat[int(len(lat) * 0.99) - 1]
        print(f"{how:<12} {p50:>8.0f} {p99:>8.0f}")


if __name__ == "__main__":
    main()
