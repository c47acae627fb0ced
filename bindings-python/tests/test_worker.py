"""Threaded workers: returning acks, raising nacks with the exception text, and a
crashing handler never stops the worker."""

from __future__ import annotations

import threading
import time

import pytest

import ferrymq
from ferrymq import Delivery, Queue, RetryPolicy


def test_a_worker_acks_and_nacks_with_the_exception_text(q: Queue) -> None:
    q.subscribe("g", "t", retry=RetryPolicy.fixed([]))
    for i in range(20):
        q.publish("t", f"{i}")
    q.publish("t", "boom")
    seen: list[bytes] = []
    lock = threading.Lock()

    def handler(d: Delivery) -> None:
        with lock:
            seen.append(d.payload)
        if d.payload == b"boom":
            raise ValueError("bank rejected the card")

    with q.worker("g", handler, concurrency=3, max=4, wait=0.05) as w:
        deadline = time.monotonic() + 20
        while len(seen) < 21 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert w.running
    assert not w.running
    assert len(seen) == 21
    (dl,) = q.dead_letters("g")
    assert (dl.payload, dl.last_error) == (b"boom", "bank rejected the card")
    g = q.stats().groups["g"]
    assert (g.ready, g.inflight) == (0, 0)


def test_a_bad_handler_is_refused(q: Queue) -> None:
    q.subscribe("g", "t")
    with pytest.raises(ferrymq.InvalidArgumentError, match="callable"):
        q.worker("g", "not a function")  # type: ignore[arg-type]
    with pytest.raises(ferrymq.NotFoundError):
        q.worker("nobody", lambda d: None)
