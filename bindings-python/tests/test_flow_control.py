"""Flow control through the binding: pause/resume, a group's max_inflight across
processes, and backpressure (Queue(max_ready=...), FullError). The core decides; these
check that the arguments, results and errors cross the binding. Real files, and a real
second process where the property is about processes."""

from __future__ import annotations

import pathlib
import sqlite3
import subprocess
import sys
import time
from typing import Any, Callable

import pytest

import ferrymq
from conftest import run_python

RECEIVE_ONCE = """
import sys, ferrymq
q = ferrymq.Queue(sys.argv[1])
print(len(q.receive("g", max=10, wait=float(sys.argv[2]))))
"""

WAIT_FOR_ONE = """
import sys, ferrymq
q = ferrymq.Queue(sys.argv[1])
print("READY", flush=True)
ds = q.receive("g", max=10, wait=60)
print(" ".join(d.payload.decode() for d in ds), flush=True)
for d in ds:
    d.ack()
"""

# Claims up to 3 at a time and acks them until the group has nothing left; prints how many
# it acked.
CLAIM_AND_ACK = """
import sys, ferrymq
q = ferrymq.Queue(sys.argv[1])
acked = 0
while True:
    ds = q.receive("g", max=3, wait=0.05)
    for d in ds:
        d.ack()
        acked += 1
    g = q.stats().groups["g"]
    if not ds and g.ready == 0 and g.inflight == 0:
        break
print(acked)
"""


def snapshot(db: pathlib.Path) -> list[tuple[Any, ...]]:
    """Every message and delivery row of the file, to show a refused call wrote nothing."""
    conn = sqlite3.connect(db)
    try:
        rows = conn.execute("SELECT * FROM ferrymq_messages ORDER BY id").fetchall()
        rows += conn.execute("SELECT * FROM ferrymq_deliveries ORDER BY message_id, group_id").fetchall()
        return rows
    finally:
        conn.close()


# ---------------------------------------------------------------- pause / resume


def test_a_paused_group_receives_nothing_here_or_in_another_process_until_resumed(db: pathlib.Path) -> None:
    with ferrymq.Queue(db) as q:
        q.subscribe("g", "t")
        q.subscribe("other", "t")
        q.publish("t", "a")
        q.pause("g")
        q.pause("g")  # pausing twice is fine
        q.publish("t", "b")
        assert q.receive("g", max=10) == []
        out = run_python(RECEIVE_ONCE, str(db), "0")
        assert out.returncode == 0, out.stderr
        assert out.stdout.split() == ["0"]
        stats = q.stats()
        assert stats.groups["g"].paused is True
        assert stats.groups["g"].ready == 2
        assert stats.groups["other"].paused is False
        assert [d.payload for d in q.receive("other", max=10)] == [b"a", b"b"]
        q.resume("g")
        assert q.stats().groups["g"].paused is False
        out = run_python(RECEIVE_ONCE, str(db), "0")
        assert out.returncode == 0, out.stderr
        assert out.stdout.split() == ["2"]
        q.resume("g")  # resuming twice is fine


