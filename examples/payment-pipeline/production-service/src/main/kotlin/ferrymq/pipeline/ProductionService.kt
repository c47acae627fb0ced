package ferrymq.pipeline

import ferrymq.Key
import ferrymq.KeyProvider
import ferrymq.PublishOptions
import ferrymq.Queue
import java.io.File
import kotlinx.coroutines.runBlocking
import java.util.concurrent.atomic.AtomicBoolean
import kotlin.concurrent.thread
import kotlin.time.Duration.Companion.milliseconds

/**
 * The production service of the payment pipeline (examples/payment-pipeline): for each
 * `payments/paid` it records the production run, publishes `production/done` and acks,
 * all in one transaction, so a crash anywhere leaves either all three or none.
 *
 * Usage: production-service DB    Stops when its stdin closes.
 * With FERRYMQ_KEY_FILE set the file is encrypted; its keys are read from that file (one
 * per line, newest first) whenever the queue needs them.
 */
fun main(args: Array<String>) = runBlocking {
    val db = args.singleOrNull() ?: error("usage: production-service DB")
    val stop = AtomicBoolean(false)
    thread(isDaemon = true) {
        System.`in`.readBytes()
        stop.set(true)
    }
    val keys =
        System.getenv("FERRYMQ_KEY_FILE")?.let { path ->
            KeyProvider { File(path).readLines().filter { it.isNotEmpty() }.map(Key::fromText) }
        }
    Queue.open(db, keyProvider = keys).use { q ->
        println("production service ready")
        while (!stop.get()) {
            for (d in q.receive("production", max = 10, wait = 200.milliseconds)) {
                val key = d.key ?: error("payments/paid ${d.messageId} has no order key")
                q.transaction { tx ->
                    tx.execute("INSERT INTO production(order_id) VALUES (?)", key.removePrefix("order-").toLong())
                    tx.publish("production", d.payload, PublishOptions(tag = "done", key = key))
                    tx.ack(d)
                }
            }
        }
    }
}
