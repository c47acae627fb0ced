//! Encryption keys from JS (`new Queue(path, { key })`, `q.rekey(key)`): text becomes
//! `Key::from_text`, a Buffer `Key::raw`, a function the core's key provider.
//!
//! The core asks a provider from whichever thread needs the key: the JS thread during a
//! sync call (the constructor included), tokio and libuv workers during async calls, its
//! own background threads. On the JS thread the function is called directly: a call
//! queued to the thread we are blocking would never run. Elsewhere the call goes through a
//! weak threadsafe function and the asking thread waits for the answer, at most
//! `ANSWER_WAIT` (the JS thread may itself be waiting on the core, e.g. for the lock held
//! while the provider is asked, so the wait must end). `index.js` wraps the user's function
//! so it never throws: a throw or a wrong return type comes back as `error`, which the
//! core reports as an ENCRYPTION error. Key values never appear in an error text.

use crate::errors::{OrJs, Result};
use ferrymq::{Key, Options};
use napi::bindgen_prelude::{Buffer, Either, Either3, Function, FunctionRef};
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi::{Env, Status};
use napi_derive::napi;
use std::mem::ManuallyDrop;
use std::sync::mpsc::{RecvTimeoutError, sync_channel};
use std::thread::ThreadId;
use std::time::Duration;

/// How long a thread other than the JS thread waits for a provider's answer.
const ANSWER_WAIT: Duration = Duration::from_secs(10);

/// What `index.js`'s wrapper around a key provider returns: the keys (newest first) or
/// the reason there are none.
#[napi(object)]
pub struct KeyAnswer {
    pub keys: Option<Vec<Either<String, Buffer>>>,
    pub error: Option<String>,
}

/// A key as JS hands it over: text or 32 raw bytes.
pub type JsKey = Either<String, Buffer>;

/// The `key` argument of the NativeQueue constructor.
pub type KeyArg<'f> = Either3<String, Buffer, Function<'f, (), KeyAnswer>>;

type Tsfn = ThreadsafeFunction<(), KeyAnswer, (), Status, false, true>;

pub fn key(k: &JsKey) -> ferrymq::Result<Key> {
    match k {
        Either::A(text) => Key::from_text(text),
        Either::B(bytes) => Key::raw(bytes),
    }
}

/// `o` with the key or key provider `k`.
pub fn with_key(env: &Env, o: Options, k: KeyArg<'_>) -> Result<Options> {
    Ok(match k {
        Either3::A(text) => o.key(Key::from_text(&text).js()?),
        Either3::B(bytes) => o.key(Key::raw(&bytes).js()?),
        Either3::C(f) => {
            let provider = JsProvider {
                js_thread: std::thread::current().id(),
                env: env.raw() as usize,
                direct: ManuallyDrop::new(f.create_ref().js()?),
                queued: f
                    .build_threadsafe_function::<()>()
                    .callee_handled::<false>()
                    .weak::<true>()
                    .build()
                    .js()?,
            };
            o.key_provider(move || provider.keys())
        }
    })
}

fn answer_keys(a: KeyAnswer) -> std::result::Result<Vec<Key>, String> {
    if let Some(e) = a.error {
        return Err(e);
    }
    a.keys
        .unwrap_or_default()
        .iter()
        .enumerate()
        .map(|(i, k)| key(k).map_err(|e| format!("key {i} of the list: {e}")))
        .collect()
}

struct JsProvider {
    js_thread: ThreadId,
    /// The JS thread's `napi_env`, used on that thread only.
    env: usize,
    /// Deleted on the JS thread only (napi references are not thread-safe); a provider
    /// dropped on another thread leaks this one reference.
    direct: ManuallyDrop<FunctionRef<(), KeyAnswer>>,
    queued: Tsfn,
}

impl JsProvider {
    fn keys(&self) -> std::result::Result<Vec<Key>, String> {
        if std::thread::current().id() == self.js_thread {
            self.call_here()
        } else {
            self.call_queued()
        }
    }

    fn call_here(&self) -> std::result::Result<Vec<Key>, String> {
        let env = Env::from_raw(self.env as napi::sys::napi_env);
        let answer = self
            .direct
            .borrow_back(&env)
            .and_then(|f| f.call(()))
            .map_err(|e| format!("calling it failed: {}", e.reason))?;
        answer_keys(answer)
    }

    fn call_queued(&self) -> std::result::Result<Vec<Key>, String> {
        let (tx, rx) = sync_channel(1);
        let status = self.queued.call_with_return_value(
            (),
            ThreadsafeFunctionCallMode::NonBlocking,
            move |answer, _env| {
                let keys = answer
                    .map_err(|e| format!("calling it failed: {}", e.reason))
                    .and_then(answer_keys);
                let _ = tx.send(keys);
                Ok(())
            },
        );
        if status != Status::Ok {
            return Err(format!("the Node.js thread cannot take calls ({status})"));
        }
        match rx.recv_timeout(ANSWER_WAIT) {
            Ok(keys) => keys,
            Err(RecvTimeoutError::Timeout) => Err(format!(
                "it was called from a worker thread and the JS thread did not run it within {} s",
                ANSWER_WAIT.as_secs()
            )),
            Err(RecvTimeoutError::Disconnected) => {
                Err("the Node.js thread dropped the call (exiting?)".into())
            }
        }
    }
}

impl Drop for JsProvider {
    fn drop(&mut self) {
        if std::thread::current().id() == self.js_thread {
            // SAFETY: on the JS thread that created the reference, dropped once.
            unsafe { ManuallyDrop::drop(&mut self.direct) };
        }
    }
}
