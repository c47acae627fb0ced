# Type stubs for the ferrymq._native extension module (checked by mypy --strict in the
# test suite, and against the built module by mypy.stubtest).
import datetime
import os
import pathlib
from types import TracebackType
from typing import Any, Awaitable, Callable, Literal, Optional, Sequence, Union, final

from typing_extensions import Self, disjoint_base

_Seconds = Union[float, datetime.timedelta]
_Payload = Union[bytes, bytearray, memoryview, str]
_SqlValue = Union[None, int, float, str, bytes]

__version__: str
__all__ = [
    "FerrymqError",
    "InvalidArgumentError",
    "NotFoundError",
    "LeaseLostError",
    "ClosedError",
    "BusyError",
    "StorageError",
    "CallbackError",
    "FullError",
    "Queue",
    "Transaction",
    "Message",
    "RetryPolicy",
    "Resolution",
    "Delivery",
    "HalfMessage",
    "Worker",
    "Stats",
    "TopicStats",
    "GroupStats",
    "MessageInfo",
    "DeliveryInfo",
    "AttemptRecord",
    "CheckRecord",
    "DeadLetter",
    "ManualClock",
    "PUBLISH_SQL",
    "PUBLISHED_ID_SQL",
    "ACK_SQL",
    "MAIN_FILE_SQL",
    "check_file",
    "publish_row",
    "ack_row",
    "host_error",
    "no_transaction",
    "__version__",
]

class FerrymqError(Exception): ...
class InvalidArgumentError(FerrymqError): ...
class NotFoundError(FerrymqError): ...
class LeaseLostError(FerrymqError): ...
class ClosedError(FerrymqError): ...
class BusyError(FerrymqError): ...
class StorageError(FerrymqError): ...
class CallbackError(FerrymqError): ...
class FullError(FerrymqError): ...

@final
class Resolution:
    COMMIT: Resolution
    ROLLBACK: Resolution
    UNKNOWN: Resolution
    def __eq__(self, value: object, /) -> bool: ...
    def __int__(self) -> int: ...

@final
class RetryPolicy:
    @staticmethod
    def rocketmq() -> RetryPolicy: ...
    @staticmethod
    def alipay() -> RetryPolicy: ...
    @staticmethod
    def wechat_pay() -> RetryPolicy: ...
    @staticmethod
    def exponential(
        initial: Optional[_Seconds] = None,
        max_delay: Optional[_Seconds] = None,
        max_retries: int = 16,
        jitter: float = 0.1,
    ) -> RetryPolicy: ...
    @staticmethod
    def fixed(delays: Sequence[_Seconds]) -> RetryPolicy: ...
    @property
    def max_retries(self) -> int: ...

@final
class Message:
    def __new__(
        cls,
        topic: str,
        payload: _Payload,
        *,
        tag: Optional[str] = None,
        key: Optional[str] = None,
        headers: Optional[dict[str, str]] = None,
        ordering_key: Optional[str] = None,
        idempotency_key: Optional[str] = None,
        delay: Optional[_Seconds] = None,
        deliver_at: Optional[datetime.datetime] = None,
        priority: Optional[int] = None,
    ) -> Self: ...
    @property
    def topic(self) -> str: ...
    @property
    def payload(self) -> bytes: ...

_Settled = Literal["acked", "retrying", "dead", "lease_lost"]

@final
class Delivery:
    @property
    def message_id(self) -> int: ...
    @property
    def topic(self) -> str: ...
    @property
    def tag(self) -> Optional[str]: ...
    @property
    def key(self) -> Optional[str]: ...
    @property
    def payload(self) -> bytes: ...
    @property
    def headers(self) -> dict[str, str]: ...
    @property
    def ordering_key(self) -> Optional[str]: ...
    @property
    def priority(self) -> int: ...
    @property
    def attempt(self) -> int: ...
    @property
    def consumer_group(self) -> str: ...
    @property
    def published_at(self) -> datetime.datetime: ...
    @property
    def lease_until(self) -> datetime.datetime: ...
    def ack(self) -> None: ...
    def nack(self, reason: str = "", delay: Optional[_Seconds] = None) -> None: ...
    def extend(self, lease: _Seconds) -> None: ...
    def settle(self, error: Optional[str] = None) -> _Settled: ...
    def ack_async(self) -> Awaitable[None]: ...
    def nack_async(self, reason: str = "", delay: Optional[_Seconds] = None) -> Awaitable[None]: ...
    def settle_async(self, error: Optional[str] = None) -> Awaitable[_Settled]: ...

@final
class HalfMessage:
    @property
    def id(self) -> int: ...
    def commit(self) -> None: ...
    def rollback(self) -> None: ...

@final
class Worker:
    @property
    def running(self) -> bool: ...
    def stop(self) -> None: ...
    def __enter__(self) -> Self: ...
    def __exit__(self, *args: object) -> bool: ...

@final
class TopicStats:
    @property
    def messages(self) -> int: ...
    @property
    def half(self) -> int: ...

