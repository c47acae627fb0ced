"""The inbox (`tx.inbox(key, window=None)`): a key is new once per window and only if its
transaction commits; and the issue's done-when: 10,000 duplicate deliveries of 1,000 keys,
consumed by worker processes killed with SIGKILL at random, give exactly 1,000 business
rows. FERRYMQ_INBOX_KILLS sets how many kills (default 12)."""

from __future__ import annotations

import datetime
import os
import pathlib
import random
import signal
import subprocess
import sys
import time

import pytest

import ferrymq
from ferrymq.testing import ManualClock


def see(q: ferrymq.Queue, key: str, window: object = None) -> bool:
    with q.transaction() as tx:
        new = tx.inbox(key, window=window)  # type: ignore[arg-type]
    return new


def test_a_key_is_new_once_per_window_and_only_if_committed(db: pathlib.Path) -> None:
    clock = ManualClock(1_700_000_000_000)
    with ferrymq.Queue(db, test_clock=clock) as q:
        assert see(q, "alipay:1")
        assert not see(q, "alipay:1")
        # A transaction that raises forgets the key with its other writes.
        with pytest.raises(RuntimeError):
            with q.transaction() as tx:
                assert tx.inbox("alipay:2")
                raise RuntimeError("the business write failed")
        assert see(q, "alipay:2")
        # Past its window a key is new again; seconds or a timedelta.
        assert see(q, "w", window=10)
        clock.advance(9.999)
        assert not see(q, "w", window=datetime.timedelta(seconds=10))
        clock.advance(0.001)
        assert see(q, "w", window=10)
        # Default: a week.
        assert see(q, "d")
        clock.advance(7 * 86400 - 0.001)
        assert not see(q, "d")
        clock.advance(0.001)
        assert see(q, "d")


@pytest.mark.parametrize(
    "key, window",
    [("", None), ("x" * 1025, None), ("a\0b", None), ("k", 0), ("k", 0.0005), ("k", -1), ("k", float("nan")), ("k", "1s")],
)
def test_bad_input_is_refused_and_changes_nothing(db: pathlib.Path, key: str, window: object) -> None:
    with ferrymq.Queue(db) as q:
        with q.transaction() as tx:
            with pytest.raises(ferrymq.InvalidArgumentError):
                tx.inbox(key, window=window)  # type: ignore[arg-type]
            assert tx.query("SELECT count(*) FROM ferrymq_inbox") == [(0,)]


WORKER = """
import sys, ferrymq
q = ferrymq.Queue(sys.argv[1])
while True:
    for d in q.receive("g", max=8, wait=0.5):
        try:
            with q.transaction() as tx:
                if tx.inbox(d.key):
                    tx.execute("INSERT INTO paid (notify_id) VALUES (?)", [d.key])
                tx.ack(d)
        except ferrymq.LeaseLostError:
            pass  # someone else holds it now: their transaction decides
"""

KEYS = 1000
COPIES = 10


