package ferrymq

import ferrymq.ffi.FfiRetryPolicy
import ferrymq.ffi.MessageArgs
import ferrymq.ffi.PublishArgs
import ferrymq.ffi.exponentialDefaults
import java.time.Instant
import kotlin.time.Duration
import kotlin.time.Duration.Companion.seconds
import kotlin.time.DurationUnit

// The records' typealiases (MessageInfo, Stats, ...) are generated, one per record of
// ferrymq::RECORDS, into QueueCalls.kt (build.sh, uniffi-bindgen.rs).

/** What a schedule's ticks missed while nothing fired give: CATCH_UP, ONCE (default) or SKIP. */
typealias Missed = ferrymq.ffi.Missed

/** A checker's answer about a half message: COMMIT, ROLLBACK or UNKNOWN. */
typealias Resolution = ferrymq.ffi.Resolution
/** HALF, COMMITTED or ROLLED_BACK. */
typealias MessageState = ferrymq.ffi.MessageState
/** READY, SCHEDULED, INFLIGHT, ACKED or DEAD. */
typealias DeliveryState = ferrymq.ffi.DeliveryState
/** INFLIGHT, ACKED, NACKED or LEASE_EXPIRED. */
typealias AttemptOutcome = ferrymq.ffi.AttemptOutcome

/** SQLite's `synchronous` in WAL mode: NORMAL survives a process crash, FULL power loss too. */
enum class Synchronous { NORMAL, FULL }

/** Seconds for the boundary; the core refuses negative, infinite and absurd values. */
internal fun Duration.secs(): Double = toDouble(DurationUnit.SECONDS)

internal fun Duration?.secsOrNull(): Double? = this?.secs()

/** A consumer group's retry schedule; past its last retry a delivery goes dead. */
class RetryPolicy internal constructor(internal val ffi: FfiRetryPolicy) {
    /** How many retries before the delivery goes dead. */
    val maxRetries: Int get() = ffi.maxRetries().toInt()

    override fun toString(): String = "RetryPolicy(${ffi.describe()})"

    companion object {
        /** RocketMQ's schedule: 10s 30s 1m 2m ... 1h 2h, 16 retries (the default). */
        fun rocketmq(): RetryPolicy = RetryPolicy(FfiRetryPolicy.rocketmq())

        /** Alipay's notification schedule: 4m 10m 10m 1h 2h 6h 15h. */
        fun alipay(): RetryPolicy = RetryPolicy(FfiRetryPolicy.alipay())

        /** WeChat Pay's schedule: 15s 15s 30s 3m 10m 20m 30m 30m 30m 60m 3h 3h 3h 6h 6h. */
        fun wechatPay(): RetryPolicy = RetryPolicy(FfiRetryPolicy.wechatPay())

        /** The core's defaults for [exponential]: 1 s, doubling up to 1 h, 16 retries, 0.1. */
        private val defaults by lazy { exponentialDefaults() }

        /** `initial * 2^(n-1)`, capped at [maxDelay], spread by [jitter] (0.1 = +/-10%). */
        fun exponential(
            initial: Duration = defaults.initialSecs.seconds,
            maxDelay: Duration = defaults.maxDelaySecs.seconds,
            maxRetries: Int = defaults.maxRetries.toInt(),
            jitter: Double = defaults.jitter,
        ): RetryPolicy = native {
            RetryPolicy(FfiRetryPolicy.exponential(initial.secs(), maxDelay.secs(), maxRetries.toLong(), jitter))
        }

        /** Explicit delays; the number of delays is the number of retries. */
        fun fixed(delays: List<Duration>): RetryPolicy = native {
            RetryPolicy(FfiRetryPolicy.fixed(delays.map { it.secs() }))
        }
    }
}

/**
 * The optional parts of a message, the same for every publish path ([Queue.publish],
 * [Queue.prepare], [Transaction.publish], [Outbox.publishIn], [Message]): the core's
 * `PublishOptions`. [delay] and [deliverAt] (not both) hold the first delivery back.
 */
data class PublishOptions(
    /** One word (no `||`, `*` or spaces) that a group's `tags` filter selects on. */
    val tag: String? = null,
    /** Your business key: [Queue.find] looks messages up by it. */
    val key: String? = null,
    val headers: Map<String, String> = emptyMap(),
    /** Deliveries of one ordering key reach a consumer group in publish order. */
    val orderingKey: String? = null,
    /** A repeat within the queue's idempotency window returns the first message's id and stores nothing. */
    val idempotencyKey: String? = null,
    val delay: Duration? = null,
    val deliverAt: Instant? = null,
    /** 0 (default) to 9: higher is received first within a consumer group. */
    val priority: Int? = null,
) {
    /** Every publish path converts here, so each carries the current span's traceparent. */
    internal fun toFfi() =
        PublishArgs(tag, key, Tracing.inject(headers), orderingKey, idempotencyKey, delay.secsOrNull(), deliverAt, priority)
}

/** How [Queue.schedule] ticks and what each tick's message carries. */
data class ScheduleOptions(
    /** 5 fields, or 6 with seconds first, read in the IANA zone [tz]. */
    val cron: String? = null,
    val every: Duration? = null,
    /** The zone of [cron]; UTC by default. */
    val tz: String? = null,
    /** How many tick times, the first included; forever by default. */
    val repeat: Long? = null,
    /** No tick before this instant. */
    val startAt: Instant? = null,
    /** No tick before this long from now. */
    val delay: Duration? = null,
    val tag: String? = null,
    val key: String? = null,
    val headers: Map<String, String> = emptyMap(),
    /** What a tick time that passed while no process received does. */
    val missed: Missed = Missed.ONCE,
) {
    internal fun toFfi() =
        ferrymq.ffi.ScheduleArgs(cron, every.secsOrNull(), tz, repeat, startAt, delay.secsOrNull(), tag, key, headers, missed)
}

/** One message of [Queue.publishBatch] and [Transaction.publishBatch]. */
class Message(val topic: String, val payload: ByteArray, val options: PublishOptions = PublishOptions()) {
    constructor(topic: String, payload: String, options: PublishOptions = PublishOptions()) :
        this(topic, payload.encodeToByteArray(), options)

    internal fun toFfi() = MessageArgs(topic, payload, options.toFfi())

    override fun toString(): String = "Message(topic=$topic, ${payload.size} bytes)"
}
