package ferrymq

import java.nio.file.Files
import java.nio.file.Path

/** A fresh queue file in its own temp dir. */
fun tempDb(name: String = "q.db"): Path = Files.createTempDirectory("ferrymq-kt").resolve(name)

/** Opens a fresh queue. */
fun freshQueue(vararg subscriptions: Pair<String, String>): Queue {
    val q = Queue.open(tempDb().toString())
    kotlinx.coroutines.runBlocking { for ((g, t) in subscriptions) q.subscribe(g, t) }
    return q
}

/** The Python interpreter with the ferrymq wheel (FERRYMQ_PYTHON); missing is a failure, not a skip. */
fun python(): String {
    val p = System.getenv("FERRYMQ_PYTHON")
    check(!p.isNullOrBlank()) {
        "FERRYMQ_PYTHON is not set: point it at a Python with the ferrymq wheel installed " +
            "(bash bindings-kotlin/build.sh test reads it; `make test` sets it)"
    }
    check(Files.isExecutable(Path.of(p))) { "FERRYMQ_PYTHON=$p is not an executable" }
    return p
}
