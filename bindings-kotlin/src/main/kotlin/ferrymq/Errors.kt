package ferrymq

import ferrymq.ffi.FfiException
import ferrymq.ffi.InternalException

/**
 * Every ferrymq error: one subclass per error kind of the core, matched by kind (never by
 * text). The message is the core's, naming the problem.
 */
sealed class FerrymqException(message: String, cause: Throwable? = null) : Exception(message, cause) {
    /** Bad input; nothing was changed. */
    class InvalidArgument(message: String, cause: Throwable? = null) : FerrymqException(message, cause)

    /** No such consumer group, message or dead letter. */
    class NotFound(message: String, cause: Throwable? = null) : FerrymqException(message, cause)

    /** The delivery's lease was taken over (acked, nacked, or expired and claimed again). */
    class LeaseLost(message: String, cause: Throwable? = null) : FerrymqException(message, cause)

    /** The queue was closed (or opened in a parent process before fork). */
    class Closed(message: String, cause: Throwable? = null) : FerrymqException(message, cause)

    /** The file stayed locked past `busyTimeout`. */
    class Busy(message: String, cause: Throwable? = null) : FerrymqException(message, cause)

    /** I/O error, disk full, corrupt, foreign or newer file. */
    class Storage(message: String, cause: Throwable? = null) : FerrymqException(message, cause)

    /** A callback you supplied failed. */
    class Callback(message: String, cause: Throwable? = null) : FerrymqException(message, cause)

    /**
     * A publish (or prepare) would take a consumer group past the queue's `maxReady`
     * waiting messages; nothing was written. Retry once the group has caught up.
     */
    class Full(message: String, cause: Throwable? = null) : FerrymqException(message, cause)

    /**
     * Encryption at rest: a wrong or missing key, a key given for a plain file, a key
     * provider that failed (its message is named), or a rekey that failed.
     */
    class Encryption(message: String, cause: Throwable? = null) : FerrymqException(message, cause)
}

/** [cause]: what the error was made from, when it came from outside ferrymq (a JDBC driver's exception). */
internal fun FfiException.toFerrymq(cause: Throwable? = null): FerrymqException = when (this) {
    is FfiException.InvalidArgument -> FerrymqException.InvalidArgument(reason, cause)
    is FfiException.NotFound -> FerrymqException.NotFound(reason, cause)
    is FfiException.LeaseLost -> FerrymqException.LeaseLost(reason, cause)
    is FfiException.Closed -> FerrymqException.Closed(reason, cause)
    is FfiException.Busy -> FerrymqException.Busy(reason, cause)
    is FfiException.Storage -> FerrymqException.Storage(reason, cause)
    is FfiException.Callback -> FerrymqException.Callback(reason, cause)
    is FfiException.Full -> FerrymqException.Full(reason, cause)
    is FfiException.Encryption -> FerrymqException.Encryption(reason, cause)
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
