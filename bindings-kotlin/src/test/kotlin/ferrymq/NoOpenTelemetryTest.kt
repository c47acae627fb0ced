package ferrymq

import kotlinx.coroutines.runBlocking
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Test
import java.io.File
import java.util.concurrent.TimeUnit
import kotlin.time.Duration.Companion.seconds

/** Publishes, receives and runs withSpan in a JVM whose classpath has no OpenTelemetry. */
object NoOpenTelemetryMain {
    @JvmStatic
    fun main(args: Array<String>) = runBlocking {
        check(runCatching { Class.forName("io.opentelemetry.api.trace.Span") }.isFailure) { "OpenTelemetry is on the classpath" }
        Queue.open(args[0]).use { q ->
            q.subscribe("g", "t")
            q.publish("t", "x")
            val d = q.receive("g", wait = 1.seconds).single()
            val r = d.withSpan { d.ack(); "ran" }
            println("${d.headers} $r")
        }
    }
}

class NoOpenTelemetryTest {
    @Test
    fun `without opentelemetry-api on the classpath nothing changes`() {
        val classpath = System.getProperty("java.class.path").split(File.pathSeparator)
            .filterNot { it.contains("opentelemetry") }
            .joinToString(File.pathSeparator)
        val java = File(System.getProperty("java.home"), "bin/java").path
        val proc = ProcessBuilder(java, "-cp", classpath, NoOpenTelemetryMain::class.java.name, tempDb().toString())
            .redirectErrorStream(true)
            .start()
        check(proc.waitFor(60, TimeUnit.SECONDS)) { "the JVM did not finish" }
        val out = proc.inputStream.bufferedReader().readText()
        assertEquals(0, proc.exitValue(), out)
        assertEquals("{} ran", out.trim())
    }
}
