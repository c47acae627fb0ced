package ferrymq

// The Outbox example of bindings-kotlin/README.md, compiled and run by ReadmeTest (which
// also checks that the README shows exactly the lines between the markers).
// README-START
import java.sql.DriverManager

fun placeOrder(path: String): Long = DriverManager.getConnection("jdbc:sqlite:$path").use { conn ->
    conn.autoCommit = false                                   // the transaction rule: required
    try {
        conn.prepareStatement("INSERT INTO orders(id, amount) VALUES (?, ?)").use {
            it.setLong(1, 42); it.setLong(2, 250); it.executeUpdate()
        }
        val id = Outbox.publishIn(conn, "payments", """{"order": 42}""", PublishOptions(tag = "created",
            key = "order-42", idempotencyKey = "order-42/pay"))  // the options of every publish
        conn.commit()                                         // the row and the message, or neither
        id
    } catch (e: Exception) {
        conn.rollback()
        throw e
    }
}

fun markPaid(path: String, queue: Queue, delivery: Delivery) = DriverManager.getConnection("jdbc:sqlite:$path").use { conn ->
    conn.autoCommit = false
    try {
        conn.prepareStatement("UPDATE orders SET paid = 1 WHERE id = ?").use {
            it.setLong(1, 42); it.executeUpdate()
        }
        Outbox.ackIn(conn, delivery, queue = queue)           // LeaseLost: another consumer has it now
        conn.commit()                                         // the update and the ack, or neither
    } catch (e: Exception) {
        conn.rollback()
        throw e
    }
}
// README-END
