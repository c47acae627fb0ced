package ferrymq.testing

import ferrymq.ffi.FfiManualClock
import ferrymq.native
import kotlin.time.Duration
import kotlin.time.DurationUnit

/**
 * For tests only: a queue clock that moves only when told, so a test can step through a
 * retry schedule or lease expiry without sleeping. Pass it as `Queue.open(path,
 * testClock = clock)`; a queue never uses it otherwise. It schedules (leases, retries,
 * delays, checks); how long `receive` waits is still real time.
 */
class ManualClock(startMs: Long) {
    internal val ffi = FfiManualClock(startMs)

    /** Milliseconds since the Unix epoch. */
    val nowMs: Long get() = ffi.nowMs()

    fun advance(by: Duration) {
        native { ffi.advance(by.toDouble(DurationUnit.SECONDS)) }
    }

    fun setMs(ms: Long) = ffi.setMs(ms)
}
