package ferrymq

import kotlinx.coroutines.runBlocking
import org.json.JSONArray
import org.json.JSONObject
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertInstanceOf
import org.junit.jupiter.api.Assertions.assertNotNull
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.AfterEach
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.assertThrows
import java.nio.file.Path
import java.sql.Connection
import java.sql.DriverManager
import java.sql.SQLException
import java.time.Instant
import java.util.concurrent.TimeUnit
import kotlin.time.Duration.Companion.seconds

/**
 * [Outbox.publishIn] and [Outbox.ackIn] on a connection of sqlite-jdbc (the application's
 * own driver), in its transaction, on real files: with the queue's side in Python
 * processes, and with a [Queue] of this JVM on the same file (sqlite-jdbc's copy of
 * SQLite beside ferrymq's, which the core's lock isolation makes safe on Linux).
 */
private const val START_MS = 1_700_000_000_000L

class OutboxTest {
    /** A sqlite-jdbc connection to [db] with autoCommit off: its own transaction. */
    private fun jdbc(db: Path, autoCommit: Boolean = false): Connection =
        DriverManager.getConnection("jdbc:sqlite:$db").also { it.autoCommit = autoCommit }

    private fun Connection.run(sql: String, vararg params: Any?): Int = prepareStatement(sql).use { st ->
        params.forEachIndexed { i, p -> st.setObject(i + 1, p) }
        st.executeUpdate()
    }

    private fun Connection.long(sql: String): Long =
        createStatement().use { st -> st.executeQuery(sql).use { rs -> rs.next(); rs.getLong(1) } }

    private val queueSide = """
import sys, json, ferrymq
db, cmd, args = sys.argv[1], sys.argv[2], sys.argv[3:]
with ferrymq.Queue(db) as q:
    if cmd == "subscribe":
        for g in args:
            q.subscribe(g, "orders")
        out = {}
    elif cmd == "publish":
        out = {"id": q.publish("orders", args[0].encode(), idempotency_key=args[1])}
    elif cmd == "drain":
        got = []
        while True:
            ds = q.receive(args[0], max=100)
            if not ds:
                break
            for d in ds:
                got.append({"id": d.message_id, "payload": d.payload.decode(), "tag": d.tag,
                            "key": d.key, "headers": d.headers, "ordering_key": d.ordering_key})
                d.ack()
        out = {"got": got}
    elif cmd == "wait":
        got = []
        while len(got) < int(args[1]):
            for d in q.receive(args[0], max=10, wait=0.2):
                got.append({"id": d.message_id, "key": d.key})
                d.ack()
        out = {"got": got, "extra": len(q.receive(args[0], max=10))}
    elif cmd == "messages":
        t = q.stats().topics.get("orders")
        out = {"messages": t.messages if t else 0}
print(json.dumps(out), flush=True)
"""

    /** Runs [cmd] of [queueSide] in a Python process on [db]; returns its JSON answer. */
    private fun queue(db: Path, cmd: String, vararg args: String): JSONObject {
        val proc = ProcessBuilder(python(), "-c", queueSide, db.toString(), cmd, *args)
            .redirectErrorStream(true)
            .start()
        if (!proc.waitFor(60, TimeUnit.SECONDS)) {
            proc.destroyForcibly()
            error("the Python side did not finish $cmd")
        }
        val out = proc.inputStream.bufferedReader().readText()
        assertEquals(0, proc.exitValue(), out)
        return JSONObject(out.trim().lines().last())
    }

    private fun drain(db: Path, group: String = "payments"): List<JSONObject> =
        queue(db, "drain", group).getJSONArray("got").let { a -> (0 until a.length()).map { a.getJSONObject(it) } }

    private fun messages(db: Path): Long = queue(db, "messages").getLong("messages")

    /** A queue file with group "payments" on "orders", and a business table `orders`. */
    private fun setup(vararg groups: String = arrayOf("payments")): Path {
        val db = tempDb()
        queue(db, "subscribe", *groups)
        jdbc(db).use { c ->
            c.run("CREATE TABLE orders(id INTEGER PRIMARY KEY, amount INTEGER)")
            c.commit()
        }
        return db
    }

