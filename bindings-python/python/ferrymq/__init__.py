"""ferrymq: a durable message queue in one SQLite file, shared by many processes.

Every queue decision lives in the Rust core; this package converts types and errors.
"""

from __future__ import annotations

import asyncio
import datetime
from typing import AsyncIterator, Awaitable, Callable, Optional, Union

from ._native import (
    AttemptRecord,
    BusyError,
    CallbackError,
    CheckRecord,
    ClosedError,
    DeadLetter,
    Delivery,
    DeliveryInfo,
    FerrymqError,
    FullError,
    GroupStats,
    HalfMessage,
    InvalidArgumentError,
    LeaseLostError,
    Message,
    MessageInfo,
    NotFoundError,
    Resolution,
    RetryPolicy,
    ScheduleInfo,
    Stats,
    StorageError,
    TopicStats,
    Transaction,
    Worker,
    __version__,
)
from ._native import Queue as _NativeQueue
from ._sql import ack_in, inbox_in, publish_in

#: Durations are seconds (int or float) or a datetime.timedelta.
Seconds = Union[float, datetime.timedelta]

__all__ = [
    "AttemptRecord",
    "BusyError",
    "CallbackError",
    "CheckRecord",
    "ClosedError",
    "DeadLetter",
    "Delivery",
    "DeliveryInfo",
    "FerrymqError",
    "FullError",
    "GroupStats",
    "HalfMessage",
    "InvalidArgumentError",
    "LeaseLostError",
    "Message",
    "MessageInfo",
    "NotFoundError",
    "Queue",
    "Resolution",
    "RetryPolicy",
    "ScheduleInfo",
    "Stats",
    "StorageError",
    "TopicStats",
    "Transaction",
    "Worker",
    "__version__",
    "ack_in",
    "inbox_in",
    "publish_in",
]

class Queue(_NativeQueue):
    """A queue in one SQLite file; see the package README for the whole API."""

    async def consume(
        self,
        group: str,
        *,
        max: int = 1,
        wait: Seconds = 1.0,
        lease: Optional[Seconds] = None,
    ) -> AsyncIterator[Delivery]:
        """Yields deliveries of `group` forever; each waiting receive holds no thread."""
        while True:
            for d in await self.receive_async(group, max=max, wait=wait, lease=lease):
                yield d

    async def run_worker(
        self,
        group: str,
        handler: Callable[[Delivery], Awaitable[object]],
        *,
        concurrency: int = 1,
        max: int = 1,
        wait: Seconds = 1.0,
        lease: Optional[Seconds] = None,
    ) -> None:
        """Awaits `handler(delivery)` for every delivery on `concurrency` tasks until
        cancelled. Returning acks; raising nacks with str(exception) (the core decides
        retry or dead)."""

        async def one() -> None:
            async for d in self.consume(group, max=max, wait=wait, lease=lease):
                try:
                    with d.span():  # an OpenTelemetry consumer span, when installed
                        await handler(d)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # the handler's failure becomes the nack reason
                    await d.settle_async(str(exc) or type(exc).__name__)
                else:
                    await d.settle_async(None)

        await asyncio.gather(*(one() for _ in range(concurrency)))
