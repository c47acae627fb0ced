//! Half messages and check-back (RocketMQ transactional messages).
//!
//! `prepare` stores a message invisible; `commit` fans it out, `rollback` discards it (the
//! row stays for audit). A half message left undecided past `check_after` is put to the
//! checker registered for its topic, again every `check_interval`, and rolled back after
//! `check_max` unknown answers. Each check is claimed under a token first, so when several
//! processes registered a checker for the topic exactly one of them answers it; a checker
//! that dies mid-check leaves the message to be claimed again after `check_interval`.

use crate::api::MessageInfo;
use crate::clock::duration_to_ms;
use crate::counters::Event;
use crate::error::{Error, Result};
use crate::inner::{Inner, lock};
use crate::model::Resolution;
use crate::store::{self, half::Decided};
use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::thread::JoinHandle;
use std::time::Duration;

/// A check-back callback. An `Err` (or a panic) counts as an unknown answer and its
/// text is kept in the message's check history.
pub type Checker = dyn Fn(&MessageInfo) -> std::result::Result<Resolution, String> + Send + Sync;

/// How often the background thread looks for half messages due for a check.
const TICK: Duration = Duration::from_millis(500);
/// Half messages claimed per round, so one slow checker never holds many.
const CHECK_BATCH: usize = 32;

#[derive(Default)]
pub(crate) struct CheckerRegistry {
    checkers: Mutex<BTreeMap<String, Arc<Checker>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
    stop: Arc<(Mutex<bool>, Condvar)>,
}

impl CheckerRegistry {
    pub fn set(&self, topic: &str, checker: Arc<Checker>) {
        lock(&self.checkers).insert(topic.to_owned(), checker);
    }

    pub fn remove(&self, topic: &str) -> bool {
        lock(&self.checkers).remove(topic).is_some()
    }

    fn snapshot(&self) -> Vec<(String, Arc<Checker>)> {
        lock(&self.checkers)
            .iter()
            .map(|(t, c)| (t.clone(), Arc::clone(c)))
            .collect()
    }

    /// Starts the background checker thread on first use (never at open: a process that
    /// forks after opening must not inherit a thread it does not have).
    pub fn ensure_thread(&self, queue: Weak<Inner>) -> Result<()> {
        let mut slot = lock(&self.thread);
        if slot.is_some() {
            return Ok(());
        }
        let stop = Arc::clone(&self.stop);
        let handle = std::thread::Builder::new()
            .name("ferrymq-checker".into())
            .spawn(move || background(queue, stop))
            .map_err(|e| Error::Storage(format!("cannot start the checker thread: {e}")))?;
        *slot = Some(handle);
        Ok(())
    }

    pub fn stop(&self) {
        let (flag, cv) = &*self.stop;
        *lock(flag) = true;
        cv.notify_all();
    }

    /// In a forked child: the thread is the parent's, so there is nothing to stop or join.
    pub fn forget_thread(&self) {
        if let Ok(mut slot) = self.thread.try_lock()
            && let Some(handle) = slot.take()
        {
            std::mem::forget(handle);
        }
    }

    /// Stops the thread and waits for it, unless called from that very thread.
    pub fn stop_and_join(&self) {
        self.stop();
        let handle = lock(&self.thread).take();
        if let Some(h) = handle
            && h.thread().id() != std::thread::current().id()
        {
            let _ = h.join();
        }
    }
}

fn background(queue: Weak<Inner>, stop: Arc<(Mutex<bool>, Condvar)>) {
    let (flag, cv) = &*stop;
    loop {
        {
            let guard = lock(flag);
            let (guard, _) = cv
                .wait_timeout_while(guard, TICK, |stopped| !*stopped)
                .unwrap_or_else(|e| e.into_inner());
            if *guard {
                return;
            }
        }
        let Some(inner) = queue.upgrade() else { return };
        if inner.is_closed() {
            return;
        }
        // Errors (a busy file, a closed queue) are retried next tick; the checks stay due.
        let _ = run_checks(&inner);
    }
}

fn ask(checker: &Checker, info: &MessageInfo) -> (Resolution, Option<String>) {
    match catch_unwind(AssertUnwindSafe(|| checker(info))) {
        Ok(Ok(r)) => (r, None),
        Ok(Err(e)) => (Resolution::Unknown, Some(e)),
        Err(panic) => (
            Resolution::Unknown,
            Some(format!(
                "checker panicked: {}",
                crate::error::panic_text(&*panic)
            )),
        ),
    }
}

