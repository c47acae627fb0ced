"""Queue.consume: the core's consumer as an iterator and an async iterator. The core renews
the lease of the delivery in hand, and breaking out puts back what the consumer holds."""

from __future__ import annotations

import asyncio
import time

from ferrymq import Delivery, Queue


def test_a_slow_loop_body_keeps_its_lease(q: Queue) -> None:
    q.subscribe("g", "t", lease=0.2)
    q.publish("t", "slow")
    for d in q.consume("g", wait=0.05):
        time.sleep(0.8)  # four leases: only the heartbeat keeps the message ours
        assert q.receive("g") == [], "redelivered to a second consumer"
        d.ack()
        break


def test_a_slow_async_handler_keeps_its_lease(q: Queue) -> None:
    q.subscribe("g", "t", lease=0.2)
    q.publish("t", "slow")
    seen: list[tuple[int, list[Delivery]]] = []

    async def handler(d: Delivery) -> None:
        await asyncio.sleep(0.8)
        seen.append((d.attempt, q.receive("g")))

    async def main() -> None:
        task = asyncio.ensure_future(q.run_worker("g", handler, wait=0.05))
        while not seen:
            await asyncio.sleep(0.02)
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass

    asyncio.run(main())
    assert seen == [(1, [])]
    assert q.stats().groups["g"].inflight == 0


def test_breaking_out_puts_the_delivery_back_at_once(q: Queue) -> None:
    q.subscribe("g", "t")  # a 30 s lease: only the put-back makes it ready now
    q.publish("t", "a")
    for d in q.consume("g"):
        assert d.attempt == 1
        break
    (again,) = q.receive("g")
    assert again.attempt == 1, "a put-back counts no attempt"
    again.ack()

    q.publish("t", "b")

    async def first() -> Delivery:
        async for d in q.consume("g"):
            return d
        raise AssertionError("unreachable")

    assert asyncio.run(first()).payload == b"b"
    (again,) = q.receive("g")
    assert again.payload == b"b"


def test_close_ends_the_loop_and_leaves_a_settled_delivery_alone(q: Queue) -> None:
    q.subscribe("g", "t")
    q.publish("t", "x")
    with q.consume("g") as c:
        d = next(c)
        d.ack()
    assert c.closed
    assert list(c) == []
    assert q.receive("g") == []
