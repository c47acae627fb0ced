"""Contention from Python: six processes mix publishes, outbox transactions and
receive+ack on one file for a few seconds; no BusyError reaches a caller and every
publish is acked exactly once (see docs/reliability.md for the 8-process Rust run)."""

from __future__ import annotations

import collections
import pathlib
import subprocess
import sys

import ferrymq

HAMMER = """
import sys, time, ferrymq
db, me, secs = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
q = ferrymq.Queue(db)
busy, n, out = 0, 0, []
end = time.monotonic() + secs
while time.monotonic() < end:
    n += 1
    try:
        if (me + n) % 4 == 0:
            out.append(f"PUB {q.publish('t', f'{me}-{n}')}")
        elif (me + n) % 4 == 1:
            with q.transaction() as tx:
                tx.execute("INSERT INTO ledger(who) VALUES (?)", (me,))
                out.append(f"PUB {tx.publish('t', 'tx')}")
        else:
            for d in q.receive("g", max=8):
                d.ack()
                out.append(f"ACK {d.message_id}")
    except ferrymq.BusyError:
        busy += 1
out.append(f"BUSY {busy}")
print("\\n".join(out))
"""


def test_six_python_processes_never_see_busy(db: pathlib.Path) -> None:
    with ferrymq.Queue(db) as q:
        q.subscribe("g", "t")
        with q.transaction() as tx:
            tx.execute("CREATE TABLE ledger(who INTEGER)")
    procs = [
        subprocess.Popen([sys.executable, "-c", HAMMER, str(db), str(me), "3"], stdout=subprocess.PIPE, text=True)
        for me in range(6)
    ]
    published: list[int] = []
    acked: collections.Counter[int] = collections.Counter()
    busy = 0
    for p in procs:
        out, _ = p.communicate(timeout=120)
        assert p.returncode == 0
        for line in out.split("\n"):
            kind, _, value = line.partition(" ")
            if kind == "PUB":
                published.append(int(value))
            elif kind == "ACK":
                acked[int(value)] += 1
            elif kind == "BUSY":
                busy += int(value)
    with ferrymq.Queue(db) as q:
        while batch := q.receive("g", max=500):
            for d in batch:
                d.ack()
                acked[d.message_id] += 1
    assert busy == 0
    assert len(set(published)) == len(published) > 100
    assert set(acked) == set(published)
    assert all(n == 1 for n in acked.values())
