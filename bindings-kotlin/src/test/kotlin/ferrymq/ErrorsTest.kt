package ferrymq

import ferrymq.ffi.FfiException
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withContext
import org.junit.jupiter.api.Assertions.assertArrayEquals
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.assertThrows
import java.nio.file.Files
import java.time.Instant
import kotlin.time.Duration
import kotlin.time.Duration.Companion.days
import kotlin.time.Duration.Companion.milliseconds
import kotlin.time.Duration.Companion.seconds

/** Every error kind, each a subclass of the sealed FerrymqException, with the core's message. */
class ErrorsTest {
    private inline fun <reified E : FerrymqException> expect(needle: String, noinline call: suspend () -> Any?) {
        val e = assertThrows<E> { runBlocking { call() } }
        assertTrue(e.message!!.contains(needle), "'${e.message}' should mention '$needle'")
    }

    @Test
    fun `bad input is InvalidArgument naming the problem, and changes nothing`() = runBlocking {
        freshQueue("g" to "t").use { q ->
            expect<FerrymqException.InvalidArgument>("topic") { q.publish("", "x") }
            expect<FerrymqException.InvalidArgument>("topic") { q.publish("pay ments", "x") }
            expect<FerrymqException.InvalidArgument>("tag") { q.publish("t", "x", PublishOptions(tag = "*")) }
            expect<FerrymqException.InvalidArgument>("header") { q.publish("t", "x", PublishOptions(headers = mapOf("" to "v"))) }
            expect<FerrymqException.InvalidArgument>("delay") { q.publish("t", "x", PublishOptions(delay = (-1).seconds)) }
            expect<FerrymqException.InvalidArgument>("delay") { q.publish("t", "x", PublishOptions(delay = Duration.INFINITE)) }
            expect<FerrymqException.InvalidArgument>("delay") { q.publish("t", "x", PublishOptions(delay = 36500.days)) }
            expect<FerrymqException.InvalidArgument>("deliver_at") { q.publish("t", "x", PublishOptions(deliverAt = Instant.MIN)) }
            expect<FerrymqException.InvalidArgument>("deliver_at") { q.publish("t", "x", PublishOptions(deliverAt = Instant.MAX)) }
            expect<FerrymqException.InvalidArgument>("either") {
                q.publish("t", "x", PublishOptions(delay = 1.seconds, deliverAt = Instant.now()))
            }
            expect<FerrymqException.InvalidArgument>("payload") { q.publish("t", ByteArray(5 * 1024 * 1024)) }
            expect<FerrymqException.InvalidArgument>("max") { q.receive("g", max = 0) }
            expect<FerrymqException.InvalidArgument>("max") { q.receive("g", max = -1) }
            expect<FerrymqException.InvalidArgument>("wait") { q.receive("g", wait = (-5).milliseconds) }
            expect<FerrymqException.InvalidArgument>("lease") { q.receive("g", lease = 100.seconds / 1_000_000) }
            expect<FerrymqException.InvalidArgument>("lease") { q.subscribe("g", "t", lease = Duration.ZERO) }
            expect<FerrymqException.InvalidArgument>("consumer group") { q.subscribe("x'; DROP TABLE t;--", "t") }
            expect<FerrymqException.InvalidArgument>("filter") { q.subscribe("g2", "t", tags = "a |||") }
            expect<FerrymqException.InvalidArgument>("limit") { q.deadLetters("g", limit = 0) }
            expect<FerrymqException.InvalidArgument>("limit") { q.halfMessages(limit = -3) }
            expect<FerrymqException.InvalidArgument>("half") { q.halfMessages(state = MessageState.COMMITTED) }
            expect<FerrymqException.InvalidArgument>("older_than") { q.purgeAcked((-1).days) }
            expect<FerrymqException.InvalidArgument>("concurrency") { q.worker("g", concurrency = 0) { } }
            expect<FerrymqException.InvalidArgument>("batch") {
                q.publishBatch(listOf(Message("t", "ok"), Message("", "bad")))
            }
            expect<FerrymqException.InvalidArgument>("max_retries") { RetryPolicy.exponential(maxRetries = -1) }
            expect<FerrymqException.InvalidArgument>("jitter") { RetryPolicy.exponential(jitter = 2.0) }
            expect<FerrymqException.InvalidArgument>("retry delay") { RetryPolicy.fixed(listOf((-1).seconds)) }
            expect<FerrymqException.InvalidArgument>("path") { Queue.open(":memory:") }
            expect<FerrymqException.InvalidArgument>("check_max") { Queue.open(tempDb().toString(), checkMax = 0) }
            expect<FerrymqException.InvalidArgument>("max_payload") { Queue.open(tempDb().toString(), maxPayload = -1) }
            expect<FerrymqException.InvalidArgument>("SQL values") { q.transaction { tx -> tx.execute("SELECT ?", Any()) } }
            expect<FerrymqException.InvalidArgument>("SQL") { q.transaction { tx -> tx.execute("this is not sql") } }
            expect<FerrymqException.InvalidArgument>("refused") { q.transaction { tx -> tx.execute("COMMIT") } }
            assertEquals(0L, q.stats().topics.getValue("t").messages)
            assertTrue(q.receive("g").isEmpty())
        }
    }

