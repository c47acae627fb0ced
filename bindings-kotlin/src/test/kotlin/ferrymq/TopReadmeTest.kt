package ferrymq

import kotlinx.coroutines.runBlocking
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Test
import java.nio.file.Files
import java.nio.file.Path

class TopReadmeTest {
    private val repo: Path = Path.of(System.getProperty("ferrymq.repo"))

    @Test
    fun `the top README shows the Kotlin example that this suite runs`() {
        val source = Files.readString(repo.resolve("bindings-kotlin/src/test/kotlin/ferrymq/TopReadmeExample.kt"))
        val example = source.substringAfter("// README-START\n").substringBefore("// README-END")
        val readme = Files.readString(repo.resolve("README.md"))
        val block = readme.substringAfter("```kotlin\n").substringBefore("```")
        assertEquals(example.trim(), block.trim())
    }

    @Test
    fun `the top README Kotlin example runs`() {
        val path = tempDb("bank.db").toString()
        payments(path)
        runBlocking {
            Queue.open(path).use { q ->
                val s = q.stats()
                assertEquals(1L, s.topics.getValue("payments").messages)
                assertEquals(0L, s.groups.getValue("payment-center").ready)
                assertEquals(0L, s.groups.getValue("payment-center").inflight)
            }
        }
    }
}
