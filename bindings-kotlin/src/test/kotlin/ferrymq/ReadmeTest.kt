package ferrymq

import kotlinx.coroutines.runBlocking
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import java.nio.file.Files
import java.nio.file.Path

class ReadmeTest {
    private val here: Path = Path.of(System.getProperty("ferrymq.repo"), "bindings-kotlin")

    @Test
    fun `the README shows the example that this suite runs`() {
        val source = Files.readString(here.resolve("src/test/kotlin/ferrymq/ReadmeExample.kt"))
        val example = source.substringAfter("// README-START\n").substringBefore("// README-END")
        val readme = Files.readString(here.resolve("README.md"))
        val block = readme.substringAfter("```kotlin\n").substringBefore("```")
        assertEquals(example.trim(), block.trim())
    }

    @Test
    fun `the README shows the Outbox example that this suite runs`() {
        val source = Files.readString(here.resolve("src/test/kotlin/ferrymq/OutboxReadmeExample.kt"))
        val example = source.substringAfter("// README-START\n").substringBefore("// README-END")
        val readme = Files.readString(here.resolve("README.md"))
        val block = readme.substringAfter("## Publishing on your own JDBC connection")
            .substringAfter("```kotlin\n").substringBefore("```")
        assertEquals(example.trim(), block.trim())
    }

    @Test
    fun `the README Outbox example publishes with its row`() {
        // The queue's side in a Python process: this JVM must not hold a Queue on the file.
        val path = tempDb("shop.db").toString()
        val setup = "import sys, ferrymq\nwith ferrymq.Queue(sys.argv[1]) as q: q.subscribe('payment-center', 'payments')\nprint('ok')"
        val ready = "import sys, ferrymq\nwith ferrymq.Queue(sys.argv[1]) as q: print(q.stats().groups['payment-center'].ready)"
        assertEquals("ok", runPython(setup, path))
        java.sql.DriverManager.getConnection("jdbc:sqlite:$path").use { c ->
            c.createStatement().use { it.executeUpdate("CREATE TABLE orders(id INTEGER PRIMARY KEY, amount INTEGER)") }
        }
        assertTrue(placeOrder(path) > 0)
        assertEquals("1", runPython(ready, path))
    }

    private fun runPython(code: String, vararg args: String): String {
        val p = ProcessBuilder(python(), "-c", code, *args).redirectErrorStream(true).start()
        val out = p.inputStream.bufferedReader().readText()
        assertEquals(0, p.waitFor(), out)
        return out.trim()
    }

    @Test
    fun `the README example runs`() {
        val path = tempDb("bank.db").toString()
        readmeExample(path)
        runBlocking {
            Queue.open(path).use { q ->
                val s = q.stats()
                assertEquals(2L, s.topics.getValue("payments").messages)
                assertEquals(1L, s.topics.getValue("fund-purchase").messages)
            }
        }
    }
}