def test_a_waiting_receive_in_another_process_gets_the_message_once_resumed(db: pathlib.Path) -> None:
    with ferrymq.Queue(db) as q:
        q.subscribe("g", "t")
        q.pause("g")
        q.publish("t", "x")
        child = subprocess.Popen(
            [sys.executable, "-c", WAIT_FOR_ONE, str(db)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "READY"
        time.sleep(0.2)  # gives the child time to wait in receive; nothing is measured
        # Paused: the child's waiting receive claimed nothing although the message is there.
        g = q.stats().groups["g"]
        assert (g.ready, g.inflight) == (1, 0)
        q.resume("g")
        out, err = child.communicate(timeout=60)
        assert child.returncode == 0, err
        assert out.split() == ["x"]


def test_pause_and_resume_refuse_unknown_groups_and_bad_names(q: ferrymq.Queue) -> None:
    with pytest.raises(ferrymq.NotFoundError):
        q.pause("nobody")
    with pytest.raises(ferrymq.NotFoundError):
        q.resume("nobody")
    with pytest.raises(ferrymq.InvalidArgumentError, match="consumer group"):
        q.pause("bad name")
    assert q.stats().groups == {}


# ---------------------------------------------------------------- max_inflight


def test_max_inflight_holds_across_two_handles_until_something_is_settled(db: pathlib.Path) -> None:
    with ferrymq.Queue(db) as q, ferrymq.Queue(db) as other:
        q.subscribe("g", "t", max_inflight=3)
        for i in range(10):
            q.publish("t", f"m{i}")
        held = q.receive("g", max=2)
        assert len(held) == 2
        assert len(other.receive("g", max=10)) == 1
        assert other.receive("g", max=10) == []
        out = run_python(RECEIVE_ONCE, str(db), "0")
        assert out.returncode == 0, out.stderr
        assert out.stdout.split() == ["0"]
        g = q.stats().groups["g"]
        assert (g.inflight, g.ready) == (3, 7)
        held[0].ack()
        assert len(other.receive("g", max=10)) == 1
        # Subscribing again without it lifts the limit.
        q.subscribe("g", "t")
        assert len(other.receive("g", max=10)) == 6


def test_two_processes_claiming_at_once_never_hold_more_than_max_inflight(db: pathlib.Path) -> None:
    n = 300
    with ferrymq.Queue(db) as q:
        q.subscribe("g", "t", max_inflight=3)
        # A trigger of the test's own records how many of the group are inflight at every
        # claim, so no interleaving of the two processes can slip past unseen.
        raw = sqlite3.connect(db)
        raw.executescript(
            """
            CREATE TABLE audit (n INTEGER);
            CREATE TRIGGER audit_inflight AFTER UPDATE OF state ON ferrymq_deliveries
            WHEN NEW.state = 1 BEGIN
                INSERT INTO audit SELECT count(*) FROM ferrymq_deliveries
                WHERE group_id = NEW.group_id AND state = 1;
            END;
            """
        )
        raw.close()
        q.publish_batch([ferrymq.Message("t", f"m{i}") for i in range(n)])
        child = subprocess.Popen(
            [sys.executable, "-c", CLAIM_AND_ACK, str(db)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        out = run_python(CLAIM_AND_ACK, str(db), timeout=120)
        child_out, child_err = child.communicate(timeout=120)
        assert out.returncode == 0, out.stderr
        assert child.returncode == 0, child_err
        assert int(out.stdout) + int(child_out) == n
        raw = sqlite3.connect(db)
        claims, most = raw.execute("SELECT count(*), max(n) FROM audit").fetchone()
        raw.close()
        assert claims >= n
        assert most <= 3, f"a claim brought the group to {most} inflight"


def test_max_inflight_out_of_range_or_not_an_int_is_invalid_and_changes_nothing(q: ferrymq.Queue) -> None:
    for bad in [0, 1_000_001, -1, 2**70, 2.5, "3"]:
        with pytest.raises(ferrymq.InvalidArgumentError, match="max_inflight"):
            q.subscribe("g", "t", max_inflight=bad)  # type: ignore[arg-type]
    assert q.stats().groups == {}
    q.subscribe("g", "t", max_inflight=1_000_000)


# ---------------------------------------------------------------- max_ready


def test_a_publish_past_max_ready_raises_full_error_and_writes_nothing(db: pathlib.Path) -> None:
    with ferrymq.Queue(db, max_ready=2) as q:
        q.subscribe("g", "t")
        q.publish("t", "a")
        q.publish("t", "b")
        before = snapshot(db)
        refused: list[Callable[[], object]] = [
            lambda: q.publish("t", "c"),
            lambda: q.publish_batch([ferrymq.Message("t", "c")]),
            lambda: q.prepare("t", "half"),
        ]
        for call in refused:
            with pytest.raises(ferrymq.FullError, match='"g"') as info:
                call()
            assert isinstance(info.value, ferrymq.FerrymqError)
            assert snapshot(db) == before
        q.publish("other", "no group waits on this topic")
        # An inflight delivery does not count; taking one frees a place.
        (d,) = q.receive("g")
        q.publish("t", "c")
        with pytest.raises(ferrymq.FullError):
            q.publish("t", "d")
        d.ack()
        assert q.stats().groups["g"].ready == 2


def test_a_full_publish_inside_a_transaction_rolls_the_whole_transaction_back(db: pathlib.Path) -> None:
    with ferrymq.Queue(db, max_ready=1) as q:
        q.subscribe("g", "t")
        q.publish("t", "a")
        before = snapshot(db)
        with pytest.raises(ferrymq.FullError):
            with q.transaction() as tx:
                tx.execute("CREATE TABLE orders (id INTEGER)")
                tx.execute("INSERT INTO orders VALUES (1)")
                tx.publish("t", "x")
        conn = sqlite3.connect(db)
        tables = conn.execute("SELECT count(*) FROM sqlite_master WHERE name = 'orders'").fetchone()[0]
        conn.close()
        assert tables == 0
        assert snapshot(db) == before


def test_max_ready_out_of_range_or_not_an_int_is_invalid_at_open(db: pathlib.Path) -> None:
    for bad in [0, 1_000_001, -1, 2**70, 2.5, "3"]:
        with pytest.raises(ferrymq.InvalidArgumentError, match="max_ready"):
            ferrymq.Queue(db, max_ready=bad)  # type: ignore[arg-type]
