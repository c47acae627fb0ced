package ferrymq

import ferrymq.ffi.FfiException
import ferrymq.ffi.InternalException

/**
 * Every ferrymq error: one subclass per error kind of the core, matched by kind (never by
 * text). The message is the core's, naming the problem.
 */
sealed class FerrymqException(message: String, cause: Throwable? = null) : Exception(message, cause) {
    /** Bad input; nothing was changed. */
    class InvalidArgument(message: String) : FerrymqException(message)

    /** No such consumer group, message or dead letter. */
    class NotFound(message: String) : FerrymqException(message)

    /** The delivery's lease was taken over (acked, nacked, or expired and claimed again). */
    class LeaseLost(message: String) : FerrymqException(message)

    /** The queue was closed (or opened in a parent process before fork). */
    class Closed(message: String) : FerrymqException(message)

    /** The file stayed locked past `busyTimeout`. */
    class Busy(message: String) : FerrymqException(message)

    /** I/O error, disk full, corrupt, foreign or newer file. */
    class Storage(message: String, cause: Throwable? = null) : FerrymqException(message, cause)

    /** A callback you supplied failed. */
    class Callback(message: String) : FerrymqException(message)
}

internal fun FfiException.toFerrymq(): FerrymqException = when (this) {
    is FfiException.InvalidArgument -> FerrymqException.InvalidArgument(reason)
    is FfiException.NotFound -> FerrymqException.NotFound(reason)
    is FfiException.LeaseLost -> FerrymqException.LeaseLost(reason)
    is FfiException.Closed -> FerrymqException.Closed(reason)
    is FfiException.Busy -> FerrymqException.Busy(reason)
    is FfiException.Storage -> FerrymqException.Storage(reason)
    is FfiException.Callback -> FerrymqException.Callback(reason)
}

/**
 * Runs one call of the generated layer and maps its error. A Rust panic (a bug: the core
 * returns typed errors for every bad input) arrives as uniffi's InternalException and is
 * reported as a Storage error rather than an untyped exception.
 */
internal inline fun <T> native(block: () -> T): T =
    try {
        block()
    } catch (e: FfiException) {
        throw e.toFerrymq()
    } catch (e: InternalException) {
        throw FerrymqException.Storage("internal error in ferrymq (please report): ${e.message}", e)
    }

internal fun invalid(message: String): Nothing = throw FerrymqException.InvalidArgument("invalid argument: $message")