    @Test
    fun `a message published in a committed transaction is stored with the caller's row`() {
        val db = setup()
        val id = jdbc(db).use { c ->
            c.run("INSERT INTO orders VALUES (?, ?)", 1, 100)
            val id = Outbox.publishIn(
                c, "orders", "order 1",
                PublishOptions(tag = "paid", key = "order-1", headers = mapOf("trace" to "t1"), orderingKey = "account-7"),
            )
            c.commit()
            assertEquals(1L, c.long("SELECT count(*) FROM orders"))
            id
        }
        val d = drain(db).single()
        assertEquals(id, d.getLong("id"))
        assertEquals("order 1", d.getString("payload"))
        assertEquals("paid", d.getString("tag"))
        assertEquals("order-1", d.getString("key"))
        assertEquals(mapOf("trace" to "t1"), d.getJSONObject("headers").toMap())
        assertEquals("account-7", d.getString("ordering_key"))
    }

    @Test
    fun `a rolled back transaction leaves neither the row nor the message`() {
        val db = setup()
        jdbc(db).use { c ->
            c.run("INSERT INTO orders VALUES (?, ?)", 1, 100)
            Outbox.publishIn(c, "orders", "order 1".toByteArray(), PublishOptions(key = "order-1"))
            c.rollback()
            assertEquals(0L, c.long("SELECT count(*) FROM orders"))
        }
        assertEquals(0L, messages(db))
        assertEquals(emptyList<JSONObject>(), drain(db))
    }

    @Test
    fun `a repeated idempotency key returns the first id and stores one message`() {
        val db = setup()
        jdbc(db).use { c ->
            val first = Outbox.publishIn(c, "orders", "pay", PublishOptions(idempotencyKey = "order-2/pay"))
            val same = Outbox.publishIn(c, "orders", "pay again", PublishOptions(idempotencyKey = "order-2/pay"))
            c.commit()
            val later = Outbox.publishIn(c, "orders", "pay later", PublishOptions(idempotencyKey = "order-2/pay"))
            c.commit()
            assertEquals(listOf(first, first), listOf(same, later))
        }
        // Against a message published by a queue (in another process).
        val byQueue = queue(db, "publish", "by queue", "order-3/pay").getLong("id")
        val byJdbc = jdbc(db).use { c ->
            Outbox.publishIn(c, "orders", "by jdbc", PublishOptions(idempotencyKey = "order-3/pay")).also { c.commit() }
        }
        assertEquals(byQueue, byJdbc)
        assertEquals(listOf("pay", "by queue"), drain(db).map { it.getString("payload") })
    }

    @Test
    fun `bad input gets the error kinds of Queue publish and writes nothing`() = runBlocking {
        val db = setup()
        val now = Instant.now()
        val big = ByteArray(4 * 1024 * 1024 + 1)
        val cases: List<Pair<String, (Connection?) -> Unit>> = listOf(
            "topic" to { c -> publish(c, "or ders") },
            "empty topic" to { c -> publish(c, "") },
            "tag" to { c -> publish(c, "orders", PublishOptions(tag = "a||b")) },
            "key" to { c -> publish(c, "orders", PublishOptions(key = "")) },
            "ordering key" to { c -> publish(c, "orders", PublishOptions(orderingKey = "a\u0000b")) },
            "idempotency key" to { c -> publish(c, "orders", PublishOptions(idempotencyKey = "k".repeat(1025))) },
            "header name" to { c -> publish(c, "orders", PublishOptions(headers = mapOf("" to "v"))) },
            "payload over the default max_payload" to { c -> publish(c, "orders", payload = big) },
            "delay and deliverAt" to { c -> publish(c, "orders", PublishOptions(delay = 1.seconds, deliverAt = now)) },
            "negative delay" to { c -> publish(c, "orders", PublishOptions(delay = (-1).seconds)) },
        )
        jdbc(db).use { c ->
            c.run("INSERT INTO orders VALUES (?, ?)", 1, 100)
            for ((name, case) in cases) {
                val byQueue = runCatching { case(null) }.exceptionOrNull()
                val byJdbc = runCatching { case(c) }.exceptionOrNull()
                assertInstanceOf(FerrymqException.InvalidArgument::class.java, byQueue, name)
                assertNotNull(byJdbc, name)
                assertEquals(byQueue!!::class, byJdbc!!::class, "$name: $byJdbc")
                assertEquals(byQueue.message, byJdbc.message, name)
            }
            // The caller's transaction is intact: its row commits, and nothing else.
            c.commit()
            assertEquals(1L, c.long("SELECT count(*) FROM orders"))
        }
        assertEquals(0L, messages(db))
    }

