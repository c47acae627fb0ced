"""W3C trace propagation (OpenTelemetry) and the `ferrymq` console script."""

from __future__ import annotations

import json
import os
import signal
import pathlib
import subprocess
import sys
from typing import Iterator

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

import ferrymq

from conftest import run_python

_EXPORTER = InMemorySpanExporter()


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    # The global tracer provider can be set once per process.
    if not isinstance(trace.get_tracer_provider(), TracerProvider):
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(_EXPORTER))
        trace.set_tracer_provider(provider)
    _EXPORTER.clear()
    yield _EXPORTER
    _EXPORTER.clear()


def _traceparent(span: trace.Span) -> str:
    c = span.get_span_context()
    return f"00-{c.trace_id:032x}-{c.span_id:016x}-{int(c.trace_flags):02x}"


def _one(q: ferrymq.Queue, group: str) -> ferrymq.Delivery:
    (d,) = q.receive(group, max=1, wait=5)
    return d


def test_publish_under_a_span_sets_traceparent(q: ferrymq.Queue, spans: InMemorySpanExporter) -> None:
    q.subscribe("g", "t")
    tracer = trace.get_tracer("test")
    with tracer.start_as_current_span("producer") as span:
        q.publish("t", b"one")
        q.publish_batch([ferrymq.Message("t", b"two")])
        with q.transaction() as tx:
            tx.publish("t", b"three")
            tx.publish_batch([ferrymq.Message("t", b"four")])
        expected = _traceparent(span)
    got = q.receive("g", max=10, wait=5)
    assert [d.payload for d in got] == [b"one", b"two", b"three", b"four"]
    assert all(d.headers == {"traceparent": expected} for d in got)


def test_publish_in_under_a_span_sets_traceparent(
    q: ferrymq.Queue, db: pathlib.Path, spans: InMemorySpanExporter
) -> None:
    import sqlite3

    q.subscribe("g", "t")
    conn = sqlite3.connect(db, isolation_level=None)
    with trace.get_tracer("test").start_as_current_span("producer") as span:
        conn.execute("BEGIN IMMEDIATE")
        ferrymq.publish_in(conn, "t", b"x", queue=q)
        conn.execute("COMMIT")
        expected = _traceparent(span)
    conn.close()
    assert _one(q, "g").headers["traceparent"] == expected


def test_no_span_no_header_and_a_callers_traceparent_is_kept(
    q: ferrymq.Queue, spans: InMemorySpanExporter
) -> None:
    q.subscribe("g", "t")
    q.publish("t", b"no span", headers={"a": "b"})
    own = "00-0123456789abcdef0123456789abcdef-0123456789abcdef-00"
    with trace.get_tracer("test").start_as_current_span("producer"):
        q.publish("t", b"own", headers={"traceparent": own})
        q.publish_batch([ferrymq.Message("t", b"own batch", headers={"traceparent": own})])
    got = q.receive("g", max=10, wait=5)
    assert [d.headers for d in got] == [{"a": "b"}, {"traceparent": own}, {"traceparent": own}]


def _consumer_span(spans: InMemorySpanExporter) -> ReadableSpan:
    (s,) = [s for s in spans.get_finished_spans() if s.kind == SpanKind.CONSUMER]
    return s


def test_delivery_span_is_linked_to_the_producer_and_a_retry_is_a_new_span(
    q: ferrymq.Queue, spans: InMemorySpanExporter
) -> None:
    q.subscribe("g", "t", retry=ferrymq.RetryPolicy.fixed([0]))
    with trace.get_tracer("test").start_as_current_span("producer") as producer:
        msg_id = q.publish("t", b"x")
    pc = producer.get_span_context()
    spans.clear()

    d = _one(q, "g")
    with d.span() as s:
        assert s is not None and trace.get_current_span() is s
        d.nack("try again")
    first = _consumer_span(spans)
    assert first.name == "process t"
    assert dict(first.attributes or {}) == {
        "messaging.system": "ferrymq",
        "messaging.operation.name": "process",
        "messaging.operation.type": "process",
        "messaging.destination.name": "t",
        "messaging.consumer.group.name": "g",
        "messaging.message.id": str(msg_id),
        "messaging.ferrymq.attempt": 1,
    }
    assert [(link.context.trace_id, link.context.span_id) for link in first.links] == [
        (pc.trace_id, pc.span_id)
    ]
    assert first.parent is not None and first.parent.span_id == pc.span_id
    assert first.context is not None and first.context.trace_id == pc.trace_id
    spans.clear()

    retry = _one(q, "g")
    assert retry.attempt == 2
    with retry.span():
        retry.ack()
    second = _consumer_span(spans)
    assert second.attributes is not None and second.attributes["messaging.ferrymq.attempt"] == 2
    assert second.context is not None and first.context.span_id != second.context.span_id
    assert [link.context.trace_id for link in second.links] == [pc.trace_id]


