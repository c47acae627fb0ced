package ferrymq

import ferrymq.testing.ManualClock
import kotlinx.coroutines.runBlocking
import org.json.JSONArray
import org.json.JSONObject
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Assertions.fail
import org.junit.jupiter.api.Assumptions
import org.junit.jupiter.api.DynamicTest
import org.junit.jupiter.api.TestFactory
import java.math.BigDecimal
import java.math.BigInteger
import java.nio.file.Files
import java.nio.file.Path
import java.sql.Connection
import java.sql.DriverManager
import java.time.Instant
import kotlin.io.path.name
import kotlin.io.path.readText
import kotlin.io.path.writeText
import kotlin.time.Duration
import kotlin.time.Duration.Companion.milliseconds

/**
 * The Kotlin runner of the shared scenarios in tests/scenarios/\*.json (format in that
 * folder's README). The Rust, Python and Node runners execute the same files; a scenario
 * that passes there and fails here is a bug in this binding. Each file runs twice: on a
 * plain file, and on a file encrypted with [SCENARIO_PASSPHRASE] (as the Rust runner does),
 * where the steps on the caller's own connection use a SQLCipher-capable driver
 * ([SqlCipherJdbc]).
 */
class ScenariosTest {
    @TestFactory
    fun scenarios(): List<DynamicTest> {
        val repo = Path.of(System.getProperty("ferrymq.repo") ?: "..")
        val dir = repo.resolve("tests").resolve("scenarios")
        val files = Files.list(dir).use { s -> s.filter { it.name.endsWith(".json") }.sorted().toList() }
        // Fewer files than written means the runner is not looking where it should: fail.
        assertTrue(files.size >= 13, "expected at least 13 scenario files in $dir, found ${files.size}")
        return listOf(null, SCENARIO_PASSPHRASE).flatMap { passphrase ->
            files.map { f ->
                val scenario = JSONObject(f.readText())
                val variant = if (passphrase == null) "" else " (encrypted)"
                DynamicTest.dynamicTest("${f.name}$variant: ${scenario.getString("name")}") {
                    // A scenario may name the languages that run it (see its README).
                    val langs = scenario.optJSONArray("languages")
                    Assumptions.assumeTrue(
                        langs == null || (0 until langs.length()).any { langs.getString(it) == "kotlin" },
                        "this scenario does not list kotlin in \"languages\"",
                    )
                    runScenario(f.name, scenario, passphrase)
                }
            }
        }
    }

    private fun runScenario(file: String, scenario: JSONObject, passphrase: String?) = runBlocking {
        val r = Runner(scenario.optJSONObject("queue") ?: JSONObject(), passphrase)
        val steps = scenario.getJSONArray("steps")
        for (i in 0 until steps.length()) {
            val s = steps.getJSONObject(i)
            val at = "$file step $i (${s.getString("op")})"
            val expectedError = s.optString("error").ifEmpty { null }
            val out = try {
                r.step(s)
            } catch (e: FerrymqException) {
                if (expectedError == null) throw AssertionError("$at: $e", e)
                assertEquals(expectedError, code(e), "$at: $e")
                continue
            }
            if (expectedError != null) fail<Unit>("$at: expected $expectedError, got success")
            if (s.has("expect")) checkSubset(r.resolve(plain(s.get("expect"))), out, at)
        }
        if (!r.q.isClosed) r.q.close()
        // The encrypted run did run on an encrypted file.
        val header = Files.newInputStream(r.db).use { it.readNBytes(15) }.decodeToString()
        assertEquals(passphrase == null, header == "SQLite format 3", "$file: the file's first bytes are \"$header\"")
    }
}

private const val START_MS = 1_700_000_000_000L

/** The passphrase of the encrypted run (the Rust runner's). */
private const val SCENARIO_PASSPHRASE = "scenario passphrase"

