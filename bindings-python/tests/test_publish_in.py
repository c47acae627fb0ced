"""publish_in / ack_in on the caller's own connection: Python's sqlite3 and SQLAlchemy 2
(ORM Session and Core Connection) on real files, a Rust consumer in another process, and
a producer SIGKILLed mid-transaction hundreds of times."""

from __future__ import annotations

import os
import pathlib
import random
import signal
import sqlite3
import subprocess
import sys
from typing import Any, Iterator

import pytest
from sqlalchemy import Engine, String, create_engine, text
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

import ferrymq
from ferrymq import _native
from ferrymq.testing import ManualClock
from conftest import rust_binary


def connect(db: pathlib.Path, isolation_level: Any = "") -> sqlite3.Connection:
    return sqlite3.connect(db, timeout=30, isolation_level=isolation_level)


@pytest.fixture
def shop(db: pathlib.Path) -> Iterator[ferrymq.Queue]:
    """A queue with one group on `orders`, and the service's own `orders` table."""
    q = ferrymq.Queue(db)
    q.subscribe("g", "orders")
    with q.transaction() as tx:
        tx.execute("CREATE TABLE orders(id INTEGER PRIMARY KEY, amount INTEGER NOT NULL)")
    yield q
    q.close()


def orders(db: pathlib.Path) -> list[tuple[int, int]]:
    c = connect(db)
    try:
        return [(r[0], r[1]) for r in c.execute("SELECT id, amount FROM orders ORDER BY id")]
    finally:
        c.close()


def messages(q: ferrymq.Queue) -> int:
    return sum(t.messages for t in q.stats().topics.values())


def ready(q: ferrymq.Queue) -> int:
    return q.stats().groups["g"].ready


# --- sqlite3 ---------------------------------------------------------------------------


def test_a_commit_stores_the_row_and_the_message(db: pathlib.Path, shop: ferrymq.Queue) -> None:
    conn = connect(db)
    with conn:
        conn.execute("INSERT INTO orders VALUES (1, 100)")
        mid = ferrymq.publish_in(
            conn, "orders", b"order 1", key="order-1", tag="created", headers={"trace": "t1"}, queue=shop
        )
    conn.close()
    assert orders(db) == [(1, 100)]
    (d,) = shop.receive("g")
    assert (d.message_id, d.payload, d.key, d.tag, d.headers) == (mid, b"order 1", "order-1", "created", {"trace": "t1"})


def test_a_rollback_drops_the_row_and_the_message(db: pathlib.Path, shop: ferrymq.Queue) -> None:
    conn = connect(db)
    conn.execute("INSERT INTO orders VALUES (1, 100)")
    ferrymq.publish_in(conn, "orders", b"order 1", key="order-1")
    conn.rollback()
    conn.close()
    assert orders(db) == []
    assert shop.find("orders", "order-1") == []
    assert ready(shop) == 0
    assert shop.receive("g") == []


def test_a_repeated_idempotency_key_returns_the_first_id(db: pathlib.Path, shop: ferrymq.Queue) -> None:
    conn = connect(db)
    with conn:
        first = ferrymq.publish_in(conn, "orders", b"pay", idempotency_key="order-1/pay")
        assert ferrymq.publish_in(conn, "orders", b"pay again", idempotency_key="order-1/pay") == first
    with conn:
        assert ferrymq.publish_in(conn, "orders", b"pay later", idempotency_key="order-1/pay") == first
    conn.close()
    assert shop.publish("orders", b"through the queue", idempotency_key="order-1/pay") == first
    assert shop.stats().topics["orders"].messages == 1


def test_ack_in_commits_with_the_callers_update(db: pathlib.Path, shop: ferrymq.Queue) -> None:
    shop.publish("orders", b"order 1", key="order-1")
    with shop.transaction() as tx:
        tx.execute("INSERT INTO orders VALUES (1, 100)")
    (d,) = shop.receive("g")
    conn = connect(db)
    conn.execute("UPDATE orders SET amount = 0 WHERE id = 1")
    ferrymq.ack_in(conn, d, queue=shop)
    conn.rollback()  # rolled back: still held, amount unchanged
    assert orders(db) == [(1, 100)]
    assert shop.message(d.message_id).deliveries["g"].state == "inflight"
    with conn:
        conn.execute("UPDATE orders SET amount = 0 WHERE id = 1")
        ferrymq.ack_in(conn, d, queue=shop)
    conn.close()
    assert orders(db) == [(1, 0)]
    assert shop.message(d.message_id).deliveries["g"].state == "acked"


