package ferrymq

import ferrymq.ffi.FfiTransaction
import ferrymq.ffi.SqlValue
import java.lang.ref.Reference
import kotlin.time.Duration

/**
 * The outbox: one write transaction on the queue's file, given to the block of
 * [Queue.transaction]. Your SQL, publishes and acks commit together when the block
 * returns, and roll back together when it throws. Its calls block the block's thread.
 */
class Transaction internal constructor(private val ffi: FfiTransaction) {
    /**
     * Runs one statement of your SQL with bound parameters (`null`, numbers, booleans,
     * `String`, `ByteArray`); returns the number of rows changed.
     */
    fun execute(sql: String, vararg params: Any?): Long = native { ffi.execute(sql, params.map(::sqlValue)) }

    /** Runs one query; each row is a list of `null`, `Long`, `Double`, `String` or `ByteArray`. */
    fun query(sql: String, vararg params: Any?): List<List<Any?>> = native {
        ffi.query(sql, params.map(::sqlValue)).map { row -> row.map(::kotlinValue) }
    }

    /** Publishes in this transaction: visible only if it commits. */
    fun publish(
        topic: String,
        payload: ByteArray,
        options: PublishOptions = PublishOptions(),
    ): Long = native { ffi.publish(topic, payload, options.toFfi()) }

    /** [publish] with a UTF-8 text payload. */
    fun publish(
        topic: String,
        payload: String,
        options: PublishOptions = PublishOptions(),
    ): Long = publish(topic, payload.encodeToByteArray(), options)

    fun publishBatch(messages: List<Message>): List<Long> = native { ffi.publishBatch(messages.map { it.toFfi() }) }

    /** Acks in this transaction (exactly-once effect): [FerrymqException.LeaseLost] here rolls your writes back too. */
    fun ack(delivery: Delivery): Unit = try {
        native { ffi.ack(delivery.raw.toULong()) }
    } finally {
        Reference.reachabilityFence(delivery)
    }

    fun nack(delivery: Delivery, reason: String = "", delay: Duration? = null): Unit = try {
        native { ffi.nack(delivery.raw.toULong(), reason, delay.secsOrNull()) }
    } finally {
        Reference.reachabilityFence(delivery)
    }

    /**
     * The inbox: `true` the first time [key] is seen within [window] (`null`: a week),
     * `false` for a redelivery. Remembered only if this transaction commits, so "write
     * only when true, then ack" in one transaction applies each key's effect once.
     */
    fun inbox(key: String, window: Duration? = null): Boolean = native { ffi.inbox(key, window.secsOrNull()) }

    internal fun commit() = native { ffi.commit() }

    internal fun rollback() = native { ffi.rollback() }

    internal val isOpen: Boolean get() = ffi.isOpen()
}

private fun sqlValue(v: Any?): SqlValue = when (v) {
    null -> SqlValue.Null
    is Long -> SqlValue.Integer(v)
    is Int -> SqlValue.Integer(v.toLong())
    is Short -> SqlValue.Integer(v.toLong())
    is Byte -> SqlValue.Integer(v.toLong())
    is Boolean -> SqlValue.Integer(if (v) 1 else 0)
    is Double -> SqlValue.Real(v)
    is Float -> SqlValue.Real(v.toDouble())
    is String -> SqlValue.Text(v)
    is ByteArray -> SqlValue.Blob(v)
    else -> invalid("SQL values are null, numbers, booleans, String or ByteArray, not ${v::class.qualifiedName}")
}

private fun kotlinValue(v: SqlValue): Any? = when (v) {
    is SqlValue.Null -> null
    is SqlValue.Integer -> v.value
    is SqlValue.Real -> v.value
    is SqlValue.Text -> v.value
    is SqlValue.Blob -> v.value
}