private fun code(e: FerrymqException): String = when (e) {
    is FerrymqException.InvalidArgument -> "INVALID_ARGUMENT"
    is FerrymqException.NotFound -> "NOT_FOUND"
    is FerrymqException.LeaseLost -> "LEASE_LOST"
    is FerrymqException.Closed -> "CLOSED"
    is FerrymqException.Busy -> "BUSY"
    is FerrymqException.Storage -> "STORAGE"
    is FerrymqException.Callback -> "CALLBACK"
    is FerrymqException.Full -> "FULL"
    is FerrymqException.Encryption -> "ENCRYPTION"
}

/** A JSON value as plain Kotlin: Map, List, Long, Double, String, Boolean or null. */
private fun plain(v: Any?): Any? = when (v) {
    null, JSONObject.NULL -> null
    is JSONObject -> v.keySet().associateWith { plain(v.get(it)) }
    is JSONArray -> (0 until v.length()).map { plain(v.get(it)) }
    is Int -> v.toLong()
    is Long -> v
    is BigInteger -> v.toLong()
    is BigDecimal -> v.toDouble()
    is Number -> v.toDouble()
    else -> v
}

private fun JSONObject.optLongOrNull(k: String): Long? = if (has(k) && !isNull(k)) getLong(k) else null

/**
 * A count from a scenario for an `Int` parameter. Out of `Int`'s range it stays out of
 * range (never wraps into it), so the core still refuses it.
 */
/** The scenario's policy name; an unknown one is refused as the other languages refuse it
 *  (Kotlin's enum cannot hold it). */
private fun missed(name: String): Missed = Missed.entries.firstOrNull { it.name.lowercase() == name }
    ?: throw FerrymqException.InvalidArgument("missed must be catch_up, once or skip, got $name")

private fun intArg(n: Long): Int = n.coerceIn(Int.MIN_VALUE.toLong(), Int.MAX_VALUE.toLong()).toInt()

private fun JSONObject.optStringOrNull(k: String): String? = if (has(k) && !isNull(k)) getString(k) else null

private fun JSONObject.msOrNull(k: String): Duration? = optLongOrNull(k)?.milliseconds

private fun JSONObject.strings(k: String): List<String> = optJSONArray(k)?.let { a -> (0 until a.length()).map { a.getString(it) } } ?: emptyList()

/** Every field of [expected] equals the same field of [actual]; lists compare exactly. */
private fun checkSubset(expected: Any?, actual: Any?, at: String) {
    when (expected) {
        is List<*> -> {
            assertTrue(actual is List<*> && actual.size == expected.size, "$at: expected $expected, got $actual")
            expected.forEachIndexed { i, e -> checkSubset(e, (actual as List<*>)[i], "$at[$i]") }
        }
        is Map<*, *> -> for ((k, v) in expected) checkSubset(v, (actual as? Map<*, *>)?.get(k), "$at.$k")
        is Long -> assertEquals(expected, if (actual is Int || actual is Long) (actual as Number).toLong() else actual, at)
        else -> assertEquals(expected, actual, at)
    }
}

/** What the other runners compare of a delivery. */
private fun deliveryJson(d: Delivery): Map<String, Any?> = mapOf(
    "message_id" to d.messageId,
    "topic" to d.topic,
    "payload" to d.text(),
    "tag" to d.tag,
    "key" to d.key,
    "headers" to d.headers,
    "ordering_key" to d.orderingKey,
    "attempt" to d.attempt.toLong(),
    "priority" to d.priority.toLong(),
)

private fun retry(r: JSONObject): RetryPolicy = when (val p = r.getString("policy")) {
    "rocketmq" -> RetryPolicy.rocketmq()
    "alipay" -> RetryPolicy.alipay()
    "wechat_pay" -> RetryPolicy.wechatPay()
    "fixed" -> r.getJSONArray("delays_ms").let { a -> RetryPolicy.fixed((0 until a.length()).map { a.getLong(it).milliseconds }) }
    else -> error("unknown retry policy $p")
}

/** A value of `params` as a SQL parameter. */
private fun sqlParam(v: Any?): Any? = plain(v)

private fun JSONObject.params(): Array<Any?> = optJSONArray("params")?.let { a -> Array(a.length()) { sqlParam(a.get(it)) } } ?: emptyArray()

