"""OpenTelemetry on messages, when `opentelemetry-api` is installed (nothing changes when
it is not): publishing under a current span puts its W3C `traceparent` (and `tracestate`)
in the message's headers unless the caller gave one; `Delivery.span()` and the workers
run a consumer span (kind CONSUMER, named "process <topic>", messaging semantic
conventions) linked to the producer's context. Which headers, and whether a received
`traceparent` is valid, is the core's (`ferrymq::trace`); this module only reads and
writes OpenTelemetry span contexts.
"""

from __future__ import annotations

import contextlib
import functools
from typing import Any, Callable, Iterator, Optional, Tuple

from . import _native

try:
    from opentelemetry import trace as _otel
except ImportError:  # the optional dependency is absent: tracing is off
    _otel = None  # type: ignore[assignment]


def _current() -> Optional[Tuple[str, Optional[str]]]:
    """The current span's (traceparent, tracestate), or None without a valid span.
    Called by the native publish paths."""
    if _otel is None:
        return None
    ctx = _otel.get_current_span().get_span_context()
    if not ctx.is_valid:
        return None
    traceparent = f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{int(ctx.trace_flags):02x}"
    tracestate = ctx.trace_state.to_header() if ctx.trace_state else None
    return traceparent, tracestate or None


def _producer_context(headers: dict[str, str]) -> Any:
    """The producer's SpanContext from a message's headers, if the core finds a valid one."""
    found = _native._trace_extract(headers)
    if found is None:
        return None
    trace_id, span_id, flags, tracestate = found
    state = _otel.TraceState.from_header([tracestate]) if tracestate else None
    return _otel.SpanContext(
        trace_id=int(trace_id, 16),
        span_id=int(span_id, 16),
        is_remote=True,
        trace_flags=_otel.TraceFlags(flags),
        trace_state=state,
    )


@contextlib.contextmanager
def delivery_span(delivery: Any) -> Iterator[Any]:
    """The consumer span of one delivery attempt, current inside the block: a child of
    the current span if there is one, else of the producer's context; always linked to
    the producer's context. An exception escaping the block is recorded on the span.
    Yields None when opentelemetry-api is not installed."""
    if _otel is None:
        yield None
        return
    producer = _producer_context(delivery.headers)
    links = [_otel.Link(producer)] if producer is not None else []
    parent = None
    if producer is not None and not _otel.get_current_span().get_span_context().is_valid:
        parent = _otel.set_span_in_context(_otel.NonRecordingSpan(producer))
    tracer = _otel.get_tracer("ferrymq", _native.__version__)
    with tracer.start_as_current_span(
        f"process {delivery.topic}",
        record_exception=False,  # _failed does it: describing the exception must not raise
        set_status_on_exception=False,
        context=parent,
        kind=_otel.SpanKind.CONSUMER,
        links=links,
        attributes={
            "messaging.system": "ferrymq",
            "messaging.operation.name": "process",
            "messaging.operation.type": "process",
            "messaging.destination.name": delivery.topic,
            "messaging.consumer.group.name": delivery.consumer_group,
            "messaging.message.id": str(delivery.message_id),
            "messaging.ferrymq.attempt": delivery.attempt,
        },
    ) as span:
        try:
            yield span
        except Exception as exc:
            _failed(span, exc)
            raise


def _failed(span: Any, exc: Exception) -> None:
    """Records what the block raised without raising in its place (str() of some
    exceptions does): the caller must see its own exception."""
    try:
        message = str(exc)
    except Exception:
        message = f"{type(exc).__name__} (cannot be shown as text)"
    try:
        span.record_exception(exc)
    except Exception:
        span.add_event("exception", {"exception.type": type(exc).__name__})
    span.set_status(_otel.Status(_otel.StatusCode.ERROR, message))


def _wrap_handler(handler: Callable[[Any], object]) -> Callable[[Any], object]:
    """A Worker's handler, each call inside the delivery's consumer span."""
    if _otel is None:
        return handler

    @functools.wraps(handler)
    def traced(delivery: Any) -> object:
        with delivery_span(delivery):
            return handler(delivery)

    return traced
