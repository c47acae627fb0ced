package ferrymq

import kotlinx.coroutines.runBlocking
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Test
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
}
