"""Python's own sqlite3 and ferrymq in one process, on one file: a thread opens, uses and
closes sqlite3 connections thousands of times (publishing with publish_in) while
ferrymq consumers in this process and in two others receive and ack. Closing a sqlite3
connection closes descriptors of the file, which used to drop ferrymq's locks."""

from __future__ import annotations

import collections
import os
import pathlib
import sqlite3
import subprocess
import sys
import threading

import ferrymq

ROUNDS = int(os.environ.get("FERRYMQ_HAZARD_ROUNDS", "10000"))

CONSUMER = """
import sys, ferrymq
db, total = sys.argv[1], int(sys.argv[2])
q = ferrymq.Queue(db)
print("READY", flush=True)
while True:
    for d in q.receive("g", max=8, wait=0.2):
        try:
            d.ack()
            print(d.key, flush=True)
        except ferrymq.LeaseLostError:
            pass
    s = q.stats().groups["g"]
    done = q.stats().topics.get("t")
    if done and done.messages == total and s.ready + s.inflight + s.scheduled + s.retrying == 0:
        break
"""


def test_sqlite3_connections_opened_and_closed_beside_ferrymq_lose_nothing(db: pathlib.Path) -> None:
    with ferrymq.Queue(db) as setup:
        setup.subscribe("g", "t", lease=30.0)
    others = [
        subprocess.Popen(
            [sys.executable, "-c", CONSUMER, str(db), str(ROUNDS)], stdout=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    for p in others:
        assert p.stdout is not None and p.stdout.readline().strip() == "READY"

    q = ferrymq.Queue(db)
    acked_here: list[str] = []
    stop = threading.Event()

    def consume(with_sqlite3: bool) -> None:
        # One consumer acks through ferrymq, the other with ack_in on a fresh sqlite3
        # connection each time (more opens and closes of the file).
        while not stop.is_set():
            for d in q.receive("g", max=8, wait=0.1):
                try:
                    if with_sqlite3:
                        conn = sqlite3.connect(db, timeout=10)
                        with conn:
                            ferrymq.ack_in(conn, d)
                        conn.close()
                    else:
                        d.ack()
                    acked_here.append(d.key or "")
                except ferrymq.LeaseLostError:
                    pass

    consumers = [threading.Thread(target=consume, args=(flag,)) for flag in (False, True)]
    for t in consumers:
        t.start()
    for i in range(ROUNDS):
        conn = sqlite3.connect(db, timeout=10)
        with conn:
            conn.execute("CREATE TABLE IF NOT EXISTS orders (id INTEGER PRIMARY KEY)")
            conn.execute("INSERT INTO orders (id) VALUES (?)", (i,))
            ferrymq.publish_in(conn, "t", b"x", key=f"order-{i}")
        conn.close()

    outs = [p.communicate(timeout=300)[0] for p in others]
    assert all(p.returncode == 0 for p in others)
    stop.set()
    for t in consumers:
        t.join()

    acked = acked_here + [line for out in outs for line in out.split() if line != "READY"]
    counts = collections.Counter(acked)
    expected = {f"order-{i}" for i in range(ROUNDS)}
    assert set(counts) == expected, f"lost: {len(expected - set(counts))}"
    assert [k for k, n in counts.items() if n > 1] == [], "acked twice"
    assert q.stats().groups["g"].ready == 0
    q.close()
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert conn.execute("SELECT count(*) FROM orders").fetchone() == (ROUNDS,)
    conn.close()
