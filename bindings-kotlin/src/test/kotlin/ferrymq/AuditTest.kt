package ferrymq

import kotlinx.coroutines.runBlocking
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.assertThrows
import java.time.Duration
import java.time.Instant

/**
 * The audit trail through the binding: withReason gives a queue on the same open file,
 * and audit() lists what an operator did with the reason, process and user the core
 * recorded (core/tests/audit.rs has the semantics).
 */
class AuditTest {
    @Test
    fun `withReason, pause and audit list the record with its reason, pid and user`() = runBlocking {
        val q = Queue.open(tempDb().toString())
        q.subscribe("g", "t")
        val ops = q.withReason("incident 42")
        ops.pause("g")
        q.resume("g")

        val records = q.audit()
        assertEquals(
            listOf(Triple("pause", "g", "incident 42"), Triple("resume", "g", null)),
            records.map { Triple(it.action, it.target, it.reason) },
        )
        val first = records[0]
        assertEquals(ProcessHandle.current().pid(), first.pid)
        assertTrue(first.user.isNotEmpty() && first.host.isNotEmpty() && first.process.isNotEmpty())
        assertTrue(Duration.between(first.at, Instant.now()).abs() < Duration.ofMinutes(5))
        assertEquals("{\"changed\":true}", first.detail)
        assertEquals(listOf(records[1].id), q.audit(after = first.id, limit = 10).map { it.id })

        // One open queue: closing the handle closes the original.
        ops.close()
        assertThrows<FerrymqException.Closed> { runBlocking { q.stats() } }
        Unit
    }

    @Test
    fun `bad reasons and limits are InvalidArgument`() = runBlocking {
        Queue.open(tempDb().toString()).use { q ->
            for (bad in listOf("", "   ", "a\u0000b", "x".repeat(1001))) {
                assertThrows<FerrymqException.InvalidArgument> { q.withReason(bad) }
            }
            for (limit in listOf(0L, 10_001L)) {
                assertThrows<FerrymqException.InvalidArgument> { runBlocking { q.audit(limit = limit) } }
            }
            assertEquals(emptyList<AuditRecord>(), q.audit())
        }
    }
}