def test_delivery_span_without_producer_context_has_no_link(
    q: ferrymq.Queue, spans: InMemorySpanExporter
) -> None:
    q.subscribe("g", "t")
    q.publish("t", b"x", headers={"traceparent": "not a traceparent"})
    d = _one(q, "g")
    with d.span():
        d.ack()
    s = _consumer_span(spans)
    assert s.links == () or list(s.links) == []
    assert s.parent is None


def test_worker_handler_runs_in_the_consumer_span(q: ferrymq.Queue, spans: InMemorySpanExporter) -> None:
    import threading

    q.subscribe("g", "t")
    with trace.get_tracer("test").start_as_current_span("producer") as producer:
        q.publish("t", b"x")
    seen: list[int] = []
    done = threading.Event()

    def handler(d: ferrymq.Delivery) -> None:
        seen.append(trace.get_current_span().get_span_context().trace_id)
        done.set()

    with q.worker("g", handler):
        assert done.wait(10)
    assert seen == [producer.get_span_context().trace_id]


def test_without_opentelemetry_nothing_changes(db: pathlib.Path) -> None:
    out = run_python(
        """
import sys
sys.modules["opentelemetry"] = None  # as if opentelemetry-api were not installed
import ferrymq
with ferrymq.Queue(sys.argv[1]) as q:
    q.subscribe("g", "t")
    q.publish("t", b"x")
    (d,) = q.receive("g", wait=5)
    with d.span() as s:
        assert s is None
        d.ack()
    print(d.headers)
""",
        str(db),
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "{}"


def _ferrymq(*args: str) -> subprocess.CompletedProcess[str]:
    script = pathlib.Path(sys.executable).parent / "ferrymq"
    return subprocess.run([str(script), *args], capture_output=True, text=True, timeout=60, check=False)


def test_the_ferrymq_command_is_installed(q: ferrymq.Queue, db: pathlib.Path) -> None:
    version = _ferrymq("--version")
    assert version.returncode == 0, version.stderr
    assert version.stdout.strip() == f"ferrymq {ferrymq.__version__}"

    q.subscribe("g", "t")
    q.publish("t", b"x")
    stats = _ferrymq("--db", str(db), "stats", "--json")
    assert stats.returncode == 0, stats.stderr
    (group,) = json.loads(stats.stdout)["groups"]
    assert (group["name"], group["ready"]) == ("g", 1)

    bad = _ferrymq("no-such-command")
    assert bad.returncode == 2
    assert "no-such-command" in bad.stderr and bad.stdout == ""
    missing = _ferrymq("--db", str(db.with_name("missing.db")), "stats")
    assert missing.returncode == 3, missing.stderr


def test_ctrl_c_ends_the_ferrymq_command(q: ferrymq.Queue, db: pathlib.Path) -> None:
    q.subscribe("g", "t")
    q.publish("t", b"x")
    script = pathlib.Path(sys.executable).parent / "ferrymq"
    # `tail` follows until Ctrl-C; once it printed the message it is inside the Rust loop.
    proc = subprocess.Popen(
        [str(script), "--db", str(db), "tail", "t", "--from-id", "0", "--json"],
        stdout=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        assert proc.stdout is not None
        assert json.loads(proc.stdout.readline())["payload"] is not None
        os.kill(proc.pid, signal.SIGINT)
        assert proc.wait(timeout=30) == -signal.SIGINT
    finally:
        proc.kill()
        proc.wait()


def test_run_worker_handler_runs_in_the_consumer_span(q: ferrymq.Queue, spans: InMemorySpanExporter) -> None:
    import asyncio

    q.subscribe("g", "t")
    with trace.get_tracer("test").start_as_current_span("producer") as producer:
        q.publish("t", b"x")
    seen: list[int] = []

    async def main() -> None:
        async def handler(d: ferrymq.Delivery) -> None:
            await asyncio.sleep(0)
            seen.append(trace.get_current_span().get_span_context().trace_id)
            task.cancel()

        task = asyncio.ensure_future(q.run_worker("g", handler, wait=0.2))
        try:
            await task
        except asyncio.CancelledError:
            pass

    asyncio.run(main())
    assert seen == [producer.get_span_context().trace_id]
    assert [s.name for s in spans.get_finished_spans() if s.kind == SpanKind.CONSUMER] == ["process t"]


def test_an_exception_that_cannot_be_shown_as_text_leaves_the_span_as_is(
    q: ferrymq.Queue, spans: InMemorySpanExporter
) -> None:
    class Opaque(Exception):
        def __str__(self) -> str:
            raise RuntimeError("no text")

    q.subscribe("g", "t")
    q.publish("t", b"x")
    d = _one(q, "g")
    with pytest.raises(Opaque):
        with d.span():
            raise Opaque()
    s = _consumer_span(spans)
    assert s.status.status_code == trace.StatusCode.ERROR
    assert s.status.description == "Opaque (cannot be shown as text)"
