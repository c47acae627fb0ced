"""asyncio: receive_async, consume, run_worker; waiting coroutines hold no thread."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

import ferrymq
from ferrymq import Delivery, Queue, RetryPolicy


def test_receive_async_waits_for_a_publish(q: Queue) -> None:
    q.subscribe("g", "t")

    async def main() -> list[Delivery]:
        waiter = asyncio.ensure_future(q.receive_async("g", wait=10.0))
        await asyncio.sleep(0.1)
        q.publish("t", "hello")
        return await waiter

    (d,) = asyncio.run(main())
    assert d.payload == b"hello"


def test_many_waiting_receives_do_not_take_a_thread_each(q: Queue) -> None:
    q.subscribe("g", "t")
    n = 50

    async def main() -> int:
        tasks = [asyncio.ensure_future(q.receive_async("g", wait=10.0)) for _ in range(n)]
        await asyncio.sleep(0.3)
        threads_while_waiting = threading.active_count()
        for i in range(n):
            q.publish("t", f"m{i}")
        got = sum(len(ds) for ds in await asyncio.gather(*tasks))
        assert threads_while_waiting < n // 2, threads_while_waiting
        return got

    assert asyncio.run(main()) == n


def test_consume_and_run_worker_with_async_handlers(q: Queue) -> None:
    q.subscribe("g", "t", retry=RetryPolicy.fixed([]))
    for i in range(10):
        q.publish("t", f"{i}")
    q.publish("t", "bad")
    handled: list[bytes] = []

    async def handler(d: Delivery) -> None:
        await asyncio.sleep(0)
        handled.append(d.payload)
        if d.payload == b"bad":
            raise RuntimeError("cannot pay")

    async def main() -> None:
        task = asyncio.ensure_future(q.run_worker("g", handler, concurrency=3, wait=0.1))
        deadline = time.monotonic() + 30
        while len(handled) < 11:
            assert time.monotonic() < deadline, f"handled only {handled}"
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.2)
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass

    asyncio.run(main())
    assert sorted(handled) == sorted([f"{i}".encode() for i in range(10)] + [b"bad"])
    (dl,) = q.dead_letters("g")
    assert dl.last_error == "cannot pay"

    q.publish("t", "via consume")

    async def consume_one() -> Delivery:
        async for d in q.consume("g", wait=1.0):
            await d.ack_async()
            return d
        raise AssertionError("unreachable")

    assert asyncio.run(consume_one()).payload == b"via consume"


def test_async_settle_and_nack(q: Queue) -> None:
    q.subscribe("g", "t")
    q.publish("t", "x")

    async def main() -> str:
        (d,) = await q.receive_async("g")
        await d.nack_async("later", delay=0)
        (d,) = await q.receive_async("g")
        return await d.settle_async(None)

    assert asyncio.run(main()) == "acked"
    assert isinstance(ferrymq.__version__, str)


def test_run_workers_concurrency_is_bounded_as_a_threaded_workers(q: Queue) -> None:
    q.subscribe("g", "t")

    async def handler(d: Delivery) -> None:
        pass

    for bad in (0, 257):
        with pytest.raises(ferrymq.InvalidArgumentError, match="concurrency"):
            asyncio.run(q.run_worker("g", handler, concurrency=bad))