def test_a_lost_lease_raises_and_rolls_the_callers_row_back(tmp_path: pathlib.Path) -> None:
    db = tmp_path / "q.db"
    clock = ManualClock(1_700_000_000_000)
    q = ferrymq.Queue(db, test_clock=clock)
    q.subscribe("g", "orders")
    q.publish("orders", b"order 1")
    with q.transaction() as tx:
        tx.execute("CREATE TABLE orders(id INTEGER PRIMARY KEY, amount INTEGER NOT NULL)")
    (first,) = q.receive("g", lease=1.0)
    clock.advance(1.001)  # the lease expires and another consumer takes the message
    (second,) = q.receive("g")
    assert second.attempt == 2
    conn = connect(db)
    with pytest.raises(ferrymq.LeaseLostError) as lost:
        with conn:
            conn.execute("INSERT INTO orders VALUES (1, 100)")
            ferrymq.ack_in(conn, first, queue=q)
    assert isinstance(lost.value.__cause__, sqlite3.Error)
    assert str(first.message_id) in str(lost.value)
    assert not conn.in_transaction
    conn.close()
    assert orders(db) == []
    assert q.message(first.message_id).deliveries["g"].state == "inflight"
    second.ack()
    q.close()


BAD_INPUT: list[tuple[str, Any, dict[str, Any]]] = [
    ("or ders", b"bad topic", {}),
    ("orders", b"x" * (4 * 1024 * 1024 + 1), {}),
    ("orders", b"bad tag", {"tag": "a||b"}),
    ("orders", b"bad headers", {"headers": {"trace": 1}}),
    ("orders", b"bad key", {"key": ""}),
    ("orders", b"bad idempotency key", {"idempotency_key": "a\x00b"}),
    ("orders", 42, {}),
]


@pytest.mark.parametrize("topic,payload,kw", BAD_INPUT, ids=["topic", "payload-size", "tag", "headers", "key", "idem-key", "payload-type"])
def test_bad_input_raises_what_publish_raises_and_writes_nothing(
    db: pathlib.Path, shop: ferrymq.Queue, topic: str, payload: Any, kw: dict[str, Any]
) -> None:
    with pytest.raises(ferrymq.FerrymqError) as by_publish:
        shop.publish(topic, payload, **kw)
    conn = connect(db)
    with conn:
        conn.execute("INSERT INTO orders VALUES (1, 100)")
        with pytest.raises(ferrymq.FerrymqError) as by_publish_in:
            ferrymq.publish_in(conn, topic, payload, queue=shop, **kw)
    conn.close()
    assert type(by_publish_in.value) is type(by_publish.value)
    assert str(by_publish_in.value) == str(by_publish.value)
    assert orders(db) == [(1, 100)]  # the caller's transaction went on
    assert messages(shop) == 0


def test_the_queues_limits_apply(tmp_path: pathlib.Path) -> None:
    db = tmp_path / "q.db"
    with ferrymq.Queue(db, max_payload=10) as q:
        conn = connect(db)
        with conn, pytest.raises(ferrymq.InvalidArgumentError, match="max_payload"):
            ferrymq.publish_in(conn, "orders", b"x" * 11, queue=q)
        with conn:
            ferrymq.publish_in(conn, "orders", b"x" * 11)  # the default 4 MiB without it
        conn.close()
        assert q.stats().topics["orders"].messages == 1


def test_a_connection_outside_a_transaction_is_refused(db: pathlib.Path, shop: ferrymq.Queue) -> None:
    conn = connect(db, isolation_level=None)
    with pytest.raises(ferrymq.InvalidArgumentError, match="no transaction"):
        ferrymq.publish_in(conn, "orders", b"alone")
    shop.publish("orders", b"to ack")
    (d,) = shop.receive("g")
    with pytest.raises(ferrymq.InvalidArgumentError, match="no transaction"):
        ferrymq.ack_in(conn, d)
    assert shop.stats().topics["orders"].messages == 1
    assert shop.message(d.message_id).deliveries["g"].state == "inflight"
    conn.execute("BEGIN")  # an explicit transaction on the same connection is fine
    ferrymq.publish_in(conn, "orders", b"in a transaction")
    ferrymq.ack_in(conn, d)
    conn.commit()
    conn.close()
    assert shop.stats().topics["orders"].messages == 2
    assert shop.message(d.message_id).deliveries["g"].state == "acked"


@pytest.mark.skipif(sys.version_info < (3, 12), reason="sqlite3's autocommit attribute is 3.12+")
def test_autocommit_true_is_refused_and_false_is_a_transaction(db: pathlib.Path, shop: ferrymq.Queue) -> None:
    on = sqlite3.connect(db, autocommit=True)  # type: ignore[call-overload,call-arg,unused-ignore]
    with pytest.raises(ferrymq.InvalidArgumentError, match="no transaction"):
        ferrymq.publish_in(on, "orders", b"alone")
    on.close()
    off = sqlite3.connect(db, autocommit=False)  # type: ignore[call-overload,call-arg,unused-ignore]
    ferrymq.publish_in(off, "orders", b"pep 249")
    off.rollback()
    off.close()
    assert messages(shop) == 0


