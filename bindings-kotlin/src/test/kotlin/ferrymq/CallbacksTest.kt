package ferrymq

import kotlinx.coroutines.delay
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertFalse
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import java.util.Collections
import kotlin.time.Duration.Companion.hours
import kotlin.time.Duration.Companion.milliseconds
import kotlin.time.Duration.Companion.seconds

/** Worker handlers and half-message checkers: Kotlin lambdas called from the core's threads. */
class CallbacksTest {
    @Test
    fun `a worker acks what its handler returns and nacks what it throws, and keeps going`() = runBlocking {
        freshQueue().use { q ->
            q.subscribe("g", "t", retry = RetryPolicy.fixed(listOf(1.hours)))
            val seen = Collections.synchronizedList(mutableListOf<String>())
            val ids = (0 until 6).associateWith { i -> q.publish("t", if (i % 3 == 0) "bad-$i" else "good-$i") }
            val w = q.worker("g", concurrency = 2) { d ->
                seen += d.text()
                if (d.text().startsWith("bad")) throw IllegalArgumentException("boom ${d.text()}")
                if (d.text() == "good-4") throw Error() // no message: the class name is the reason
            }
            assertTrue(w.isRunning)
            withTimeout(20.seconds) { while (seen.size < 6) delay(10.milliseconds) }
            w.stop()
            assertFalse(w.isRunning)
            for ((i, id) in ids) {
                val info = q.message(id).deliveries.getValue("g")
                when {
                    i % 3 == 0 -> {
                        assertEquals(DeliveryState.SCHEDULED, info.state, "message $i")
                        assertEquals(1L, info.attempts.toLong())
                        assertEquals("boom bad-$i", info.lastError)
                        assertEquals(AttemptOutcome.NACKED, info.history.single().outcome)
                    }
                    i == 4 -> assertEquals("java.lang.Error", info.lastError)
                    else -> assertEquals(DeliveryState.ACKED, info.state, "message $i")
                }
            }
            assertEquals(3L, q.stats().groups.getValue("g").retrying)
            w.close() // stopping twice is fine
        }
    }

    @Test
    fun `half messages are invisible until committed, and rolled back ones never come`() = runBlocking {
        freshQueue("g" to "fund").use { q ->
            val h = q.prepare("fund", "buy FUND-A".toByteArray(), PublishOptions(key = "tx-1"))
            val r = q.prepare("fund", "buy FUND-B".toByteArray(), PublishOptions(key = "tx-2"))
            assertTrue(q.receive("g").isEmpty())
            assertEquals(MessageState.HALF, q.message(h.id).state)
            assertEquals(2, q.halfMessages().size)
            h.commit()
            r.rollback()
            assertEquals(listOf("buy FUND-A"), q.receive("g", max = 10).map { it.text() })
            assertEquals(listOf(r.id), q.halfMessages(state = MessageState.ROLLED_BACK).map { it.id })
            assertTrue(q.halfMessages(state = MessageState.HALF).isEmpty())
            val h2 = q.prepare("fund", "buy FUND-C".toByteArray())
            q.commitHalf(h2.id)
            val h3 = q.prepare("fund", "buy FUND-D".toByteArray())
            q.rollbackHalf(h3.id)
            assertEquals(listOf("buy FUND-C"), q.receive("g", max = 10).map { it.text() })
            assertTrue(assertThrowsInvalid { h3.commit() }.message!!.isNotEmpty())
        }
    }

    private fun assertThrowsInvalid(call: suspend () -> Unit): FerrymqException.InvalidArgument =
        org.junit.jupiter.api.assertThrows { runBlocking { call() } }

    @Test
    fun `a checker resolves due half messages, and one that throws counts as unknown`() = runBlocking {
        Queue.open(tempDb().toString(), checkAfter = 0.seconds, checkInterval = 1.hours).use { q ->
            q.subscribe("g", "ok")
            q.setChecker("ok") { info -> if (info.key == "commit-me") Resolution.COMMIT else Resolution.ROLLBACK }
            q.setChecker("flaky") { throw IllegalStateException("bank timeout") }
            val c = q.prepare("ok", "a".toByteArray(), PublishOptions(key = "commit-me"))
            val r = q.prepare("ok", "b".toByteArray(), PublishOptions(key = "drop-me"))
            val f = q.prepare("flaky", "c".toByteArray())
            assertEquals(2L, q.runChecks())
            assertEquals(MessageState.COMMITTED, q.message(c.id).state)
            assertEquals(MessageState.ROLLED_BACK, q.message(r.id).state)
            val flaky = q.message(f.id)
            assertEquals(MessageState.HALF, flaky.state)
            assertEquals(listOf(Resolution.UNKNOWN to "bank timeout"), flaky.checks.map { it.resolution to it.error })
            assertEquals(listOf("a"), q.receive("g", max = 10).map { it.text() })
            assertTrue(q.removeChecker("flaky"))
            assertFalse(q.removeChecker("flaky"))
        }
    }

    @Test
    fun `dead letters are listed, redriven and purged`() = runBlocking {
        freshQueue().use { q ->
            q.subscribe("g", "t", retry = RetryPolicy.fixed(listOf()))
            val ids = listOf(q.publish("t", "a", PublishOptions(key = "k-a")), q.publish("t", "b"))
            for (d in q.receive("g", max = 10)) d.nack("poison ${d.text()}")
            val dead = q.deadLetters("g")
            assertEquals(ids, dead.map { it.messageId })
            assertEquals("poison a", dead[0].lastError)
            assertEquals("k-a", dead[0].key)
            assertEquals(1L, dead[0].attempts.toLong())
            assertEquals(1L, q.redrive("g", ids = listOf(ids[0])))
            assertEquals(listOf("a"), q.receive("g", max = 10).map { it.text() })
            assertEquals(1L, q.purgeDeadLetters("g"))
            assertEquals(0L, q.redrive("g"))
            assertEquals(1L, q.stats().groups.getValue("g").inflight)
        }
    }

    @Test
    fun `retry policies`() {
        assertEquals(16, RetryPolicy.rocketmq().maxRetries)
        assertEquals(7, RetryPolicy.alipay().maxRetries)
        assertEquals(15, RetryPolicy.wechatPay().maxRetries)
        assertEquals(5, RetryPolicy.exponential(maxRetries = 5).maxRetries)
        assertEquals(16, RetryPolicy.exponential().maxRetries, "the core's default")
        assertEquals(2, RetryPolicy.fixed(listOf(1.seconds, 2.seconds)).maxRetries)
    }
}