@final
class GroupStats:
    @property
    def topic(self) -> str: ...
    @property
    def ready(self) -> int: ...
    @property
    def scheduled(self) -> int: ...
    @property
    def inflight(self) -> int: ...
    @property
    def retrying(self) -> int: ...
    @property
    def dead(self) -> int: ...
    @property
    def oldest_ready_age(self) -> Optional[float]: ...
    @property
    def paused(self) -> bool: ...

@final
class Stats:
    @property
    def topics(self) -> dict[str, TopicStats]: ...
    @property
    def groups(self) -> dict[str, GroupStats]: ...

@final
class AttemptRecord:
    @property
    def attempt(self) -> int: ...
    @property
    def started_at(self) -> datetime.datetime: ...
    @property
    def ended_at(self) -> Optional[datetime.datetime]: ...
    @property
    def outcome(self) -> Literal["inflight", "acked", "nacked", "lease_expired"]: ...
    @property
    def error(self) -> Optional[str]: ...

@final
class DeliveryInfo:
    @property
    def state(self) -> Literal["ready", "scheduled", "inflight", "acked", "dead"]: ...
    @property
    def attempts(self) -> int: ...
    @property
    def last_error(self) -> Optional[str]: ...
    @property
    def history(self) -> list[AttemptRecord]: ...

@final
class CheckRecord:
    @property
    def at(self) -> datetime.datetime: ...
    @property
    def resolution(self) -> Resolution: ...
    @property
    def error(self) -> Optional[str]: ...

@final
class MessageInfo:
    @property
    def id(self) -> int: ...
    @property
    def topic(self) -> str: ...
    @property
    def tag(self) -> Optional[str]: ...
    @property
    def key(self) -> Optional[str]: ...
    @property
    def payload(self) -> bytes: ...
    @property
    def headers(self) -> dict[str, str]: ...
    @property
    def ordering_key(self) -> Optional[str]: ...
    @property
    def published_at(self) -> datetime.datetime: ...
    @property
    def deliver_at(self) -> datetime.datetime: ...
    @property
    def priority(self) -> int: ...
    @property
    def state(self) -> Literal["half", "committed", "rolled_back"]: ...
    @property
    def deliveries(self) -> dict[str, DeliveryInfo]: ...
    @property
    def checks(self) -> list[CheckRecord]: ...

@final
class DeadLetter:
    @property
    def message_id(self) -> int: ...
    @property
    def topic(self) -> str: ...
    @property
    def tag(self) -> Optional[str]: ...
    @property
    def key(self) -> Optional[str]: ...
    @property
    def payload(self) -> bytes: ...
    @property
    def headers(self) -> dict[str, str]: ...
    @property
    def attempts(self) -> int: ...
    @property
    def last_error(self) -> Optional[str]: ...
    @property
    def died_at(self) -> datetime.datetime: ...
    @property
    def history(self) -> list[AttemptRecord]: ...

@final
class Transaction:
    def __enter__(self) -> Self: ...
    def __exit__(
        self,
        exc_type: Optional[type[BaseException]] = None,
        _exc: Optional[BaseException] = None,
        _tb: Optional[TracebackType] = None,
    ) -> bool: ...
    def execute(self, sql: str, params: Optional[Sequence[_SqlValue]] = None) -> int: ...
    def query(self, sql: str, params: Optional[Sequence[_SqlValue]] = None) -> list[tuple[Any, ...]]: ...
    def publish(
        self,
        topic: str,
        payload: _Payload,
        *,
        tag: Optional[str] = None,
        key: Optional[str] = None,
        headers: Optional[dict[str, str]] = None,
        ordering_key: Optional[str] = None,
        idempotency_key: Optional[str] = None,
        delay: Optional[_Seconds] = None,
        deliver_at: Optional[datetime.datetime] = None,
        priority: Optional[int] = None,
    ) -> int: ...
    def publish_batch(self, messages: Sequence[Message]) -> list[int]: ...
    def ack(self, delivery: Delivery) -> None: ...
    def nack(self, delivery: Delivery, reason: str = "", delay: Optional[_Seconds] = None) -> None: ...
    def commit(self) -> None: ...
    def rollback(self) -> None: ...

