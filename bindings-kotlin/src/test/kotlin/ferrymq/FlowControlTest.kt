package ferrymq

import ferrymq.testing.ManualClock
import kotlinx.coroutines.async
import kotlinx.coroutines.delay
import kotlinx.coroutines.runBlocking
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertFalse
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.assertThrows
import kotlin.time.Duration.Companion.seconds

/**
 * Flow control through the binding: pause/resume, a group's maxInflight, and the queue's
 * maxReady with FerrymqException.Full. The semantics are the core's (core/tests/
 * flow_control.rs); these check that each reaches Kotlin with the right type.
 */
class FlowControlTest {
    private inline fun <reified E : FerrymqException> expect(needle: String, noinline call: suspend () -> Any?): E {
        val e = assertThrows<E> { runBlocking { call() } }
        assertTrue(e.message!!.contains(needle), "'${e.message}' should mention '$needle'")
        return e
    }

    /** A queue on a manual clock, so that two stats() calls compare equal when nothing changed. */
    private fun queue(path: String = tempDb().toString(), maxReady: Long? = null) =
        Queue.open(path, maxReady = maxReady, testClock = ManualClock(1_700_000_000_000L))

    private suspend fun Queue.publishN(topic: String, n: Int) = repeat(n) { publish(topic, "m$it") }

    @Test
    fun `a paused group receives nothing in any handle while messages accumulate, and resume hands them out`() = runBlocking<Unit> {
        val path = tempDb().toString()
        queue(path).use { q ->
            q.subscribe("g", "t")
            q.subscribe("other", "t")
            q.publishN("t", 3)
            q.pause("g")
            assertTrue(q.receive("g", max = 10).isEmpty())
            q.publishN("t", 2)
            val st = q.stats()
            assertTrue(st.groups.getValue("g").paused)
            assertEquals(5L, st.groups.getValue("g").ready)
            assertFalse(st.groups.getValue("other").paused)
            assertEquals(5, q.receive("other", max = 10).size)
            queue(path).use { second ->
                assertTrue(second.receive("g", max = 10).isEmpty())
                q.pause("g") // twice is fine
                q.resume("g")
                assertFalse(q.stats().groups.getValue("g").paused)
                assertEquals(listOf("m0", "m1", "m2", "m0", "m1"), second.receive("g", max = 10).map { it.text() })
                q.resume("g") // twice is fine
            }
        }
    }

    @Test
    fun `a delivery out when the group is paused can be settled, and a waiting receive gets a message once resumed`() = runBlocking<Unit> {
        Queue.open(tempDb().toString()).use { q ->
            q.subscribe("g", "t")
            q.publishN("t", 1)
            val held = q.receive("g").single()
            q.pause("g")
            held.ack()
            q.publish("t", "x")
            val waiter = async { q.receive("g", wait = 60.seconds) }
            delay(50)
            q.resume("g")
            assertEquals(listOf("x"), waiter.await().map { it.text() })
        }
    }

    @Test
    fun `maxInflight caps what receives hand out until a delivery is settled, and subscribing without it lifts it`() = runBlocking<Unit> {
        queue().use { q ->
            q.subscribe("g", "t", maxInflight = 2)
            q.publishN("t", 5)
            val first = q.receive("g", max = 10)
            assertEquals(2, first.size)
            assertTrue(q.receive("g", max = 10).isEmpty())
            val g = q.stats().groups.getValue("g")
            assertEquals(2L to 3L, g.inflight to g.ready)
            first[0].ack()
            assertEquals(listOf("m2"), q.receive("g", max = 10).map { it.text() })
            q.subscribe("g", "t")
            assertEquals(listOf("m3", "m4"), q.receive("g", max = 10).map { it.text() })
        }
    }

    @Test
    fun `past maxReady a publish, a batch and a prepare fail with Full and write nothing`() = runBlocking<Unit> {
        queue(maxReady = 2).use { q ->
            q.subscribe("g", "t")
            q.publishN("t", 2)
            val before = q.stats()
            expect<FerrymqException.Full>("\"g\"") { q.publish("t", "x") }
            expect<FerrymqException.Full>("\"g\"") { q.publishBatch(listOf(Message("t", "y"))) }
            expect<FerrymqException.Full>("\"g\"") { q.prepare("t", "h".toByteArray()) }
            assertEquals(before, q.stats())
            // Inflight deliveries do not count: taking one makes room for one.
            q.receive("g")
            q.publish("t", "x")
            expect<FerrymqException.Full>("\"g\"") { q.publish("t", "z") }
            // A topic no group waits on is not held.
            q.publish("free", "anything")
        }
    }

    @Test
    fun `Full inside transaction rolls back the business SQL with it`() = runBlocking<Unit> {
        queue(maxReady = 1).use { q ->
            q.subscribe("g", "t")
            q.publishN("t", 1)
            val before = q.stats()
            expect<FerrymqException.Full>("\"g\"") {
                q.transaction { tx ->
                    tx.execute("CREATE TABLE orders(id INTEGER)")
                    tx.execute("INSERT INTO orders VALUES (1)")
                    tx.publish("t", "x".toByteArray())
                }
            }
            val tables = q.transaction { tx -> tx.query("SELECT count(*) FROM sqlite_master WHERE name = 'orders'") }
            assertEquals(listOf(listOf<Any?>(0L)), tables)
            assertEquals(before, q.stats())
        }
    }

    @Test
    fun `out-of-range maxInflight and maxReady are InvalidArgument and change nothing`() = runBlocking<Unit> {
        queue().use { q ->
            for (n in listOf(0, -1, 1_000_001)) {
                expect<FerrymqException.InvalidArgument>("max_inflight") { q.subscribe("g", "t", maxInflight = n) }
            }
            assertTrue(q.stats().groups.isEmpty())
            q.subscribe("g", "t", maxInflight = 1_000_000)
        }
        val path = tempDb()
        for (n in listOf(0L, -1L, 1_000_001L)) {
            expect<FerrymqException.InvalidArgument>("max_ready") { Queue.open(path.toString(), maxReady = n) }
        }
        assertFalse(path.toFile().exists())
    }

    @Test
    fun `pause and resume of an unknown group are NotFound, a bad name InvalidArgument`() = runBlocking<Unit> {
        queue().use { q ->
            expect<FerrymqException.NotFound>("nope") { q.pause("nope") }
            expect<FerrymqException.NotFound>("nope") { q.resume("nope") }
            expect<FerrymqException.InvalidArgument>("bad name") { q.pause("bad name") }
            assertTrue(q.stats().groups.isEmpty())
        }
    }

    @Test
    fun `metrics are the file's gauges and this handle's counters`() = runBlocking<Unit> {
        val path = tempDb().toString()
        queue(path).use { q ->
            q.subscribe("g", "orders")
            q.publishN("orders", 2)
            q.receive("g").single().ack()
            val text = q.metrics()
            assertTrue(text.contains("# TYPE ferrymq_messages_ready gauge\n"), text)
            assertTrue(text.contains("ferrymq_messages_ready{topic=\"orders\",consumer_group=\"g\"} 1\n"), text)
            assertTrue(text.contains("ferrymq_messages_published_total{topic=\"orders\"} 2\n"), text)
            assertTrue(text.contains("ferrymq_messages_acked_total{topic=\"orders\",consumer_group=\"g\"} 1\n"), text)
            queue(path).use { other -> assertFalse(other.metrics().contains("ferrymq_messages_published_total{")) }
        }
    }
}
