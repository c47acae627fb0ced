"""The audit trail through the binding: with_reason gives a queue of the same class on
the same open file, and audit() lists what an operator did, with the reason, process
and user the core recorded."""

from __future__ import annotations

import datetime
import json
import os

import pytest

import ferrymq


def test_with_reason_and_pause_are_listed_by_audit(q: ferrymq.Queue) -> None:
    q.subscribe("g", "t")
    ops = q.with_reason("incident 42")
    assert type(ops) is ferrymq.Queue
    ops.pause("g")
    q.resume("g")

    records = q.audit()
    assert [(r.action, r.target, r.reason) for r in records] == [
        ("pause", "g", "incident 42"),
        ("resume", "g", None),
    ]
    first = records[0]
    assert isinstance(first, ferrymq.AuditRecord)
    assert first.pid == os.getpid()
    assert first.user and first.host and first.process
    assert first.at.tzinfo is not None
    assert abs(first.at - datetime.datetime.now(datetime.timezone.utc)) < datetime.timedelta(minutes=5)
    assert json.loads(first.detail or "") == {"changed": True}
    assert [r.id for r in q.audit(after=first.id, limit=10)] == [records[1].id]

    # One open queue: closing the handle closes the original.
    ops.close()
    with pytest.raises(ferrymq.ClosedError):
        q.stats()


def test_bad_reasons_and_limits_are_invalid_arguments(q: ferrymq.Queue) -> None:
    q.subscribe("g", "t")
    for bad in ["", "   ", "a\0b", "x" * 1001]:
        with pytest.raises(ferrymq.InvalidArgumentError):
            q.with_reason(bad)
    for limit in [0, 10_001]:
        with pytest.raises(ferrymq.InvalidArgumentError):
            q.audit(limit=limit)
    assert q.audit() == []
