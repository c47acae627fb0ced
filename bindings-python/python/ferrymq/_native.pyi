# Type stubs for the ferrymq._native extension module (checked by mypy --strict in the
# test suite, and against the built module by mypy.stubtest).
import datetime
import os
import pathlib
from contextlib import AbstractContextManager
from types import TracebackType
from typing import Any, Awaitable, Callable, Final, Literal, Optional, Sequence, Union, final

from typing_extensions import Self, TypedDict, Unpack, disjoint_base

_Seconds = Union[float, datetime.timedelta]

class _PublishOptions(TypedDict, total=False):
    """The publish options of every publish path (`Queue.publish`, `prepare`, `Message`,
    `Transaction.publish`, `publish_in`); unset or None means the core's default."""

    tag: Optional[str]
    key: Optional[str]
    headers: Optional[dict[str, str]]
    ordering_key: Optional[str]
    idempotency_key: Optional[str]
    delay: Optional[_Seconds]
    deliver_at: Optional[datetime.datetime]
    priority: Optional[int]
_Payload = Union[bytes, bytearray, memoryview, str]
_SqlValue = Union[None, int, float, str, bytes]
# A passphrase (or SQLCipher's x'<64 hex digits>'), or a raw 32-byte key.
_Key = Union[str, bytes]
# A key, or a provider of the keys to try (newest first).
_KeyArg = Union[_Key, Callable[[], Union[_Key, list[_Key], tuple[_Key, ...]]]]

__version__: str
# What `from ferrymq._native import *` gives (ferrymq/__init__.py re-exports it), its
# records added in their generated section below. Queue is the base of ferrymq.Queue.
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
    "EncryptionError",
    "Transaction",
    "Message",
    "RetryPolicy",
    "Resolution",
    "Delivery",
    "HalfMessage",
    "Worker",
    "Consumer",
    "encrypt_file",
    "decrypt_file",
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
class EncryptionError(FerrymqError): ...

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
        **options: Unpack[_PublishOptions],
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
    def span(self) -> AbstractContextManager[Any]: ...
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
class Consumer:
    """A group's deliveries one at a time (`for` / `async for`); see Queue.consume."""
    def __iter__(self) -> Self: ...
    def __next__(self) -> Delivery: ...
    def __aiter__(self) -> Self: ...
    def __anext__(self) -> Awaitable[Delivery]: ...
    def receive_async(self) -> Awaitable[Optional[Delivery]]: ...
    def settle_async(
        self, delivery: Delivery, error: Optional[str] = None
    ) -> Awaitable[_Settled]: ...
    def close(self) -> None: ...
    @property
    def closed(self) -> bool: ...
    @property
    def concurrency(self) -> int: ...
    def __enter__(self) -> Self: ...
    def __exit__(self, *args: object) -> bool: ...

# records: generated from ferrymq::RECORDS by core/tests/stubs_python.rs (FERRYMQ_WRITE_STUBS=1 rewrites)
@final
class AttemptRecord:
    """One attempt to hand one message to one consumer group."""
    attempt: Final[int]
    """1 for the first delivery, 2 for the first retry, ..."""
    started_at: Final[datetime.datetime]
    ended_at: Final[Optional[datetime.datetime]]
    """When the attempt was settled or its lease ran out; unset while in flight."""
    outcome: Final[Literal["inflight", "acked", "nacked", "lease_expired"]]
    error: Final[Optional[str]]
    """What the consumer's nack said, or why the lease ended."""

@final
class DeliveryInfo:
    """Where one message stands in one consumer group."""
    state: Final[Literal["ready", "scheduled", "inflight", "acked", "dead"]]
    attempts: Final[int]
    last_error: Final[Optional[str]]
    history: Final[list[AttemptRecord]]
    """One entry per attempt, oldest first."""

@final
class CheckRecord:
    """One check-back of a half message."""
    at: Final[datetime.datetime]
    resolution: Final[Resolution]
    error: Final[Optional[str]]
    """Set when the checker failed; the check counted as unknown."""

@final
class MessageInfo:
    """Everything known about one message."""
    id: Final[int]
    topic: Final[str]
    tag: Final[Optional[str]]
    key: Final[Optional[str]]
    payload: Final[bytes]
    headers: Final[dict[str, str]]
    ordering_key: Final[Optional[str]]
    """Deliveries of one ordering key reach a consumer group in order."""
    published_at: Final[datetime.datetime]
    deliver_at: Final[datetime.datetime]
    state: Final[Literal["half", "committed", "rolled_back"]]
    priority: Final[int]
    """0 to 9 (`PublishOptions::priority`)."""
    deliveries: Final[dict[str, DeliveryInfo]]
    """Per consumer group; empty for half messages and messages no group matched."""
    checks: Final[list[CheckRecord]]
    """Check-backs of a half message, oldest first."""

