package ferrymq

import ferrymq.ffi.FfiKey
import ferrymq.ffi.FfiKeyProvider
import ferrymq.ffi.KeysAnswer

/**
 * A key of an encrypted queue file (encryption at rest, SQLCipher 4: AES-256 with an
 * HMAC per page). Made with [fromText] or [raw]; checked when made
 * ([FerrymqException.InvalidArgument] otherwise). Its [toString] never shows it.
 */
class Key private constructor(internal val ffi: FfiKey) {
    companion object {
        /**
         * A key written as text: SQLCipher's raw key syntax `x'<64 hex digits>'` is a raw
         * key, anything else a passphrase (1 to 1,024 bytes, stretched with
         * PBKDF2-HMAC-SHA512 as SQLCipher's `PRAGMA key` does).
         */
        fun fromText(text: String): Key = Key(native { FfiKey.fromText(text) })

        /** A raw 256-bit key (32 bytes, a data key from a KMS or HSM), used as it is. */
        fun raw(bytes: ByteArray): Key = Key(native { FfiKey.raw(bytes) })
    }

    override fun toString(): String = "Key(<redacted>)"
}

/**
 * The keys to try on an encrypted file, newest first: during a rotation the new key and
 * the old one. Asked when the queue opens and again whenever its key stops opening the
 * file (after a [Queue.rekey] by another queue or process), from any thread. Throwing (or
 * returning no key) makes that open or call fail with [FerrymqException.Encryption]
 * naming the exception's message. Keep it to fetching keys: it runs while the queue waits
 * for it, so it must not call that queue.
 */
fun interface KeyProvider {
    fun keys(): List<Key>
}

/** The text a failed provider reports: the exception's message, or its class name. */
internal class KeyProviderAdapter(private val provider: KeyProvider) : FfiKeyProvider {
    override fun keys(): KeysAnswer =
        try {
            KeysAnswer.Keys(provider.keys().map { it.ffi })
        } catch (e: Throwable) {
            KeysAnswer.Failed(e.message?.takeIf { it.isNotEmpty() } ?: e::class.java.name)
        }
}