    /** A queue on another file, for [Queue.publish]'s errors to compare with. */
    private val reference = lazy { Queue.open(tempDb().toString()) }

    @AfterEach
    fun closeReference() {
        if (reference.isInitialized()) reference.value.close()
    }

    /** [Queue.publish] on [reference] when [c] is null, else [Outbox.publishIn] on [c]. */
    private fun publish(
        c: Connection?,
        topic: String,
        options: PublishOptions = PublishOptions(),
        payload: ByteArray = "x".toByteArray(),
    ) {
        if (c == null) {
            runBlocking { reference.value.publish(topic, payload, options) }
        } else {
            Outbox.publishIn(c, topic, payload, options)
        }
    }

    @Test
    fun `a connection in autoCommit mode is refused before anything runs`() {
        val db = setup()
        jdbc(db, autoCommit = true).use { c ->
            val e = assertThrows<FerrymqException.InvalidArgument> { Outbox.publishIn(c, "orders", "x") }
            assertTrue(e.message!!.contains("no transaction"), e.message)
        }
        assertEquals(0L, messages(db))
    }

    @Test
    fun `a SQLite file ferrymq never opened is NotFound`() {
        val db = tempDb("plain.db")
        jdbc(db).use { c ->
            c.run("CREATE TABLE orders(id INTEGER PRIMARY KEY)")
            c.run("INSERT INTO orders VALUES (1)")
            val e = assertThrows<FerrymqException.NotFound> { Outbox.publishIn(c, "orders", "x") }
            assertInstanceOf(SQLException::class.java, e.cause)
            // The caller's transaction is still theirs to commit.
            c.commit()
            assertEquals(1L, c.long("SELECT count(*) FROM orders"))
            assertEquals(0L, c.long("SELECT count(*) FROM sqlite_master WHERE name LIKE 'ferrymq%'"))
        }
    }

    /** A queue of this JVM on a fresh file, on a manual clock, with "payments" on "orders" and a table `orders`. */
    private class Local(lease: kotlin.time.Duration = 30.seconds, maxPayload: Int? = null) : AutoCloseable {
        val clock = ferrymq.testing.ManualClock(START_MS)
        val db: Path = tempDb()
        val q = Queue.open(db.toString(), testClock = clock, maxPayload = maxPayload)

        init {
            runBlocking { q.subscribe("payments", "orders", lease = lease) }
            DriverManager.getConnection("jdbc:sqlite:$db").use { c ->
                c.createStatement().use { it.executeUpdate("CREATE TABLE orders(id INTEGER PRIMARY KEY, amount INTEGER)") }
            }
        }

        fun state(id: Long) = runBlocking { q.message(id).deliveries.getValue("payments").state }

        override fun close() = q.close()
    }

    /** Publishes "order [n]" by the queue and inserts its row; returns the delivery received. */
    private fun Local.order(n: Int): Delivery = runBlocking {
        q.publish("orders", "order $n", PublishOptions(key = "order-$n"))
        jdbc(db).use { c -> c.run("INSERT INTO orders VALUES (?, ?)", n, 100); c.commit() }
        q.receive("payments").single()
    }

    @Test
    fun `ackIn commits with the caller's UPDATE, beside a Queue of this JVM`(): Unit = Local().use { l ->
        val d = l.order(1)
        jdbc(l.db).use { c ->
            c.run("UPDATE orders SET amount = 0 WHERE id = ?", 1)
            Outbox.ackIn(c, d, queue = l.q)
            // Not acked until the caller commits.
            assertEquals(DeliveryState.INFLIGHT, l.state(d.messageId))
            c.commit()
            assertEquals(0L, c.long("SELECT amount FROM orders WHERE id = 1"))
        }
        assertEquals(DeliveryState.ACKED, l.state(d.messageId))
        // The queue's clock is the ack's time.
        val attempt = runBlocking { l.q.message(d.messageId) }.deliveries.getValue("payments").history.single()
        assertEquals(Instant.ofEpochMilli(START_MS), attempt.endedAt)
        runBlocking { assertEquals(emptyList<Delivery>(), l.q.receive("payments")) }
    }

