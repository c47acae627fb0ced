"""Every error kind, each a subclass of FerrymqError, raised with the core's message."""

from __future__ import annotations

import pathlib
import subprocess
import sys

from typing import Callable

import pytest

import ferrymq
from ferrymq import Queue


def test_the_hierarchy() -> None:
    for cls in [
        ferrymq.InvalidArgumentError,
        ferrymq.NotFoundError,
        ferrymq.LeaseLostError,
        ferrymq.ClosedError,
        ferrymq.BusyError,
        ferrymq.StorageError,
        ferrymq.CallbackError,
        ferrymq.FullError,
    ]:
        assert issubclass(cls, ferrymq.FerrymqError)
    assert issubclass(ferrymq.FerrymqError, Exception)


def test_invalid_argument_names_the_problem_and_changes_nothing(q: Queue) -> None:
    q.subscribe("g", "t")
    cases: list[tuple[Callable[[], object], str]] = [
        (lambda: q.publish("", b"x"), "topic"),
        (lambda: q.publish("t", b"x", tag="*"), "tag"),
        (lambda: q.publish("t", 12), "payload"),  # type: ignore[arg-type]
        (lambda: q.publish("t", b"x", headers={"a": 1}), "headers"),  # type: ignore[dict-item]
        (lambda: q.publish("t", b"x", delay=-1), "delay"),
        (lambda: q.publish("t", b"x", delay="soon"), "delay"),  # type: ignore[arg-type]
        (lambda: q.receive("g", max=0), "max"),
        (lambda: q.subscribe("g", "t", lease=0), "lease"),
        (lambda: q.subscribe("x'; DROP TABLE t;--", "t"), "consumer group"),
        (lambda: ferrymq.Queue(":memory:"), "path"),
        (lambda: ferrymq.Queue("x.db", synchronous="off"), "synchronous"),  # type: ignore[arg-type]
        (lambda: q.half_messages(state="weird"), "state"),  # type: ignore[arg-type]
        (lambda: q.receive("g", max=-1), "max"),
        (lambda: q.dead_letters("g", limit=2**70), "out of range"),
        (lambda: q.message(2**70), "out of range"),
        (lambda: q.publish("t", b"x", delay=10**400), "delay"),
        (lambda: ferrymq.RetryPolicy.exponential(max_retries=-1), "max_retries"),
        (lambda: q.receive("g", lease=0.0001), "lease"),
    ]
    for call, needle in cases:
        with pytest.raises(ferrymq.InvalidArgumentError, match=needle):
            call()
    assert q.stats().topics["t"].messages == 0


def test_not_found(q: Queue) -> None:
    with pytest.raises(ferrymq.NotFoundError, match="subscribe first"):
        q.receive("nobody")
    with pytest.raises(ferrymq.NotFoundError):
        q.message(424242)


def test_closed(db: pathlib.Path) -> None:
    with ferrymq.Queue(db) as q:
        q.subscribe("g", "t")
    assert q.closed
    with pytest.raises(ferrymq.ClosedError):
        q.publish("t", b"x")


def test_busy_after_busy_timeout(db: pathlib.Path) -> None:
    q = ferrymq.Queue(db, busy_timeout=0.1)
    # The lock holder is another process: two SQLite libraries in one process (Python's
    # sqlite3 and ferrymq's) do not see each other's POSIX locks.
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(db)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
    with pytest.raises(ferrymq.BusyError):
        q.publish("t", b"x")
    holder.communicate("go\n", timeout=30)
    q.publish("t", b"x")


HOLD_LOCK = """
import sqlite3, sys
c = sqlite3.connect(sys.argv[1], isolation_level=None)
c.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
sys.stdin.readline()
c.execute("COMMIT")
"""


def test_storage_for_a_foreign_file(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("not a database " * 200)
    before = path.read_bytes()
    with pytest.raises(ferrymq.StorageError):
        ferrymq.Queue(path)
    assert path.read_bytes() == before


def test_lease_lost(q: Queue) -> None:
    q.subscribe("g", "t")
    q.publish("t", b"x")
    (d,) = q.receive("g")
    d.ack()
    with pytest.raises(ferrymq.LeaseLostError):
        d.nack("again")


def test_callback_failures_are_recorded_not_raised(q: Queue) -> None:
    # A failing checker is an unknown answer with its text kept, never an exception in
    # the caller (CallbackError is reserved for callbacks whose failure must surface).
    def checker(info: ferrymq.MessageInfo) -> ferrymq.Resolution:
        raise ValueError("bank timeout")

    q2 = ferrymq.Queue(q.path, check_after=0)
    q2.set_checker("t", checker)
    h = q2.prepare("t", b"x")
    q2.run_checks()
    info = q2.message(h.id)
    assert info.state == "half"
    assert [(c.resolution, c.error) for c in info.checks] == [(ferrymq.Resolution.UNKNOWN, "bank timeout")]
    with pytest.raises(ferrymq.InvalidArgumentError, match="callable"):
        q2.set_checker("t", 42)  # type: ignore[arg-type]
    q2.close()


def _entry_points(q: Queue) -> dict[str, Callable[..., object]]:
    """Every call that takes the publish options, as `f(**options)`."""
    from ferrymq import _native

    def in_tx(**options: object) -> object:
        with q.transaction() as tx:
            tx.publish("t", b"x", **options)  # type: ignore[arg-type]
        return None

    return {
        "publish": lambda **o: q.publish("t", b"x", **o),
        "prepare": lambda **o: q.prepare("t", b"x", **o),
        "Message": lambda **o: ferrymq.Message("t", b"x", **o),
        "Transaction.publish": in_tx,
        "publish_row": lambda **o: _native.publish_row("t", b"x", queue=q, **o),
    }


def test_the_publish_options_are_checked_alike_by_every_entry_point(q: Queue) -> None:
    q.subscribe("g", "t")
    for name, call in _entry_points(q).items():
        with pytest.raises(ferrymq.InvalidArgumentError, match="tag must be a str, not int"):
            call(tag=1)
        with pytest.raises(ferrymq.InvalidArgumentError, match="priority"):
            call(priority="high")
        with pytest.raises(TypeError, match="unexpected keyword argument 'tga'"):
            call(tga="x")
        call(tag="a", key=None, headers={"h": "v"}, ordering_key=None, delay=0, priority=1)
    # Message and publish_row only build; prepare stores a half message.
    assert (q.stats().topics["t"].messages, q.stats().topics["t"].half) == (2, 1)