/** The scenario's own transaction callback failing on purpose. */
private class ScenarioFailure : RuntimeException("the scenario's callback failed")

/** [passphrase]: the file is encrypted with it (null: a plain file). */
private class Runner(queue: JSONObject, val passphrase: String?) {
    val clock = ManualClock(START_MS)
    val db: Path = tempDb()
    val q = Queue.open(
        db.toString(),
        testClock = clock,
        key = passphrase?.let(Key::fromText),
        checkAfter = queue.msOrNull("check_after_ms"),
        checkInterval = queue.msOrNull("check_interval_ms"),
        checkMax = queue.optLongOrNull("check_max")?.toInt(),
        maxReady = queue.optLongOrNull("max_ready"),
    )
    val ids = mutableMapOf<String, Long>()
    val deliveries = mutableMapOf<String, Delivery>()
    val halves = mutableMapOf<Long, HalfMessage>()

    fun id(v: Any?): Long = when (v) {
        is String -> {
            check(v.startsWith("$") && v.substring(1) in ids) { "no id saved as $v" }
            ids.getValue(v.substring(1))
        }
        is Number -> v.toLong()
        else -> error("not an id: $v")
    }

    fun resolve(v: Any?): Any? = when {
        v is String && v.startsWith("$") -> id(v)
        v is List<*> -> v.map(::resolve)
        v is Map<*, *> -> v.mapValues { resolve(it.value) }
        else -> v
    }

    fun delivery(name: String): Delivery = deliveries[name] ?: error("no delivery saved as $name")

    fun message(m: JSONObject) = Message(
        m.getString("topic"),
        m.getString("payload"),
        PublishOptions(
            tag = m.optStringOrNull("tag"),
            key = m.optStringOrNull("key"),
            headers = m.optJSONObject("headers")?.let { h -> h.keySet().associateWith { h.getString(it) } } ?: emptyMap(),
            orderingKey = m.optStringOrNull("ordering_key"),
            idempotencyKey = m.optStringOrNull("idempotency_key"),
            delay = m.msOrNull("delay_ms"),
            deliverAt = m.optLongOrNull("deliver_at_offset_ms")?.let { Instant.ofEpochMilli(START_MS + it) },
            priority = m.optLongOrNull("priority")?.let(::intArg),
        ),
    )

