package ferrymq

import io.opentelemetry.api.GlobalOpenTelemetry
import io.opentelemetry.api.trace.Span
import io.opentelemetry.api.trace.SpanKind
import io.opentelemetry.api.trace.StatusCode
import io.opentelemetry.sdk.OpenTelemetrySdk
import io.opentelemetry.sdk.testing.exporter.InMemorySpanExporter
import io.opentelemetry.sdk.trace.SdkTracerProvider
import io.opentelemetry.sdk.trace.data.SpanData
import io.opentelemetry.sdk.trace.export.SimpleSpanProcessor
import kotlinx.coroutines.delay
import kotlinx.coroutines.runBlocking
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertNotEquals
import org.junit.jupiter.api.BeforeEach
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.assertThrows
import java.nio.file.Path
import java.util.concurrent.CountDownLatch
import java.util.concurrent.TimeUnit
import kotlin.time.Duration
import kotlin.time.Duration.Companion.seconds

/** W3C trace propagation through OpenTelemetry (the SDK's in-memory exporter). */
class TracingTest {
    companion object {
        val exporter: InMemorySpanExporter = InMemorySpanExporter.create()

        init {
            GlobalOpenTelemetry.resetForTest()
            OpenTelemetrySdk.builder()
                .setTracerProvider(SdkTracerProvider.builder().addSpanProcessor(SimpleSpanProcessor.create(exporter)).build())
                .buildAndRegisterGlobal()
        }

        val tracer = GlobalOpenTelemetry.getTracer("test")
    }

    @BeforeEach
    fun reset() = exporter.reset()

    private fun consumerSpans(): List<SpanData> = exporter.finishedSpanItems.filter { it.kind == SpanKind.CONSUMER }

    @Test
    fun `publishing under a span sets traceparent, without one none, and a caller traceparent is kept`() = runBlocking {
        freshQueue("g" to "t").use { q ->
            q.publish("t", "no span")
            val own = "00-0123456789abcdef0123456789abcdef-0123456789abcdef-00"
            val span = tracer.spanBuilder("producer").startSpan()
            val c = span.spanContext
            val expected = "00-${c.traceId}-${c.spanId}-${c.traceFlags.asHex()}"
            span.makeCurrent().use {
                q.publish("t", "under span")
                q.publishBatch(listOf(Message("t", "batch")))
                q.transaction { tx -> tx.publish("t", "tx") }
                q.publish("t", "own", PublishOptions(headers = mapOf("traceparent" to own)))
            }
            span.end()
            val got = q.receive("g", max = 10, wait = 1.seconds)
            assertEquals(listOf("no span", "under span", "batch", "tx", "own"), got.map { it.text() })
            assertEquals(
                listOf(emptyMap(), mapOf("traceparent" to expected), mapOf("traceparent" to expected),
                    mapOf("traceparent" to expected), mapOf("traceparent" to own)),
                got.map { it.headers },
            )
        }
    }

    @Test
    fun `withSpan is a consumer span linked to the producer and a retry is a new span`() = runBlocking {
        val q = Queue.open(tempDb().toString())
        q.use {
            q.subscribe("g", "t", retry = RetryPolicy.fixed(listOf(Duration.ZERO)))
            val producer = tracer.spanBuilder("producer").startSpan()
            val id = producer.makeCurrent().use { q.publish("t", "x") }
            producer.end()
            val pc = producer.spanContext
            val d = q.receive("g", wait = 1.seconds).single()
            d.withSpan {
                delay(1) // the span stays current across a suspension
                assertEquals(pc.traceId, Span.current().spanContext.traceId)
                d.nack("again")
            }
            val first = consumerSpans().single()
            assertEquals("process t", first.name)
            val attrs = first.attributes.asMap().mapKeys { it.key.key }
            assertEquals(
                mapOf(
                    "messaging.system" to "ferrymq",
                    "messaging.operation.name" to "process",
                    "messaging.operation.type" to "process",
                    "messaging.destination.name" to "t",
                    "messaging.consumer.group.name" to "g",
                    "messaging.message.id" to id.toString(),
                    "messaging.ferrymq.attempt" to 1L,
                ),
                attrs,
            )
            assertEquals(listOf(pc.traceId to pc.spanId), first.links.map { it.spanContext.traceId to it.spanContext.spanId })
            assertEquals(pc.spanId, first.parentSpanId)

            val retry = q.receive("g", wait = 1.seconds).single()
            assertEquals(2, retry.attempt)
            assertThrows<IllegalStateException> { retry.withSpan { error("boom") } }
            retry.ack()
            val second = consumerSpans()[1]
            assertEquals(2L, second.attributes.asMap().entries.first { it.key.key == "messaging.ferrymq.attempt" }.value)
            assertNotEquals(first.spanId, second.spanId)
            assertEquals(listOf(pc.traceId), second.links.map { it.spanContext.traceId })
            assertEquals(StatusCode.ERROR, second.status.statusCode)
        }
    }

    @Test
    fun `one Python publish under a span, consumed by a JVM and a Node worker, gives both consumer spans its trace id`() = runBlocking {
        val python = python()
        val db = tempDb().toString()
        val script = Path.of(System.getProperty("user.dir")).resolve("../tests/trace/python_producer.py").normalize()
        val proc = ProcessBuilder(python, script.toString(), db, "orders", "kotlin", "node").redirectErrorStream(true).start()
        check(proc.waitFor(60, TimeUnit.SECONDS)) { "the Python producer did not finish" }
        val out = proc.inputStream.bufferedReader().readText()
        assertEquals(0, proc.exitValue(), out)
        val (traceId, spanId) = out.trim().split(" ")
        Queue.open(db).use { q ->
            val seen = mutableListOf<String>()
            val done = CountDownLatch(1)
            val w = q.worker("kotlin", wait = 1.seconds) {
                seen += Span.current().spanContext.traceId
                done.countDown()
            }
            check(done.await(30, TimeUnit.SECONDS)) { "the worker got nothing" }
            w.stop()
            assertEquals(listOf(traceId), seen)
            val span = consumerSpans().single()
            assertEquals("process orders", span.name)
            assertEquals(listOf(traceId to spanId), span.links.map { it.spanContext.traceId to it.spanContext.spanId })
            assertEquals(traceId, span.traceId)
        }
        // The same message, for the other consumer group, in a Node process.
        val node = Path.of(System.getProperty("user.dir")).resolve("../tests/trace/node_consumer.js").normalize()
        val consumer = ProcessBuilder("node", node.toString(), db, "node").redirectErrorStream(true).start()
        check(consumer.waitFor(60, TimeUnit.SECONDS)) { "the Node consumer did not finish" }
        val got = consumer.inputStream.bufferedReader().readText()
        assertEquals(0, consumer.exitValue(), got)
        assertEquals(
            """{"seen":["$traceId"],"spans":[{"name":"process orders","traceId":"$traceId","links":[["$traceId","$spanId"]]}]}""",
            got.trim(),
        )
    }
}
