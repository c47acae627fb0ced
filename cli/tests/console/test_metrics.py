"""`ferrymq serve --metrics` over real HTTP, parsed by Prometheus' own text-format parser
(prometheus_client), against `stats()` of the same file."""

from __future__ import annotations

import pathlib
import urllib.error
import urllib.request
from typing import Callable

import ferrymq
from prometheus_client.parser import text_string_to_metric_families

GROUP_GAUGES = {
    "ferrymq_messages_ready": "ready",
    "ferrymq_messages_inflight": "inflight",
    "ferrymq_messages_scheduled": "scheduled",
    "ferrymq_messages_retrying": "retrying",
    "ferrymq_messages_dead": "dead",
}
# What the file holds: gauges. The rest are the serving process's own counters and the
# group-commit histogram (docs/DESIGN.md section 9).
FILE_GAUGES = set(GROUP_GAUGES) | {
    "ferrymq_oldest_ready_age_seconds",
    "ferrymq_group_paused",
    "ferrymq_topic_messages",
    "ferrymq_half_messages",
}


def busy_file(path: pathlib.Path) -> ferrymq.Queue:
    q = ferrymq.Queue(path)
    q.subscribe("pay", "payments", retry=ferrymq.RetryPolicy.fixed([]))
    q.subscribe("audit", "payments", retry=ferrymq.RetryPolicy.fixed([60]))
    q.subscribe("mail", "emails")
    for i in range(5):
        q.publish("payments", b"p", key=f"order-{i}")
    q.publish("payments", b"later", delay=3600)
    q.publish("emails", b"e")
    for d in q.receive("pay", max=2):
        d.nack("declined")  # dead at once
    q.receive("pay")  # one in flight
    for d in q.receive("audit"):
        d.nack("later")  # retrying for a minute
    q.pause("mail")
    q.prepare("payments", b"undecided")
    q.prepare("payments", b"no").rollback()
    return q


def scrape(url: str) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    with urllib.request.urlopen(url + "metrics") as res:
        assert res.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = res.read().decode()
    families = {}
    for f in text_string_to_metric_families(text):
        assert f.documentation, f.name
        if f.name in FILE_GAUGES:
            assert f.type == "gauge", f.name
        else:
            assert f.type in ("counter", "histogram"), (f.name, f.type)
        families[f.name] = {tuple(sorted(s.labels.items())): s.value for s in f.samples}
    return families


def test_metrics_equal_stats_of_the_same_file(
    tmp_path: pathlib.Path, serve: Callable[..., str]
) -> None:
    q = busy_file(tmp_path / "q.db")
    url = serve(tmp_path / "q.db", "--metrics")
    before = q.stats()
    m = scrape(url)
    after = q.stats()
    assert set(before.groups) == {"pay", "audit", "mail"}
    # The serving process's own series parse too (prometheus_client drops `_total`).
    assert "ferrymq_group_commit_batch_size" in m and "ferrymq_busy_waits" in m
    for name, field in GROUP_GAUGES.items():
        for group, g in before.groups.items():
            labels = (("consumer_group", group), ("topic", g.topic))
            assert m[name][labels] == getattr(g, field), (name, group)
            assert getattr(after.groups[group], field) == getattr(g, field)
    assert before.groups["pay"].dead == 2 and before.groups["audit"].retrying == 1
    for group, g in before.groups.items():
        labels = (("consumer_group", group), ("topic", g.topic))
        assert m["ferrymq_group_paused"][labels] == (1 if g.paused else 0)
        # Ages move on: the scrape falls between the two stats around it.
        low = _seconds(g.oldest_ready_age)
        high = _seconds(after.groups[group].oldest_ready_age)
        assert low - 0.001 <= m["ferrymq_oldest_ready_age_seconds"][labels] <= high + 0.001
    assert m["ferrymq_group_paused"][(("consumer_group", "mail"), ("topic", "emails"))] == 1
    for topic, t in before.topics.items():
        assert m["ferrymq_topic_messages"][(("topic", topic),)] == t.messages
        assert m["ferrymq_half_messages"][(("state", "half"), ("topic", topic))] == t.half
    assert m["ferrymq_half_messages"][(("state", "rolled_back"), ("topic", "payments"))] == 1
    assert m["ferrymq_half_messages"][(("state", "half"), ("topic", "payments"))] == 1


def test_metrics_follow_the_file(tmp_path: pathlib.Path, serve: Callable[..., str]) -> None:
    q = busy_file(tmp_path / "q.db")
    url = serve(tmp_path / "q.db", "--metrics")
    labels = (("consumer_group", "mail"), ("topic", "emails"))
    assert scrape(url)["ferrymq_messages_ready"][labels] == 1
    for i in range(3):
        q.publish("emails", b"more")
    q.resume("mail")
    m = scrape(url)
    assert m["ferrymq_messages_ready"][labels] == 4
    assert m["ferrymq_group_paused"][labels] == 0


def test_metrics_are_off_without_the_flag(tmp_path: pathlib.Path, serve: Callable[..., str]) -> None:
    busy_file(tmp_path / "q.db")
    url = serve(tmp_path / "q.db")
    try:
        urllib.request.urlopen(url + "metrics")
        raise AssertionError("served /metrics without --metrics")
    except urllib.error.HTTPError as e:
        assert e.code == 404


def _seconds(age):
    return age.total_seconds() if age is not None else 0.0