    suspend fun step(s: JSONObject): Any? {
        when (val op = s.getString("op")) {
            "subscribe" -> q.subscribe(
                s.getString("group"),
                s.getString("topic"),
                tags = s.optStringOrNull("tags") ?: "*",
                retry = s.optJSONObject("retry")?.let(::retry),
                lease = s.msOrNull("lease_ms"),
                maxInflight = s.optLongOrNull("max_inflight")?.let(::intArg),
                rate = if (s.has("rate")) s.getDouble("rate") else null,
                burst = s.optLongOrNull("burst")?.let(::intArg),
            )
            "schedule" -> q.schedule(
                s.getString("name"),
                s.getString("topic"),
                s.getString("payload"),
                ScheduleOptions(
                    cron = s.optStringOrNull("cron"),
                    every = s.msOrNull("every_ms"),
                    tz = s.optStringOrNull("tz"),
                    repeat = s.optLongOrNull("repeat"),
                    startAt = s.optLongOrNull("start_at_offset_ms")?.let { Instant.ofEpochMilli(START_MS + it) },
                    delay = s.msOrNull("delay_ms"),
                    tag = s.optStringOrNull("tag"),
                    key = s.optStringOrNull("key"),
                    headers = s.optJSONObject("headers")?.let { h -> h.keySet().associateWith { h.getString(it) } } ?: emptyMap(),
                    missed = s.optStringOrNull("missed")?.let(::missed) ?: Missed.ONCE,
                ),
            )
            "unschedule" -> q.unschedule(s.getString("name"))
            "schedules" -> return q.schedules().map {
                mapOf(
                    "name" to it.name,
                    "topic" to it.topic,
                    "cron" to it.cron,
                    "every_ms" to it.every?.inWholeMilliseconds,
                    "tz" to it.tz,
                    "next_at_offset_ms" to it.nextAt.toEpochMilli() - START_MS,
                    "fired" to it.fired,
                    "repeat_left" to it.repeatLeft,
                    "missed" to it.missed.name.lowercase(),
                )
            }
            "pause" -> q.pause(s.getString("group"))
            "resume" -> q.resume(s.getString("group"))
            "publish" -> {
                val m = message(s)
                val id = q.publish(m.topic, m.payload, m.options)
                s.optStringOrNull("as")?.let { ids[it] = id }
                if (s.has("expect_id")) assertEquals(id(s.get("expect_id")), id, "expect_id")
            }
            "publish_batch" -> {
                val a = s.getJSONArray("messages")
                val got = q.publishBatch((0 until a.length()).map { message(a.getJSONObject(it)) })
                s.strings("as").forEachIndexed { i, n -> ids[n] = got[i] }
            }
            "receive" -> {
                val ds = q.receive(s.getString("group"), max = s.optInt("max", 1), lease = s.msOrNull("lease_ms"))
                val names = s.strings("as")
                assertTrue(names.size <= ds.size, "fewer deliveries than names")
                names.forEachIndexed { i, n -> deliveries[n] = ds[i] }
                return ds.map(::deliveryJson)
            }
            "ack" -> delivery(s.getString("delivery")).ack()
            "nack" -> delivery(s.getString("delivery")).nack(s.optString("reason", ""), s.msOrNull("delay_ms"))
            "extend" -> delivery(s.getString("delivery")).extend(s.getLong("lease_ms").milliseconds)
            "advance" -> clock.advance(s.getLong("ms").milliseconds)
            "stats" -> {
                val st = q.stats()
                return mapOf(
                    "topics" to st.topics.mapValues { (_, t) -> mapOf("messages" to t.messages, "half" to t.half) },
                    "groups" to st.groups.mapValues { (_, g) ->
                        mapOf(
                            "topic" to g.topic,
                            "ready" to g.ready,
                            "scheduled" to g.scheduled,
                            "inflight" to g.inflight,
                            "retrying" to g.retrying,
                            "dead" to g.dead,
                            "paused" to g.paused,
                        )
                    },
                )
            }
            "message" -> {
                val m = q.message(id(plain(s.get("id"))))
                return mapOf(
                    "state" to m.state.name.lowercase(),
                    "tag" to m.tag,
                    "key" to m.key,
                    "payload" to m.payload.decodeToString(),
                    "deliveries" to m.deliveries.mapValues { (_, d) ->
                        mapOf(
                            "state" to d.state.name.lowercase(),
                            "attempts" to d.attempts.toLong(),
                            "last_error" to d.lastError,
                        )
                    },
                )
            }
            "find" -> return q.find(s.getString("topic"), s.getString("key")).map { it.id }
            "dead_letters" -> return q.deadLetters(s.getString("group"), limit = 1000).map {
                mapOf("message_id" to it.messageId, "attempts" to it.attempts.toLong(), "last_error" to it.lastError)
            }
            "redrive" -> {
                val chosen = s.optJSONArray("ids")?.let { a -> (0 until a.length()).map { id(plain(a.get(it))) } }
                return q.redrive(s.getString("group"), chosen)
            }
            "purge_dead_letters" -> return q.purgeDeadLetters(s.getString("group"))
            "transaction" -> transaction(s)
            "publish_in" -> {
                val m = message(s)
                val id = onOwnConnection(s) { c ->
                    Outbox.publishIn(c, m.topic, m.payload, m.options, queue = q)
                }
                s.optStringOrNull("as")?.let { ids[it] = id }
                if (s.has("expect_id")) assertEquals(id(s.get("expect_id")), id, "expect_id")
            }
            "ack_in" -> {
                val d = delivery(s.getString("delivery"))
                onOwnConnection(s) { c -> Outbox.ackIn(c, d, queue = q) }
            }
            "query" -> return q.transaction { tx -> tx.query(s.getString("sql"), *s.params()) }
            "prepare" -> {
                val m = message(s)
                val h = q.prepare(m.topic, m.payload, m.options)
                ids[s.getString("as")] = h.id
                halves[h.id] = h
            }
            "commit_half", "rollback_half" -> {
                // By the handle from prepare, as the Python and Node runners do.
                val id = id(plain(s.get("id")))
                val h = halves[id] ?: error("no half message $id")
                if (op == "commit_half") h.commit() else h.rollback()
            }
            "set_checker" -> {
                val answers = s.getJSONObject("answers")
                q.setChecker(s.getString("topic")) { info ->
                    when (answers.optStringOrNull(info.key ?: "")) {
                        "commit" -> Resolution.COMMIT
                        "rollback" -> Resolution.ROLLBACK
                        "unknown" -> Resolution.UNKNOWN
                        else -> throw IllegalStateException("the checker failed")
                    }
                }
            }
            "run_checks" -> return q.runChecks().toLong()
            "half_messages" -> {
                val state = when (val st = s.optStringOrNull("state")) {
                    null -> null
                    "half" -> MessageState.HALF
                    "rolled_back" -> MessageState.ROLLED_BACK
                    // The Kotlin API takes an enum: an unknown state cannot be expressed
                    // (the Rust runner does the same).
                    else -> throw FerrymqException.InvalidArgument("unknown state $st")
                }
                return q.halfMessages(state, limit = 1000).map { it.id }
            }
            "close" -> q.close()
            "open_foreign" -> {
                val file = db.resolveSibling("notes.txt")
                file.writeText("not a database ".repeat(100))
                Queue.open(file.toString()).close()
            }
            else -> error("unknown op $op")
        }
        return null
    }