def test_with_a_queue_a_connection_to_another_file_is_refused(tmp_path: pathlib.Path) -> None:
    with ferrymq.Queue(tmp_path / "a.db") as a, ferrymq.Queue(tmp_path / "b.db") as b:
        a.subscribe("g", "t")
        b.subscribe("g", "t")
        conn = connect(tmp_path / "b.db")
        with pytest.raises(ferrymq.InvalidArgumentError, match="not on the queue's file"):
            with conn:
                ferrymq.publish_in(conn, "t", b"x", queue=a)
        a.publish("t", "y")
        (d,) = a.receive("g")
        with pytest.raises(ferrymq.InvalidArgumentError):
            with conn:
                ferrymq.ack_in(conn, d, queue=a)
        conn.close()
        assert b.stats().topics.get("t") is None or b.stats().topics["t"].messages == 0
        own = connect(tmp_path / "a.db")
        with own:
            ferrymq.ack_in(own, d, queue=a)
        own.close()
        assert a.message(d.message_id).deliveries["g"].state == "acked"


def test_a_file_ferrymq_never_opened_is_not_found(tmp_path: pathlib.Path) -> None:
    conn = connect(tmp_path / "plain.db")
    conn.execute("CREATE TABLE orders(id INTEGER PRIMARY KEY)")
    with pytest.raises(ferrymq.NotFoundError, match="Queue.open") as e:
        with conn:
            conn.execute("INSERT INTO orders VALUES (1)")
            ferrymq.publish_in(conn, "orders", b"nowhere")
    assert isinstance(e.value.__cause__, sqlite3.OperationalError)
    assert conn.execute("SELECT count(*) FROM orders").fetchone() == (0,)
    conn.close()


def test_host_errors_map_to_ferrymq_kinds() -> None:
    assert isinstance(_native.host_error("database is locked"), ferrymq.BusyError)
    assert isinstance(_native.host_error("disk I/O error"), ferrymq.StorageError)
    e = _native.host_error("x (ferrymq INVALID_ARGUMENT: tag must be y)")
    assert isinstance(e, ferrymq.InvalidArgumentError) and "tag must be y" in str(e)
    assert isinstance(_native.no_transaction(), ferrymq.InvalidArgumentError)


# --- SQLAlchemy 2 ----------------------------------------------------------------------


class Base(DeclarativeBase):
    pass


class Order(Base):
    __tablename__ = "shop_orders"
    id: Mapped[int] = mapped_column(primary_key=True)
    customer: Mapped[str] = mapped_column(String(64))
    amount: Mapped[int]


@pytest.fixture
def engine(db: pathlib.Path, shop: ferrymq.Queue) -> Iterator[Engine]:
    e = create_engine(f"sqlite:///{db}")
    Base.metadata.create_all(e)
    yield e
    e.dispose()


def test_an_orm_session_commits_the_order_and_its_message(engine: Engine, shop: ferrymq.Queue) -> None:
    with Session(engine) as s:
        s.add(Order(id=1, customer="ada", amount=100))
        mid = ferrymq.publish_in(s, "orders", b'{"order": 1}', key="order-1", queue=shop)
        s.commit()
    with Session(engine) as s:
        assert [(o.id, o.customer) for o in s.query(Order)] == [(1, "ada")]
    (d,) = shop.receive("g")
    assert (d.message_id, d.key) == (mid, "order-1")


def test_an_orm_session_rollback_drops_both(engine: Engine, shop: ferrymq.Queue) -> None:
    with Session(engine) as s:
        s.add(Order(id=1, customer="ada", amount=100))
        s.flush()
        ferrymq.publish_in(s, "orders", b'{"order": 1}', key="order-1")
        s.rollback()
    with Session(engine) as s:
        assert s.query(Order).count() == 0
    assert shop.find("orders", "order-1") == []
    assert ready(shop) == 0


def test_an_orm_session_acks_with_its_update(engine: Engine, shop: ferrymq.Queue) -> None:
    with Session(engine) as s:
        s.add(Order(id=1, customer="ada", amount=100))
        ferrymq.publish_in(s, "orders", b"1", key="order-1")
        s.commit()
    (d,) = shop.receive("g")
    with Session(engine) as s:
        order = s.get(Order, 1)
        assert order is not None
        order.amount = 0
        ferrymq.ack_in(s, d, queue=shop)
        s.commit()
    assert shop.message(d.message_id).deliveries["g"].state == "acked"
    with Session(engine) as s:
        assert s.get(Order, 1) is not None and s.get(Order, 1).amount == 0  # type: ignore[union-attr]


