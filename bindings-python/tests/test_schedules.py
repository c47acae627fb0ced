"""Schedules through the binding: timedelta / seconds and aware datetimes in, a
ScheduleInfo with a timedelta and an aware datetime out, and the error classes. The core
decides what a tick gives (tests/scenarios/schedule.json runs here too)."""

from __future__ import annotations

import datetime
import pathlib

import pytest

import ferrymq
from ferrymq.testing import ManualClock

START_MS = 1_700_000_000_000
UTC = datetime.timezone.utc


def open_queue(tmp_path: pathlib.Path) -> tuple[ferrymq.Queue, ManualClock]:
    clock = ManualClock(START_MS)
    return ferrymq.Queue(tmp_path / "q.db", test_clock=clock), clock


def test_every_as_timedelta_or_seconds_and_the_listing(tmp_path: pathlib.Path) -> None:
    q, clock = open_queue(tmp_path)
    q.subscribe("g", "t")
    start = datetime.datetime.fromtimestamp(START_MS / 1000 + 5, tz=UTC)
    q.schedule("a", "t", "x", every=datetime.timedelta(minutes=1), start_at=start, repeat=2,
               missed="catch_up", headers={"h": "v"}, tag="tick")
    q.schedule("b", "t", b"y", every=90, delay=datetime.timedelta(seconds=30))
    q.schedule("c", "t", "z", cron="30 8 * * MON-FRI", tz="Europe/Paris")
    a, b, c = q.schedules()
    assert (a.name, a.every, a.next_at, a.repeat_left, a.missed) == (
        "a", datetime.timedelta(minutes=1), start, 2, "catch_up")
    assert a.next_at.tzinfo is not None and a.headers == {"h": "v"} and a.tag == "tick"
    assert (b.every, b.missed, b.tz) == (datetime.timedelta(seconds=90), "once", None)
    assert b.next_at == datetime.datetime.fromtimestamp(START_MS / 1000 + 30, tz=UTC)
    assert (c.cron, c.tz, c.every) == ("30 8 * * MON-FRI", "Europe/Paris", None)
    clock.advance(5)
    (d,) = q.receive("g", max=10)
    assert d.payload == b"x" and d.headers["ferrymq-schedule"] == "a"
    assert int(d.headers["ferrymq-tick"]) == START_MS + 5000


def test_bad_schedules_raise_invalid_argument_and_unknown_names_not_found(tmp_path: pathlib.Path) -> None:
    q, _ = open_queue(tmp_path)
    naive = datetime.datetime(2030, 1, 1)
    for kw in ({"cron": "61 * * * *"}, {"cron": "0 * * * *", "tz": "Mars/Olympus"}, {},
               {"cron": "* * * * *", "every": 1}, {"every": 0}, {"every": -1},
               {"every": 1, "repeat": 0}, {"every": 1, "repeat": -1},
               {"every": 1, "missed": "sometimes"}, {"every": 1, "start_at": naive}):
        with pytest.raises(ferrymq.InvalidArgumentError):
            q.schedule("s", "t", "x", **kw)
    with pytest.raises(ferrymq.InvalidArgumentError):
        q.schedule("", "t", "x", every=1)
    assert q.schedules() == []
    with pytest.raises(ferrymq.NotFoundError):
        q.unschedule("nope")
