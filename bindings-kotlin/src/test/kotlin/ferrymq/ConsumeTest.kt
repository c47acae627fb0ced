package ferrymq

import kotlinx.coroutines.delay
import kotlinx.coroutines.flow.first
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import kotlin.time.Duration.Companion.milliseconds
import kotlin.time.Duration.Companion.seconds

/** `consume` drives the core's consumer: the lease of the delivery being collected is
 *  renewed, and ending the Flow puts back what it holds. */
class ConsumeTest {
    @Test
    fun `a collector slower than the lease keeps its message`() = runBlocking {
        Queue.open(tempDb().toString()).use { q ->
            q.subscribe("g", "t", lease = 200.milliseconds)
            q.publish("t", "slow")
            withTimeout(30.seconds) {
                q.consume("g", wait = 50.milliseconds).first { d ->
                    delay(800.milliseconds) // four leases: only the heartbeat keeps it ours
                    assertTrue(q.receive("g").isEmpty(), "redelivered to a second consumer")
                    d.ack()
                    true
                }
            }
            assertEquals(0L, q.stats().groups.getValue("g").inflight)
        }
    }

    @Test
    fun `ending the Flow puts the delivery back at once`() = runBlocking {
        // A 30 s lease: only the put-back makes the message ready now.
        freshQueue("g" to "t").use { q ->
            q.publish("t", "a")
            val d = withTimeout(30.seconds) { q.consume("g").first() }
            assertEquals(1, d.attempt)
            val again = q.receive("g").single()
            assertEquals(1, again.attempt, "a put-back counts no attempt")
            again.ack()
        }
    }
}
