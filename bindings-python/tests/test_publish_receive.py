"""Publishing and receiving: payload types, fields, filters, fan-out, batches,
idempotency, delay, leases."""

from __future__ import annotations

import datetime
import time

import pytest

import ferrymq
from ferrymq import Message, Queue, RetryPolicy


def test_every_field_round_trips(q: Queue) -> None:
    q.subscribe("payment-center", "payments", tags="created || retried", lease=30.0)
    before = datetime.datetime.now(datetime.timezone.utc)
    mid = q.publish(
        "payments",
        b"pay 100",
        tag="created",
        key="order-42",
        headers={"traceparent": "00-abc-01"},
        ordering_key="account-7",
        idempotency_key="order-42/pay",
    )
    (d,) = q.receive("payment-center", max=10, wait=1.0)
    assert d.message_id == mid
    assert (d.topic, d.tag, d.key, d.ordering_key) == ("payments", "created", "order-42", "account-7")
    assert d.payload == b"pay 100" and isinstance(d.payload, bytes)
    assert d.headers == {"traceparent": "00-abc-01"}
    assert d.attempt == 1 and d.consumer_group == "payment-center"
    assert d.published_at.tzinfo is not None
    assert abs((d.published_at - before).total_seconds()) < 60
    assert 25 < (d.lease_until - d.published_at).total_seconds() <= 31
    d.ack()
    assert q.receive("payment-center") == []
    assert q.message(mid).deliveries["payment-center"].state == "acked"


@pytest.mark.parametrize(
    "payload", [b"abc", bytearray(b"abc"), memoryview(b"xabcx")[1:4], "abc"], ids=["bytes", "bytearray", "memoryview", "str"]
)
def test_payload_types(q: Queue, payload: bytes | bytearray | memoryview | str) -> None:
    q.subscribe("g", "t")
    q.publish("t", payload)
    assert q.receive("g")[0].payload == b"abc"


def test_tag_filters_and_fan_out(q: Queue) -> None:
    q.subscribe("all", "pay")
    q.subscribe("created", "pay", tags="created")
    for tag in ["created", "refunded"]:
        q.publish("pay", tag, tag=tag)
    assert [d.payload for d in q.receive("all", max=10)] == [b"created", b"refunded"]
    assert [d.payload for d in q.receive("created", max=10)] == [b"created"]


def test_competing_consumers_get_each_message_once(q: Queue) -> None:
    q.subscribe("g", "t")
    ids = q.publish_batch([Message("t", f"m{i}") for i in range(50)])
    seen: list[int] = []
    while batch := q.receive("g", max=7):
        for d in batch:
            seen.append(d.message_id)
            d.ack()
    assert sorted(seen) == ids


def test_batch_is_all_or_nothing(q: Queue) -> None:
    q.subscribe("g", "t")
    with pytest.raises(ferrymq.InvalidArgumentError, match="message 1"):
        q.publish_batch([Message("t", "ok"), Message("bad topic", "no")])
    assert q.receive("g") == []


def test_idempotency_key_enqueues_once(q: Queue) -> None:
    q.subscribe("g", "pay")
    first = q.publish("pay", "one", idempotency_key="order-42/pay")
    assert q.publish("pay", "two", idempotency_key="order-42/pay") == first
    assert [d.payload for d in q.receive("g", max=10)] == [b"one"]


def test_delay_and_deliver_at(q: Queue) -> None:
    q.subscribe("g", "t")
    q.publish("t", "later", delay=datetime.timedelta(milliseconds=300))
    at = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(milliseconds=300)
    q.publish("t", "at", deliver_at=at)
    assert q.receive("g", max=10) == []
    start = time.monotonic()
    got = q.receive("g", max=10, wait=5.0)
    assert got and time.monotonic() - start >= 0.2
    with pytest.raises(ferrymq.InvalidArgumentError, match="naive"):
        q.publish("t", "x", deliver_at=datetime.datetime.now())


def test_nack_retries_on_the_schedule_then_dead_and_redrive(q: Queue) -> None:
    q.subscribe("g", "t", retry=RetryPolicy.fixed([0.1]))
    mid = q.publish("t", "poison", key="k")
    (d,) = q.receive("g")
    d.nack("bank down")
    assert q.receive("g") == []
    (d,) = q.receive("g", wait=2.0)
    assert d.attempt == 2
    d.nack("still down")
    (dl,) = q.dead_letters("g")
    assert (dl.message_id, dl.attempts, dl.last_error, dl.key) == (mid, 2, "still down", "k")
    assert [h.outcome for h in dl.history] == ["nacked", "nacked"]
    assert q.stats().groups["g"].dead == 1
    assert q.redrive("g") == 1
    (d,) = q.receive("g")
    assert d.attempt == 1
    d.nack("again", delay=0)
    (d,) = q.receive("g")
    d.nack("dead again")
    assert q.purge_dead_letters("g") == 1


def test_an_expired_lease_is_taken_over_and_the_old_ack_fails(q: Queue) -> None:
    q.subscribe("g", "t", lease=0.1)
    q.publish("t", "m")
    (first,) = q.receive("g")
    time.sleep(0.15)
    (second,) = q.receive("g")
    assert second.attempt == 2
    with pytest.raises(ferrymq.LeaseLostError):
        first.ack()
    second.extend(30)
    time.sleep(0.15)
    assert q.receive("g") == []
    assert second.settle() == "acked"
    assert first.settle("late") == "lease_lost"


def test_retry_policies_and_stats_shapes(q: Queue) -> None:
    assert RetryPolicy.rocketmq().max_retries == 16
    assert RetryPolicy.alipay().max_retries == 7
    assert RetryPolicy.wechat_pay().max_retries == 15
    assert RetryPolicy.exponential(initial=1.0, max_delay=3600.0, max_retries=5, jitter=0.1).max_retries == 5
    assert RetryPolicy.exponential().max_retries == 16  # the core's default
    q.subscribe("g", "t", retry=RetryPolicy.wechat_pay())
    q.publish("t", "x", delay=60)
    s = q.stats()
    assert s.topics["t"].messages == 1 and s.topics["t"].half == 0
    g = s.groups["g"]
    assert (g.topic, g.ready, g.scheduled, g.inflight, g.retrying, g.dead) == ("t", 0, 1, 0, 0, 0)
    assert g.oldest_ready_age is None
    found = q.find("t", "nope")
    assert found == []
    assert q.purge_acked(older_than=0) == 0
