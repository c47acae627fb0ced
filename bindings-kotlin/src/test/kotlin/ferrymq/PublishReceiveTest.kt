package ferrymq

import kotlinx.coroutines.runBlocking
import org.junit.jupiter.api.Assertions.assertArrayEquals
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertNull
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import java.sql.DriverManager
import java.time.Instant
import kotlin.time.Duration.Companion.milliseconds
import kotlin.time.Duration.Companion.seconds

class PublishReceiveTest {
    @Test
    fun `publish, receive and ack a message with every field`() = runBlocking {
        Queue.open(tempDb().toString()).use { q ->
            q.subscribe("g", "payments", tags = "created || retried")
            val before = Instant.now().minusSeconds(1)
            val id = q.publish(
                "payments",
                byteArrayOf(0, 1, 2, -1),
                PublishOptions(
                    tag = "created",
                    key = "order-42",
                    headers = mapOf("traceparent" to "00-1"),
                    orderingKey = "account-7",
                    idempotencyKey = "order-42/pay",
                ),
            )
            val ds = q.receive("g", max = 10, wait = 1.seconds)
            assertEquals(1, ds.size)
            val d = ds[0]
            assertEquals(id, d.messageId)
            assertEquals("payments", d.topic)
            assertEquals("created", d.tag)
            assertEquals("order-42", d.key)
            assertArrayEquals(byteArrayOf(0, 1, 2, -1), d.payload)
            assertEquals(mapOf("traceparent" to "00-1"), d.headers)
            assertEquals("account-7", d.orderingKey)
            assertEquals(1, d.attempt)
            assertEquals("g", d.consumerGroup)
            assertTrue(d.publishedAt.isAfter(before))
            assertTrue(d.leaseUntil.isAfter(Instant.now()))
            d.ack()
            assertEquals(DeliveryState.ACKED, q.message(id).deliveries.getValue("g").state)
            assertTrue(q.receive("g").isEmpty())
        }
    }

    @Test
    fun `an idempotency key publishes once and a tag filter skips other tags`() = runBlocking {
        freshQueue("g" to "t").use { q ->
            q.subscribe("only-created", "t", tags = "created")
            val a = q.publish("t", "x", PublishOptions(tag = "created", idempotencyKey = "k"))
            val b = q.publish("t", "y", PublishOptions(tag = "created", idempotencyKey = "k"))
            assertEquals(a, b)
            q.publish("t", "z", PublishOptions(tag = "refunded"))
            assertEquals(listOf("x", "z"), q.receive("g", max = 10).map { it.text() })
            assertEquals(listOf("x"), q.receive("only-created", max = 10).map { it.text() })
        }
    }

    @Test
    fun `publishBatch commits all in order`() = runBlocking {
        freshQueue("g" to "t").use { q ->
            val ids = q.publishBatch(listOf(Message("t", "a", PublishOptions(key = "k1")), Message("t", "b".toByteArray(), PublishOptions(tag = "x"))))
            assertEquals(2, ids.size)
            val ds = q.receive("g", max = 10)
            assertEquals(ids, ds.map { it.messageId })
            assertEquals("k1", ds[0].key)
            assertEquals("x", ds[1].tag)
            assertEquals(2L, q.stats().topics.getValue("t").messages)
        }
    }

    @Test
    fun `nack retries after the delay, extend renews the lease`() = runBlocking {
        freshQueue().use { q ->
            q.subscribe("g", "t", retry = RetryPolicy.fixed(listOf(10.milliseconds)), lease = 30.seconds)
            q.publish("t", "x")
            val d = q.receive("g").single()
            val until = d.extend(60.seconds)
            assertTrue(until.isAfter(Instant.now().plusSeconds(50)))
            assertEquals(until, d.leaseUntil)
            d.nack("bank timeout")
            val again = q.receive("g", wait = 2.seconds).single()
            assertEquals(2, again.attempt)
            again.nack("still down")
            val info = q.message(again.messageId).deliveries.getValue("g")
            assertEquals(DeliveryState.DEAD, info.state)
            assertEquals("still down", info.lastError)
            assertEquals(listOf(AttemptOutcome.NACKED, AttemptOutcome.NACKED), info.history.map { it.outcome })
        }
    }

    @Test
    fun `delay and deliverAt hold a message back`() = runBlocking {
        freshQueue("g" to "t").use { q ->
            q.publish("t", "later", PublishOptions(delay = 300.milliseconds))
            q.publish("t", "at", PublishOptions(deliverAt = Instant.now().plusMillis(300)))
            assertTrue(q.receive("g").isEmpty())
            assertEquals(2L, q.stats().groups.getValue("g").scheduled)
            val got = q.receive("g", max = 2, wait = 3.seconds).toMutableList()
            if (got.size < 2) got += q.receive("g", wait = 3.seconds)
            assertEquals(setOf("later", "at"), got.map { it.text() }.toSet())
        }
    }

    @Test
    fun `stats, find and purges`() = runBlocking {
        freshQueue("g" to "t").use { q ->
            val id = q.publish("t", "x", PublishOptions(key = "order-1"))
            val s = q.stats()
            assertEquals(1L, s.groups.getValue("g").ready)
            assertEquals("t", s.groups.getValue("g").topic)
            assertTrue(s.groups.getValue("g").oldestReadyAge != null)
            assertEquals(listOf(id), q.find("t", "order-1").map { it.id })
            assertEquals(MessageState.COMMITTED, q.message(id).state)
            q.receive("g").single().ack()
            assertNull(q.stats().groups.getValue("g").oldestReadyAge)
            assertEquals(0L, q.purgeAcked())
            assertEquals(1, q.find("t", "order-1").size)
        }
    }

    @Test
    fun `topics lists each topic with its messages, ready deliveries and groups`() = runBlocking {
        Queue.open(tempDb().toString()).use { q ->
            assertEquals(emptyList<TopicInfo>(), q.topics())
            q.subscribe("billing", "payments")
            q.subscribe("audit", "payments")
            for (i in 0 until 3) q.publish("payments", "p$i")
            val held = q.receive("billing").single()
            q.publish("logs", "nobody listens")
            assertEquals(
                listOf(
                    TopicInfo("logs", 1, 0, emptyList()),
                    TopicInfo("payments", 3, 5, listOf("audit", "billing")),
                ),
                q.topics(),
            )
            held.ack()
        }
    }

    @Test
    fun `checkFile reports integrity and the marks the file has now`() = runBlocking {
        val db = tempDb()
        Queue.open(db.toString()).use { q ->
            q.publish("t", "x")
            val c = q.checkFile()
            assertEquals(listOf("ok"), c.integrity)
            assertEquals(c.expectedSchemaVersion, c.schemaVersion)
            assertEquals(0x46727279L, c.applicationId)
            assertEquals(0x46727279L, c.expectedApplicationId)
            DriverManager.getConnection("jdbc:sqlite:$db").use { own ->
                own.createStatement().use { it.execute("PRAGMA application_id = 7") }
            }
            val after = q.checkFile()
            assertEquals(listOf("ok") to 7L, after.integrity to after.applicationId)
        }
    }
}
