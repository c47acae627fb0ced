"""The producer of the cross-language trace tests (bindings-node/test/trace.test.js, and
bindings-kotlin TracingTest, which also runs tests/trace/node_consumer.js on the same
file): subscribes the given groups, publishes one message to `topic` inside a span of the
OpenTelemetry SDK, and prints that span's trace id and span id.
Usage: python_producer.py DB TOPIC GROUP...
"""

import sys

import ferrymq
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

exporter = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(exporter))
trace.set_tracer_provider(provider)

db, topic, groups = sys.argv[1], sys.argv[2], sys.argv[3:]
with ferrymq.Queue(db) as q:
    for group in groups:
        q.subscribe(group, topic)
    with trace.get_tracer("producer").start_as_current_span("place order") as span:
        q.publish(topic, b"order-1", key="order-1")
        ctx = span.get_span_context()
assert [s.name for s in exporter.get_finished_spans()] == ["place order"]
print(f"{ctx.trace_id:032x} {ctx.span_id:016x}", flush=True)
