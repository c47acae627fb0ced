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
        val id = Outbox.publishIn(conn, "payments", """{"order": 42}""", tag = "created",
            key = "order-42", idempotencyKey = "order-42/pay")  // same options as Queue.publish
        conn.commit()                                         // the row and the message, or neither
        id
    } catch (e: Exception) {
        conn.rollback()
        throw e
    }
}
// README-END
