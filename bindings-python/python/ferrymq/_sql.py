"""publish_in / ack_in / inbox_in: publish, ack and the inbox on the caller's own SQLite
connection, in its transaction, so they commit or roll back with the caller's rows.

The statements are the core's (ferrymq::sql, run by the file's schema-4 triggers) and so
are the checks and the error kinds; this module finds the DB-API connection, refuses one
outside a transaction, runs the statements on it and converts its errors.
"""

from __future__ import annotations

import contextlib
import datetime
import sqlite3
from typing import TYPE_CHECKING, Any, Iterator, Optional, Union

from . import _native
from ._native import Delivery, Queue

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from ._native import _PublishOptions

_Seconds = Union[float, datetime.timedelta]
_Payload = Union[bytes, bytearray, memoryview, str]


def _dbapi(conn: Any) -> Any:
    """The DB-API connection under `conn`: a sqlite3.Connection as it is; a SQLAlchemy
    Session or Connection unwrapped (the session's connection, which joins its
    transaction); anything else is taken to have sqlite3's shape."""
    if isinstance(conn, sqlite3.Connection):
        return conn
    if type(conn).__module__.startswith("sqlalchemy"):
        if callable(getattr(conn, "connection", None)):  # a Session: its Connection
            conn = conn.connection()
        pooled = conn.connection  # the pool's proxy of the DB-API connection
        raw = getattr(pooled, "driver_connection", None)
        return raw if raw is not None else pooled.dbapi_connection
    return conn


def _check_transaction(conn: Any) -> None:
    """Refuses a connection on which the INSERT would commit on its own: outside a
    transaction, and set not to open one before a write (sqlite3's isolation_level
    None, or autocommit=True on Python 3.12+)."""
    if getattr(conn, "in_transaction", True):
        return
    autocommit = getattr(conn, "autocommit", None)
    if autocommit is True:
        raise _native.no_transaction()
    if autocommit is False:
        return  # PEP 249 mode: a transaction is always open
    if hasattr(conn, "isolation_level") and conn.isolation_level is None:
        raise _native.no_transaction()


def _check_file(cur: Any, queue: Optional[Queue]) -> None:
    """With `queue`, refuses a connection to another file (its clock and limits would
    apply to the wrong queue)."""
    if queue is not None:
        cur.execute(_native.SQL.main_file)
        (main_file,) = cur.fetchone()
        _native.check_file(queue, main_file)


def _errors(conn: Any) -> Any:
    """The exception classes of the connection's library (DB-API's Connection.Error)."""
    return getattr(conn, "Error", sqlite3.Error)


@contextlib.contextmanager
def _cursor(conn: Any, queue: Optional[Queue], delivery: Optional[Delivery] = None) -> Iterator[Any]:
    """A cursor in `conn`'s open transaction, on the queue's file (checked); the errors of
    the connection's library become ferrymq's."""
    db = _dbapi(conn)
    _check_transaction(db)
    try:
        cur = db.cursor()
        try:
            _check_file(cur, queue)
            yield cur
        finally:
            cur.close()
    except _errors(db) as e:
        raise _native.host_error(str(e), delivery) from e


def publish_in(
    conn: Any,
    topic: str,
    payload: _Payload,
    *,
    queue: Optional[Queue] = None,
    **options: Unpack[_PublishOptions],
) -> int:
    """Publishes on `conn` (sqlite3.Connection, SQLAlchemy Connection or Session, or a
    DB-API connection of sqlite3's shape) inside its open transaction: the message is
    stored when that transaction commits, and vanishes if it rolls back. The options and
    checks are `Queue.publish`'s; `queue` gives its max_payload, idempotency window and
    clock (without it: the defaults and SQLite's clock). Returns the message id (for a
    repeated idempotency key, the first message's)."""
    row = _native.publish_row(topic, payload, queue=queue, **options)
    with _cursor(conn, queue) as cur:
        cur.execute(_native.SQL.publish, row)
        cur.execute(_native.SQL.published_id, (topic, options.get("idempotency_key")))
        (message_id,) = cur.fetchone()
    return int(message_id)


def ack_in(conn: Any, delivery: Delivery, *, queue: Optional[Queue] = None) -> None:
    """Acks `delivery` on `conn` inside its open transaction: the ack holds when that
    transaction commits. LeaseLostError when the delivery is no longer held (its lease
    expired and another consumer took it, or it was settled); let it propagate out of
    the transaction so the caller's writes roll back with it."""
    row = _native.ack_row(delivery, queue=queue)
    with _cursor(conn, queue, delivery) as cur:
        cur.execute(_native.SQL.ack, row)


def inbox_in(conn: Any, key: str, *, window: Optional[_Seconds] = None, queue: Optional[Queue] = None) -> bool:
    """The inbox (`tx.inbox`) on `conn` inside its open transaction: True the first time
    `key` is seen within `window` (seconds or a timedelta; None: a week), False for a
    redelivery. The key is remembered only if that transaction commits. `queue` gives its
    clock (without it: SQLite's)."""
    row = _native.inbox_row(key, window=window, queue=queue)
    with _cursor(conn, queue) as cur:
        cur.execute(_native.SQL.inbox, row)
        new: bool = cur.rowcount == 1
    return new
