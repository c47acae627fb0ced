"""ferrymq: a durable message queue in one SQLite file, shared by many processes.

Every queue decision lives in the Rust core; this package converts types and errors.
"""

from __future__ import annotations

import asyncio
import datetime
from typing import Awaitable, Callable, Optional, Union

from . import _native
from ._native import *  # noqa: F403 (the extension's __all__: its public classes and functions)
from ._native import Queue as _NativeQueue
from ._sql import ack_in, inbox_in, publish_in

#: Durations are seconds (int or float) or a datetime.timedelta.
Seconds = Union[float, datetime.timedelta]

# A class or function the extension adds to its __all__ (and its stub) needs no line here.
__all__ = ["Queue", "ack_in", "inbox_in", "publish_in"]
__all__ += _native.__all__

class Queue(_NativeQueue):
    """A queue in one SQLite file; see the package README for the whole API."""

    async def run_worker(
        self,
        group: str,
        handler: Callable[[Delivery], Awaitable[object]],
        *,
        concurrency: int = 1,
        max: int = 1,
        wait: Optional[Seconds] = None,
        lease: Optional[Seconds] = None,
    ) -> None:
        """Awaits `handler(delivery)` for every delivery on `concurrency` tasks until
        cancelled. Returning acks; raising nacks with str(exception) (the core decides
        retry or dead)."""
        consumer = self.consume(group, max=max, wait=wait, lease=lease, concurrency=concurrency)

        async def one() -> None:
            # The consumer waits, renews the lease while the handler runs, and says
            # what a failure means; the loop only awaits the handler.
            while (d := await consumer.receive_async()) is not None:
                try:
                    with d.span():  # an OpenTelemetry consumer span, when installed
                        await handler(d)
                except asyncio.CancelledError:
                    raise  # closing the consumer below puts `d` back, no attempt counted
                except Exception as exc:  # the handler's failure becomes the nack reason
                    await consumer.settle_async(d, str(exc) or type(exc).__name__)
                else:
                    await consumer.settle_async(d, None)

        with consumer:
            await asyncio.gather(*(one() for _ in range(consumer.concurrency)))
