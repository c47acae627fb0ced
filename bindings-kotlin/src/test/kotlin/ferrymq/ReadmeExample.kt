package ferrymq

// The Kotlin example of bindings-kotlin/README.md, compiled and run by ReadmeTest (which
// also checks that the README shows exactly the lines between the markers).
// README-START
import kotlinx.coroutines.runBlocking
import kotlin.time.Duration.Companion.seconds

fun readmeExample(path: String) = runBlocking {
    Queue.open(path, busyTimeout = 5.seconds).use { q ->
        q.subscribe("payment-center", "payments", tags = "created || retried",
            retry = RetryPolicy.fixed(listOf(1.seconds, 10.seconds)), lease = 30.seconds)
        val id = q.publish("payments", """{"order": 42}""".toByteArray(), PublishOptions(tag = "created",
            key = "order-42", headers = mapOf("traceparent" to "00-1"), idempotencyKey = "order-42/pay"))

        for (d in q.receive("payment-center", max = 10, wait = 1.seconds)) {
            println("${d.messageId} ${d.key} ${d.text()} attempt ${d.attempt}")
            d.ack()                                   // or d.nack("bank timeout"), d.extend(30.seconds)
        }

        q.transaction { tx ->                         // commits on return, rolls back on exception
            tx.execute("CREATE TABLE IF NOT EXISTS orders(id INTEGER PRIMARY KEY, amount INTEGER)")
            tx.execute("INSERT OR REPLACE INTO orders(id, amount) VALUES (?, ?)", 43, 100)
            tx.publish("payments", "order 43", PublishOptions(tag = "created", key = "order-43"))
        }

        val h = q.prepare("fund-purchase", "buy FUND-A".toByteArray(), PublishOptions(key = "tx-123"))   // half message
        q.setChecker("fund-purchase") { info -> Resolution.COMMIT }
        h.commit()

        val worker = q.worker("payment-center", concurrency = 2) { d ->
            require(d.key != null) { "no key" }       // throwing nacks with the message
        }
        worker.stop()

        println(q.stats().groups.getValue("payment-center").ready)
        println(q.message(id).deliveries.getValue("payment-center").state)   // ACKED
    }
}
// README-END
