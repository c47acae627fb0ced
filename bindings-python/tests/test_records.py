"""The record classes are generated from core's record list (bindings-python/src/views.rs):
one Python idiom per Rust type, a repr of every field, and every record exported."""

from __future__ import annotations

import datetime
import pathlib

import ferrymq
from ferrymq import _native
from ferrymq.testing import ManualClock

# A few of core's records (the stub lists them all in its generated section).
RECORDS = ["MessageInfo", "Stats", "FileCheck"]


def test_a_duration_is_a_timedelta_everywhere(db: pathlib.Path) -> None:
    clock = ManualClock(1_700_000_000_000)
    with ferrymq.Queue(db, test_clock=clock) as q:
        q.subscribe("g", "t")
        q.publish("t", b"x")
        clock.advance(5)
        age = q.stats().groups["g"].oldest_ready_age
        assert age == datetime.timedelta(seconds=5)


def test_a_record_repr_shows_every_field(q: ferrymq.Queue) -> None:
    q.subscribe("g", "t")
    q.publish("t", b"x")
    (info,) = q.topics()
    assert repr(info) == "TopicInfo(name='t', messages=1, ready=1, groups=['g'])"
    assert repr(q.stats().topics["t"]) == "TopicStats(messages=1, half=0)"


def test_every_record_is_exported_with_the_public_names_only() -> None:
    for name in RECORDS:
        assert name in ferrymq.__all__, name
        assert getattr(ferrymq, name) is getattr(_native, name)
    assert ferrymq.FileCheck.__module__ == "ferrymq"
    # Test and package helpers stay out of the star import; Queue is the package's subclass.
    for internal in ["ManualClock", "publish_row", "cli_main", "SQL"]:
        assert internal not in ferrymq.__all__ and not hasattr(ferrymq, internal), internal
    assert ferrymq.Queue is not _native.Queue and issubclass(ferrymq.Queue, _native.Queue)
    assert sorted(set(ferrymq.__all__)) == sorted(ferrymq.__all__)