def test_a_core_connection_in_engine_begin(engine: Engine, shop: ferrymq.Queue) -> None:
    with pytest.raises(RuntimeError):
        with engine.begin() as c:
            c.execute(text("INSERT INTO shop_orders VALUES (2, 'bob', 5)"))
            ferrymq.publish_in(c, "orders", b"2", key="order-2")
            raise RuntimeError("the service fails after publishing")
    with engine.begin() as c:
        c.execute(text("INSERT INTO shop_orders VALUES (3, 'cy', 7)"))
        ferrymq.publish_in(c, "orders", b"3", key="order-3")
    assert shop.find("orders", "order-2") == []
    assert len(shop.find("orders", "order-3")) == 1
    with engine.connect() as c:
        assert c.execute(text("SELECT id FROM shop_orders")).all() == [(3,)]


def test_an_autocommit_engine_is_refused(engine: Engine, shop: ferrymq.Queue) -> None:
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
        with pytest.raises(ferrymq.InvalidArgumentError, match="no transaction"):
            ferrymq.publish_in(c, "orders", b"alone")
    assert messages(shop) == 0


# --- another process, another language -------------------------------------------------


def test_a_rust_consumer_receives_exactly_the_committed_messages(db: pathlib.Path, shop: ferrymq.Queue) -> None:
    consumer = subprocess.Popen(
        [str(rust_binary("rust_consumer")), str(db), "rust-side", "orders", "10"], stdout=subprocess.PIPE, text=True
    )
    assert consumer.stdout is not None
    assert consumer.stdout.readline().strip() == "READY"
    committed: dict[str, int] = {}
    conn = connect(db)
    for i in range(20):
        conn.execute("INSERT INTO orders VALUES (?, ?)", (i, i * 100))
        mid = ferrymq.publish_in(conn, "orders", f"order-{i}", key=f"order-{i}")
        if i % 2:
            conn.rollback()
        else:
            conn.commit()
            committed[f"order-{i}"] = mid
    conn.close()
    out, _ = consumer.communicate(timeout=60)
    assert consumer.returncode == 0
    assert out.split() == list(committed)  # in order, the rolled-back ones never seen
    for key, mid in committed.items():
        (m,) = shop.find("orders", key)
        assert m.id == mid and m.deliveries["rust-side"].state == "acked"
    assert shop.stats().groups["rust-side"].ready == 0
    assert shop.stats().topics["orders"].messages == 10
    assert [i for i, _ in orders(db)] == list(range(0, 20, 2))


# --- SIGKILL mid-transaction -------------------------------------------------------------

PRODUCER = """
import sqlite3, sys, ferrymq
db, i = sys.argv[1], int(sys.argv[2])
conn = sqlite3.connect(db, timeout=30)
print("ready", flush=True)
while True:
    with conn:
        conn.execute("INSERT INTO orders VALUES (?, ?)", (i, i))
        for part in ("a", "b"):
            ferrymq.publish_in(conn, "orders", f"{i}/{part}", key=f"order-{i}")
    i += 1
"""


def next_order(db: pathlib.Path) -> int:
    c = connect(db)
    try:
        (n,) = c.execute("SELECT coalesce(max(id), 0) + 1 FROM orders").fetchone()
        return int(n)
    finally:
        c.close()


def kill_rounds() -> int:
    return int(os.environ.get("FERRYMQ_KILL_ROUNDS", "200"))


def test_sigkill_never_splits_an_order_from_its_messages(db: pathlib.Path, shop: ferrymq.Queue) -> None:
    shop.close()  # only the producers have the file open while they are killed
    rng = random.Random(int(os.environ.get("FERRYMQ_KILL_SEED", "7")))
    for _ in range(kill_rounds()):
        p = subprocess.Popen(
            [sys.executable, "-c", PRODUCER, str(db), str(next_order(db))], stdout=subprocess.PIPE, text=True
        )
        assert p.stdout is not None
        assert p.stdout.readline().strip() == "ready"
        try:
            p.wait(timeout=rng.uniform(0, 0.03))
        except subprocess.TimeoutExpired:
            pass
        p.send_signal(signal.SIGKILL)
        p.wait()
        assert p.returncode == -signal.SIGKILL, "the producer died on its own"
        p.stdout.close()
    ids = [i for i, _ in orders(db)]
    assert ids == list(range(1, len(ids) + 1)), "a gap: an order committed out of turn"
    assert len(ids) > 0
    with ferrymq.Queue(db) as q:
        for i in ids:
            got = sorted(m.payload.decode() for m in q.find("orders", f"order-{i}"))
            assert got == [f"{i}/a", f"{i}/b"], f"order {i}"
        # No message without its order: every one was found above under a committed id.
        stats = q.stats()
        assert stats.topics["orders"].messages == 2 * len(ids)
        assert stats.groups["g"].ready == 2 * len(ids)
    c = connect(db)
    assert c.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    c.close()
