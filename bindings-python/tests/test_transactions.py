"""The outbox: `with q.transaction() as tx:` commits on exit and rolls back on
exception; acking inside it gives an exactly-once effect."""

from __future__ import annotations

import time

import pytest

import ferrymq
from ferrymq import Queue


def setup_tables(q: Queue) -> None:
    with q.transaction() as tx:
        tx.execute("CREATE TABLE orders(id INTEGER PRIMARY KEY, amount INTEGER NOT NULL)")
        tx.execute("CREATE TABLE accounts(id INTEGER PRIMARY KEY, balance INTEGER NOT NULL)")
        tx.execute("INSERT INTO accounts VALUES (?, ?)", (7, 1000))
    q.subscribe("payments", "orders")


def test_row_and_message_commit_together(q: Queue) -> None:
    setup_tables(q)
    with q.transaction() as tx:
        assert tx.execute("INSERT INTO orders(id, amount) VALUES (?, ?)", (42, 100)) == 1
        mid = tx.publish("orders", b"order 42", key="order-42")
        assert tx.query("SELECT amount FROM orders WHERE id = ?", (42,)) == [(100,)]
        tx.publish_batch([ferrymq.Message("orders", "extra")])
    (d, extra) = q.receive("payments", max=10)
    assert (d.message_id, d.key) == (mid, "order-42")
    assert extra.payload == b"extra"


def test_an_exception_rolls_back_and_propagates(q: Queue) -> None:
    setup_tables(q)
    with pytest.raises(RuntimeError, match="inventory"):
        with q.transaction() as tx:
            tx.execute("INSERT INTO orders VALUES (1, 5)")
            tx.publish("orders", b"o1")
            raise RuntimeError("inventory check failed")
    assert q.receive("payments") == []
    with q.transaction() as tx:
        assert tx.query("SELECT count(*) FROM orders") == [(0,)]


def test_ack_in_the_transaction_and_a_lost_lease_rolls_back(q: Queue) -> None:
    setup_tables(q)
    q.subscribe("payments", "orders", lease=0.1)
    q.publish("orders", b"debit 100")
    (slow,) = q.receive("payments")
    time.sleep(0.15)
    (fast,) = q.receive("payments")
    with q.transaction() as tx:
        tx.execute("UPDATE accounts SET balance = balance - 100 WHERE id = 7")
        tx.ack(fast)
    with pytest.raises(ferrymq.LeaseLostError):
        with q.transaction() as tx:
            tx.execute("UPDATE accounts SET balance = balance - 100 WHERE id = 7")
            tx.ack(slow)
    with q.transaction() as tx:
        assert tx.query("SELECT balance FROM accounts") == [(900,)]


def test_values_round_trip_through_sql(q: Queue) -> None:
    with q.transaction() as tx:
        tx.execute("CREATE TABLE v(a, b, c, d, e)")
        tx.execute("INSERT INTO v VALUES (?, ?, ?, ?, ?)", [None, 7, 1.5, "text", b"\x00\x01"])
        assert tx.query("SELECT * FROM v") == [(None, 7, 1.5, "text", b"\x00\x01")]


def test_misuse_is_refused(q: Queue) -> None:
    setup_tables(q)
    tx = q.transaction()
    with pytest.raises(ferrymq.InvalidArgumentError, match="not open"):
        tx.execute("SELECT 1")
    with q.transaction() as tx:
        with pytest.raises(ferrymq.InvalidArgumentError, match="SQL failed"):
            tx.execute("this is not SQL")
        with pytest.raises(ferrymq.InvalidArgumentError):
            tx.execute("INSERT INTO nowhere VALUES (1)")
        with pytest.raises(ferrymq.InvalidArgumentError, match="refused"):
            tx.execute("COMMIT")
        with pytest.raises(ferrymq.InvalidArgumentError, match="refused"):
            tx.execute("DELETE FROM ferrymq_messages")
        with pytest.raises(ferrymq.InvalidArgumentError, match="parameter 0"):
            tx.execute("SELECT ?", (object(),))  # type: ignore[arg-type]
        with pytest.raises(ferrymq.InvalidArgumentError, match="nested"):
            with q.transaction():
                pass
        with pytest.raises(ferrymq.InvalidArgumentError, match="open transaction"):
            q.publish("orders", b"around the transaction")
        tx.execute("INSERT INTO orders VALUES (3, 3)")
    with pytest.raises(ferrymq.InvalidArgumentError, match="ended"):
        tx.commit()
    with q.transaction() as tx:
        assert tx.query("SELECT id FROM orders") == [(3,)]