    @Test
    fun `ackIn rolled back leaves the delivery in flight and the row unchanged`(): Unit = Local().use { l ->
        val d = l.order(1)
        jdbc(l.db).use { c ->
            c.run("UPDATE orders SET amount = 0 WHERE id = ?", 1)
            Outbox.ackIn(c, d, queue = l.q)
            c.rollback()
            assertEquals(100L, c.long("SELECT amount FROM orders WHERE id = 1"))
        }
        assertEquals(DeliveryState.INFLIGHT, l.state(d.messageId))
        // Still held: the queue's own ack settles it.
        runBlocking { d.ack() }
        assertEquals(DeliveryState.ACKED, l.state(d.messageId))
    }

    @Test
    fun `ackIn of a lost lease is LeaseLost and the caller rolls back`(): Unit = Local(lease = 1.seconds).use { l ->
        val stale = l.order(1)
        l.clock.advance(2.seconds)
        val again = runBlocking { l.q.receive("payments").single() }
        assertEquals(2, again.attempt)
        jdbc(l.db).use { c ->
            c.run("UPDATE orders SET amount = -1 WHERE id = ?", 1)
            val e = assertThrows<FerrymqException.LeaseLost> { Outbox.ackIn(c, stale, queue = l.q) }
            assertInstanceOf(SQLException::class.java, e.cause)
            c.rollback()
            assertEquals(100L, c.long("SELECT amount FROM orders WHERE id = 1"))
        }
        // The consumer that holds it now acks it, in its own transaction.
        jdbc(l.db).use { c ->
            Outbox.ackIn(c, again, queue = l.q)
            c.commit()
        }
        assertEquals(DeliveryState.ACKED, l.state(again.messageId))
        // And once acked, acking again is LeaseLost too.
        jdbc(l.db).use { c -> assertThrows<FerrymqException.LeaseLost> { Outbox.ackIn(c, again) } }
    }

    @Test
    fun `ackIn on an autoCommit connection is refused before anything runs`(): Unit = Local().use { l ->
        val d = l.order(1)
        jdbc(l.db, autoCommit = true).use { c ->
            val e = assertThrows<FerrymqException.InvalidArgument> { Outbox.ackIn(c, d, queue = l.q) }
            assertTrue(e.message!!.contains("no transaction"), e.message)
        }
        assertEquals(DeliveryState.INFLIGHT, l.state(d.messageId))
    }

    @Test
    fun `with a queue, a connection to another file is refused and nothing is written`(): Unit = Local().use { l ->
        Local().use { other ->
            val d = l.order(1)
            jdbc(other.db).use { c ->
                val e = assertThrows<FerrymqException.InvalidArgument> {
                    Outbox.publishIn(c, "orders", "x", queue = l.q)
                }
                assertTrue(e.message!!.contains("not on the queue's file"), e.message)
                assertThrows<FerrymqException.InvalidArgument> { Outbox.ackIn(c, d, queue = l.q) }
                c.commit()
                assertEquals(0L, c.long("SELECT count(*) FROM ferrymq_messages"))
            }
            assertEquals(DeliveryState.INFLIGHT, l.state(d.messageId))
            jdbc(l.db).use { c ->
                Outbox.ackIn(c, d, queue = l.q)
                c.commit()
            }
            assertEquals(DeliveryState.ACKED, l.state(d.messageId))
        }
    }

    @Test
    fun `publishIn with a queue uses its clock and limits`(): Unit = Local(maxPayload = 16).use { l ->
        val id = jdbc(l.db).use { c ->
            val id = Outbox.publishIn(c, "orders", "order 1", PublishOptions(key = "order-1", delay = 1.seconds), queue = l.q)
            // The queue's max_payload, not the default 4 MiB.
            val e = assertThrows<FerrymqException.InvalidArgument> {
                Outbox.publishIn(c, "orders", "x".repeat(17), queue = l.q)
            }
            assertTrue(e.message!!.contains("16"), e.message)
            c.commit()
            id
        }
        runBlocking {
            // Published at the queue's (manual) clock, and delayed from it.
            assertEquals(Instant.ofEpochMilli(START_MS), l.q.message(id).publishedAt)
            assertEquals(Instant.ofEpochMilli(START_MS + 1000), l.q.message(id).deliverAt)
            assertEquals(emptyList<Delivery>(), l.q.receive("payments"))
            l.clock.advance(1.seconds)
            assertEquals(listOf(id), l.q.receive("payments").map { it.messageId })
        }
    }

