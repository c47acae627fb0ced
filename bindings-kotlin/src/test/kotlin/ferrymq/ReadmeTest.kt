package ferrymq

import kotlinx.coroutines.runBlocking
import org.junit.jupiter.api.Assertions.assertEquals
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
    fun `the README Outbox example publishes with its row and acks with its update`(): Unit = runBlocking {
        // The queue in this JVM, beside sqlite-jdbc on the same file.
        val path = tempDb("shop.db").toString()
        Queue.open(path).use { q ->
            q.subscribe("payment-center", "payments")
            java.sql.DriverManager.getConnection("jdbc:sqlite:$path").use { c ->
                c.createStatement().use { it.executeUpdate("CREATE TABLE orders(id INTEGER PRIMARY KEY, amount INTEGER, paid INTEGER DEFAULT 0)") }
            }
            val id = placeOrder(path)
            val d = q.receive("payment-center").single()
            assertEquals(id, d.messageId)
            markPaid(path, q, d)
            assertEquals(DeliveryState.ACKED, q.message(id).deliveries.getValue("payment-center").state)
            assertEquals(listOf(listOf(1L)), q.transaction { tx -> tx.query("SELECT paid FROM orders WHERE id = 42") })
        }
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
