package ferrymq

// The Kotlin example of the repository's top README.md, compiled and run by TopReadmeTest
// (which also checks that the README shows exactly the lines between the markers).
// README-START
import ferrymq.PublishOptions
import ferrymq.Queue
import ferrymq.RetryPolicy
import kotlinx.coroutines.runBlocking
import kotlin.time.Duration.Companion.seconds

fun payments(path: String) = runBlocking {
    Queue.open(path).use { q ->
        q.subscribe("payment-center", "payments", tags = "created", retry = RetryPolicy.rocketmq())
        q.transaction { tx -> // the order row and its message commit together
            tx.execute("CREATE TABLE IF NOT EXISTS orders(id INTEGER PRIMARY KEY, amount INTEGER)")
            tx.execute("INSERT OR REPLACE INTO orders VALUES (?, ?)", 42, 100)
            tx.publish("payments", """{"order": 42}""", PublishOptions(tag = "created", key = "order-42"))
        }
        for (d in q.receive("payment-center", max = 10, wait = 1.seconds)) { println("paid ${d.key}"); d.ack() }
    }
}
// README-END
