"""Encryption at rest through the native library: key forms, what reaches the disk, every
wrong way of opening a file (EncryptionError, the bytes unchanged), key providers (their
failures typed, and following another handle's rekey), and publish_in on SQLCipher's own
DB-API library. The semantics are the core's (core/tests/encryption.rs); these check the
conversions."""

from __future__ import annotations

import pathlib
import sqlite3
import threading
from typing import Any, Callable, Optional, Union

import pytest
from sqlcipher3 import dbapi2 as sqlcipher

import ferrymq

PAYLOAD = "IBAN-DE89370400440532013000-amount-4711.00"
HEADER = "customer-Hildegard-Piepenbrink"
PASSPHRASE = "correct horse battery staple"
RAW = bytes(range(32))

Key = Union[str, bytes]


def files(path: pathlib.Path) -> dict[str, Optional[bytes]]:
    """The file and its -wal and -shm as they are on disk (None: absent)."""
    out: dict[str, Optional[bytes]] = {}
    for suffix in ("", "-wal", "-shm"):
        p = pathlib.Path(f"{path}{suffix}")
        out[suffix] = p.read_bytes() if p.exists() else None
    return out


def found(path: pathlib.Path, needle: Union[str, bytes]) -> list[str]:
    """Which of the file, -wal, -shm hold `needle`."""
    raw = needle.encode() if isinstance(needle, str) else needle
    return [s or "main" for s, b in files(path).items() if b is not None and raw in b]


def publish_secrets(q: ferrymq.Queue, n: int) -> None:
    q.subscribe("payments", "pay")
    for i in range(n):
        q.publish("pay", f"{PAYLOAD}-{i}", key=f"order-{i}", headers={"customer": HEADER})


def encrypted_file(tmp: pathlib.Path, key: Key = PASSPHRASE) -> pathlib.Path:
    path = tmp / "q.db"
    with ferrymq.Queue(path, key=key) as q:
        publish_secrets(q, 5)
    return path


def refused_unchanged(path: pathlib.Path, says: str, key: Any = None) -> ferrymq.EncryptionError:
    before = files(path)
    with pytest.raises(ferrymq.EncryptionError) as e:
        ferrymq.Queue(path, key=key)
    assert says in str(e.value)
    assert files(path) == before, "the refused open changed the file"
    return e.value


@pytest.mark.parametrize("key", [PASSPHRASE, RAW, "x'" + RAW.hex() + "'"], ids=["passphrase", "raw", "raw_text"])
def test_an_encrypted_round_trip_leaves_no_plaintext_on_disk(tmp_path: pathlib.Path, key: Key) -> None:
    path = tmp_path / "q.db"
    secrets: list[Union[str, bytes]] = [PAYLOAD, HEADER, PASSPHRASE, RAW, RAW.hex(), "ferrymq_messages", "SQLite format 3"]
    with ferrymq.Queue(path, key=key) as q:
        publish_secrets(q, 200)
        assert pathlib.Path(f"{path}-wal").stat().st_size > 0, "the pages should be in the -wal now"
        for s in secrets:
            assert found(path, s) == [], s
        got = q.receive("payments", max=10)
        assert [d.payload.decode() for d in got] == [f"{PAYLOAD}-{i}" for i in range(10)]
        assert got[0].headers == {"customer": HEADER}
        for d in got:
            d.ack()
        assert PASSPHRASE not in repr(q)
    for s in secrets:  # closing checkpoints the -wal into the file
        assert found(path, s) == [], s
    with ferrymq.Queue(path, key=key) as q:
        assert q.stats().groups["payments"].ready == 190
        assert [m.id for m in q.find("pay", "order-199")] != []


