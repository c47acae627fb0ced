package ferrymq

import kotlinx.coroutines.runBlocking
import org.junit.jupiter.api.Assertions.assertArrayEquals
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertFalse
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.assertThrows
import java.nio.file.Files
import java.nio.file.Path
import java.sql.DriverManager
import java.util.concurrent.atomic.AtomicInteger
import java.util.concurrent.atomic.AtomicReference

/**
 * Encryption at rest through the binding: keys, key providers, rekey and the Encryption
 * exception, on real files through the native library. What a key does is the core's
 * (core/tests/encryption.rs); this checks the types, the errors and the callback.
 */
class EncryptionTest {
    private val payload = "IBAN-DE89370400440532013000-amount-4711.00"
    private val header = "customer-Hildegard-Piepenbrink"
    private val passphrase = "correct horse battery staple"

    private inline fun <reified E : FerrymqException> expect(needle: String, noinline call: suspend () -> Any?): E {
        val e = assertThrows<E> { runBlocking { call() } }
        assertTrue(e.message!!.contains(needle), "'${e.message}' should mention '$needle'")
        return e
    }

    /** The file, its -wal and -shm as they are on disk (null: absent). */
    private fun bytes(db: Path): List<ByteArray?> = listOf("", "-wal", "-shm").map { s ->
        Path.of("$db$s").let { if (Files.exists(it)) Files.readAllBytes(it) else null }
    }

    private fun assertUnchanged(before: List<ByteArray?>, db: Path) =
        bytes(db).forEachIndexed { i, b -> assertArrayEquals(before[i], b, "file ${listOf("", "-wal", "-shm")[i]} changed") }

    private fun ByteArray.has(text: String): Boolean = indexOf(text.encodeToByteArray()) >= 0

    private fun ByteArray.indexOf(needle: ByteArray): Int =
        (0..size - needle.size).firstOrNull { i -> needle.indices.all { this[i + it] == needle[it] } } ?: -1

    private suspend fun Queue.publishSecrets(n: Int) {
        subscribe("payments", "pay")
        repeat(n) { publish("pay", "$payload-$it", PublishOptions(key = "order-$it", headers = mapOf("customer" to header))) }
    }

    /** A file encrypted with [key] holding one message in group g. */
    private fun encrypted(key: Key): Path = tempDb().also { db ->
        Queue.open(db.toString(), key = key).use { q -> runBlocking { q.subscribe("g", "t"); q.publish("t", "one") } }
    }

    @Test
    fun `a passphrase, a raw key and its x'hex' text open what they encrypted`() = runBlocking {
        val db = encrypted(Key.fromText(passphrase))
        Queue.open(db.toString(), key = Key.fromText(passphrase)).use { q ->
            assertEquals(listOf("one"), q.receive("g").map { it.text() })
        }
        val raw = ByteArray(32) { (it * 7 + 1).toByte() }
        val db2 = encrypted(Key.raw(raw))
        val hex = raw.joinToString("") { "%02x".format(it) }
        Queue.open(db2.toString(), key = Key.fromText("x'$hex'")).use { q ->
            assertEquals(listOf("one"), q.receive("g").map { it.text() })
        }
    }

    @Test
    fun `the file and its wal hold no plaintext payload, header or passphrase`() = runBlocking {
        val db = tempDb()
        Queue.open(db.toString(), key = Key.fromText(passphrase)).use { q ->
            q.publishSecrets(200)
            // The pages are in the -wal now: look while the queue is open, then after close.
            for (needle in listOf(payload, header, passphrase, "ferrymq_messages", "SQLite format 3")) {
                bytes(db).forEach { b -> assertFalse(b?.has(needle) ?: false, needle) }
            }
            assertEquals(10, q.receive("payments", max = 10).size)
        }
        for (needle in listOf(payload, header, passphrase)) bytes(db).forEach { b -> assertFalse(b?.has(needle) ?: false, needle) }
        // The same publishes on a plain file do show: the search would see them.
        val plain = tempDb()
        Queue.open(plain.toString()).use { it.publishSecrets(1) }
        assertTrue(bytes(plain).any { it?.has(payload) ?: false })
    }

    @Test
    fun `a wrong key, no key, or a key for a plain file is Encryption and leaves the bytes as they were`() {
        val db = encrypted(Key.fromText(passphrase))
        val before = bytes(db)
        expect<FerrymqException.Encryption>("wrong key") { Queue.open(db.toString(), key = Key.fromText("not it")) }
        expect<FerrymqException.Encryption>("wrong key") { Queue.open(db.toString(), key = Key.raw(ByteArray(32))) }
        expect<FerrymqException.Encryption>("encrypted") { Queue.open(db.toString()) }
        assertUnchanged(before, db)

        val plain = tempDb()
        Queue.open(plain.toString()).use { q -> runBlocking { q.subscribe("g", "t"); q.publish("t", "x") } }
        val plainBefore = bytes(plain)
        expect<FerrymqException.Encryption>("plain") { Queue.open(plain.toString(), key = Key.fromText(passphrase)) }
        assertUnchanged(plainBefore, plain)
        // rekey cannot encrypt a plain file (that is `ferrymq encrypt`, on a copy).
        Queue.open(plain.toString()).use { q -> expect<FerrymqException.InvalidArgument>("not encrypted") { q.rekey(Key.fromText(passphrase)) } }
    }

