"""The order service (Python): saves each order with its own `sqlite3` connection and
publishes `orders/created` with `ferrymq.publish_in` in that same transaction (the outbox
on the service's own connection), then completes orders as `logistics/shipped` arrives,
acking in the same transaction as its UPDATE (exactly-once effect).

Usage: order_service.py DB ORDERS POISON_IDS   (POISON_IDS: comma-separated, may be empty)
With FERRYMQ_KEY_FILE set the file is encrypted: the service's own connection is then
sqlcipher3's (the standard library's sqlite3 cannot read an encrypted file), keyed with
the file's newest key, and the queue reads its keys from the same file.
Stops when its stdin closes. Safe to SIGKILL and restart: an order and its message exist
together or not at all, so a restart creates exactly the missing ones.
"""

from __future__ import annotations

import json
import os
import pathlib
import sqlite3
import sys
import threading
import time

import ferrymq

KEY_FILE = os.environ.get("FERRYMQ_KEY_FILE")


def keys() -> list[str]:
    assert KEY_FILE
    return [k for k in pathlib.Path(KEY_FILE).read_text().splitlines() if k]


def connect(db: str) -> sqlite3.Connection:
    """The service's own connection to the file (the outbox joins its transactions)."""
    if not KEY_FILE:
        return sqlite3.connect(db, timeout=30)
    from sqlcipher3 import dbapi2  # type: ignore[import-not-found]

    conn: sqlite3.Connection = dbapi2.connect(db, timeout=30)
    conn.execute(f'PRAGMA key = "{keys()[0]}"')  # SQLCipher's syntax: a passphrase, or x'<hex>'
    return conn


def create_orders(db: str, orders: int, poison: set[int]) -> None:
    conn = connect(db)
    try:
        for i in range(1, orders + 1):
            with conn:  # commits the order and its message together, or neither
                if conn.execute("SELECT 1 FROM orders WHERE id = ?", (i,)).fetchone():
                    continue
                # A poison order: an amount no payment can be made for.
                amount = -1 if i in poison else 100 * i
                conn.execute("INSERT INTO orders(id, amount, status) VALUES (?, ?, 'created')", (i, amount))
                body = json.dumps({"order_id": i, "amount": amount}).encode()
                ferrymq.publish_in(conn, "orders", body, tag="created", key=f"order-{i}")
            time.sleep(0.01)  # orders trickle in while the rest of the pipeline works
    finally:
        conn.close()


def main() -> None:
    db, orders = sys.argv[1], int(sys.argv[2])
    poison = {int(x) for x in sys.argv[3].split(",") if x}
    stop = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()

    create_orders(db, orders, poison)
    with ferrymq.Queue(db, key=keys if KEY_FILE else None) as q:
        print("orders created", flush=True)

        while not stop.is_set():
            for d in q.receive("order-service", max=10, wait=0.2):
                order = json.loads(d.payload)
                with q.transaction() as tx:
                    tx.execute(
                        "UPDATE orders SET status = 'completed', completed_count = completed_count + 1 WHERE id = ?",
                        (order["order_id"],),
                    )
                    tx.ack(d)


if __name__ == "__main__":
    main()
