package ferrymq

import ferrymq.ffi.CheckAnswer
import ferrymq.ffi.FfiChecker
import ferrymq.ffi.FfiConsumer
import ferrymq.ffi.FfiHandler
import ferrymq.ffi.FfiQueue
import ferrymq.ffi.FfiReceiveSlot
import ferrymq.ffi.OpenArgs
import ferrymq.ffi.ReceiveArgs
import ferrymq.ffi.Received
import ferrymq.testing.ManualClock
import kotlinx.coroutines.CoroutineDispatcher
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.flow.Flow
import kotlinx.coroutines.flow.flow
import kotlinx.coroutines.withContext
import java.time.Instant
import kotlin.time.Duration

/** Handles one delivery of a [Worker]: returning acks it, throwing nacks it with the exception's message. */
fun interface Handler {
    fun handle(delivery: Delivery)
}

/** Answers the check-back of a half message; throwing counts as UNKNOWN, with the message kept. */
fun interface Checker {
    fun check(info: MessageInfo): Resolution
}

/**
 * A durable message queue in one SQLite file, shared with other processes and languages.
 *
 * Calls that touch the file are `suspend` functions. The short ones, one write each and
 * never waiting for messages ([publish], [receive] with no `wait`, and [Delivery.ack],
 * [Delivery.nack], [Delivery.extend]), run on the calling thread: switching threads would
 * cost more than the write (typically tens of microseconds). They do block that thread
 * for the write, and for up to `busyTimeout` while another process holds the file's
 * write lock: on a UI thread, call them inside `withContext(Dispatchers.IO)`. The others
 * run on [dispatcher] (`Dispatchers.IO` unless given to [open]); a waiting [receive]
 * holds no thread, and cancelling its coroutine ends the wait at once. [close] (for
 * `use`) blocks briefly while background work stops; later calls throw
 * [FerrymqException.Closed].
 */
class Queue private constructor(ffi: FfiQueue, dispatcher: CoroutineDispatcher) : QueueCalls(ffi, dispatcher), AutoCloseable {
    /** The handle of the hot calls ([Fast]): valid while [ffi] lives, needs no release. */
    private val fast: Long = native { ffi.fastHandle().toLong() }

    companion object {
        /**
         * Opens (creating and migrating if needed) the queue in [path]. Options left null
         * keep the core's defaults. [foreignKeys] is SQLite's `foreign_keys` on the queue's
         * connections, which FOREIGN KEY clauses of business tables obey in
         * [Transaction.execute] (null: the build's default, on). [maxReady] (1 to
         * 1,000,000) makes a publish whose message would go to a consumer group that
         * already has that many waiting (ready, scheduled or retrying; not inflight) fail
         * with [FerrymqException.Full], writing nothing; it is this queue's own limit, not
         * the file's. [key] opens (or creates) an encrypted file; [keyProvider] instead
         * gives the keys to try, newest first, and is asked again when the key stops
         * opening the file (see [KeyProvider]). A key for a plain file, none for an
         * encrypted one, or a wrong one: [FerrymqException.Encryption], the file
         * untouched. [testClock] is for tests only: a clock that moves only when told
         * (see [ManualClock]).
         */
        fun open(
            path: String,
            synchronous: Synchronous = Synchronous.NORMAL,
            busyTimeout: Duration? = null,
            maxPayload: Int? = null,
            idempotencyWindow: Duration? = null,
            checkAfter: Duration? = null,
            checkInterval: Duration? = null,
            checkMax: Int? = null,
            pollInterval: Duration? = null,
            maxSize: Long? = null,
            foreignKeys: Boolean? = null,
            maxReady: Long? = null,
            dispatcher: CoroutineDispatcher = Dispatchers.IO,
            testClock: ManualClock? = null,
            key: Key? = null,
            keyProvider: KeyProvider? = null,
        ): Queue {
            val args = OpenArgs(
                synchronous = synchronous.name.lowercase(),
                busyTimeoutSecs = busyTimeout.secsOrNull(),
                maxPayload = maxPayload?.toLong(),
                idempotencyWindowSecs = idempotencyWindow.secsOrNull(),
                checkAfterSecs = checkAfter.secsOrNull(),
                checkIntervalSecs = checkInterval.secsOrNull(),
                checkMax = checkMax?.toLong(),
                pollIntervalSecs = pollInterval.secsOrNull(),
                maxSize = maxSize,
                foreignKeys = foreignKeys,
                maxReady = maxReady,
                key = key?.ffi,
                keyProvider = keyProvider?.let(::KeyProviderAdapter),
            )
            return Queue(native { FfiQueue.open(path, args, testClock?.ffi) }, dispatcher)
        }
    }

    private fun deliveries(rs: List<Received>) = rs.map { Delivery(it) }

