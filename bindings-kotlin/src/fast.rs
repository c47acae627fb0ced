//! Structure-free entry points for the hot calls: publish, receive (no wait), and settling
//! a delivery (ack, nack, extend).
//!
//! Why: every call of uniffi's generated Kotlin allocates JNA `Structure`s (the call
//! status with its nested `RustBuffer`, one `RustBuffer` per string, byte array or record
//! argument, and the status of the handle clone). Each is backed by a JNA `Memory` that
//! JNA registers in a global map until the garbage collector cleans it: ~12 µs per
//! structure on a 2-core machine, against 0.06 µs for the native call itself. These
//! functions take and return only integers and byte arrays (JNA direct mapping, no
//! structure), so a call costs one crossing.
//!
//! They are still a conversion layer, in uniffi's own format: arguments arrive as the
//! bytes uniffi's generated Kotlin converters write (`FfiConverterString.write`, ...)
//! and are read here with uniffi's `Lift::try_read`; results and errors go back written
//! by uniffi's `Lower::write` / `LowerError::lower_error`, and Kotlin reads them with the
//! generated converters.
//!
//! Handles (a queue's, a delivery's) are ids in registries (`crate::handles`), so any
//! integer is safe to pass: an unknown or released one is `InvalidArgument`.
//!
//! Protocol: every function returns `OK`, `ERR` or `PANIC` and writes to `out` (two
//! `i64`s): an integer result in `out[0]`, or a buffer (`out[0]` = address, `out[1]` =
//! length) that the caller copies and frees with `ferrymq_kt_free`. On `ERR` the buffer is
//! the serialized `FfiError`; on `PANIC` it is the panic message in UTF-8.

use crate::UniFfiTag;
use crate::convert::{PublishArgs, ReceiveArgs, opt_secs, secs};
use crate::delivery::{FfiDelivery, Received, received};
use crate::error::{FfiError, FfiResult};
use crate::queue::FfiQueue;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::SystemTime;
use uniffi::{Lift, Lower, LowerError};

const OK: i32 = 0;
const ERR: i32 = 1;
const PANIC: i32 = 2;

enum Reply {
    Nothing,
    Int(i64),
    Bytes(Vec<u8>),
}

/// Writes `bytes` to `out` as an owned buffer (address, length) for `ferrymq_kt_free`.
fn give(out: *mut i64, bytes: Vec<u8>) {
    let b = bytes.into_boxed_slice();
    let len = b.len();
    let ptr = Box::into_raw(b) as *mut u8;
    // SAFETY: the caller passes an array of two i64s as `out`.
    unsafe {
        *out = ptr as usize as i64;
        *out.add(1) = len as i64;
    }
}

/// Runs one call: maps its result, error or panic to the protocol above.
fn call(out: *mut i64, f: impl FnOnce() -> FfiResult<Reply>) -> i32 {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(Reply::Nothing)) => OK,
        Ok(Ok(Reply::Int(v))) => {
            // SAFETY: the caller passes an array of two i64s as `out`.
            unsafe { *out = v };
            OK
        }
        Ok(Ok(Reply::Bytes(b))) => {
            give(out, b);
            OK
        }
        Ok(Err(e)) => {
            give(
                out,
                <FfiError as LowerError<UniFfiTag>>::lower_error(e).destroy_into_vec(),
            );
            ERR
        }
        Err(p) => {
            let text = p
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| p.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "Rust panic".to_string());
            give(out, text.into_bytes());
            PANIC
        }
    }
}

/// The argument bytes of a call.
///
/// # Safety
/// `input` must point to `len` readable bytes (or `len` be 0).
unsafe fn input<'a>(input: *const u8, len: i32) -> &'a [u8] {
    if len <= 0 || input.is_null() {
        return &[];
    }
    // SAFETY: per the contract above.
    unsafe { std::slice::from_raw_parts(input, len as usize) }
}

/// Reads one argument in uniffi's format. A failure is a bug in the Kotlin layer (it writes
/// with uniffi's generated converters), so it panics and reaches Kotlin as an internal error.
fn read<T: Lift<UniFfiTag>>(buf: &mut &[u8]) -> T {
    T::try_read(buf).unwrap_or_else(|e| panic!("ferrymq: malformed argument from Kotlin: {e}"))
}