    @Test
    fun `NotFound for a group or message that does not exist`() = runBlocking {
        freshQueue().use { q ->
            expect<FerrymqException.NotFound>("subscribe first") { q.receive("nobody") }
            expect<FerrymqException.NotFound>("nobody") { q.receive("nobody", wait = 1.seconds) }
            expect<FerrymqException.NotFound>("424242") { q.message(424242) }
            expect<FerrymqException.NotFound>("") { q.deadLetters("nobody") }
            expect<FerrymqException.NotFound>("") { q.worker("nobody") { } }
            expect<FerrymqException.NotFound>("") { q.commitHalf(99) }
        }
    }

    @Test
    fun `LeaseLost after the delivery was settled`() = runBlocking {
        freshQueue("g" to "t").use { q ->
            q.publish("t", "x")
            val d = q.receive("g").single()
            d.ack()
            expect<FerrymqException.LeaseLost>("no longer held") { d.ack() }
            expect<FerrymqException.LeaseLost>("") { d.nack("again") }
            expect<FerrymqException.LeaseLost>("") { d.extend(10.seconds) }
        }
    }

    @Test
    fun `Closed after close, and closing twice is fine`() = runBlocking {
        val q = freshQueue("g" to "t")
        q.close()
        q.close()
        assertTrue(q.isClosed)
        expect<FerrymqException.Closed>("closed") { q.publish("t", "x") }
        expect<FerrymqException.Closed>("closed") { q.receive("g") }
        expect<FerrymqException.Closed>("closed") { q.receive("g", wait = 1.seconds) }
        expect<FerrymqException.Closed>("closed") { q.transaction { } }
        val q2 = freshQueue()
        q2.shutdown()
        expect<FerrymqException.Closed>("closed") { q2.stats() }
    }

    @Test
    fun `Busy when another writer holds the file past busyTimeout`() = runBlocking {
        val path = tempDb().toString()
        Queue.open(path).use { holder ->
            Queue.open(path, busyTimeout = 100.milliseconds).use { q ->
                holder.transaction { tx ->
                    tx.publish("t", "held")
                    // Another queue on the file waits 100 ms for the write lock, then gives up.
                    runBlocking { withContext(Dispatchers.IO) { expect<FerrymqException.Busy>("locked") { q.publish("t", "x") } } }
                }
                q.publish("t", "now it goes")
                assertEquals(2L, q.stats().topics.getValue("t").messages)
            }
        }
    }

    @Test
    fun `Storage for a file that is not a queue, left untouched`() {
        val path = tempDb("notes.txt")
        Files.writeString(path, "not a database ".repeat(200))
        val before = Files.readAllBytes(path)
        expect<FerrymqException.Storage>("not a") { Queue.open(path.toString()) }
        assertArrayEquals(before, Files.readAllBytes(path))
    }

    @Test
    fun `Storage when a write would pass maxSize (disk full)`() = runBlocking {
        Queue.open(tempDb().toString(), maxSize = 512 * 1024).use { q ->
            q.subscribe("g", "t")
            expect<FerrymqException.Storage>("full") {
                repeat(100) { q.publish("t", ByteArray(16 * 1024)) }
            }
        }
    }

    @Test
    fun `every kind of the generated layer maps to its own subclass`() {
        // Callback is the one kind the core never raises today (a failing checker or
        // handler is recorded, not thrown: see CallbacksTest); its mapping is checked here.
        val cases = listOf(
            FfiException.InvalidArgument("a") to FerrymqException.InvalidArgument::class,
            FfiException.NotFound("b") to FerrymqException.NotFound::class,
            FfiException.LeaseLost("c") to FerrymqException.LeaseLost::class,
            FfiException.Closed("d") to FerrymqException.Closed::class,
            FfiException.Busy("e") to FerrymqException.Busy::class,
            FfiException.Storage("f") to FerrymqException.Storage::class,
            FfiException.Callback("g") to FerrymqException.Callback::class,
            FfiException.Full("h") to FerrymqException.Full::class,
            FfiException.Encryption("i") to FerrymqException.Encryption::class,
        )
        for ((ffi, kind) in cases) {
            val e = ffi.toFerrymq()
            assertEquals(kind, e::class)
            assertEquals("reason=${e.message}", ffi.message)
        }
    }
}