@disjoint_base
class Queue:
    def __new__(
        cls,
        path: Union[str, os.PathLike[str]],
        *,
        synchronous: Literal["normal", "full"] = "normal",
        busy_timeout: Optional[_Seconds] = None,
        max_payload: Optional[int] = None,
        idempotency_window: Optional[_Seconds] = None,
        check_after: Optional[_Seconds] = None,
        check_interval: Optional[_Seconds] = None,
        check_max: Optional[int] = None,
        poll_interval: Optional[_Seconds] = None,
        max_size: Optional[int] = None,
        max_ready: Optional[int] = None,
        foreign_keys: Optional[bool] = None,
        test_clock: Optional[ManualClock] = None,
    ) -> Self: ...
    @property
    def path(self) -> pathlib.Path: ...
    @property
    def closed(self) -> bool: ...
    def __enter__(self) -> Self: ...
    def __exit__(self, *args: object) -> bool: ...
    def close(self) -> None: ...
    def subscribe(
        self,
        group: str,
        topic: str,
        *,
        tags: str = "*",
        retry: Optional[RetryPolicy] = None,
        lease: Optional[_Seconds] = None,
        max_inflight: Optional[int] = None,
        rate: Optional[float] = None,
        burst: Optional[int] = None,
    ) -> None: ...
    def pause(self, group: str) -> None: ...
    def resume(self, group: str) -> None: ...
    def publish(
        self,
        topic: str,
        payload: _Payload,
        *,
        tag: Optional[str] = None,
        key: Optional[str] = None,
        headers: Optional[dict[str, str]] = None,
        ordering_key: Optional[str] = None,
        idempotency_key: Optional[str] = None,
        delay: Optional[_Seconds] = None,
        deliver_at: Optional[datetime.datetime] = None,
        priority: Optional[int] = None,
    ) -> int: ...
    def publish_batch(self, messages: Sequence[Message]) -> list[int]: ...
    def receive(
        self,
        group: str,
        *,
        max: int = 1,
        wait: Optional[_Seconds] = None,
        lease: Optional[_Seconds] = None,
    ) -> list[Delivery]: ...
    def receive_async(
        self,
        group: str,
        *,
        max: int = 1,
        wait: Optional[_Seconds] = None,
        lease: Optional[_Seconds] = None,
    ) -> Awaitable[list[Delivery]]: ...
    def worker(
        self,
        group: str,
        handler: Callable[[Delivery], object],
        *,
        concurrency: int = 1,
        max: int = 1,
        wait: Optional[_Seconds] = None,
        lease: Optional[_Seconds] = None,
    ) -> Worker: ...
    def transaction(self) -> Transaction: ...
    def prepare(
        self,
        topic: str,
        payload: _Payload,
        *,
        tag: Optional[str] = None,
        key: Optional[str] = None,
        headers: Optional[dict[str, str]] = None,
        ordering_key: Optional[str] = None,
        idempotency_key: Optional[str] = None,
        delay: Optional[_Seconds] = None,
        deliver_at: Optional[datetime.datetime] = None,
        priority: Optional[int] = None,
    ) -> HalfMessage: ...
    def commit_half(self, id: int) -> None: ...
    def rollback_half(self, id: int) -> None: ...
    def set_checker(self, topic: str, checker: Callable[[MessageInfo], Resolution]) -> None: ...
    def remove_checker(self, topic: str) -> bool: ...
    def run_checks(self) -> int: ...
    def half_messages(
        self, state: Optional[Literal["half", "rolled_back"]] = None, limit: Optional[int] = None
    ) -> list[MessageInfo]: ...
    def dead_letters(self, group: str, limit: Optional[int] = None) -> list[DeadLetter]: ...
    def redrive(self, group: str, ids: Optional[Sequence[int]] = None) -> int: ...
    def purge_dead_letters(self, group: str, older_than: Optional[_Seconds] = None) -> int: ...
    def stats(self) -> Stats: ...
    def message(self, id: int) -> MessageInfo: ...
    def find(self, topic: str, key: str) -> list[MessageInfo]: ...
    def purge_acked(self, older_than: Optional[_Seconds] = None) -> int: ...
    def vacuum(self, pages: Optional[int] = None) -> int: ...

@final
class ManualClock:
    """Test only (import it from ferrymq.testing): milliseconds since the epoch, moved by hand."""

    def __new__(cls, start_ms: Optional[int] = None) -> Self: ...
    def advance(self, seconds: _Seconds) -> None: ...
    def set_ms(self, ms: int) -> None: ...
    def now_ms(self) -> int: ...

# publish_in / ack_in (ferrymq._sql): the core's statements, their checked parameters and
# its mapping of the host library's errors.
PUBLISH_SQL: str
PUBLISHED_ID_SQL: str
ACK_SQL: str
MAIN_FILE_SQL: str

def check_file(queue: Queue, main_file: str) -> None: ...

def publish_row(
    topic: str,
    payload: _Payload,
    *,
    tag: Optional[str] = None,
    key: Optional[str] = None,
    headers: Optional[dict[str, str]] = None,
    ordering_key: Optional[str] = None,
    idempotency_key: Optional[str] = None,
    delay: Optional[_Seconds] = None,
    deliver_at: Optional[datetime.datetime] = None,
    priority: Optional[int] = None,
    queue: Optional[Queue] = None,
) -> tuple[
    str,
    bytes,
    Optional[str],
    Optional[str],
    Optional[str],
    Optional[str],
    Optional[str],
    Optional[int],
    Optional[int],
    int,
    Optional[int],
    int,
]: ...
def ack_row(delivery: Delivery, *, queue: Optional[Queue] = None) -> tuple[int, str, int, Optional[int]]: ...
def host_error(message: str, delivery: Optional[Delivery] = None) -> FerrymqError: ...
def no_transaction() -> InvalidArgumentError: ...
