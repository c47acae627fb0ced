package ferrymq

import ferrymq.testing.ManualClock
import kotlinx.coroutines.runBlocking
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertFalse
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.assertThrows
import java.io.File
import java.sql.DriverManager
import java.nio.file.Path
import java.util.concurrent.TimeUnit
import kotlin.random.Random
import kotlin.time.Duration
import kotlin.time.Duration.Companion.days
import kotlin.time.Duration.Companion.microseconds
import kotlin.time.Duration.Companion.milliseconds
import kotlin.time.Duration.Companion.seconds

/**
 * A worker process of the kill test: takes deliveries and, in one transaction per
 * delivery, inserts the business row only when the inbox sees the key for the first
 * time, then acks.
 */
object InboxWorkerMain {
    @JvmStatic
    fun main(args: Array<String>) = runBlocking {
        val q = Queue.open(args[0])
        while (true) {
            for (d in q.receive("g", max = 8, wait = 500.milliseconds)) {
                try {
                    q.transaction { tx ->
                        if (tx.inbox(d.key!!)) tx.execute("INSERT INTO paid (notify_id) VALUES (?)", d.key)
                        tx.ack(d)
                    }
                } catch (e: FerrymqException.LeaseLost) {
                    // someone else holds it now: their transaction decides
                }
            }
        }
    }
}

/**
 * The inbox (`tx.inbox(key, window)`), and the done-when: 10,000 duplicate
 * deliveries of 1,000 keys, consumed by worker JVMs killed with SIGKILL at random, give
 * exactly 1,000 business rows. FERRYMQ_INBOX_KILLS sets how many kills (default 12).
 */
class InboxTest {
    private suspend fun Queue.see(key: String, window: Duration? = null): Boolean =
        transaction { tx -> tx.inbox(key, window) }

    @Test
    fun `a key is new once per window, and only if its transaction commits`() = runBlocking {
        val clock = ManualClock(1_700_000_000_000)
        Queue.open(tempDb().toString(), testClock = clock).use { q ->
            assertTrue(q.see("alipay:1"))
            assertFalse(q.see("alipay:1"))
            assertThrows<IllegalStateException> {
                runBlocking {
                    q.transaction { tx ->
                        assertTrue(tx.inbox("alipay:2"))
                        check(false) { "the business write failed" }
                    }
                }
            }
            assertTrue(q.see("alipay:2"))
            assertTrue(q.see("w", 10.seconds))
            clock.advance(9999.milliseconds)
            assertFalse(q.see("w", 10.seconds))
            clock.advance(1.milliseconds)
            assertTrue(q.see("w", 10.seconds))
            assertTrue(q.see("d"))
            clock.advance(7.days - 1.milliseconds)
            assertFalse(q.see("d"))
            clock.advance(1.milliseconds)
            assertTrue(q.see("d"))
        }
    }

    @Test
    fun `bad input is InvalidArgument and changes nothing`() = runBlocking {
        Queue.open(tempDb().toString()).use { q ->
            val cases = listOf<Pair<String, Duration?>>(
                "" to null,
                "x".repeat(1025) to null,
                "a\u0000b" to null,
                "k" to Duration.ZERO,
                "k" to 500.microseconds,
                "k" to (-1).seconds,
            )
            q.transaction { tx ->
                for ((key, window) in cases) {
                    assertThrows<FerrymqException.InvalidArgument>("$key $window") { tx.inbox(key, window) }
                }
                assertEquals(listOf(listOf(0L)), tx.query("SELECT count(*) FROM ferrymq_inbox"))
            }
        }
    }

