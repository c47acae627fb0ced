package ferrymq

import ferrymq.ffi.traceExtract
import ferrymq.ffi.traceInject
import io.opentelemetry.api.GlobalOpenTelemetry
import io.opentelemetry.api.trace.Span
import io.opentelemetry.api.trace.SpanContext
import io.opentelemetry.api.trace.SpanKind
import io.opentelemetry.api.trace.StatusCode
import io.opentelemetry.api.trace.TraceFlags
import io.opentelemetry.api.trace.TraceState
import io.opentelemetry.context.Context
import io.opentelemetry.context.Scope
import kotlinx.coroutines.ThreadContextElement
import kotlinx.coroutines.withContext
import kotlin.coroutines.CoroutineContext
import kotlin.coroutines.EmptyCoroutineContext

/**
 * OpenTelemetry on messages, when io.opentelemetry:opentelemetry-api is on the classpath
 * (an optional dependency: nothing changes without it). Publishing while a span is
 * current puts its W3C `traceparent` (and `tracestate`) in the message's headers unless
 * the caller gave one; [Delivery.withSpan] and [Queue.worker] run a consumer span (kind
 * CONSUMER, named "process <topic>", messaging semantic conventions) linked to the
 * producer's context. Which headers, and whether a received traceparent is valid, is the
 * core's (`ferrymq::trace`); this file only reads and writes OpenTelemetry span contexts.
 * Only [Otel] names OpenTelemetry classes, and it is loaded only when they are present.
 */
internal object Tracing {
    val enabled: Boolean = try {
        Class.forName("io.opentelemetry.api.trace.Span", false, Tracing::class.java.classLoader)
        true
    } catch (e: ClassNotFoundException) {
        false
    } catch (e: LinkageError) {
        false
    }

    /** [headers] with the current span's context (unchanged without one, or with a traceparent). */
    fun inject(headers: Map<String, String>): Map<String, String> =
        if (!enabled || headers.containsKey("traceparent")) headers else Otel.inject(headers)

    /** The caller's OpenTelemetry context, to make current on another thread (a dispatcher's). */
    fun currentContext(): CoroutineContext = if (enabled) Otel.currentElement() else EmptyCoroutineContext

    /** Runs [block] on this thread inside [d]'s consumer span. */
    fun <T> inSpan(d: Delivery, block: () -> T): T {
        if (!enabled) return block()
        val span = Otel.start(d)
        return try {
            Otel.runIn(span, block)
        } catch (e: Throwable) {
            Otel.fail(span, e)
            throw e
        } finally {
            Otel.end(span)
        }
    }

    suspend fun <T> inSpanSuspend(d: Delivery, block: suspend () -> T): T {
        if (!enabled) return block()
        val span = Otel.start(d)
        return try {
            withContext(Otel.element(span)) { block() }
        } catch (e: Throwable) {
            Otel.fail(span, e)
            throw e
        } finally {
            Otel.end(span)
        }
    }
}

private object Otel {
    private val version = Otel::class.java.`package`?.implementationVersion ?: "0.1.0"

    fun inject(headers: Map<String, String>): Map<String, String> {
        val c = Span.current().spanContext
        if (!c.isValid) return headers
        val traceparent = "00-${c.traceId}-${c.spanId}-${c.traceFlags.asHex()}"
        val tracestate = c.traceState.asMap().entries.joinToString(",") { "${it.key}=${it.value}" }
        return native { traceInject(headers, traceparent, tracestate.ifEmpty { null }) }
    }

    private fun producer(headers: Map<String, String>): SpanContext? {
        val p = traceExtract(headers) ?: return null
        val state = TraceState.builder()
        p.tracestate?.split(',')?.forEach { member ->
            val eq = member.indexOf('=')
            if (eq > 0) state.put(member.substring(0, eq).trim(), member.substring(eq + 1).trim())
        }
        return SpanContext.createFromRemoteParent(p.traceId, p.spanId, TraceFlags.fromByte(p.flags.toByte()), state.build())
    }

    fun start(d: Delivery): Any {
        val producer = producer(d.headers)
        var parent = Context.current()
        if (producer != null && !Span.current().spanContext.isValid) parent = parent.with(Span.wrap(producer))
        val builder = GlobalOpenTelemetry.getTracer("ferrymq", version)
            .spanBuilder("process ${d.topic}")
            .setSpanKind(SpanKind.CONSUMER)
            .setParent(parent)
            .setAttribute("messaging.system", "ferrymq")
            .setAttribute("messaging.operation.name", "process")
            .setAttribute("messaging.operation.type", "process")
            .setAttribute("messaging.destination.name", d.topic)
            .setAttribute("messaging.consumer.group.name", d.consumerGroup)
            .setAttribute("messaging.message.id", d.messageId.toString())
            .setAttribute("messaging.ferrymq.attempt", d.attempt.toLong())
        if (producer != null) builder.addLink(producer)
        return builder.startSpan()
    }

    private fun current(span: Any): Context = Context.current().with(span as Span)

    fun <T> runIn(span: Any, block: () -> T): T = current(span).makeCurrent().use { block() }

    fun element(span: Any): CoroutineContext = OtelElement(current(span))

    fun currentElement(): CoroutineContext = OtelElement(Context.current())

    fun fail(span: Any, e: Throwable) {
        (span as Span).recordException(e)
        span.setStatus(StatusCode.ERROR, e.message ?: e.javaClass.name)
    }

    fun end(span: Any) = (span as Span).end()
}

/** Makes an OpenTelemetry Context current on whichever thread runs the coroutine. */
private class OtelElement(private val context: Context) : ThreadContextElement<Scope> {
    companion object Key : CoroutineContext.Key<OtelElement>

    override val key: CoroutineContext.Key<OtelElement> get() = Key

    override fun updateThreadContext(context: CoroutineContext): Scope = this.context.makeCurrent()

    override fun restoreThreadContext(context: CoroutineContext, oldState: Scope) = oldState.close()
}
