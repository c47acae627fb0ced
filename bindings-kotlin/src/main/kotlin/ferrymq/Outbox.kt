package ferrymq

import ferrymq.ffi.sqlCheckAlone
import ferrymq.ffi.sqlHostError
import ferrymq.ffi.sqlNoTransaction
import ferrymq.ffi.sqlPublish
import ferrymq.ffi.sqlPublishRow
import ferrymq.ffi.sqlPublishedId
import java.sql.Connection
import java.sql.PreparedStatement
import java.sql.SQLException
import java.sql.Types
import java.time.Instant
import kotlin.time.Duration

/**
 * Publishing on your own JDBC connection to the queue's file (sqlite-jdbc, or Exposed /
 * jOOQ on it), inside the transaction that writes your rows: the message commits and
 * rolls back with them. The file must have been opened once by [Queue.open] (which
 * creates or migrates its schema), in any process.
 *
 * [publishIn] runs ferrymq's SQL (an INSERT into the view `ferrymq_publish`, whose
 * trigger does what [Queue.publish] does) with `java.sql` only; the driver is yours.
 * The connection must have `autoCommit` off: otherwise it throws
 * [FerrymqException.InvalidArgument] and runs nothing. Errors are [FerrymqException]s of
 * the same kinds as [Queue.publish], with the driver's [SQLException] as cause when it
 * raised one; a failed call changes nothing and leaves your transaction open.
 *
 * One process, one SQLite per file: your driver carries its own copy of SQLite and
 * ferrymq another, and SQLite's locks do not work between two copies in one process
 * (writes of one go through while the other holds the write lock; closing a connection
 * in one drops the locks of the other). So use [publishIn] in a process that has no
 * [Queue] open on the same file (a JVM service that only produces, its consumers in other
 * processes); [publishIn] refuses a file that a [Queue] of this process holds. For the
 * same reason there is no `ackIn`: a [Delivery] always comes from such a queue. A process
 * that consumes acks with [Transaction.ack] inside [Queue.transaction], which runs your
 * SQL on ferrymq's connection.
 */
object Outbox {
    private val publishSql: String by lazy { sqlPublish() }
    private val publishedIdSql: String by lazy { sqlPublishedId() }

    /**
     * Publishes one message in [connection]'s open transaction; returns its id (the first
     * one's for a repeated idempotency key). The options are those of [Queue.publish]; the
     * core's default limits apply (`maxPayload` 4 MiB, idempotency window 24 h), and
     * SQLite's clock.
     */
    fun publishIn(
        connection: Connection,
        topic: String,
        payload: ByteArray,
        tag: String? = null,
        key: String? = null,
        headers: Map<String, String> = emptyMap(),
        orderingKey: String? = null,
        idempotencyKey: String? = null,
        delay: Duration? = null,
        deliverAt: Instant? = null,
    ): Long {
        val args = publishArgs(tag, key, headers, orderingKey, idempotencyKey, delay, deliverAt)
        val row = native { sqlPublishRow(topic, payload.size.toLong(), args, null) }
        return jdbc {
            requireTransaction(connection)
            requireAlone(connection)
            connection.prepareStatement(publishSql).use { st ->
                st.setString(1, topic)
                st.setBytes(2, payload)
                st.setText(3, row.tag)
                st.setText(4, row.key)
                st.setText(5, row.headers)
                st.setText(6, row.orderingKey)
                st.setText(7, row.idempotencyKey)
                st.setInteger(8, row.delayMs)
                st.setInteger(9, row.deliverAt)
                st.setLong(10, row.idempotencyWindowMs)
                st.setInteger(11, row.publishedAt)
                st.executeUpdate()
            }
            connection.prepareStatement(publishedIdSql).use { st ->
                st.setString(1, topic)
                st.setText(2, row.idempotencyKey)
                st.executeQuery().use { rs ->
                    check(rs.next()) { "the id query returned no row" }
                    rs.getLong(1)
                }
            }
        }
    }

    /** [publishIn] with a UTF-8 text payload. */
    fun publishIn(
        connection: Connection,
        topic: String,
        payload: String,
        tag: String? = null,
        key: String? = null,
        headers: Map<String, String> = emptyMap(),
        orderingKey: String? = null,
        idempotencyKey: String? = null,
        delay: Duration? = null,
        deliverAt: Instant? = null,
    ): Long = publishIn(
        connection, topic, payload.encodeToByteArray(), tag, key, headers, orderingKey, idempotencyKey, delay,
        deliverAt,
    )

    /** Refuses a connection that would commit each statement on its own, apart from the caller's rows. */
    private fun requireTransaction(connection: Connection) {
        if (connection.autoCommit) throw sqlNoTransaction().toFerrymq()
    }

    /** Refuses a file that ferrymq's SQLite has open in this process (see the class doc). */
    private fun requireAlone(connection: Connection) {
        val file = connection.createStatement().use { st ->
            st.executeQuery("PRAGMA database_list").use { rs ->
                var main = ""
                while (rs.next()) if (rs.getString("name") == "main") main = rs.getString("file") ?: ""
                main
            }
        }
        native { sqlCheckAlone(file) }
    }

    /** Runs JDBC calls; the driver's errors become ferrymq's kinds (core's mapping), the original kept as cause. */
    private inline fun <T> jdbc(block: () -> T): T =
        try {
            block()
        } catch (e: SQLException) {
            throw native { sqlHostError(e.message ?: e.toString(), null) }.toFerrymq(e)
        }
}

private fun PreparedStatement.setText(i: Int, v: String?) =
    if (v == null) setNull(i, Types.VARCHAR) else setString(i, v)

private fun PreparedStatement.setInteger(i: Int, v: Long?) =
    if (v == null) setNull(i, Types.BIGINT) else setLong(i, v)
