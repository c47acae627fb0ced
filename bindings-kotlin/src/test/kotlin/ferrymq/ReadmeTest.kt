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