@final
class DeadLetter:
    """A delivery that used up its retries, kept for an operator."""
    message_id: Final[int]
    topic: Final[str]
    tag: Final[Optional[str]]
    key: Final[Optional[str]]
    payload: Final[bytes]
    headers: Final[dict[str, str]]
    attempts: Final[int]
    last_error: Final[Optional[str]]
    died_at: Final[datetime.datetime]
    history: Final[list[AttemptRecord]]

@final
class TopicStats:
    """One topic's share of `Queue::stats`."""
    messages: Final[int]
    """Committed messages kept in the file (acked ones stay until `purge_acked`)."""
    half: Final[int]
    """Half messages still undecided."""

@final
class GroupStats:
    """One consumer group's share of `Queue::stats`."""
    topic: Final[str]
    ready: Final[int]
    scheduled: Final[int]
    """Delayed first deliveries and ordered messages waiting for their predecessor."""
    inflight: Final[int]
    retrying: Final[int]
    """Waiting out a retry delay."""
    dead: Final[int]
    oldest_ready_age: Final[Optional[datetime.timedelta]]
    """How long the oldest ready delivery has been ready."""
    paused: Final[bool]
    """Whether `pause` holds the group: its receives return nothing until `resume`."""

@final
class Stats:
    """Counts per topic and per consumer group (`Queue::stats`)."""
    topics: Final[dict[str, TopicStats]]
    groups: Final[dict[str, GroupStats]]

@final
class TopicInfo:
    """One topic as `Queue::topics` lists it."""
    name: Final[str]
    messages: Final[int]
    """Committed messages kept in the file (acked ones stay until `purge_acked`)."""
    ready: Final[int]
    """Deliveries ready now, summed over the topic's consumer groups."""
    groups: Final[list[str]]
    """The consumer groups subscribed to it, by name."""

@final
class ScheduleInfo:
    """One schedule as `Queue::schedules` lists it."""
    name: Final[str]
    topic: Final[str]
    cron: Final[Optional[str]]
    every: Final[Optional[datetime.timedelta]]
    tz: Final[Optional[str]]
    """The cron pattern's time zone (`UTC` unless given); unset for `every`."""
    next_at: Final[datetime.datetime]
    """The next tick not yet handled (in the past if nobody received since it came due)."""
    fired: Final[int]
    """Tick times handled so far (published, merged by `once` or skipped)."""
    repeat_left: Final[Optional[int]]
    """Tick times left, the next included (unset: no end)."""
    missed: Final[Literal["catch_up", "once", "skip"]]
    tag: Final[Optional[str]]
    key: Final[Optional[str]]
    headers: Final[dict[str, str]]

@final
class AuditRecord:
    """One record of the audit trail (`Queue::audit`)."""
    id: Final[int]
    """Increasing in the order the actions committed."""
    at: Final[datetime.datetime]
    """When, on the clock of the queue that acted."""
    action: Final[str]
    """The verb: `pause`, `resume`, `schedule`, `unschedule`, `commit_half`, `rollback_half`, `redrive`, `purge_dead_letters`, `purge_dead_letter_ids`, `purge_acked`, `vacuum` or `rekey`."""
    target: Final[str]
    """The consumer group, schedule name or message id acted on; empty for the whole file."""
    detail: Final[Optional[str]]
    """JSON text: what was asked and what changed (see docs/DESIGN.md)."""
    pid: Final[int]
    process: Final[str]
    """The executable's file name (`ferrymq`, `python3.12`, `node`, `java`)."""
    host: Final[str]
    user: Final[str]
    """The effective OS user."""
    reason: Final[Optional[str]]
    """What the caller gave to `Queue::with_reason`."""

@final
class FileCheck:
    """What `Queue::check_file` found: SQLite's integrity check and the file's marks."""
    integrity: Final[list[str]]
    """The lines of `PRAGMA integrity_check`: `["ok"]` for a sound file."""
    schema_version: Final[int]
    """`PRAGMA user_version`: the schema version the file is at."""
    expected_schema_version: Final[int]
    """The schema version this build writes."""
    application_id: Final[int]
    """`PRAGMA application_id` ("Frry", 0x46727279, for a ferrymq file)."""
    expected_application_id: Final[int]