    @Test
    fun `inboxIn answers on the caller's JDBC connection, in its transaction`() = runBlocking {
        val clock = ManualClock(1_700_000_000_000)
        val db = tempDb()
        Queue.open(db.toString(), testClock = clock).use { q ->
            assertTrue(q.see("seen-by-tx"))
            DriverManager.getConnection("jdbc:sqlite:$db").use { c ->
                c.autoCommit = false
                c.createStatement().use { it.executeUpdate("CREATE TABLE paid (notify_id TEXT NOT NULL)") }
                c.commit()
                fun pay() = c.createStatement().use { it.executeUpdate("INSERT INTO paid VALUES ('n1')") }
                // Rolled back after the inbox said "new": the key is not seen.
                assertTrue(Outbox.inboxIn(c, "n1", queue = q))
                pay()
                c.rollback()
                for (expected in listOf(true, false, false)) {
                    val new = Outbox.inboxIn(c, "n1", window = 60.seconds, queue = q)
                    assertEquals(expected, new)
                    if (new) pay()
                    c.commit()
                }
                assertFalse(Outbox.inboxIn(c, "seen-by-tx", queue = q))
                c.commit()
                clock.advance(60.seconds)
                assertTrue(Outbox.inboxIn(c, "n1", queue = q))
                assertThrows<FerrymqException.InvalidArgument> { Outbox.inboxIn(c, "", queue = q) }
                assertThrows<FerrymqException.InvalidArgument> { Outbox.inboxIn(c, "k", Duration.ZERO, q) }
                c.commit()
                c.autoCommit = true
                val e = assertThrows<FerrymqException.InvalidArgument> { Outbox.inboxIn(c, "k", queue = q) }
                assertTrue(e.message!!.contains("no transaction"), e.message)
                val paid = c.createStatement().use { st -> st.executeQuery("SELECT count(*) FROM paid").use { it.next(); it.getLong(1) } }
                assertEquals(1L, paid)
            }
            assertFalse(q.see("n1"))
        }
    }

    private fun key(k: Int) = "notify-" + k.toString().padStart(4, '0')

    /**
     * Publishes 1,000 keys 10 times each in random order, consumes them with three worker
     * JVMs while killing one at random every 20-300 ms (at most [killsLeft] times), checks
     * the business rows; returns how many kills it made.
     */
    private fun round(db: Path, rng: Random, killsLeft: Int): Int = runBlocking {
        val copies = (0 until KEYS).flatMap { k -> List(COPIES) { key(k) } }.shuffled(rng)
        Queue.open(db.toString()).use { q ->
            // A short lease brings a killed worker's deliveries back quickly; a message
            // killed often must not go dead, hence the generous retry count.
            q.subscribe("g", "notify", lease = 1.seconds, retry = RetryPolicy.fixed(List(1000) { Duration.ZERO }))
            q.transaction { tx -> tx.execute("CREATE TABLE paid (id INTEGER PRIMARY KEY, notify_id TEXT NOT NULL)") }
            for (chunk in copies.chunked(1000)) q.publishBatch(chunk.map { Message("notify", "paid".encodeToByteArray(), PublishOptions(key = it)) })
            val java = File(System.getProperty("java.home"), "bin/java").path
            val classpath = System.getProperty("java.class.path")
            fun start(): Process = ProcessBuilder(java, "-cp", classpath, InboxWorkerMain::class.java.name, db.toString())
                .inheritIO()
                .start()
            val workers = MutableList(3) { start() }
            var kills = 0
            val deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(300)
            try {
                while (true) {
                    val g = q.stats().groups.getValue("g")
                    check(System.nanoTime() < deadline) { "not drained after $kills kills: $g" }
                    if (g.ready + g.inflight + g.retrying + g.scheduled == 0L) break
                    Thread.sleep(rng.nextLong(20, 300))
                    if (kills < killsLeft) {
                        val i = rng.nextInt(workers.size)
                        workers[i].destroyForcibly().waitFor()
                        kills++
                        workers[i] = start()
                    }
                    for (w in workers) check(w.isAlive) { "a worker exited on its own: ${w.exitValue()}" }
                }
            } finally {
                for (w in workers) w.destroyForcibly().waitFor()
            }
            assertEquals(0L, q.stats().groups.getValue("g").dead)
            val rows = q.transaction { tx -> tx.query("SELECT notify_id FROM paid ORDER BY notify_id").map { it[0] } }
            val seen = q.transaction { tx -> tx.query("SELECT count(*) FROM ferrymq_inbox") }
            assertEquals(KEYS, rows.size, "${rows.size} business rows for $KEYS keys after $kills kills")
            assertEquals((0 until KEYS).map(::key), rows)
            assertEquals(listOf(listOf(KEYS.toLong())), seen)
            kills
        }
    }

    @Test
    fun `10,000 duplicate deliveries of 1,000 keys across SIGKILLs give 1,000 business rows`() {
        // Rounds of 10,000 deliveries on fresh files until the wanted number of kills is made.
        val wanted = System.getenv("FERRYMQ_INBOX_KILLS")?.toInt() ?: 12
        val rng = Random(17)
        var kills = 0
        var rounds = 0
        while (kills < wanted) {
            kills += round(tempDb("round-$rounds.db"), rng, wanted - kills)
            rounds++
        }
        println("inbox: $rounds rounds of ${KEYS * COPIES} deliveries, $kills SIGKILLs, $KEYS rows each")
    }

    private companion object {
        const val KEYS = 1000
        const val COPIES = 10
    }
}
