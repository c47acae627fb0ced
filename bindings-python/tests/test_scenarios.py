"""The Python runner of the shared scenarios in tests/scenarios/*.json (format in that
folder's README). The Rust, Node and Kotlin runners execute the same files. Every file
runs twice: on a plain file, and on one encrypted with a passphrase (key=), where the
caller's own connection is SQLCipher's (sqlcipher3) keyed as SQLCipher's shell keys it."""

from __future__ import annotations

import datetime
import json
import pathlib
import re
import sqlite3
from typing import Any, Optional

import pytest
from sqlcipher3 import dbapi2 as sqlcipher

import ferrymq
from ferrymq.testing import ManualClock
from conftest import ROOT

DIR = ROOT / "tests" / "scenarios"
START_MS = 1_700_000_000_000
PASSPHRASE = "scenario passphrase"
CODES: dict[type[ferrymq.FerrymqError], str] = {
    ferrymq.InvalidArgumentError: "INVALID_ARGUMENT",
    ferrymq.NotFoundError: "NOT_FOUND",
    ferrymq.LeaseLostError: "LEASE_LOST",
    ferrymq.ClosedError: "CLOSED",
    ferrymq.BusyError: "BUSY",
    ferrymq.StorageError: "STORAGE",
    ferrymq.CallbackError: "CALLBACK",
    ferrymq.FullError: "FULL",
    ferrymq.EncryptionError: "ENCRYPTION",
}
ANSWERS = {
    "commit": ferrymq.Resolution.COMMIT,
    "rollback": ferrymq.Resolution.ROLLBACK,
    "unknown": ferrymq.Resolution.UNKNOWN,
}

Step = dict[str, Any]


def ms(v: Optional[float]) -> Optional[float]:
    return None if v is None else v / 1000


def publish_kwargs(s: Step) -> dict[str, Any]:
    kw: dict[str, Any] = {k: s[k] for k in ("tag", "key", "headers", "ordering_key", "idempotency_key", "priority") if k in s}
    if "delay_ms" in s:
        kw["delay"] = s["delay_ms"] / 1000
    if "deliver_at_offset_ms" in s:
        kw["deliver_at"] = datetime.datetime.fromtimestamp(
            (START_MS + s["deliver_at_offset_ms"]) / 1000, tz=datetime.timezone.utc
        )
    return kw


def retry(r: Step) -> ferrymq.RetryPolicy:
    policy = r["policy"]
    if policy == "rocketmq":
        return ferrymq.RetryPolicy.rocketmq()
    if policy == "alipay":
        return ferrymq.RetryPolicy.alipay()
    if policy == "wechat_pay":
        return ferrymq.RetryPolicy.wechat_pay()
    if policy == "fixed":
        return ferrymq.RetryPolicy.fixed([d / 1000 for d in r["delays_ms"]])
    raise AssertionError(f"unknown retry policy {policy}")


def delivery_json(d: ferrymq.Delivery) -> dict[str, Any]:
    return {
        "message_id": d.message_id,
        "topic": d.topic,
        "payload": d.payload.decode(),
        "tag": d.tag,
        "key": d.key,
        "headers": d.headers,
        "ordering_key": d.ordering_key,
        "attempt": d.attempt,
        "priority": d.priority,
    }


def check_subset(expected: Any, actual: Any, at: str) -> None:
    """Every field of `expected` equals the same field of `actual`; lists compare exactly."""
    if isinstance(expected, list):
        assert isinstance(actual, list) and len(actual) == len(expected), f"{at}: expected {expected}, got {actual}"
        for i, (e, a) in enumerate(zip(expected, actual)):
            check_subset(e, a, f"{at}[{i}]")
    elif isinstance(expected, dict):
        for k, v in expected.items():
            check_subset(v, actual.get(k) if isinstance(actual, dict) else None, f"{at}.{k}")
    else:
        assert actual == expected, f"{at}: expected {expected!r}, got {actual!r}"


class ScenarioFailure(Exception):
    """The scenario's own transaction callback failing on purpose."""


