package ferrymq

import ferrymq.testing.ManualClock
import kotlinx.coroutines.runBlocking
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertNull
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.assertThrows
import java.time.Instant
import kotlin.time.Duration.Companion.milliseconds
import kotlin.time.Duration.Companion.minutes
import kotlin.time.Duration.Companion.seconds

/**
 * Schedules through the binding: Duration and Instant in, ScheduleInfo with an Instant and
 * a Duration out, and the exception types. What a tick gives is the core's
 * (tests/scenarios/schedule.json runs here too).
 */
class ScheduleTest {
    private val start = 1_700_000_000_000L

    @Test
    fun `schedule takes Durations and Instants and schedules gives them back`() = runBlocking<Unit> {
        val clock = ManualClock(start)
        Queue.open(tempDb().toString(), testClock = clock).use { q ->
            q.subscribe("g", "t")
            q.schedule("a", "t", "x", ScheduleOptions(every = 1.minutes, startAt = Instant.ofEpochMilli(start + 5_000), repeat = 2,
                missed = Missed.CATCH_UP, headers = mapOf("h" to "v"), tag = "tick"))
            q.schedule("b", "t", "y".encodeToByteArray(), ScheduleOptions(every = 90.seconds, delay = 30.seconds))
            q.schedule("c", "t", "z", ScheduleOptions(cron = "30 8 * * MON-FRI", tz = "Europe/Paris"))
            val (a, b, c) = q.schedules()
            assertEquals(listOf<Any?>("a", 1.minutes, Instant.ofEpochMilli(start + 5_000), 2L, Missed.CATCH_UP, "tick"),
                listOf(a.name, a.every, a.nextAt, a.repeatLeft, a.missed, a.tag))
            assertEquals(Instant.ofEpochMilli(start + 30_000), b.nextAt)
            assertEquals(Missed.ONCE, b.missed)
            assertEquals("Europe/Paris", c.tz)
            assertNull(c.every)
            clock.advance(5_000.milliseconds)
            val d = q.receive("g", max = 10).single()
            assertEquals("a", d.headers["ferrymq-schedule"])
            assertEquals((start + 5_000).toString(), d.headers["ferrymq-tick"])
        }
    }

    @Test
    fun `bad schedules are InvalidArgument and change nothing, unknown names NotFound`() = runBlocking<Unit> {
        Queue.open(tempDb().toString(), testClock = ManualClock(start)).use { q ->
            val bad: List<suspend () -> Unit> = listOf(
                { q.schedule("s", "t", "x", ScheduleOptions(cron = "61 * * * *")) },
                { q.schedule("s", "t", "x", ScheduleOptions(cron = "0 * * * *", tz = "Mars/Olympus")) },
                { q.schedule("s", "t", "x") },
                { q.schedule("s", "t", "x", ScheduleOptions(cron = "* * * * *", every = 1.seconds)) },
                { q.schedule("s", "t", "x", ScheduleOptions(every = 0.seconds)) },
                { q.schedule("s", "t", "x", ScheduleOptions(every = (-1).seconds)) },
                { q.schedule("s", "t", "x", ScheduleOptions(every = 1.seconds, repeat = 0)) },
                { q.schedule("", "t", "x", ScheduleOptions(every = 1.seconds)) },
            )
            for (call in bad) assertThrows<FerrymqException.InvalidArgument> { runBlocking { call() } }
            assertTrue(q.schedules().isEmpty())
            assertThrows<FerrymqException.NotFound> { runBlocking { q.unschedule("nope") } }
        }
    }
}
