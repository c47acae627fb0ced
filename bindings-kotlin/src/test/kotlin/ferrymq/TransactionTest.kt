package ferrymq

import kotlinx.coroutines.runBlocking
import org.junit.jupiter.api.Assertions.assertArrayEquals
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertFalse
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.assertThrows

class TransactionTest {
    private suspend fun Queue.orders(): List<List<Any?>> =
        transaction { tx -> tx.query("SELECT id, amount, note, blob FROM orders ORDER BY id") }

    private suspend fun Queue.createOrders() = transaction { tx ->
        tx.execute("CREATE TABLE IF NOT EXISTS orders(id INTEGER PRIMARY KEY, amount REAL, note TEXT, blob BLOB)")
    }

    @Test
    fun `commits the business row and the message together`() = runBlocking {
        freshQueue("g" to "orders").use { q ->
            q.createOrders()
            val (changed, id) = q.transaction { tx ->
                val n = tx.execute("INSERT INTO orders(id, amount, note, blob) VALUES (?, ?, ?, ?)", 42, 100.5, "first", byteArrayOf(7))
                n to tx.publish("orders", "order 42", PublishOptions(key = "order-42"))
            }
            assertEquals(1L, changed)
            val rows = q.orders()
            assertEquals(1, rows.size)
            assertEquals(listOf(42L, 100.5, "first"), rows[0].take(3))
            assertArrayEquals(byteArrayOf(7), rows[0][3] as ByteArray)
            val d = q.receive("g").single()
            assertEquals(id, d.messageId)
            assertEquals("order-42", d.key)
        }
    }

    @Test
    fun `an exception rolls back the row and the message, and is rethrown`() = runBlocking {
        freshQueue("g" to "orders").use { q ->
            q.createOrders()
            val e = assertThrows<IllegalStateException> {
                runBlocking {
                    q.transaction { tx ->
                        tx.execute("INSERT INTO orders(id, amount) VALUES (?, ?)", 43, 200)
                        tx.publish("orders", "order 43", PublishOptions(key = "order-43"))
                        tx.publishBatch(listOf(Message("orders", "order 43b")))
                        check(false) { "payment refused" }
                    }
                }
            }
            assertEquals("payment refused", e.message)
            assertTrue(q.orders().isEmpty())
            assertTrue(q.receive("g", max = 10).isEmpty())
            assertTrue(q.find("orders", "order-43").isEmpty())
            assertEquals(0L, q.stats().topics["orders"]?.messages ?: 0L)
            // The queue is usable afterwards: the transaction really ended.
            q.transaction { tx -> tx.execute("INSERT INTO orders(id, amount) VALUES (1, 1)") }
            assertEquals(1, q.orders().size)
        }
    }

    @Test
    fun `ack in a transaction gives an exactly-once effect`() = runBlocking {
        freshQueue("g" to "t").use { q ->
            q.transaction { tx ->
                tx.execute("CREATE TABLE accounts(id INTEGER PRIMARY KEY, balance INTEGER)")
                tx.execute("INSERT INTO accounts VALUES (7, 1000)")
            }
            q.publish("t", "debit 100")
            val d = q.receive("g").single()
            q.transaction { tx ->
                tx.execute("UPDATE accounts SET balance = balance - ? WHERE id = ?", 100, 7)
                tx.ack(d)
            }
            // A second apply of the same delivery fails with LeaseLost and rolls its UPDATE back.
            assertThrows<FerrymqException.LeaseLost> {
                runBlocking {
                    q.transaction { tx ->
                        tx.execute("UPDATE accounts SET balance = balance - ? WHERE id = ?", 100, 7)
                        tx.ack(d)
                    }
                }
            }
            val balance = q.transaction { tx -> tx.query("SELECT balance FROM accounts WHERE id = ?", 7L) }
            assertEquals(listOf(listOf<Any?>(900L)), balance)
            assertEquals(DeliveryState.ACKED, q.message(d.messageId).deliveries.getValue("g").state)
        }
    }

    @Test
    fun `nack in a transaction, and values of every SQL type`() = runBlocking {
        freshQueue().use { q ->
            q.subscribe("g", "t", retry = RetryPolicy.fixed(listOf()))
            q.publish("t", "x")
            val d = q.receive("g").single()
            val row = q.transaction { tx ->
                tx.nack(d, "refused by the bank")
                tx.query("SELECT NULL, 1, 2.5, 'txt', x'ff', ?", true).single()
            }
            assertEquals(listOf(null, 1L, 2.5, "txt"), row.take(4))
            assertArrayEquals(byteArrayOf(-1), row[4] as ByteArray)
            assertEquals(1L, row[5])
            val info = q.message(d.messageId).deliveries.getValue("g")
            assertEquals(DeliveryState.DEAD, info.state)
            assertEquals("refused by the bank", info.lastError)
            assertFalse(q.deadLetters("g").isEmpty())
        }
    }
}
