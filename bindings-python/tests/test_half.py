"""Half messages: invisible until committed; the checker resolves what a crash left."""

from __future__ import annotations

import pathlib
import time

import pytest

import ferrymq
from ferrymq import Resolution


def test_prepare_commit_rollback(db: pathlib.Path) -> None:
    q = ferrymq.Queue(db)
    q.subscribe("g", "fund-purchase")
    h = q.prepare("fund-purchase", b"buy", key="tx-123")
    assert q.receive("g") == [] and q.stats().topics["fund-purchase"].half == 1
    h.commit()
    assert q.receive("g")[0].message_id == h.id
    h2 = q.prepare("fund-purchase", b"sell")
    h2.rollback()
    with pytest.raises(ferrymq.InvalidArgumentError, match="rolled back"):
        h2.commit()
    assert [m.id for m in q.half_messages(state="rolled_back")] == [h2.id]
    assert q.message(h2.id).state == "rolled_back"


def test_commit_and_rollback_by_id_from_another_process_handle(db: pathlib.Path) -> None:
    q = ferrymq.Queue(db)
    q.subscribe("g", "fund-purchase")
    buy, sell = q.prepare("fund-purchase", b"buy").id, q.prepare("fund-purchase", b"sell").id
    other = ferrymq.Queue(db)  # e.g. a recovery job that only knows the ids
    other.commit_half(buy)
    other.rollback_half(sell)
    assert [d.message_id for d in q.receive("g", max=10)] == [buy]
    assert q.message(sell).state == "rolled_back"
    plain = q.publish("fund-purchase", b"not a half message")
    with pytest.raises(ferrymq.InvalidArgumentError):
        q.commit_half(plain)
    with pytest.raises(ferrymq.NotFoundError):
        q.rollback_half(10**9)
    other.close()
    q.close()


def test_the_checker_commits_rolls_back_and_counts_unknowns(db: pathlib.Path) -> None:
    # The background checker thread may answer too; assert on final states, not counts.
    q = ferrymq.Queue(db, check_after=0, check_interval=0.001, check_max=2)
    q.subscribe("g", "t")
    answers = {b"yes": Resolution.COMMIT, b"no": Resolution.ROLLBACK, b"maybe": Resolution.UNKNOWN}
    q.set_checker("t", lambda info: answers[info.payload])
    ids = {p: q.prepare("t", p).id for p in answers}
    deadline = time.monotonic() + 10
    while q.message(ids[b"maybe"]).state == "half" and time.monotonic() < deadline:
        q.run_checks()
        time.sleep(0.005)
    assert [d.message_id for d in q.receive("g", max=10)] == [ids[b"yes"]]
    assert q.message(ids[b"no"]).state == "rolled_back"
    info = q.message(ids[b"maybe"])
    assert info.state == "rolled_back"
    assert [c.resolution for c in info.checks] == [Resolution.UNKNOWN, Resolution.UNKNOWN]
    q.close()


def test_a_checker_returning_garbage_or_a_coroutine_is_an_unknown(db: pathlib.Path) -> None:
    q = ferrymq.Queue(db, check_after=0)

    async def not_sync(info: ferrymq.MessageInfo) -> Resolution:
        return Resolution.COMMIT

    q.set_checker("a", lambda info: "commit")  # type: ignore[arg-type, return-value]
    q.set_checker("b", not_sync)  # type: ignore[arg-type]
    ha = q.prepare("a", b"x")
    hb = q.prepare("b", b"x")
    assert q.run_checks() == 0
    assert "not a Resolution" in (q.message(ha.id).checks[0].error or "")
    assert "coroutine" in (q.message(hb.id).checks[0].error or "")
    assert q.remove_checker("a") and not q.remove_checker("zzz")
    q.close()


def test_the_background_checker_resolves_a_crashed_producers_message(db: pathlib.Path) -> None:
    producer = ferrymq.Queue(db)
    h = producer.prepare("t", b"left open")
    producer.close()  # the producer is gone before it could commit
    q = ferrymq.Queue(db, check_after=0.05)
    q.subscribe("g", "t")
    q.set_checker("t", lambda info: Resolution.COMMIT)
    # Subscribed after prepare: the commit fans out to groups subscribed by then.
    (d,) = q.receive("g", wait=10.0)
    assert d.message_id == h.id
    q.close()
