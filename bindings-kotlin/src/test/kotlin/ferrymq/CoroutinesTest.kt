package ferrymq

import ferrymq.testing.ManualClock
import kotlinx.coroutines.async
import kotlinx.coroutines.delay
import kotlinx.coroutines.flow.map
import kotlinx.coroutines.flow.take
import kotlinx.coroutines.flow.toList
import kotlinx.coroutines.launch
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.assertThrows
import java.time.Instant
import kotlin.time.Duration.Companion.days
import kotlin.time.Duration.Companion.milliseconds
import kotlin.time.Duration.Companion.minutes
import kotlin.time.Duration.Companion.seconds
import kotlin.time.TimeSource

/** Waiting, cancellation, Flow, and the test-only manual clock. */
class CoroutinesTest {
    @Test
    fun `cancelling the coroutine ends a waiting receive at once`() = runBlocking {
        freshQueue("g" to "t").use { q ->
            val waiting = launch { q.receive("g", wait = 60.seconds) }
            delay(300.milliseconds)
            val start = TimeSource.Monotonic.markNow()
            waiting.cancel()
            waiting.join()
            val took = start.elapsedNow()
            assertTrue(took < 1.seconds, "the cancelled receive took $took")
            assertTrue(waiting.isCancelled)
            // Nothing is left leased to the cancelled caller: a publish now goes to the next receive.
            q.publish("t", "after")
            assertEquals(listOf("after"), q.receive("g", wait = 5.seconds).map { it.text() })
            assertEquals(0L, q.stats().groups.getValue("g").ready)
        }
    }

    @Test
    fun `withTimeout around a receive cancels it too`() = runBlocking {
        freshQueue("g" to "t").use { q ->
            val start = TimeSource.Monotonic.markNow()
            assertThrows<kotlinx.coroutines.TimeoutCancellationException> {
                runBlocking { withTimeout(200.milliseconds) { q.receive("g", wait = 30.seconds) } }
            }
            assertTrue(start.elapsedNow() < 2.seconds)
        }
    }

    @Test
    fun `a waiting receive wakes when another coroutine publishes`() = runBlocking {
        freshQueue("g" to "t").use { q ->
            val got = async { q.receive("g", max = 5, wait = 10.seconds) }
            delay(100.milliseconds)
            val start = TimeSource.Monotonic.markNow()
            q.publish("t", "wake up")
            assertEquals(listOf("wake up"), got.await().map { it.text() })
            assertTrue(start.elapsedNow() < 2.seconds)
        }
    }

    @Test
    fun `consume is a Flow of deliveries`() = runBlocking {
        freshQueue("g" to "t").use { q ->
            q.publishBatch((1..5).map { Message("t", "m$it") })
            val texts = withTimeout(10.seconds) {
                q.consume("g", max = 2, wait = 200.milliseconds).take(5).map { d -> d.ack(); d.text() }.toList()
            }
            assertEquals((1..5).map { "m$it" }, texts)
            assertEquals(0L, q.stats().groups.getValue("g").inflight)
        }
    }

    @Test
    fun `a manual clock drives leases, retries, delays and retention`(): Unit = runBlocking {
        val clock = ManualClock(1_700_000_000_000)
        Queue.open(tempDb().toString(), testClock = clock).use { q ->
            assertEquals(Instant.ofEpochMilli(1_700_000_000_000), q.now)
            // Two retries: the expired lease below uses up the first (it counts as an attempt).
            q.subscribe("g", "t", lease = 30.seconds, retry = RetryPolicy.fixed(listOf(1.minutes, 1.minutes)))
            val id = q.publish("t", "x")
            val first = q.receive("g").single()
            assertTrue(q.receive("g").isEmpty())
            clock.advance(31.seconds) // the lease expires: the message comes back
            val second = q.receive("g").single()
            assertEquals(2, second.attempt)
            assertThrows<FerrymqException.LeaseLost> { runBlocking { first.ack() } }
            second.nack("later")
            assertTrue(q.receive("g").isEmpty())
            clock.advance(1.minutes) // the retry delay passes
            q.receive("g").single().ack()
            q.publish("t", "in an hour", PublishOptions(delay = 60.minutes))
            assertTrue(q.receive("g").isEmpty())
            clock.advance(61.minutes)
            q.receive("g").single().ack()
            clock.advance(8.days)
            assertEquals(1L, q.purgeAcked()) // the newest message is always kept (ids are never reused)
            assertTrue(assertThrows<FerrymqException.NotFound> { runBlocking { q.message(id) } }.message!!.isNotEmpty())
            clock.setMs(42)
            assertEquals(42L, clock.nowMs)
            assertThrows<FerrymqException.InvalidArgument> { clock.advance((-1).seconds) }
        }
    }
}