    val path: String get() = ffi.path()

    val isClosed: Boolean get() = ffi.isClosed()

    /** The queue's clock (the test clock when one was given). */
    val now: Instant get() = ffi.now()

    /** Stops background work; later calls throw [FerrymqException.Closed]. Closing twice is fine. */
    override fun close() = native { ffi.closeQueue() }

    /** [close] without blocking the caller's thread. */
    suspend fun shutdown(): Unit = io { ffi.closeQueue() }

    /**
     * Rewrites every page of the encrypted file under [key], in one transaction. Other
     * queues on the file (any process) then need the new key: a [KeyProvider] listing it
     * first lets them follow without an error. On a plain file:
     * [FerrymqException.InvalidArgument] (encrypt a copy with `ferrymq encrypt`).
     */
    suspend fun rekey(key: Key): Unit = io { ffi.rekey(key.ffi) }

    /**
     * Creates consumer group [group] on [topic], or updates its settings. [maxInflight]
     * (1 to 1,000,000) caps the group's deliveries in flight across every process:
     * receives hand out fewer, or none, until one is settled or its lease runs out.
     * Subscribing again without it lifts the cap. [rate] (deliveries per second, more than
     * 0, at most 1,000,000) limits the group across every process with a token bucket of
     * [burst] tokens (1 to 1,000,000; default: rate rounded up): a receive with no token
     * gets fewer or none, and a waiting one wakes when the next token is due. Subscribing
     * again without it lifts the limit.
     */
    suspend fun subscribe(
        group: String,
        topic: String,
        tags: String = "*",
        retry: RetryPolicy? = null,
        lease: Duration? = null,
        maxInflight: Int? = null,
        rate: Double? = null,
        burst: Int? = null,
    ): Unit = io {
        ffi.subscribe(group, topic, tags, retry?.ffi, lease.secsOrNull(), maxInflight?.toLong(), rate, burst?.toLong())
    }




    /**
     * Creates schedule [name] (or replaces the one of that name, its tick count starting
     * over): [payload] to [topic] on every tick of [ScheduleOptions.cron] or
     * [ScheduleOptions.every] (exactly one). Ticks are fired by the processes that receive
     * from the file. Bad input is [FerrymqException.InvalidArgument] and changes nothing.
     */
    suspend fun schedule(name: String, topic: String, payload: ByteArray, options: ScheduleOptions = ScheduleOptions()) {
        io { ffi.schedule(name, topic, payload, options.toFfi()) }
    }

    /** [schedule] with a UTF-8 text payload. */
    suspend fun schedule(name: String, topic: String, payload: String, options: ScheduleOptions = ScheduleOptions()) =
        schedule(name, topic, payload.encodeToByteArray(), options)



    /**
     * A queue on the same open file (closing one closes both), on the same dispatcher,
     * whose operator actions (pause, resume, schedule, unschedule, commitHalf,
     * rollbackHalf, redrive, the purges, vacuum) record [reason] in the audit trail.
     * [FerrymqException.InvalidArgument] for a blank reason, one over 1,000 bytes, or
     * one with NUL.
     */
    fun withReason(reason: String): Queue = Queue(native { ffi.withReason(reason) }, dispatcher)


    /** Publishes one message durably; returns its id (the first one's for a repeated idempotency key). */
    suspend fun publish(
        topic: String,
        payload: ByteArray,
        options: PublishOptions = PublishOptions(),
    ): Long = Fast.publish(this, fast, topic, payload, options.toFfi())

    /** [publish] with a UTF-8 text payload. */
    suspend fun publish(
        topic: String,
        payload: String,
        options: PublishOptions = PublishOptions(),
    ): Long = publish(topic, payload.encodeToByteArray(), options)

    /** Publishes every message in one commit: all or none. */
    suspend fun publishBatch(messages: List<Message>): List<Long> {
        val args = messages.map { it.toFfi() }
        return io { ffi.publishBatch(args) }
    }

    /**
     * Up to [max] deliveries of [group], waiting up to [wait] for the first; empty when
     * nothing came. The lease is the group's unless [lease] is given.
     */
    suspend fun receive(
        group: String,
        max: Int = 1,
        wait: Duration = Duration.ZERO,
        lease: Duration? = null,
    ): List<Delivery> {
        val args = ReceiveArgs(max.toLong(), wait.secs(), lease.secsOrNull())
        // A call that may wait goes through the async export, which holds no thread and
        // ends as soon as the coroutine is cancelled; one that cannot wait is one short
        // write, run on the calling thread. The async export leaves the deliveries in a
        // slot owned here: cancelled after it completed, closing the slot drops them
        // (unsettled) instead of leaking their handles.
        val got = if (wait.isPositive()) {
            FfiReceiveSlot().use { slot ->
                native { ffi.receiveAsync(group, args, slot) }
                slot.take()
            }
        } else {
            Fast.receive(this, fast, group, args)
        }
        return deliveries(got)
    }