class Runner:
    def __init__(self, tmp: pathlib.Path, queue: Step, key: Optional[str] = None) -> None:
        self.tmp = tmp
        self.key = key
        self.clock = ManualClock(START_MS)
        self.q = ferrymq.Queue(
            tmp / "q.db",
            key=key,
            test_clock=self.clock,
            check_after=ms(queue.get("check_after_ms")),
            check_interval=ms(queue.get("check_interval_ms")),
            check_max=queue.get("check_max"),
            max_ready=queue.get("max_ready"),
        )
        self.ids: dict[str, int] = {}
        self.deliveries: dict[str, ferrymq.Delivery] = {}
        self.halves: dict[int, ferrymq.HalfMessage] = {}

    def id(self, v: Any) -> int:
        if isinstance(v, str):
            assert v.startswith("$") and v[1:] in self.ids, f"no id saved as {v}"
            return self.ids[v[1:]]
        assert isinstance(v, int)
        return v

    def resolve(self, v: Any) -> Any:
        if isinstance(v, str) and v.startswith("$"):
            return self.id(v)
        if isinstance(v, list):
            return [self.resolve(x) for x in v]
        if isinstance(v, dict):
            return {k: self.resolve(x) for k, x in v.items()}
        return v

    def step(self, s: Step) -> Any:
        q, op = self.q, s["op"]
        if op == "subscribe":
            q.subscribe(
                s["group"],
                s["topic"],
                tags=s.get("tags", "*"),
                lease=ms(s.get("lease_ms")),
                retry=retry(s["retry"]) if "retry" in s else None,
                max_inflight=s.get("max_inflight"),
                rate=s.get("rate"),
                burst=s.get("burst"),
            )
        elif op == "schedule":
            kw: dict[str, Any] = {k: s[k] for k in ("cron", "tz", "repeat", "tag", "key", "headers", "missed") if k in s}
            if "every_ms" in s:
                kw["every"] = datetime.timedelta(milliseconds=s["every_ms"])
            if "delay_ms" in s:
                kw["delay"] = datetime.timedelta(milliseconds=s["delay_ms"])
            if "start_at_offset_ms" in s:
                kw["start_at"] = datetime.datetime.fromtimestamp(
                    (START_MS + s["start_at_offset_ms"]) / 1000, tz=datetime.timezone.utc
                )
            q.schedule(s["name"], s["topic"], s["payload"], **kw)
        elif op == "unschedule":
            q.unschedule(s["name"])
        elif op == "schedules":
            return [
                {
                    "name": x.name,
                    "topic": x.topic,
                    "cron": x.cron,
                    "every_ms": None if x.every is None else round(x.every.total_seconds() * 1000),
                    "tz": x.tz,
                    "next_at_offset_ms": round(x.next_at.timestamp() * 1000) - START_MS,
                    "fired": x.fired,
                    "repeat_left": x.repeat_left,
                    "missed": x.missed,
                }
                for x in q.schedules()
            ]
        elif op == "pause":
            q.pause(s["group"])
        elif op == "resume":
            q.resume(s["group"])
        elif op == "publish":
            mid = q.publish(s["topic"], s["payload"], **publish_kwargs(s))
            if "as" in s:
                self.ids[s["as"]] = mid
            if "expect_id" in s:
                assert mid == self.id(s["expect_id"]), "expect_id"
        elif op == "publish_batch":
            ids = q.publish_batch(
                [ferrymq.Message(m["topic"], m["payload"], **publish_kwargs(m)) for m in s["messages"]]
            )
            self.ids.update(zip(s.get("as", []), ids))
        elif op == "receive":
            ds = q.receive(s["group"], max=s.get("max", 1), lease=ms(s.get("lease_ms")))
            names = s.get("as", [])
            assert len(names) <= len(ds), "fewer deliveries than names"
            self.deliveries.update(zip(names, ds))
            return [delivery_json(d) for d in ds]
        elif op == "ack":
            self.deliveries[s["delivery"]].ack()
        elif op == "nack":
            self.deliveries[s["delivery"]].nack(s.get("reason", ""), delay=ms(s.get("delay_ms")))
        elif op == "extend":
            self.deliveries[s["delivery"]].extend(s["lease_ms"] / 1000)
        elif op == "advance":
            self.clock.advance(s["ms"] / 1000)
        elif op == "stats":
            st = q.stats()
            return {
                "topics": {k: {"messages": t.messages, "half": t.half} for k, t in st.topics.items()},
                "groups": {
                    k: {
                        "topic": g.topic,
                        "ready": g.ready,
                        "scheduled": g.scheduled,
                        "inflight": g.inflight,
                        "retrying": g.retrying,
                        "dead": g.dead,
                        "paused": g.paused,
                    }
                    for k, g in st.groups.items()
                },
            }
        elif op == "message":
            m = q.message(self.id(s["id"]))
            return {
                "state": m.state,
                "tag": m.tag,
                "key": m.key,
                "payload": m.payload.decode(),
                "deliveries": {
                    g: {"state": d.state, "attempts": d.attempts, "last_error": d.last_error}
                    for g, d in m.deliveries.items()
                },
            }
        elif op == "find":
            return [m.id for m in q.find(s["topic"], s["key"])]
        elif op == "dead_letters":
            return [
                {"message_id": d.message_id, "attempts": d.attempts, "last_error": d.last_error}
                for d in q.dead_letters(s["group"], limit=1000)
            ]
        elif op == "redrive":
            chosen = [self.id(x) for x in s["ids"]] if "ids" in s else None
            return q.redrive(s["group"], ids=chosen)
        elif op == "purge_dead_letters":
            return q.purge_dead_letters(s["group"])
        elif op == "transaction":
            self.transaction(s)
        elif op in ("publish_in", "ack_in"):
            self.on_own_connection(s)
        elif op == "query":
            with q.transaction() as tx:
                return [list(r) for r in tx.query(s["sql"], s.get("params", ()))]
        elif op == "prepare":
            h = q.prepare(s["topic"], s["payload"], **publish_kwargs(s))
            self.ids[s["as"]] = h.id
            self.halves[h.id] = h
        elif op in ("commit_half", "rollback_half"):
            h = self.halves[self.id(s["id"])]
            h.commit() if op == "commit_half" else h.rollback()
        elif op == "set_checker":
            answers: dict[str, str] = s["answers"]

            def checker(info: ferrymq.MessageInfo) -> ferrymq.Resolution:
                answer = answers.get(info.key or "")
                if answer is None or answer == "throw":
                    raise RuntimeError("the checker failed")
                return ANSWERS[answer]

            q.set_checker(s["topic"], checker)
        elif op == "run_checks":
            return q.run_checks()
        elif op == "half_messages":
            return [m.id for m in q.half_messages(s.get("state"), limit=1000)]
        elif op == "close":
            q.close()
        elif op == "open_foreign":
            path = self.tmp / "notes.txt"
            path.write_text("not a database " * 100)
            ferrymq.Queue(path)
        else:
            raise AssertionError(f"unknown op {op}")
        return None

    def connect(self) -> Any:
        """The caller's own connection to the queue's file: Python's sqlite3 on a plain
        file; on an encrypted one sqlcipher3, keyed with `PRAGMA key` (the stdlib sqlite3
        has no SQLCipher)."""
        if self.key is None:
            return sqlite3.connect(self.q.path, isolation_level=None, timeout=30)
        conn = sqlcipher.connect(str(self.q.path), isolation_level=None, timeout=30)
        quoted = self.key.replace("'", "''")
        conn.execute(f"PRAGMA key = '{quoted}'")
        return conn

    def on_own_connection(self, s: Step) -> None:
        """publish_in / ack_in on the caller's own connection to the queue's file, opened
        for the step: BEGIN, the step's statements, the call, then COMMIT, or ROLLBACK (asked
        for, or failed), and close."""
        conn = self.connect()
        try:
            conn.execute("BEGIN")
            for e in s.get("execute", []):
                conn.execute(e["sql"], e.get("params", ()))
            if s["op"] == "publish_in":
                mid = ferrymq.publish_in(conn, s["topic"], s["payload"], queue=self.q, **publish_kwargs(s))
                if "as" in s:
                    self.ids[s["as"]] = mid
                if "expect_id" in s:
                    assert mid == self.id(s["expect_id"]), "expect_id"
            else:
                ferrymq.ack_in(conn, self.deliveries[s["delivery"]], queue=self.q)
            conn.execute("ROLLBACK" if s.get("rollback") else "COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        finally:
            conn.close()

    def transaction(self, s: Step) -> None:
        try:
            with self.q.transaction() as tx:
                for t in s["steps"]:
                    if t["op"] == "execute":
                        tx.execute(t["sql"], t.get("params", ()))
                    elif t["op"] == "publish":
                        tx.publish(t["topic"], t["payload"], **publish_kwargs(t))
                    elif t["op"] == "ack":
                        tx.ack(self.deliveries[t["delivery"]])
                    elif t["op"] == "nack":
                        tx.nack(self.deliveries[t["delivery"]], t.get("reason", ""))
                    elif t["op"] == "inbox":
                        window = t["window_ms"] / 1000 if "window_ms" in t else None
                        assert tx.inbox(t["key"], window=window) == t.get("expect"), t
                    else:
                        raise AssertionError(f"unknown transaction op {t['op']}")
                if s.get("throw"):
                    raise ScenarioFailure()
        except ScenarioFailure:
            pass


SCENARIOS = sorted(DIR.glob("*.json"))


def test_every_scenario_file_is_here() -> None:
    assert len(SCENARIOS) >= 13


def test_every_error_code_a_scenario_may_name_has_its_own_exception() -> None:
    # The core's ErrorKind is #[non_exhaustive], so the binding's mapping cannot be checked
    # by the compiler; the codes the scenario format lists are checked here instead.
    readme = (DIR / "README.md").read_text()
    listed = re.search(r"\(one of ([^)]*)\)", readme)
    assert listed is not None, "the error codes' list is missing from the scenarios README"
    codes = re.findall(r"`([A-Z_]+)`", listed.group(1))
    assert "FULL" in codes
    assert sorted(codes) == sorted(CODES.values())


@pytest.mark.parametrize("key", [None, PASSPHRASE], ids=["plain", "encrypted"])
@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_scenario(path: pathlib.Path, key: Optional[str], tmp_path: pathlib.Path) -> None:
    scenario = json.loads(path.read_text())
    if "python" not in scenario.get("languages", ["python"]):
        pytest.skip("this scenario names the languages that run it; Python is not among them yet")
    r = Runner(tmp_path, scenario.get("queue", {}), key)
    for i, s in enumerate(scenario["steps"]):
        at = f"{path.name} step {i} ({s['op']})"
        try:
            out = r.step(s)
        except ferrymq.FerrymqError as e:
            assert "error" in s, f"{at}: {e!r}"
            assert CODES[type(e)] == s["error"], f"{at}: expected {s['error']}, got {e!r}"
            continue
        assert "error" not in s, f"{at}: expected {s['error']}, got success"
        if "expect" in s:
            check_subset(r.resolve(s["expect"]), out, at)
    if not r.q.closed:
        r.q.close()
