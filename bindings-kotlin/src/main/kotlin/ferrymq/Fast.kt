package ferrymq

import com.sun.jna.Native
import com.sun.jna.Pointer
import ferrymq.ffi.FfiConverterByteArray
import ferrymq.ffi.FfiConverterOptionalDouble
import ferrymq.ffi.FfiConverterSequenceTypeReceived
import ferrymq.ffi.FfiConverterString
import ferrymq.ffi.FfiConverterTimestamp
import ferrymq.ffi.FfiConverterTypeFfiError
import ferrymq.ffi.FfiConverterTypePublishArgs
import ferrymq.ffi.FfiConverterTypeReceiveArgs
import ferrymq.ffi.PublishArgs
import ferrymq.ffi.ReceiveArgs
import ferrymq.ffi.Received
import java.lang.ref.Cleaner
import java.lang.ref.Reference
import java.nio.ByteBuffer
import java.nio.ByteOrder
import java.time.Instant

/**
 * The hot calls (publish, receive with no wait, ack, nack, extend) through the
 * structure-free entry points of the cdylib (`src/fast.rs`), bound with JNA direct
 * mapping: only `Long`, `Int`, `Double`, `ByteArray` and `LongArray` cross, so a call
 * allocates no JNA `Structure` (each costs ~12 µs: JNA registers its native memory in a
 * global map until the garbage collector cleans it; the generated uniffi calls allocate
 * two to five per call).
 *
 * Arguments are written, and results and errors read, with uniffi's generated converters:
 * the bytes are uniffi's own format, and this is a conversion layer like the rest.
 *
 * Handles are ids in registries of the cdylib, not pointers: an unknown or released one
 * is [FerrymqException.InvalidArgument], never a crash.
 */
internal object Fast {
    init {
        // The library the generated layer loads (same name and override property).
        val name = System.getProperty("uniffi.component.ferrymq_uniffi.libraryOverride") ?: "ferrymq_uniffi"
        Native.register(Fast::class.java, name)
    }

    /** Releases the handles of deliveries once their Kotlin owner is unreachable. */
    val cleaner: Cleaner = Cleaner.create()

    private const val OK = 0
    private const val ERR = 1

    external fun ferrymq_kt_publish(q: Long, args: ByteArray, len: Int, out: LongArray): Int
    external fun ferrymq_kt_receive(q: Long, args: ByteArray, len: Int, out: LongArray): Int
    external fun ferrymq_kt_ack(d: Long, out: LongArray): Int
    external fun ferrymq_kt_nack(d: Long, args: ByteArray, len: Int, out: LongArray): Int
    external fun ferrymq_kt_extend(d: Long, leaseSecs: Double, out: LongArray): Int
    external fun ferrymq_kt_lease_until(d: Long, out: LongArray): Int
    external fun ferrymq_kt_delivery_release(d: Long)
    external fun ferrymq_kt_free(ptr: Long, len: Long)
    external fun ferrymq_kt_live_deliveries(): Long

    /** Arguments in uniffi's format: [size] is an upper bound (the converters' allocationSize). */
    private inline fun args(size: ULong, write: (ByteBuffer) -> Unit): ByteBuffer =
        ByteBuffer.wrap(ByteArray(size.toInt())).order(ByteOrder.BIG_ENDIAN).also(write)

    /** Reads the reply buffer of a call that returned OK, then frees it. */
    private inline fun <T> reply(out: LongArray, read: (ByteBuffer) -> T): T {
        try {
            return read(Pointer(out[0]).getByteBuffer(0, out[1]).order(ByteOrder.BIG_ENDIAN))
        } finally {
            ferrymq_kt_free(out[0], out[1])
        }
    }

    /** Throws what a call that did not return OK reported. */
    private fun fail(code: Int, out: LongArray): Nothing {
        if (code == ERR) throw reply(out) { FfiConverterTypeFfiError.read(it) }.toFerrymq()
        val text = reply(out) { b -> ByteArray(b.remaining()).also { b.get(it) }.decodeToString() }
        throw FerrymqException.Storage("internal error in ferrymq (please report): $text")
    }

    /** Runs one call; [owner] holds the handle and stays reachable until it returns. */
    private inline fun <T> call(owner: Any, native: (LongArray) -> Int, result: (LongArray) -> T): T {
        val out = LongArray(2)
        try {
            val code = native(out)
            if (code != OK) fail(code, out)
            return result(out)
        } finally {
            Reference.reachabilityFence(owner)
        }
    }

    fun publish(owner: Any, q: Long, topic: String, payload: ByteArray, options: PublishArgs): Long {
        val b = args(
            FfiConverterString.allocationSize(topic) + FfiConverterByteArray.allocationSize(payload) +
                FfiConverterTypePublishArgs.allocationSize(options),
        ) {
            FfiConverterString.write(topic, it)
            FfiConverterByteArray.write(payload, it)
            FfiConverterTypePublishArgs.write(options, it)
        }
        return call(owner, { ferrymq_kt_publish(q, b.array(), b.position(), it) }) { it[0] }
    }

    fun receive(owner: Any, q: Long, group: String, options: ReceiveArgs): List<Received> {
        val b = args(FfiConverterString.allocationSize(group) + FfiConverterTypeReceiveArgs.allocationSize(options)) {
            FfiConverterString.write(group, it)
            FfiConverterTypeReceiveArgs.write(options, it)
        }
        return call(owner, { ferrymq_kt_receive(q, b.array(), b.position(), it) }) { out ->
            reply(out) { FfiConverterSequenceTypeReceived.read(it) }
        }
    }

    fun ack(owner: Any, d: Long): Unit = call(owner, { ferrymq_kt_ack(d, it) }) {}

    fun nack(owner: Any, d: Long, reason: String, delaySecs: Double?) {
        val b = args(FfiConverterString.allocationSize(reason) + FfiConverterOptionalDouble.allocationSize(delaySecs)) {
            FfiConverterString.write(reason, it)
            FfiConverterOptionalDouble.write(delaySecs, it)
        }
        call(owner, { ferrymq_kt_nack(d, b.array(), b.position(), it) }) {}
    }

    fun extend(owner: Any, d: Long, leaseSecs: Double): Instant =
        call(owner, { ferrymq_kt_extend(d, leaseSecs, it) }) { out -> reply(out) { FfiConverterTimestamp.read(it) } }

    fun leaseUntil(owner: Any, d: Long): Instant =
        call(owner, { ferrymq_kt_lease_until(d, it) }) { out -> reply(out) { FfiConverterTimestamp.read(it) } }
}

/** Cleaner action: must not refer to the owner, or the owner would never be unreachable. */
internal class ReleaseDelivery(private val raw: Long) : Runnable {
    override fun run() = Fast.ferrymq_kt_delivery_release(raw)
}
