package ferrymq

import ferrymq.ffi.FfiQueue
import ferrymq.ffi.OpenArgs
import ferrymq.ffi.PublishArgs
import ferrymq.ffi.ReceiveArgs
import kotlinx.coroutines.delay
import kotlinx.coroutines.launch
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeoutOrNull
import kotlinx.coroutines.yield
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.assertThrows
import java.time.Instant
import kotlin.time.Duration.Companion.milliseconds
import kotlin.time.Duration.Companion.seconds

/** The raw handles of the fast path (queues, deliveries) live as long as their Kotlin owners. */
class HandlesTest {
    private fun collect() = repeat(3) {
        System.gc()
        Thread.sleep(50)
    }

    @Test
    fun `deliveries dropped unsettled are released, and one kept alive still settles after collections`() = runBlocking {
        freshQueue("g" to "t").use { q ->
            repeat(298) { q.publish("t", "m$it") }
            val kept = q.receive("g", max = 1).single()
            repeat(3) { q.receive("g", max = 99) } // dropped at once
            collect()
            assertEquals(298L, q.stats().groups.getValue("g").inflight)
            kept.extend(30.seconds)
            kept.ack()
            collect()
            assertEquals(297L, q.stats().groups.getValue("g").inflight)
            assertEquals(emptyList<Delivery>(), q.receive("g", max = 1)) // the dropped ones keep their leases
        }
    }

    @Test
    fun `a queue left unclosed and unreachable is released without a crash`() {
        val path = tempDb().toString()
        runBlocking {
            val q = Queue.open(path)
            q.subscribe("g", "t")
            q.publish("t", "x")
        }
        collect()
        Queue.open(path).use { q ->
            runBlocking {
                val d = q.receive("g").single()
                d.ack()
                assertEquals("x", d.text())
            }
        }
    }

    private fun refused(call: () -> Unit) {
        val e = assertThrows<FerrymqException.InvalidArgument> { native(call) }
        assertTrue("unknown or released" in e.message!!, e.message)
    }

    /** Waits (collecting) until no delivery handle is live; false after [timeoutMs]. */
    private fun allReleased(timeoutMs: Long = 10_000): Boolean {
        val end = System.currentTimeMillis() + timeoutMs
        while (Fast.ferrymq_kt_live_deliveries() != 0L) {
            if (System.currentTimeMillis() > end) return false
            collect()
        }
        return true
    }

    @Test
    fun `any integer as a handle is InvalidArgument, never a crash, in the generated API and the fast calls`() {
        val path = tempDb().toString()
        val raw = runBlocking {
            Queue.open(path).use { q ->
                q.subscribe("g", "t")
                q.publish("t", "x")
                val d = q.receive("g").single()
                d.ack()
                Fast.ferrymq_kt_delivery_release(d.raw) // released by hand; the cleaner's later release is a no-op
                refused { Fast.ack(d, d.raw) }
                refused { Fast.extend(d, d.raw, 1.0) }
                d.raw
            }
        }
        val ffi = FfiQueue.open(path, OpenArgs(null, null, null, null, null, null, null, null, null), null)
        val q = ffi.fastHandle()
        assertEquals(q, ffi.fastHandle()) // one handle per queue, nothing to leak
        val tx = ffi.begin()
        try {
            for (h in listOf(0L, raw, -1L, Long.MIN_VALUE, q.toLong())) {
                refused { tx.ack(h.toULong()) }
                refused { tx.nack(h.toULong(), "r", null) }
                refused { Fast.ack(this, h) }
                refused { Fast.nack(this, h, "r", null) }
                refused { Fast.extend(this, h, 1.0) }
                refused { Fast.leaseUntil(this, h) }
                Fast.ferrymq_kt_delivery_release(h)
            }
            for (h in listOf(0L, raw, -1L)) {
                refused { Fast.publish(this, h, "t", byteArrayOf(1), PublishArgs(null, null, emptyMap(), null, null, null, null, null)) }
                refused { Fast.receive(this, h, "g", ReceiveArgs(1, 0.0, null)) }
            }
        } finally {
            tx.rollback()
        }
        // A queue handle outlived by its handle (the uniffi object freed): InvalidArgument too.
        ffi.closeQueue()
        ffi.close()
        refused { Fast.publish(this, q.toLong(), "t", byteArrayOf(1), PublishArgs(null, null, emptyMap(), null, null, null, null, null)) }
    }

    @Test
    fun `receives with a wait cancelled at any point leave no handle behind`() = runBlocking {
        assertTrue(allReleased(), "handles of other tests still live")
        freshQueue("g" to "t").use { q ->
            var got = 0
            repeat(200) { i ->
                val producer = launch {
                    delay((i % 5).toLong())
                    q.publish("t", "m$i")
                }
                withTimeoutOrNull((i % 7).milliseconds + 1.milliseconds) {
                    got += q.receive("g", max = 5, wait = 1.seconds).size
                    yield()
                }
                producer.join()
            }
            assertTrue(allReleased(), "${Fast.ferrymq_kt_live_deliveries()} delivery handles never released ($got received)")
        }
    }

    @Test
    fun `a transaction acks a delivery while another thread's extend of it waits for the file`() = runBlocking {
        Queue.open(tempDb().toString(), busyTimeout = 5.seconds).use { q ->
            q.subscribe("g", "t")
            q.publish("t", "x")
            val d = q.receive("g").single()
            var extended: Result<Instant>? = null
            val other = Thread { extended = runCatching { runBlocking { d.extend(30.seconds) } } }
            val took = q.transaction { tx ->
                // The transaction holds the file's write lock: the extend waits for it.
                other.start()
                Thread.sleep(200)
                val start = System.nanoTime()
                tx.ack(d) // must not wait for the extend, which waits for this transaction
                (System.nanoTime() - start) / 1_000_000
            }
            other.join()
            assertTrue(took < 1_000, "tx.ack waited $took ms for the extend on another thread")
            assertTrue(extended!!.exceptionOrNull() is FerrymqException.LeaseLost, "extend after the ack: $extended")
        }
    }
}
