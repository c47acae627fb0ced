package ferrymq.bench

import ferrymq.Message
import ferrymq.Queue
import kotlinx.coroutines.runBlocking
import java.nio.file.Files
import java.nio.file.Path
import java.util.concurrent.TimeUnit
import kotlin.system.exitProcess

/**
 * Kotlin rates for W1 (durable single publish, 256-byte payloads, one thread) and W3
 * (receive(max = 1) + ack, one at a time) beside the Rust core's, measured in the same
 * run, as bindings-python/bench/bench.py does. Run by `bash bindings-kotlin/build.sh bench`
 * against the release cdylib.
 *
 * The queue has the default dispatcher (Dispatchers.IO); publish, receive with no wait
 * and ack run on the caller's thread whatever the dispatcher (see Queue), so there is one
 * Kotlin column. Kotlin and Rust runs alternate, and each column keeps its best run, so
 * that load from elsewhere on the machine hits both alike.
 */
private val PAYLOAD = ByteArray(256) { 'x'.code.toByte() }

private fun fresh(dir: Path, name: String): Queue {
    val q = Queue.open(dir.resolve(name).toString())
    runBlocking { q.subscribe("bench", "bench") }
    return q
}

/** Untimed operations first (as the Rust bench does), so that the JIT has compiled the path. */
private fun warmup(n: Int) = (n / 100).coerceIn(10, 1000)

private fun w1(dir: Path, n: Int): Double = runBlocking {
    fresh(dir, "w1.db").use { q ->
        repeat(warmup(n)) { q.publish("bench", PAYLOAD) }
        val start = System.nanoTime()
        repeat(n) { q.publish("bench", PAYLOAD) }
        n / ((System.nanoTime() - start) / 1e9)
    }
}

private fun w3(dir: Path, n: Int): Double = runBlocking {
    fresh(dir, "w3.db").use { q ->
        val total = n + warmup(n)
        for (i in 0 until total step 1000) {
            q.publishBatch(List(minOf(1000, total - i)) { Message("bench", PAYLOAD) })
        }
        suspend fun takeOne() = q.receive("bench", max = 1).single().ack()
        repeat(warmup(n)) { takeOne() }
        val start = System.nanoTime()
        repeat(n) { takeOne() }
        n / ((System.nanoTime() - start) / 1e9)
    }
}

private fun rust(binary: String, kind: String, n: Int): Double {
    val p = ProcessBuilder(binary, "__run", kind, "ferrymq", n.toString(), "0").redirectErrorStream(true).start()
    val out = p.inputStream.bufferedReader().readText()
    check(p.waitFor(300, TimeUnit.SECONDS) && p.exitValue() == 0) { "the Rust bench failed: $out" }
    val fields = out.trim().lines().last().split(" ").drop(1).associate { kv -> kv.substringBefore("=") to kv.substringAfter("=") }
    return fields.getValue("ops").toDouble() / fields.getValue("secs").toDouble()
}

private fun withTempDir(f: (Path) -> Double): Double {
    val dir = Files.createTempDirectory("ferrymq-bench")
    try {
        return f(dir)
    } finally {
        dir.toFile().deleteRecursively()
    }
}

fun main(args: Array<String>) {
    var n = 20_000
    var repeat = 3
    var rustBench: String? = null
    var i = 0
    while (i < args.size) {
        when (args[i]) {
            "--n" -> n = args[++i].toInt()
            "--repeat" -> repeat = args[++i].toInt()
            "--rust-bench" -> rustBench = args[++i]
            else -> {
                System.err.println("usage: Bench --rust-bench PATH [--n N] [--repeat R]")
                exitProcess(2)
            }
        }
        i++
    }
    val binary = requireNotNull(rustBench) { "--rust-bench is required" }
    val workloads = listOf(
        Triple("W1 durable publish", ::w1, "publish"),
        Triple("W3 receive+ack drain", ::w3, "drain"),
    )
    println("| workload (${"%,d".format(n)} msgs, best of $repeat) | Kotlin | Rust | Kotlin/Rust |")
    println("|---|---:|---:|---:|")
    for ((name, fn, kind) in workloads) {
        var kt = 0.0
        var rs = 0.0
        repeat(repeat) {
            kt = maxOf(kt, withTempDir { fn(it, n) })
            rs = maxOf(rs, rust(binary, kind, n))
        }
        println("| $name | ${"%,.0f".format(kt)} ops/s | ${"%,.0f".format(rs)} ops/s | ${"%.2f".format(kt / rs)} |")
    }
}