    @Test
    fun `bad keys are InvalidArgument when made, and a key with a provider too`() {
        expect<FerrymqException.InvalidArgument>("32 bytes") { Key.raw(ByteArray(31)) }
        expect<FerrymqException.InvalidArgument>("passphrase") { Key.fromText("") }
        expect<FerrymqException.InvalidArgument>("hex") { Key.fromText("x'abc'") }
        val db = tempDb()
        expect<FerrymqException.InvalidArgument>("not both") {
            Queue.open(db.toString(), key = Key.fromText(passphrase), keyProvider = { listOf(Key.fromText(passphrase)) })
        }
        assertFalse(Files.exists(db), "nothing was created")
        assertFalse(Key.fromText(passphrase).toString().contains(passphrase))
    }

    @Test
    fun `a provider that throws or gives no key is Encryption naming it, not a crash`() {
        val db = encrypted(Key.fromText(passphrase))
        val before = bytes(db)
        expect<FerrymqException.Encryption>("vault unreachable") {
            Queue.open(db.toString(), keyProvider = { throw IllegalStateException("vault unreachable") })
        }
        expect<FerrymqException.Encryption>("no key") { Queue.open(db.toString(), keyProvider = { emptyList() }) }
        // On a new file too: the provider is asked before anything is written.
        val fresh = tempDb()
        expect<FerrymqException.Encryption>("vault unreachable") {
            Queue.open(fresh.toString(), keyProvider = { throw IllegalStateException("vault unreachable") })
        }
        assertUnchanged(before, db)
        Queue.open(db.toString(), keyProvider = { listOf(Key.fromText("old"), Key.fromText(passphrase)) }).use { q ->
            runBlocking { assertEquals(listOf("one"), q.receive("g").map { it.text() }) }
        }
    }

    @Test
    fun `a provider listing new and old keys follows a rekey done by another queue`() = runBlocking {
        val old = "passphrase one"
        val new = "passphrase two"
        val db = encrypted(Key.fromText(old))
        val keys = AtomicReference(listOf(old))
        val asked = AtomicInteger()
        val provider = KeyProvider { asked.incrementAndGet(); keys.get().map(Key::fromText) }
        Queue.open(db.toString(), keyProvider = provider).use { follower ->
            Queue.open(db.toString(), key = Key.fromText(old)).use { fixed ->
                assertEquals(1, asked.get())
                assertEquals(1L, follower.stats().groups.getValue("g").ready)
                keys.set(listOf(new, old))
                Queue.open(db.toString(), key = Key.fromText(old)).use { rotator -> rotator.rekey(Key.fromText(new)) }
                // The follower's key stops opening the file: it asks again and goes on.
                follower.publish("t", "two")
                assertTrue(asked.get() >= 2, "the provider was asked again")
                assertEquals(listOf("one", "two"), follower.receive("g", max = 10).map { it.text() })
                // A queue with only the old key cannot.
                expect<FerrymqException.Encryption>("key") { fixed.stats() }
            }
        }
        expect<FerrymqException.Encryption>("wrong key") { Queue.open(db.toString(), key = Key.fromText(old)) }
        Queue.open(db.toString(), key = Key.fromText(new)).use { q -> assertEquals(0L, q.stats().groups.getValue("g").ready) }
    }

    @Test
    fun `publishIn, ackIn and inboxIn work on a SQLCipher-capable driver's connection, and plain sqlite-jdbc cannot open the file`() = runBlocking {
        val db = tempDb()
        Queue.open(db.toString(), key = Key.fromText(passphrase)).use { q ->
            q.subscribe("g", "t")
            val id = SqlCipherJdbc.connect(db, passphrase).use { c ->
                c.autoCommit = false
                val id = Outbox.publishIn(c, "t", payload, queue = q)
                c.commit()
                val d = q.receive("g").single()
                assertEquals(id, d.messageId)
                assertEquals(payload, d.text())
                Outbox.ackIn(c, d, queue = q)
                assertTrue(Outbox.inboxIn(c, "event-1", queue = q))
                c.commit()
                assertFalse(Outbox.inboxIn(c, "event-1", queue = q))
                c.rollback()
                id
            }
            assertEquals(DeliveryState.ACKED, q.message(id).deliveries.getValue("g").state)
            val st = q.stats().groups.getValue("g")
            assertEquals(0L, st.ready + st.inflight)
            DriverManager.getConnection("jdbc:sqlite:$db").use { c ->
                c.autoCommit = false
                expect<FerrymqException.Storage>("not a database") { Outbox.publishIn(c, "t", "x", queue = q) }
            }
            assertEquals(0L, q.stats().groups.getValue("g").ready)
        }
        bytes(db).forEach { b -> assertFalse(b?.has(payload) ?: false) }
    }
}