    /**
     * [block] on a sqlite-jdbc connection of its own to the queue's file (beside the
     * runner's queue, in this JVM), after the step's `execute` statements, in one
     * transaction: committed, or rolled back when the step says `rollback` or fails; then
     * the connection is closed. On an encrypted file the connection is the
     * SQLCipher-capable driver's, keyed with the passphrase (xerial's cannot read it).
     */
    fun <T> onOwnConnection(s: JSONObject, block: (Connection) -> T): T =
        ownConnection().use { c ->
            c.autoCommit = false
            val out = try {
                s.optJSONArray("execute")?.let { a ->
                    for (i in 0 until a.length()) {
                        val e = a.getJSONObject(i)
                        c.prepareStatement(e.getString("sql")).use { st ->
                            e.params().forEachIndexed { n, p -> st.setObject(n + 1, p) }
                            st.execute()
                        }
                    }
                }
                block(c)
            } catch (e: Throwable) {
                c.rollback()
                throw e
            }
            if (s.optBoolean("rollback")) c.rollback() else c.commit()
            out
        }

    private fun ownConnection(): Connection =
        passphrase?.let { SqlCipherJdbc.connect(db, it) } ?: DriverManager.getConnection("jdbc:sqlite:$db")

    suspend fun transaction(s: JSONObject) {
        try {
            q.transaction { tx ->
                val steps = s.getJSONArray("steps")
                for (i in 0 until steps.length()) {
                    val t = steps.getJSONObject(i)
                    when (val op = t.getString("op")) {
                        "execute" -> tx.execute(t.getString("sql"), *t.params())
                        "publish" -> {
                            val m = message(t)
                            tx.publish(m.topic, m.payload, m.options)
                        }
                        "ack" -> tx.ack(delivery(t.getString("delivery")))
                        "nack" -> tx.nack(delivery(t.getString("delivery")), t.optString("reason", ""))
                        "inbox" -> {
                            val new = tx.inbox(t.getString("key"), t.msOrNull("window_ms"))
                            check(new == t.getBoolean("expect")) { "inbox $t returned $new" }
                        }
                        else -> error("unknown transaction op $op")
                    }
                }
                if (s.optBoolean("throw")) throw ScenarioFailure()
            }
        } catch (_: ScenarioFailure) {
        }
    }
}
