"""Open options that reach SQLite (`foreign_keys`) and `vacuum`, which gives the pages
purges freed back to the file system. Both pass straight through to the core."""

from __future__ import annotations

import pathlib
import time

import pytest

import ferrymq


def orders_with_bad_customer(q: ferrymq.Queue) -> None:
    with q.transaction() as tx:
        tx.execute("CREATE TABLE IF NOT EXISTS customers(id INTEGER PRIMARY KEY)")
        tx.execute(
            "CREATE TABLE IF NOT EXISTS orders(id INTEGER PRIMARY KEY, "
            "customer INTEGER NOT NULL REFERENCES customers(id))"
        )
    with q.transaction() as tx:
        tx.execute("INSERT INTO orders VALUES (1, 99)")


@pytest.mark.parametrize("setting, enforced", [(True, True), (False, False), (None, True)])
def test_foreign_keys_follow_the_option(
    tmp_path: pathlib.Path, setting: bool | None, enforced: bool
) -> None:
    with ferrymq.Queue(tmp_path / "q.db", foreign_keys=setting) as q:
        if enforced:
            with pytest.raises(ferrymq.InvalidArgumentError, match="FOREIGN KEY"):
                orders_with_bad_customer(q)
        else:
            orders_with_bad_customer(q)


def test_vacuum_frees_purged_pages(q: ferrymq.Queue, db: pathlib.Path) -> None:
    q.subscribe("g", "t")
    q.publish_batch([ferrymq.Message("t", bytes(100_000)) for _ in range(50)])
    while ds := q.receive("g", max=100):
        for d in ds:
            d.ack()
    time.sleep(0.01)
    assert q.purge_acked(older_than=0) == 49
    before = db.stat().st_size
    assert q.vacuum(pages=5) == 5
    freed = q.vacuum()
    assert freed > 1000
    assert db.stat().st_size < before - 4_000_000
    assert q.vacuum() == 0
    with pytest.raises(ferrymq.InvalidArgumentError, match="pages"):
        q.vacuum(pages=0)
