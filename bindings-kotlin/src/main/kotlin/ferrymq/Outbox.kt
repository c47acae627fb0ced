package ferrymq

import ferrymq.ffi.SqlValue
import ferrymq.ffi.sqlAckRow
import ferrymq.ffi.sqlCheckFile
import ferrymq.ffi.sqlHostError
import ferrymq.ffi.sqlInboxRow
import ferrymq.ffi.sqlNoTransaction
import ferrymq.ffi.sqlPublishRow
import ferrymq.ffi.sqlStatements
import java.lang.ref.Reference
import java.sql.Connection
import java.sql.PreparedStatement
import java.sql.SQLException
import java.sql.Types
import kotlin.time.Duration

/**
 * Publishing and acking on your own JDBC connection to the queue's file (sqlite-jdbc, or
 * Exposed / jOOQ on it), inside the transaction that writes your rows: the message and
 * the ack commit and roll back with them. The file must have been opened once by
 * [Queue.open] (which creates or migrates its schema), in any process.
 *
 * [publishIn] and [ackIn] run ferrymq's SQL (INSERTs into the views `ferrymq_publish`
 * and `ferrymq_ack`, whose triggers do what [Queue.publish] and [Delivery.ack] do) with
 * `java.sql` only; the driver is yours. The connection must have `autoCommit` off:
 * otherwise they throw [FerrymqException.InvalidArgument] and run nothing. Errors are
 * [FerrymqException]s of the same kinds as [Queue.publish] and [Delivery.ack], with the
 * driver's [SQLException] as cause when it raised one; a failed call changes nothing and
 * leaves your transaction open (roll it back after [FerrymqException.LeaseLost]).
 *
 * Your driver carries its own copy of SQLite and ferrymq another. On Linux they may share
 * the file in one process: ferrymq's copy locks with open file description locks and
 * keeps its descriptors of a live database file, so your connections may open, use and
 * close the file while a [Queue] of this process works on it. On other systems, keep the
 * driver off the queue's file in a process that has a [Queue] open on it.
 */
object Outbox {
    private val statements by lazy { sqlStatements() }

    /**
     * Publishes one message in [connection]'s open transaction; returns its id (the first
     * one's for a repeated idempotency key), with the [options] of every publish.
     * [queue] (any [Queue] on the file) gives its `maxPayload`, idempotency window and
     * clock; without it the core's defaults apply (`maxPayload` 4 MiB, idempotency window
     * 24 h), and SQLite's clock.
     */
    fun publishIn(
        connection: Connection,
        topic: String,
        payload: ByteArray,
        options: PublishOptions = PublishOptions(),
        queue: Queue? = null,
    ): Long {
        val row = native { sqlPublishRow(topic, payload.size.toLong(), options.toFfi(), queue?.ffi) }
        return jdbc(null) {
            requireTransaction(connection)
            requireSameFile(connection, queue)
            connection.prepareStatement(statements.publish).use { st ->
                st.setString(1, topic)
                st.setBytes(2, payload)
                st.bind(3, row)
                st.executeUpdate()
            }
            connection.prepareStatement(statements.publishedId).use { st ->
                st.setString(1, topic)
                st.setText(2, options.idempotencyKey)
                st.executeQuery().use { rs ->
                    check(rs.next()) { "the id query returned no row" }
                    rs.getLong(1)
                }
            }
        }
    }

    /** [publishIn] with a UTF-8 text payload. */
    fun publishIn(connection: Connection, topic: String, payload: String, options: PublishOptions = PublishOptions(), queue: Queue? = null): Long =
        publishIn(connection, topic, payload.encodeToByteArray(), options, queue)

    /**
     * Acks [delivery] in [connection]'s open transaction: the ack holds when that
     * transaction commits. [FerrymqException.LeaseLost] when the delivery is no longer
     * held (acked or nacked already, or its lease expired and it was received again):
     * roll your transaction back then, as another consumer has the message. [queue] gives
     * the queue's clock for the ack's time; without it, SQLite's clock.
     */
    fun ackIn(connection: Connection, delivery: Delivery, queue: Queue? = null) {
        try {
            jdbc(delivery) {
                requireTransaction(connection)
                requireSameFile(connection, queue)
                val row = native { sqlAckRow(delivery.raw.toULong(), queue?.ffi) }
                connection.prepareStatement(statements.ack).use { st ->
                    st.bind(1, row)
                    st.executeUpdate()
                }
            }
        } finally {
            // The handle must outlive the calls that use it (the Cleaner releases it).
            Reference.reachabilityFence(delivery)
        }
    }

    /**
     * The inbox ([Transaction.inbox]) in [connection]'s open transaction: `true` the first
     * time [key] is seen within [window] (`null`: a week), `false` for a redelivery; the
     * key is remembered only if your transaction commits. [queue] gives its clock;
     * without it, SQLite's.
     */
    fun inboxIn(connection: Connection, key: String, window: Duration? = null, queue: Queue? = null): Boolean =
        jdbc(null) {
            val row = native { sqlInboxRow(key, window.secsOrNull(), queue?.ffi) }
            requireTransaction(connection)
            requireSameFile(connection, queue)
            connection.prepareStatement(statements.inbox).use { st ->
                st.bind(1, row)
                st.executeUpdate() == 1
            }
        }

    /** Refuses a connection that would commit each statement on its own, apart from the caller's rows. */
    private fun requireTransaction(connection: Connection) {
        if (connection.autoCommit) throw sqlNoTransaction().toFerrymq()
    }

    /** With a [queue], refuses a connection to another file (its clock and limits would apply there). */
    private fun requireSameFile(connection: Connection, queue: Queue?) {
        if (queue == null) return
        val file = connection.prepareStatement(statements.mainFile).use { st ->
            st.executeQuery().use { rs -> if (rs.next()) rs.getString(1) ?: "" else "" }
        }
        native { sqlCheckFile(queue.ffi, file) }
    }

    /**
     * Runs JDBC calls; the driver's errors become ferrymq's kinds (core's mapping, which
     * needs the [delivery] acked to name a lost lease), the original kept as cause.
     */
    private inline fun <T> jdbc(delivery: Delivery?, block: () -> T): T =
        try {
            block()
        } catch (e: SQLException) {
            throw native { sqlHostError(e.message ?: e.toString(), delivery?.raw?.toULong()) }.toFerrymq(e)
        }
}

private fun PreparedStatement.setText(i: Int, v: String?) =
    if (v == null) setNull(i, Types.VARCHAR) else setString(i, v)

/** Binds core's parameters of a statement ([values]) from parameter [first] on. */
private fun PreparedStatement.bind(first: Int, values: List<SqlValue>) =
    values.forEachIndexed { i, v ->
        when (v) {
            is SqlValue.Null -> setNull(first + i, Types.NULL)
            is SqlValue.Integer -> setLong(first + i, v.value)
            is SqlValue.Real -> setDouble(first + i, v.value)
            is SqlValue.Text -> setString(first + i, v.value)
            is SqlValue.Blob -> setBytes(first + i, v.value)
        }
    }