def test_a_wrong_key_is_refused_without_showing_it_and_changes_nothing(tmp_path: pathlib.Path) -> None:
    path = encrypted_file(tmp_path)
    for wrong in ["wrong passphrase", bytes(32)]:
        e = refused_unchanged(path, "wrong key", key=wrong)
        assert "wrong passphrase" not in str(e) and PASSPHRASE not in str(e)
    # A raw key is not the passphrase's derived key, nor the other way round.
    (tmp_path / "raw").mkdir()
    raw = encrypted_file(tmp_path / "raw", key=RAW)
    refused_unchanged(raw, "wrong key", key=PASSPHRASE)


def test_an_encrypted_file_opened_without_a_key_is_refused(tmp_path: pathlib.Path) -> None:
    refused_unchanged(encrypted_file(tmp_path), "is encrypted", key=None)


def test_a_plain_file_opened_with_a_key_is_refused(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "plain.db"
    with ferrymq.Queue(path) as q:
        publish_secrets(q, 3)
    refused_unchanged(path, "plain", key=PASSPHRASE)
    refused_unchanged(path, "plain", key=lambda: PASSPHRASE)


def test_encryption_error_is_a_ferrymq_error() -> None:
    assert issubclass(ferrymq.EncryptionError, ferrymq.FerrymqError)
    assert "EncryptionError" in ferrymq.__all__


@pytest.mark.parametrize(
    "key, says",
    [
        (b"too short", "32 bytes"),
        ("x'abcd'", "64 hex digits"),
        ("", "1 to 1024 bytes"),
        (42, "not int"),
        (bytearray(32), "not bytearray"),
    ],
)
def test_a_malformed_key_is_an_invalid_argument(tmp_path: pathlib.Path, key: Any, says: str) -> None:
    with pytest.raises(ferrymq.InvalidArgumentError, match=says):
        ferrymq.Queue(tmp_path / "q.db", key=key)
    assert not (tmp_path / "q.db").exists()


def raising() -> Key:
    raise RuntimeError("the vault is unreachable")


@pytest.mark.parametrize(
    "provider, says",
    [
        (raising, "the vault is unreachable"),
        (lambda: 42, "returned a bad key"),
        (lambda: [PASSPHRASE, None], "returned a bad key"),
        (lambda: b"short", "32 bytes"),
        (lambda: [], "returned no key"),
        (lambda: ("old one", "older one"), "none of the 2 keys"),
    ],
    ids=["raises", "int", "none_in_list", "short_bytes", "empty", "none_opens"],
)
def test_a_failing_provider_is_an_encryption_error_naming_it(
    tmp_path: pathlib.Path, provider: Callable[[], Any], says: str
) -> None:
    path = encrypted_file(tmp_path)
    e = refused_unchanged(path, says, key=provider)
    assert PASSPHRASE not in str(e)


def test_a_provider_listing_new_and_old_keys_follows_another_handles_rekey(tmp_path: pathlib.Path) -> None:
    path = encrypted_file(tmp_path, key="old")
    calls: list[int] = []

    def provider() -> list[Key]:
        calls.append(threading.get_ident())
        return [RAW, "old"]  # newest first, as during a rotation

    with ferrymq.Queue(path, key=provider) as follower, ferrymq.Queue(path, key="old") as rotator:
        assert follower.stats().groups["payments"].ready == 5
        asked = len(calls)
        rotator.rekey(RAW)
        rotator.publish("pay", "after the rotation")
        # The follower's key stops opening the file: it asks the provider again, no error.
        assert follower.stats().groups["payments"].ready == 6
        assert len(calls) > asked
        got = follower.receive("payments", max=10)
        assert got[-1].payload == b"after the rotation"
    refused_unchanged(path, "wrong key", key="old")
    with ferrymq.Queue(path, key=RAW) as q:
        assert q.stats().groups["payments"].inflight == 6


def test_rekey_takes_str_or_bytes_and_refuses_a_plain_file(tmp_path: pathlib.Path) -> None:
    path = encrypted_file(tmp_path)
    with ferrymq.Queue(path, key=PASSPHRASE) as q:
        with pytest.raises(ferrymq.InvalidArgumentError):
            q.rekey(b"short")
        q.rekey(RAW)
        q.rekey("x'" + "ab" * 32 + "'")
    with ferrymq.Queue(path, key=bytes([0xAB] * 32)) as q:
        q.rekey("a new passphrase")
    with ferrymq.Queue(path, key="a new passphrase") as q:
        assert q.stats().groups["payments"].ready == 5
    with ferrymq.Queue(tmp_path / "plain.db") as plain:
        with pytest.raises(ferrymq.InvalidArgumentError, match="not encrypted"):
            plain.rekey(PASSPHRASE)


def business_table(path: pathlib.Path, key: str) -> Any:
    conn = sqlcipher.connect(str(path), isolation_level=None, timeout=30)
    conn.execute(f"PRAGMA key = '{key}'")
    conn.execute("CREATE TABLE IF NOT EXISTS orders (id INTEGER PRIMARY KEY, total TEXT)")
    return conn


def test_publish_in_on_sqlcipher3_commits_and_rolls_back_with_the_business_row(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "q.db"
    with ferrymq.Queue(path, key=PASSPHRASE) as q:
        q.subscribe("shipping", "orders")
        conn = business_table(path, PASSPHRASE)
        try:
            conn.execute("BEGIN")
            conn.execute("INSERT INTO orders (id, total) VALUES (1, '4711.00')")
            mid = ferrymq.publish_in(conn, "orders", PAYLOAD, key="order-1", queue=q)
            conn.execute("COMMIT")
            conn.execute("BEGIN")
            conn.execute("INSERT INTO orders (id, total) VALUES (2, '1.00')")
            ferrymq.publish_in(conn, "orders", "rolled back", key="order-2", queue=q)
            conn.execute("ROLLBACK")
            assert conn.execute("SELECT id FROM orders").fetchall() == [(1,)]
            # ack_in and inbox_in on the same connection, in one transaction.
            (d,) = q.receive("shipping")
            assert d.message_id == mid and d.payload.decode() == PAYLOAD
            conn.execute("BEGIN")
            assert ferrymq.inbox_in(conn, "order-1", queue=q)
            ferrymq.ack_in(conn, d, queue=q)
            conn.execute("COMMIT")
        finally:
            conn.close()
        assert q.receive("shipping", wait=0) == []
        assert q.message(mid).deliveries["shipping"].state == "acked"
        assert q.find("orders", "order-2") == []
    assert found(path, PAYLOAD) == [] and found(path, "4711.00") == []


def test_the_stdlib_sqlite3_cannot_open_an_encrypted_file(tmp_path: pathlib.Path) -> None:
    path = encrypted_file(tmp_path)
    before = files(path)
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("BEGIN")
        with pytest.raises(ferrymq.FerrymqError, match="not a database"):
            ferrymq.publish_in(conn, "pay", PAYLOAD)
        conn.execute("ROLLBACK")
    finally:
        conn.close()
    assert files(path) == before


def test_encrypt_file_and_decrypt_file_make_copies(tmp_path: pathlib.Path) -> None:
    plain = tmp_path / "plain.db"
    with ferrymq.Queue(plain) as q:
        publish_secrets(q, 4)
    ferrymq.encrypt_file(plain, tmp_path / "enc.db", PASSPHRASE)
    assert found(tmp_path / "enc.db", PAYLOAD) == []
    with ferrymq.Queue(tmp_path / "enc.db", key=PASSPHRASE) as q:
        assert q.stats().groups["payments"].ready == 4
    with pytest.raises(ferrymq.EncryptionError):
        ferrymq.decrypt_file(tmp_path / "enc.db", tmp_path / "back.db", "wrong")
    assert not (tmp_path / "back.db").exists()
    ferrymq.decrypt_file(tmp_path / "enc.db", tmp_path / "back.db", PASSPHRASE)
    assert found(tmp_path / "back.db", PAYLOAD) != []
    with ferrymq.Queue(tmp_path / "back.db") as q:
        assert q.stats().groups["payments"].ready == 4