/// Asks this queue's checkers about every half message due for a check; returns how
/// many were committed or rolled back by this call.
pub(crate) fn run_checks(inner: &Arc<Inner>) -> Result<usize> {
    inner.check_open()?;
    let mut resolved = 0;
    let mut first_error = None;
    for (topic, checker) in inner.checks.snapshot() {
        let Some(topic_id) = inner.read(|c| store::publish::find_topic(c, &topic))? else {
            continue;
        };
        loop {
            let now = inner.now();
            if !inner.read(|c| store::half::checks_due(c, topic_id, now))? {
                break;
            }
            let token = inner.rng.token();
            let hold = now.saturating_add(duration_to_ms(inner.opts.check_interval));
            let ids = inner.write(false, |c| {
                store::half::claim_checks(c, topic_id, now, hold, token, CHECK_BATCH)
            })?;
            for &id in &ids {
                // One failing message must not strand the others claimed with it.
                let outcome = inner
                    .read(|c| store::inspect::message(c, id, now))
                    .and_then(|info| {
                        let (answer, error) = ask(&*checker, &info);
                        let error = error.as_deref().map(crate::validate::error_text);
                        let decided = answer_check(inner, id, token, answer, error.as_deref())?;
                        let event = match answer {
                            Resolution::Commit => Event::CheckCommit,
                            Resolution::Rollback => Event::CheckRollback,
                            Resolution::Unknown => Event::CheckUnknown,
                        };
                        inner.counters.add(event, &topic, "", 1);
                        Ok(decided)
                    });
                match outcome {
                    Ok(decided) => resolved += usize::from(decided),
                    Err(e) => {
                        first_error.get_or_insert(e);
                    }
                }
            }
            if ids.len() < CHECK_BATCH {
                break;
            }
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(resolved),
    }
}

/// Applies one answer; true if it decided the message.
fn answer_check(
    inner: &Arc<Inner>,
    id: i64,
    token: i64,
    answer: Resolution,
    error: Option<&str>,
) -> Result<bool> {
    let now = inner.now();
    let next = now.saturating_add(duration_to_ms(inner.opts.check_interval));
    let check_max = inner.opts.check_max;
    inner.write(answer == Resolution::Commit, |c| {
        let decided = match answer {
            Resolution::Commit => store::half::commit(c, id, Some(token))? == Decided::Now,
            Resolution::Rollback => store::half::rollback(c, id, Some(token))? == Decided::Now,
            Resolution::Unknown => store::half::unknown(c, id, token, next, check_max)?,
        };
        store::half::record_check(c, id, now, answer.as_str(), error)?;
        Ok(decided)
    })
}

/// A prepared (half) message: invisible to every consumer group until committed.
#[derive(Clone)]
pub struct HalfMessage {
    pub id: i64,
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for HalfMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HalfMessage").field("id", &self.id).finish()
    }
}

impl HalfMessage {
    /// Makes the message deliverable. Committing twice is a no-op; committing a rolled
    /// back message is an `InvalidArgument` error.
    pub fn commit(&self) -> Result<()> {
        commit(&self.inner, self.id)
    }

    /// Discards the message (kept for audit). Rolling back a committed message is an
    /// `InvalidArgument` error.
    pub fn rollback(&self) -> Result<()> {
        rollback(&self.inner, self.id)
    }
}

/// The producer's commit. `NotFound` for an unknown id, `InvalidArgument` for a message
/// that is not a half message or was rolled back.
pub(crate) fn commit(inner: &Arc<Inner>, id: i64) -> Result<()> {
    inner.write(true, |c| decide(c, inner, id, true).map(|_| ()))
}

/// The producer's rollback. `NotFound` for an unknown id, `InvalidArgument` for a
/// message that is not a half message or was committed.
pub(crate) fn rollback(inner: &Arc<Inner>, id: i64) -> Result<()> {
    inner.write(false, |c| decide(c, inner, id, false).map(|_| ()))
}

/// An operator's commit (`commit`) or rollback (`Queue::commit_half`/`rollback_half`):
/// as the producer's, plus its audit record in the same transaction. The checker's
/// answers (`answer_check`) are not operator actions and record nothing.
pub(crate) fn decide_by_hand(
    inner: &Arc<Inner>,
    id: i64,
    commit: bool,
    reason: Option<&str>,
) -> Result<()> {
    let action = if commit {
        "commit_half"
    } else {
        "rollback_half"
    };
    inner.write(commit, |c| {
        let changed = decide(c, inner, id, commit)?;
        let detail = serde_json::json!({ "changed": changed });
        crate::audit::record(c, inner, action, &id.to_string(), Some(detail), reason)?;
        Ok(())
    })
}

/// Commits or rolls back `id` inside the caller's transaction; true if this call decided it.
fn decide(c: &rusqlite::Connection, inner: &Inner, id: i64, commit: bool) -> Result<bool> {
    let decided = if commit {
        store::half::commit(c, id, None)?
    } else {
        store::half::rollback(c, id, None)?
    };
    if decided == Decided::Now {
        store::half::stamp_decided(c, id, inner.now())?;
    }
    Ok(decided == Decided::Now)
}
