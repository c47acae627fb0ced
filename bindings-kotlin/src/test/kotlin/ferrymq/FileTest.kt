package ferrymq

import ferrymq.testing.ManualClock
import kotlinx.coroutines.runBlocking
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.assertThrows
import java.nio.file.Files
import kotlin.time.Duration
import kotlin.time.Duration.Companion.seconds

/** Open options that reach SQLite (foreignKeys) and vacuum: straight through to the core. */
class FileTest {
    private suspend fun Queue.orderOfUnknownCustomer() {
        transaction { tx ->
            tx.execute("CREATE TABLE IF NOT EXISTS customers(id INTEGER PRIMARY KEY)")
            tx.execute("CREATE TABLE IF NOT EXISTS orders(id INTEGER PRIMARY KEY, customer INTEGER NOT NULL REFERENCES customers(id))")
        }
        transaction { tx -> tx.execute("INSERT INTO orders VALUES (1, 99)") }
    }

    @Test
    fun `foreignKeys on and null enforce FOREIGN KEY clauses in execute, off does not`() = runBlocking {
        for ((setting, enforced) in listOf(true to true, false to false, null to true)) {
            Queue.open(tempDb().toString(), foreignKeys = setting).use { q ->
                if (enforced) {
                    val e = assertThrows<FerrymqException.InvalidArgument> { runBlocking { q.orderOfUnknownCustomer() } }
                    assertTrue(e.message!!.contains("FOREIGN KEY"), e.message)
                } else {
                    q.orderOfUnknownCustomer()
                }
            }
        }
    }

    @Test
    fun `vacuum frees the pages a purge left and the file shrinks`() = runBlocking {
        val db = tempDb()
        val clock = ManualClock(1_700_000_000_000)
        Queue.open(db.toString(), testClock = clock).use { q ->
            q.subscribe("g", "t")
            q.publishBatch(List(50) { Message("t", ByteArray(100_000)) })
            while (true) {
                val ds = q.receive("g", max = 100)
                if (ds.isEmpty()) break
                ds.forEach { it.ack() }
            }
            clock.advance(1.seconds)
            assertEquals(49L, q.purgeAcked(Duration.ZERO))
            val before = Files.size(db)
            assertEquals(5L, q.vacuum(pages = 5))
            assertTrue(q.vacuum() > 1000)
            assertTrue(Files.size(db) < before - 4_000_000, "$before -> ${Files.size(db)}")
            assertEquals(0L, q.vacuum())
            assertThrows<FerrymqException.InvalidArgument> { runBlocking { q.vacuum(pages = 0) } }
        }
        Unit
    }
}
