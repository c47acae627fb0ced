package ferrymq

import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Test
import java.util.concurrent.TimeUnit
import kotlin.time.Duration.Companion.milliseconds
import kotlin.time.Duration.Companion.seconds

/**
 * A real Python process (FERRYMQ_PYTHON, with the ferrymq wheel) publishes to the file
 * while this JVM consumes. Without FERRYMQ_PYTHON the test fails: it is never skipped.
 */
class CrossLanguageTest {
    private val producer = """
import sys, ferrymq
db, n = sys.argv[1], int(sys.argv[2])
with ferrymq.Queue(db) as q:
    for i in range(n):
        q.publish("orders", f"order-{i}".encode(), tag="created", key=f"order-{i}",
                  headers={"from": "python"}, ordering_key="account-7")
print("published", n, flush=True)
"""

    @Test
    fun `a JVM consumer receives what a Python producer published to the same file`() = runBlocking {
        val python = python()
        val db = tempDb().toString()
        val n = 25
        Queue.open(db).use { q ->
            q.subscribe("jvm-side", "orders", tags = "created")
            val proc = ProcessBuilder(python, "-c", producer, db, n.toString())
                .redirectErrorStream(true)
                .start()
            val got = mutableListOf<Delivery>()
            withTimeout(60.seconds) {
                while (got.size < n) {
                    for (d in q.receive("jvm-side", max = 10, wait = 200.milliseconds)) {
                        d.ack()
                        got += d
                    }
                }
            }
            check(proc.waitFor(60, TimeUnit.SECONDS)) { "the Python producer did not finish" }
            val out = proc.inputStream.bufferedReader().readText()
            assertEquals(0, proc.exitValue(), out)
            assertEquals("published $n", out.trim())
            // Ordered by the ordering key, every field as Python set it.
            assertEquals((0 until n).map { "order-$it" }, got.map { it.text() })
            assertEquals((0 until n).map { "order-$it" }, got.map { it.key })
            got.forEach {
                assertEquals("created", it.tag)
                assertEquals(mapOf("from" to "python"), it.headers)
                assertEquals("account-7", it.orderingKey)
            }
            assertEquals(0L, q.stats().groups.getValue("jvm-side").ready)
        }
    }
}