def run_round(db: pathlib.Path, rng: random.Random, kills_left: int) -> int:
    """Publishes 1,000 keys 10 times each in random order, consumes them with three worker
    processes while killing one at random every 20-300 ms (at most `kills_left` times),
    checks the business rows; returns how many kills it made."""
    copies = [f"notify-{k:04d}" for k in range(KEYS) for _ in range(COPIES)]
    rng.shuffle(copies)
    with ferrymq.Queue(db) as q:
        # The lease is short so that a killed worker's deliveries come back quickly; a
        # message killed often must not go dead, hence the generous retry count.
        q.subscribe("g", "notify", lease=1.0, retry=ferrymq.RetryPolicy.fixed([0] * 1000))
        with q.transaction() as tx:
            tx.execute("CREATE TABLE paid (id INTEGER PRIMARY KEY, notify_id TEXT NOT NULL)")
        for at in range(0, len(copies), 1000):
            q.publish_batch([ferrymq.Message("notify", b"paid", key=k) for k in copies[at : at + 1000]])

        def start() -> subprocess.Popen[bytes]:
            return subprocess.Popen([sys.executable, "-c", WORKER, str(db)])

        workers = [start() for _ in range(3)]
        kills = 0
        deadline = time.monotonic() + 300
        try:
            while True:
                assert time.monotonic() < deadline, f"not drained after {kills} kills: {q.stats().groups['g']}"
                g = q.stats().groups["g"]
                if g.ready + g.inflight + g.retrying + g.scheduled == 0:
                    break
                time.sleep(rng.uniform(0.02, 0.3))
                if kills < kills_left:
                    i = rng.randrange(len(workers))
                    workers[i].send_signal(signal.SIGKILL)
                    workers[i].wait()
                    kills += 1
                    workers[i] = start()
                for w in workers:
                    assert w.poll() is None, f"a worker exited on its own: {w.returncode}"
        finally:
            for w in workers:
                w.kill()
                w.wait()
        assert q.stats().groups["g"].dead == 0
        with q.transaction() as tx:
            rows = tx.query("SELECT notify_id FROM paid ORDER BY notify_id")
            seen = tx.query("SELECT count(*) FROM ferrymq_inbox")
    assert len(rows) == KEYS, f"{len(rows)} business rows for {KEYS} keys after {kills} kills"
    assert [r[0] for r in rows] == [f"notify-{k:04d}" for k in range(KEYS)]
    assert seen == [(KEYS,)]
    return kills


def test_duplicate_deliveries_across_sigkills_give_one_row_per_key(tmp_path: pathlib.Path) -> None:
    # Rounds of 10,000 deliveries on fresh files until the wanted number of kills is made.
    wanted = int(os.environ.get("FERRYMQ_INBOX_KILLS", "12"))
    rng = random.Random(17)
    kills = rounds = 0
    while kills < wanted:
        kills += run_round(tmp_path / f"round-{rounds}.db", rng, wanted - kills)
        rounds += 1
    print(f"inbox: {rounds} rounds of {KEYS * COPIES} deliveries, {kills} SIGKILLs, {KEYS} rows each")


def test_inbox_in_answers_on_the_callers_sqlite3_connection_in_its_transaction(db: pathlib.Path) -> None:
    import sqlite3

    clock = ManualClock(1_700_000_000_000)
    with ferrymq.Queue(db, test_clock=clock) as q:
        assert see(q, "seen-by-tx")
        conn = sqlite3.connect(db)
        conn.execute("CREATE TABLE paid (notify_id TEXT NOT NULL)")
        conn.commit()
        # The first transaction fails after the inbox said "new": the key is not seen.
        with pytest.raises(RuntimeError):
            with conn:
                assert ferrymq.inbox_in(conn, "n1", queue=q)
                conn.execute("INSERT INTO paid VALUES ('n1')")
                raise RuntimeError("the business write failed")
        for expected in (True, False, False):
            with conn:
                new = ferrymq.inbox_in(conn, "n1", window=60, queue=q)
                assert new == expected
                if new:
                    conn.execute("INSERT INTO paid VALUES ('n1')")
        with conn:
            assert not ferrymq.inbox_in(conn, "seen-by-tx", queue=q)
        clock.advance(60)
        with conn:
            assert ferrymq.inbox_in(conn, "n1", queue=q)
        assert conn.execute("SELECT count(*) FROM paid").fetchone() == (1,)
        assert not see(q, "n1")
        # Bad input and a connection set to autocommit: refused before anything runs.
        with pytest.raises(ferrymq.InvalidArgumentError):
            ferrymq.inbox_in(conn, "", queue=q)
        with pytest.raises(ferrymq.InvalidArgumentError):
            ferrymq.inbox_in(conn, "k", window=0, queue=q)
        auto = sqlite3.connect(db, isolation_level=None)
        with pytest.raises(ferrymq.InvalidArgumentError, match="no transaction"):
            ferrymq.inbox_in(auto, "k", queue=q)
        auto.close()
        conn.close()
        with q.transaction() as tx:
            assert tx.query("SELECT key FROM ferrymq_inbox ORDER BY key") == [("n1",), ("seen-by-tx",)]
