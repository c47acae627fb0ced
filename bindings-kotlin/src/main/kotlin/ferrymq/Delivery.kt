package ferrymq

import ferrymq.ffi.FfiHalfMessage
import ferrymq.ffi.FfiWorker
import ferrymq.ffi.Received
import kotlinx.coroutines.CoroutineDispatcher
import kotlinx.coroutines.withContext
import java.time.Instant
import kotlin.time.Duration

/**
 * One attempt to hand one message to one consumer group, under a lease. End it with
 * [ack], or [nack] to retry it on the group's schedule (dead past the last retry).
 *
 * [ack], [nack] and [extend] are one short write each and run on the calling thread
 * (see [Queue] about blocking).
 */
class Delivery internal constructor(private val r: Received) {
    /** The handle of the delivery in the cdylib (an id), released when this object is unreachable. */
    internal val raw: Long = r.handle.toLong()

    init {
        Fast.cleaner.register(this, ReleaseDelivery(raw))
    }

    val messageId: Long get() = r.messageId
    val topic: String get() = r.topic
    val tag: String? get() = r.tag
    val key: String? get() = r.key
    val payload: ByteArray get() = r.payload
    val headers: Map<String, String> get() = r.headers

    /** The ordering key of the message: deliveries with one key reach a group in order. */
    val orderingKey: String? get() = r.orderingKey

    /** 0 to 9: higher is received first within the consumer group. */
    val priority: Int get() = r.priority

    /** 1 for the first delivery, 2 for the first retry, ... */
    val attempt: Int get() = r.attempt.toInt()
    val publishedAt: Instant get() = r.publishedAt
    val consumerGroup: String get() = r.consumerGroup

    /**
     * Runs [block] inside this attempt's OpenTelemetry consumer span ("process <topic>",
     * kind CONSUMER, linked to the producer's `traceparent`): `Span.current()` is that span
     * in [block], across suspensions; an exception is recorded on it and rethrown. Without
     * opentelemetry-api on the classpath, just runs [block]. [Queue.worker] runs every
     * handler this way.
     */
    suspend fun <T> withSpan(block: suspend () -> T): T = Tracing.inSpanSuspend(this, block)

    /** When the lease ends unless [extend]ed. */
    val leaseUntil: Instant get() = Fast.leaseUntil(this, raw)

    /** The payload as UTF-8 text. */
    fun text(): String = payload.decodeToString()

    /** Ends the delivery. [FerrymqException.LeaseLost] if another consumer took it over. */
    suspend fun ack(): Unit = Fast.ack(this, raw)

    /** Retries after [delay], or the policy's next delay; dead past the last retry. */
    suspend fun nack(reason: String = "", delay: Duration? = null): Unit =
        Fast.nack(this, raw, reason, delay.secsOrNull())

    /** Renews the lease to [lease] from now; returns the new end of the lease. */
    suspend fun extend(lease: Duration): Instant = Fast.extend(this, raw, lease.secs())

    override fun toString(): String =
        "Delivery(messageId=$messageId, topic=$topic, consumerGroup=$consumerGroup, attempt=$attempt)"
}

/** A prepared (half) message: invisible to every consumer group until [commit]ted. */
class HalfMessage internal constructor(
    private val ffi: FfiHalfMessage,
    private val dispatcher: CoroutineDispatcher,
) {
    val id: Long get() = ffi.id()

    /** Makes the message deliverable; a no-op if already committed. */
    suspend fun commit(): Unit = withContext(dispatcher) { native { ffi.commit() } }

    /** Discards the message (kept for audit). */
    suspend fun rollback(): Unit = withContext(dispatcher) { native { ffi.rollback() } }

    override fun toString(): String = "HalfMessage(id=$id)"
}

/**
 * Threads running a handler for every delivery of a group. [stop] (or [close], for `use`)
 * ends them after the deliveries in hand are settled.
 */
class Worker internal constructor(
    private val ffi: FfiWorker,
    private val dispatcher: CoroutineDispatcher,
) : AutoCloseable {
    val isRunning: Boolean get() = ffi.isRunning()

    /** Stops the threads and suspends until the deliveries in hand are settled. */
    suspend fun stop(): Unit = withContext(dispatcher) { ffi.stop() }

    /** Like [stop], blocking the calling thread. */
    override fun close() = ffi.stop()
}
