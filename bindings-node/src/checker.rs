//! Half-message checkers written in JS. The core asks on its checker thread; the question
//! goes to the JS thread through a weak threadsafe function (it does not keep the process
//! alive), and `index.js` calls the user's function (sync or async) and answers through
//! `answerCheck`. The checker thread waits for that answer, so a throwing, rejecting or
//! silent checker becomes an error the core records as an unknown answer.

use crate::views::{MessageInfo, ToHost};
use ferrymq::Resolution;
use napi::Status;
use napi::bindgen_prelude::Unknown;
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::mpsc::{RecvTimeoutError, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The longest the checker thread waits for a JS answer before calling it unknown (the
/// core asks again after its check interval). It never waits past the check interval
/// either: the core's claim on the message lasts that long, and a later answer would come
/// after another checker may have been asked.
const MAX_ANSWER_WAIT: Duration = Duration::from_secs(60);

pub type Dispatch = ThreadsafeFunction<
    (u32, MessageInfo),
    Unknown<'static>,
    (u32, MessageInfo),
    Status,
    false,
    true,
>;

type Answer = Result<Resolution, String>;

pub struct Bridge {
    pending: Mutex<HashMap<u32, SyncSender<Answer>>>,
    next: AtomicU32,
    closed: AtomicBool,
    answer_wait: Duration,
}

impl Bridge {
    pub fn new(check_interval: Duration) -> Self {
        Bridge {
            pending: Mutex::default(),
            next: AtomicU32::new(0),
            closed: AtomicBool::new(false),
            answer_wait: check_interval.min(MAX_ANSWER_WAIT),
        }
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, HashMap<u32, SyncSender<Answer>>> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Unblocks every waiting question: the queue is closing.
    pub fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        self.pending().clear();
    }

    pub fn answer(&self, id: u32, resolution: Option<String>, error: Option<String>) {
        let Some(tx) = self.pending().remove(&id) else {
            return; // answered too late: the question already timed out
        };
        let answer = match (error, resolution.as_deref()) {
            (Some(e), _) => Err(e),
            (None, Some("commit")) => Ok(Resolution::Commit),
            (None, Some("rollback")) => Ok(Resolution::Rollback),
            (None, Some("unknown")) => Ok(Resolution::Unknown),
            (None, other) => Err(format!(
                "the checker returned {}, not a Resolution ('commit', 'rollback' or 'unknown')",
                other.map_or("undefined".to_owned(), |s| format!("{s:?}"))
            )),
        };
        let _ = tx.send(answer);
    }

    fn ask(&self, dispatch: &Dispatch, info: &ferrymq::MessageInfo) -> Answer {
        if self.closed.load(Ordering::SeqCst) {
            return Err("the queue is closing".into());
        }
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = sync_channel(1);
        self.pending().insert(id, tx);
        let status = dispatch.call(
            (id, info.clone().to_host()),
            ThreadsafeFunctionCallMode::NonBlocking,
        );
        if status != Status::Ok {
            self.pending().remove(&id);
            return Err(format!("the Node.js thread cannot take calls ({status})"));
        }
        match rx.recv_timeout(self.answer_wait) {
            Ok(answer) => answer,
            Err(RecvTimeoutError::Timeout) => {
                self.pending().remove(&id);
                Err(format!(
                    "the checker did not answer within {} ms",
                    self.answer_wait.as_millis()
                ))
            }
            Err(RecvTimeoutError::Disconnected) => {
                Err("the queue closed before the checker answered".into())
            }
        }
    }
}

pub fn checker(
    bridge: Arc<Bridge>,
    dispatch: Dispatch,
) -> impl Fn(&ferrymq::MessageInfo) -> Answer + Send + Sync + 'static {
    move |info| bridge.ask(&dispatch, info)
}
