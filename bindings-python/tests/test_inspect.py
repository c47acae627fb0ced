"""Introspection and the remaining calls: find, message history, redrive by id,
purge_acked, tx.nack and explicit commit/rollback, Message getters."""

from __future__ import annotations

import pathlib
import sqlite3
import time

from ferrymq import Message, Queue, RetryPolicy


def test_find_message_history_and_redrive_by_id(q: Queue) -> None:
    q.subscribe("g", "orders", retry=RetryPolicy.fixed([]))
    a = q.publish("orders", b"a", key="order-1")
    b = q.publish("orders", b"b", key="order-1")
    q.publish("orders", b"c", key="order-2")
    assert [m.id for m in q.find("orders", "order-1")] == [a, b]
    for d in q.receive("g", max=10):
        d.nack("poison")
    assert {dl.message_id for dl in q.dead_letters("g")} == {a, b, a + 2}
    assert q.redrive("g", ids=[b, 999999]) == 1
    (d,) = q.receive("g")
    assert d.message_id == b
    d.ack()
    info = q.message(b)
    assert info.key == "order-1" and info.state == "committed" and info.payload == b"b"
    g = info.deliveries["g"]
    assert (g.state, g.attempts) == ("acked", 1)
    assert [(h.attempt, h.outcome, h.error) for h in g.history] == [(1, "nacked", "poison"), (1, "acked", None)]
    assert g.history[0].ended_at is not None


def test_purge_acked_removes_old_acked_messages(q: Queue) -> None:
    q.subscribe("g", "t")
    q.publish_batch([Message("t", f"{i}") for i in range(5)])
    for d in q.receive("g", max=10):
        d.ack()
    q.publish("t", "newest")
    time.sleep(0.01)
    assert q.purge_acked(older_than=0) == 5
    assert q.stats().topics["t"].messages == 1


def test_transaction_nack_and_explicit_finish(q: Queue) -> None:
    q.subscribe("g", "t")
    q.publish("t", "x")
    (d,) = q.receive("g")
    tx = q.transaction()
    with tx:
        tx.nack(d, "not now", delay=0)
        tx.rollback()  # the nack is undone: d is still held
    assert q.receive("g") == []
    with q.transaction() as tx:
        tx.nack(d, "not now", delay=0)
    (again,) = q.receive("g")
    assert (again.message_id, again.attempt) == (d.message_id, 2)
    with q.transaction() as tx:
        tx.ack(again)
        tx.commit()
    m = Message("t", "payload", tag="a")
    assert (m.topic, m.payload) == ("t", b"payload")


def test_metrics_are_the_files_gauges_and_this_handles_counters(q: Queue) -> None:
    q.subscribe("g", "orders")
    q.publish("orders", b"a")
    q.publish("orders", b"b")
    (d,) = q.receive("g")
    d.ack()
    text = q.metrics()
    assert "# TYPE ferrymq_messages_ready gauge" in text
    assert 'ferrymq_messages_ready{topic="orders",consumer_group="g"} 1\n' in text
    assert 'ferrymq_messages_published_total{topic="orders"} 2\n' in text
    assert 'ferrymq_messages_acked_total{topic="orders",consumer_group="g"} 1\n' in text
    # Another handle on the file sees the same gauges but counts only its own work.
    with Queue(q.path) as other:
        assert "ferrymq_messages_published_total{" not in other.metrics()


def test_topics_lists_messages_ready_deliveries_and_groups(q: Queue) -> None:
    assert q.topics() == []
    q.subscribe("billing", "payments")
    q.subscribe("audit", "payments")
    for i in range(3):
        q.publish("payments", f"p{i}")
    (held,) = q.receive("billing")
    q.publish("logs", "nobody listens")
    got = [(t.name, t.messages, t.ready, t.groups) for t in q.topics()]
    assert got == [("logs", 1, 0, []), ("payments", 3, 5, ["audit", "billing"])]
    held.ack()


def test_check_file_reports_integrity_and_the_marks_the_file_has_now(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "q.db"
    with Queue(str(path)) as q:
        q.publish("t", "x")
        c = q.check_file()
        assert c.integrity == ["ok"]
        assert c.schema_version == c.expected_schema_version
        assert c.application_id == c.expected_application_id == 0x46727279
        own = sqlite3.connect(path)
        own.execute("PRAGMA application_id = 7")
        own.commit()
        own.close()
        c = q.check_file()
        assert (c.integrity, c.application_id) == (["ok"], 7)