@final
class SqlStatements:
    """The SQL that publishes, acks and keeps inbox keys on a caller's own connection (`sql::statements`), each bound with the parameters its `sql` row gives."""
    publish: Final[str]
    """The INSERT that publishes: topic, payload, then `PublishRow::params`."""
    published_id: Final[str]
    """The SELECT of the id just published: topic, idempotency key."""
    ack: Final[str]
    """The INSERT that acks: `AckRow::params`."""
    main_file: Final[str]
    """The SELECT of the connection's main file, for `sql::check_file`."""
    inbox: Final[str]
    """The inbox INSERT: `InboxRow::params`; one row changed means a new key."""

__all__ += [
    "AttemptRecord",
    "DeliveryInfo",
    "CheckRecord",
    "MessageInfo",
    "DeadLetter",
    "TopicStats",
    "GroupStats",
    "Stats",
    "TopicInfo",
    "ScheduleInfo",
    "AuditRecord",
    "FileCheck",
    "SqlStatements",
]

# end of generated records

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
        **options: Unpack[_PublishOptions],
    ) -> int: ...
    def publish_batch(self, messages: Sequence[Message]) -> list[int]: ...
    def ack(self, delivery: Delivery) -> None: ...
    def nack(self, delivery: Delivery, reason: str = "", delay: Optional[_Seconds] = None) -> None: ...
    def inbox(self, key: str, *, window: Optional[_Seconds] = None) -> bool: ...
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
        key: Optional[_KeyArg] = None,
    ) -> Self: ...
    @property
    def path(self) -> pathlib.Path: ...
    @property
    def closed(self) -> bool: ...
    def __enter__(self) -> Self: ...
    def __exit__(self, *args: object) -> bool: ...
    def close(self) -> None: ...
    def rekey(self, key: _Key) -> None: ...
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
    def metrics(self) -> str: ...
    def schedule(
        self,
        name: str,
        topic: str,
        payload: _Payload,
        *,
        cron: Optional[str] = None,
        every: Optional[_Seconds] = None,
        tz: Optional[str] = None,
        repeat: Optional[int] = None,
        start_at: Optional[datetime.datetime] = None,
        delay: Optional[_Seconds] = None,
        tag: Optional[str] = None,
        key: Optional[str] = None,
        headers: Optional[dict[str, str]] = None,
        missed: Literal["catch_up", "once", "skip"] = "once",
    ) -> None: ...
    def unschedule(self, name: str) -> None: ...
    def schedules(self) -> list[ScheduleInfo]: ...
    def with_reason(self, reason: str) -> Self: ...
    def audit(self, after: Optional[int] = None, limit: Optional[int] = None) -> list[AuditRecord]: ...
    def publish(
        self,
        topic: str,
        payload: _Payload,
        **options: Unpack[_PublishOptions],
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
    def consume(
        self,
        group: str,
        *,
        max: int = 1,
        wait: Optional[_Seconds] = None,
        lease: Optional[_Seconds] = None,
        concurrency: Optional[int] = None,
    ) -> Consumer: ...
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
        **options: Unpack[_PublishOptions],
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
    def topics(self) -> list[TopicInfo]: ...
    def check_file(self) -> FileCheck: ...
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
SQL: SqlStatements

def check_file(queue: Queue, main_file: str) -> None: ...

def publish_row(
    topic: str,
    payload: _Payload,
    *,
    queue: Optional[Queue] = None,
    **options: Unpack[_PublishOptions],
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
def inbox_row(key: str, *, window: Optional[_Seconds] = None, queue: Optional[Queue] = None) -> tuple[str, Optional[int], int]: ...
def host_error(message: str, delivery: Optional[Delivery] = None) -> FerrymqError: ...
def no_transaction() -> InvalidArgumentError: ...
TRACEPARENT: str
def _trace_extract(headers: dict[str, str]) -> Optional[tuple[str, str, int, Optional[str]]]: ...
def cli_main(argv: list[str]) -> int: ...
def encrypt_file(src: Union[str, os.PathLike[str]], dst: Union[str, os.PathLike[str]], key: _Key) -> None: ...
def decrypt_file(src: Union[str, os.PathLike[str]], dst: Union[str, os.PathLike[str]], key: _Key) -> None: ...