    /**
     * Deliveries of [group], forever (until the collector is cancelled), from the core's
     * consumer: each wait is [wait] (null: the core's default) and holds no thread, the
     * lease of the delivery being collected is renewed until the collector asks for the
     * next, and ending the Flow (cancellation, `take`, `first`) puts back what it holds.
     */
    fun consume(
        group: String,
        max: Int = 1,
        wait: Duration? = null,
        lease: Duration? = null,
    ): Flow<Delivery> = flow {
        val c = native { ffi.consumer(group, max.toLong(), wait.secsOrNull(), lease.secsOrNull()) }
        try {
            while (true) {
                val d = next(c)
                emit(d)
                native { c.done(d.raw.toULong()) }
            }
        } finally {
            c.use { it.end() }
        }
    }

    /** The consumer's next delivery: one ready now, claimed here, or one awaited. */
    private suspend fun next(c: FfiConsumer): Delivery {
        while (true) {
            native { c.nextNow() }?.let { return Delivery(it) }
            FfiReceiveSlot().use { slot ->
                native { c.nextAsync(slot) }
                slot.take().firstOrNull()?.let { return Delivery(it) }
            }
        }
    }

    /**
     * Runs [handler] for every delivery of [group] on [concurrency] threads until the
     * worker is stopped: returning acks, throwing nacks with the exception's message
     * (the core retries it on the group's schedule). A handler's exception never stops
     * the worker.
     */
    suspend fun worker(
        group: String,
        concurrency: Int = 1,
        max: Int = 1,
        wait: Duration = Duration.ZERO,
        lease: Duration? = null,
        handler: Handler,
    ): Worker {
        val args = ReceiveArgs(max.toLong(), wait.secs(), lease.secsOrNull())
        val adapter = HandlerAdapter(handler)
        return Worker(io { ffi.worker(group, adapter, concurrency.toLong(), args) }, dispatcher)
    }

    /**
     * The transactional outbox: runs [block] in one write transaction on one thread of
     * [dispatcher]; commits when it returns, rolls back (and rethrows) when it throws.
     * The caller's current OpenTelemetry span is current in [block] too.
     */
    suspend fun <T> transaction(block: (Transaction) -> T): T = withContext(dispatcher + Tracing.currentContext()) {
        val tx = Transaction(native { ffi.begin() })
        val value = try {
            block(tx)
        } catch (e: Throwable) {
            if (tx.isOpen) {
                try {
                    tx.rollback()
                } catch (r: Throwable) {
                    e.addSuppressed(r)
                }
            }
            throw e
        }
        tx.commit()
        value
    }

    /** Stores a half message: invisible to every group until committed. */
    suspend fun prepare(
        topic: String,
        payload: ByteArray,
        options: PublishOptions = PublishOptions(),
    ): HalfMessage = HalfMessage(io { ffi.prepare(topic, payload, options.toFfi()) }, dispatcher)



    /** Registers the check-back for [topic]'s half messages (replacing an earlier one). */
    fun setChecker(topic: String, checker: Checker): Unit = native { ffi.setChecker(topic, CheckerAdapter(checker)) }

    /** Unregisters the topic's checker; false if there was none. */
    fun removeChecker(topic: String): Boolean = native { ffi.removeChecker(topic) }





    /** Deletes dead letters (all, or those dead for at least [olderThan]); returns how many. */
    suspend fun purgeDeadLetters(group: String, olderThan: Duration? = null): Long =
        io { ffi.purgeDeadLetters(group, olderThan.secsOrNull()) }





    /** Deletes messages acked by every group at least [olderThan] ago; returns how many. */
    suspend fun purgeAcked(olderThan: Duration? = null): Long = io { ffi.purgeAcked(olderThan.secsOrNull()) }


    override fun toString(): String = "Queue($path)"
}

/** The text a failed callback reports: the exception's message, or its class name. */
private fun Throwable.reason(): String = message?.takeIf { it.isNotEmpty() } ?: this::class.java.name

private class HandlerAdapter(private val handler: Handler) : FfiHandler {
    override fun handle(delivery: Received): String? =
        try {
            val d = Delivery(delivery)
            Tracing.inSpan(d) { handler.handle(d) }
            null
        } catch (e: Throwable) {
            e.reason()
        }
}

private class CheckerAdapter(private val checker: Checker) : FfiChecker {
    override fun check(info: MessageInfo): CheckAnswer =
        try {
            CheckAnswer.Resolved(checker.check(info))
        } catch (e: Throwable) {
            CheckAnswer.Failed(e.reason())
        }
}