/// Declares `extern "C" fn $name(q, args, len, out) -> i32`: a call on the queue behind
/// handle `q`, its arguments read from the `len` bytes at `args` (uniffi's format) by the
/// body, its reply or error written to `out`.
macro_rules! queue_call {
    ($(#[doc = $doc:expr])* $name:ident(|$q:ident, $buf:ident| $body:block)) => {
        $(#[doc = $doc])*
        ///
        /// # Safety
        /// `args` points to `len` bytes; `out` to 2 i64s. `q` may be any integer: one that
        /// is not a live handle from `FfiQueue::fast_handle` is `InvalidArgument`.
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn $name(q: u64, args: *const u8, len: i32, out: *mut i64) -> i32 {
            // SAFETY: per the contract of this function.
            let mut bytes = unsafe { input(args, len) };
            call(out, || {
                let $q = FfiQueue::get(q)?;
                let $buf = &mut bytes;
                $body
            })
        }
    };
}

queue_call! {
    /// `FfiQueue::publish` (topic, payload, options) in one crossing; `out[0]` is the id.
    ferrymq_kt_publish(|q, buf| {
        let topic: String = read(buf);
        let payload: Vec<u8> = read(buf);
        let options: PublishArgs = read(buf);
        Ok(Reply::Int(q.q.publish(&topic, payload, options.into_core()?)?))
    })
}

queue_call! {
    /// `FfiQueue::receive` (group, args) in one crossing; the reply is a `Vec<Received>`.
    /// Blocks for `args.wait_secs`: Kotlin calls it only with no wait.
    ferrymq_kt_receive(|q, buf| {
        let group: String = read(buf);
        let args: ReceiveArgs = read(buf);
        let ds = q.q.receive(&group, args.into_core()?)?;
        let rs: Vec<Received> = ds.into_iter().map(|d| received(&q.q, d)).collect();
        let mut reply = Vec::new();
        <Vec<Received> as Lower<UniFfiTag>>::write(rs, &mut reply);
        Ok(Reply::Bytes(reply))
    })
}

/// Acks the delivery behind a `Received` handle. The delivery is copied out of its lock
/// before the write (see `FfiDelivery::snapshot`).
///
/// # Safety
/// `out` points to 2 i64s. `d` may be any integer: one that is not a live handle from
/// `Received::handle` is `InvalidArgument`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ferrymq_kt_ack(d: u64, out: *mut i64) -> i32 {
    call(out, || {
        let d = FfiDelivery::get(d)?;
        d.q.ack(&d.snapshot())?;
        Ok(Reply::Nothing)
    })
}

/// Nacks the delivery; `args` is (reason: String, delay_secs: Option<f64>).
///
/// # Safety
/// As `ferrymq_kt_ack`, and `args` points to `len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ferrymq_kt_nack(d: u64, args: *const u8, len: i32, out: *mut i64) -> i32 {
    // SAFETY: per the contract of this function.
    let mut buf = unsafe { input(args, len) };
    call(out, || {
        let d = FfiDelivery::get(d)?;
        let reason: String = read(&mut buf);
        let delay = opt_secs("delay", read::<Option<f64>>(&mut buf))?;
        d.q.nack(&d.snapshot(), &reason, delay)?;
        Ok(Reply::Nothing)
    })
}

/// Renews the lease to `lease_secs` from now; the reply is the new end (a uniffi timestamp).
///
/// # Safety
/// As `ferrymq_kt_ack`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ferrymq_kt_extend(d: u64, lease_secs: f64, out: *mut i64) -> i32 {
    call(out, || {
        let d = FfiDelivery::get(d)?;
        let lease = secs("lease", lease_secs)?;
        Ok(Reply::Bytes(timestamp(d.extend(lease)?)))
    })
}

/// The end of the delivery's lease (a uniffi timestamp).
///
/// # Safety
/// As `ferrymq_kt_ack`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ferrymq_kt_lease_until(d: u64, out: *mut i64) -> i32 {
    call(out, || {
        Ok(Reply::Bytes(timestamp(FfiDelivery::get(d)?.lease_until())))
    })
}

fn timestamp(t: SystemTime) -> Vec<u8> {
    let mut buf = Vec::new();
    <SystemTime as Lower<UniFfiTag>>::write(t, &mut buf);
    buf
}

/// Drops the reference of a `Received` handle; a no-op for any other integer.
#[unsafe(no_mangle)]
pub extern "C" fn ferrymq_kt_delivery_release(d: u64) {
    FfiDelivery::release(d)
}

/// How many delivery handles are live (handed out and not released): for the tests.
#[unsafe(no_mangle)]
pub extern "C" fn ferrymq_kt_live_deliveries() -> i64 {
    FfiDelivery::live() as i64
}

/// Frees a buffer written to `out` by one of the calls above.
///
/// # Safety
/// `ptr` and `len` exactly as written to `out`, freed once.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ferrymq_kt_free(ptr: i64, len: i64) {
    let slice = std::ptr::slice_from_raw_parts_mut(ptr as usize as *mut u8, len as usize);
    // SAFETY: per the contract above, this is the box `give` leaked.
    drop(unsafe { Box::from_raw(slice) });
}