    @Test
    fun `a Python consumer in another process receives exactly the committed messages`() {
        val db = setup("python-side")
        val committed = mutableListOf<Pair<Long, String>>()
        jdbc(db).use { c ->
            for (i in 1..12) {
                c.run("INSERT INTO orders VALUES (?, ?)", i, i * 10)
                val id = Outbox.publishIn(c, "orders", "order $i", PublishOptions(key = "order-$i"))
                if (i % 3 == 0) {
                    c.rollback()
                } else {
                    c.commit()
                    committed += id to "order-$i"
                }
            }
            assertEquals(8L, c.long("SELECT count(*) FROM orders"))
        }
        val reply = queue(db, "wait", "python-side", committed.size.toString())
        val got = reply.getJSONArray("got").let { a: JSONArray ->
            (0 until a.length()).map { a.getJSONObject(it).let { m -> m.getLong("id") to m.getString("key") } }
        }
        assertEquals(committed, got)
        // Nothing more: what was rolled back never shows up.
        assertEquals(0, reply.getInt("extra"))
    }

    @Test
    fun `sqlite-jdbc connections opened and closed beside a Queue of this JVM lose nothing`() {
        // 2,000 connections of sqlite-jdbc's own SQLite each publish with publishIn and
        // close (closing descriptors of the file, which used to drop ferrymq's locks)
        // while this JVM's Queue receives and acks on another thread.
        val rounds = 2_000
        val db = tempDb()
        val q = Queue.open(db.toString())
        runBlocking { q.subscribe("g", "t", lease = 30.seconds) }
        jdbc(db).use { c ->
            c.run("CREATE TABLE orders(id INTEGER PRIMARY KEY)")
            c.commit()
        }
        val acked = java.util.concurrent.ConcurrentHashMap<String, Int>()
        val failure = java.util.concurrent.atomic.AtomicReference<Throwable>()
        val consumer = Thread {
            try {
                runBlocking {
                    while (acked.size < rounds && failure.get() == null) {
                        for (d in q.receive("g", max = 8, wait = 0.1.seconds)) {
                            d.ack()
                            acked.merge(d.key!!, 1, Int::plus)
                        }
                    }
                }
            } catch (e: Throwable) {
                failure.set(e)
            }
        }
        consumer.start()
        try {
            for (i in 0 until rounds) {
                if (failure.get() != null) break
                lockedJdbc(db).use { c ->
                    c.run("INSERT INTO orders(id) VALUES (?)", i)
                    Outbox.publishIn(c, "t", "x", PublishOptions(key = "order-$i"))
                    c.commit()
                }
            }
        } catch (e: Throwable) {
            failure.compareAndSet(null, e)
        }
        consumer.join()
        failure.get()?.let { throw AssertionError("a side failed: $it", it) }
        assertEquals((0 until rounds).map { "order-$it" }.toSet(), acked.keys)
        assertEquals(emptyMap<String, Int>(), acked.filterValues { it != 1 }, "acked more than once")
        runBlocking { assertEquals(0L, q.stats().groups.getValue("g").ready) }
        q.close()
        jdbc(db).use { c ->
            c.createStatement().use { st ->
                st.executeQuery("PRAGMA integrity_check").use { rs -> rs.next(); assertEquals("ok", rs.getString(1)) }
            }
            assertEquals(rounds.toLong(), c.long("SELECT count(*) FROM orders"))
        }
    }

    /**
     * A connection that waits for the write lock (sqlite-jdbc's default is 3 s) while the
     * Queue on the same file writes.
     */
    private fun lockedJdbc(db: Path): Connection =
        DriverManager.getConnection("jdbc:sqlite:$db", java.util.Properties().apply { setProperty("busy_timeout", "30000") })
            .also { it.autoCommit = false }
}
