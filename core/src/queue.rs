//! The `Queue` handle: a cheap clone over one queue's state. Every public call lives
//! here, validates what is cheap to validate, and delegates to a capability module
//! (`publish`, `receive`, `outbox`, `half`, `dlq`, `inspect`, `retention`, `worker`).
//! Operator actions (pause, resume, schedule, unschedule, commit_half, rollback_half,
//! redrive, the purges, vacuum) also append to the audit trail (`audit`), with the reason
//! of the handle `with_reason` gave.

use crate::api::{AuditRecord, DeadLetter, FileCheck, MessageInfo, ScheduleInfo, Stats};
use crate::audit::{self};
use crate::cipher::Key;
use crate::clock::duration_to_ms;
use crate::counters::Event;
use crate::error::{Error, Result};
use crate::half::{self, Checker, HalfMessage};
use crate::inner::Inner;
use crate::model::{Delivery, MessageState, Resolution};
use crate::options::{Message, Options, PublishOptions, ReceiveOptions, SubscribeOptions};
use crate::outbox::{self, Transaction};
use crate::publish::{self, Visibility};
use crate::schedule::{self, ScheduleOptions};
use crate::store::{self, settle};
use crate::validate;
use crate::{dlq, inspect, retention};
use crate::{filter::TagFilter, receive};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// A durable message queue in one SQLite file. Clone it freely: clones share one set of
/// connections. Safe to use from many threads.
#[derive(Clone)]
pub struct Queue {
    pub(crate) inner: Arc<Inner>,
    /// Recorded with this handle's operator actions (`with_reason`).
    reason: Option<Arc<str>>,
}

// A panic in a caller's closure leaves the queue consistent: connections roll back what
// they hold when dropped, and locks guard plain lists. So a queue may cross catch_unwind.
impl std::panic::UnwindSafe for Queue {}
impl std::panic::RefUnwindSafe for Queue {}

impl std::fmt::Debug for Queue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queue")
            .field("path", &self.inner.path)
            .finish()
    }
}

impl Queue {
    /// Opens (creating with mode 0600 and migrating if needed) the queue in `path`.
    pub fn open(path: impl AsRef<Path>, options: Options) -> Result<Queue> {
        Ok(Queue {
            inner: Inner::open(path.as_ref(), options)?,
            reason: None,
        })
    }

    /// A handle on the same open queue (same connections, a cheap clone) whose operator
    /// actions record `reason` in the audit trail (`audit`). `InvalidArgument` for a
    /// reason that is blank, longer than 1,000 bytes or contains NUL.
    pub fn with_reason(&self, reason: impl Into<String>) -> Result<Queue> {
        let reason = reason.into();
        audit::validate_reason(&reason)?;
        Ok(Queue {
            inner: Arc::clone(&self.inner),
            reason: Some(reason.into()),
        })
    }

    /// The reason this handle records with its operator actions, if any.
    pub fn reason(&self) -> Option<&str> {
        self.reason.as_deref()
    }

    /// The audit trail: records of operator actions with ids above `after` (from the
    /// first with `None`), oldest first, at most `limit` (1-10,000).
    pub fn audit(&self, after: Option<i64>, limit: usize) -> Result<Vec<AuditRecord>> {
        audit::list(&self.inner, after, limit)
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Stops the checker thread and closes idle connections; later calls fail with
    /// `Closed`. Closing twice is fine. In a process forked after the queue was opened,
    /// closing leaves the parent's file untouched (see the crate docs on `fork()`).
    pub fn close(&self) -> Result<()> {
        self.inner.close();
        Ok(())
    }

    pub fn is_closed(&self) -> bool {
        self.inner.is_closed()
    }

    /// Creates consumer group `group` on `topic`, or updates its settings. Messages
    /// published from now on that match the tag filter get a delivery for the group.
    pub fn subscribe(&self, group: &str, topic: &str, options: SubscribeOptions) -> Result<()> {
        validate::name("consumer group", group)?;
        validate::name("topic", topic)?;
        let filter = TagFilter::parse(&options.tags)?;
        validate::lease(options.lease)?;
        if let Some(n) = options.max_inflight {
            validate::flow_limit("max_inflight", n)?;
        }
        let rate = options.rate_limit()?;
        let inner = &self.inner;
        // Wakes waiting receives: a changed rate, burst or max_inflight may free them.
        inner.write(true, |c| {
            let topic_id = inner.topic_id(c, topic)?;
            let sub = store::groups::Subscription {
                group,
                topic_id,
                topic,
                filter: &filter,
                retry: &options.retry,
                lease_ms: duration_to_ms(options.lease),
                // flow_limit keeps it within i64.
                max_inflight: options.max_inflight.map(|n| n as i64),
                // flow_limit keeps the burst within i64 too.
                rate: rate.map(|(r, b)| (r, b as i64)),
            };
            store::groups::subscribe(c, &sub, inner.now())
        })
    }

    /// Stops handing out the group's deliveries, in every process on the file: receives
    /// return nothing (a waiting one keeps waiting) until `resume`. Messages keep
    /// arriving; deliveries already handed out keep their leases. `NotFound` for an
    /// unknown group.
    pub fn pause(&self, group: &str) -> Result<()> {
        self.set_paused(group, true)
    }

    /// Hands out the group's deliveries again after `pause`; waiting receives in every
    /// process pick them up (where the file has no wake file, other processes' within
    /// about `poll_interval`).
    pub fn resume(&self, group: &str) -> Result<()> {
        self.set_paused(group, false)
    }

    /// The Prometheus text exposition: the file's gauges, then this handle's counters
    /// (what this process did through it since it opened). See `metrics`.
    pub fn metrics(&self) -> Result<String> {
        crate::metrics::render(self)
    }

    fn set_paused(&self, group: &str, paused: bool) -> Result<()> {
        validate::name("consumer group", group)?;
        let inner = &self.inner;
        let action = if paused { "pause" } else { "resume" };
        // Resuming wakes waiting receives (in every process, through the wake file).
        inner.write(!paused, |c| {
            let changed = store::groups::set_paused(c, group, paused)?;
            let detail = serde_json::json!({ "changed": changed });
            audit::record(c, inner, action, group, Some(detail), self.reason())?;
            Ok(())
        })
    }

    /// Creates schedule `name`, publishing `payload` to `topic` on every tick of
    /// `options.cron` or `options.every`, or replaces the schedule of that name whole (its
    /// tick count starts over). Ticks are fired by the processes that receive from the
    /// file (see `ScheduleOptions` and `Missed` for what a tick publishes).
    /// `InvalidArgument` for a bad name, pattern, time zone, period or repeat, or both or
    /// neither of cron and every; nothing is changed then.
    pub fn schedule(
        &self,
        name: &str,
        topic: &str,
        payload: impl AsRef<[u8]>,
        options: ScheduleOptions,
    ) -> Result<()> {
        let row = schedule::prepare(&self.inner, name, topic, payload.as_ref(), &options)?;
        let inner = &self.inner;
        let detail = schedule::audit_detail(&row, &options);
        // Wakes waiting receives: a first tick due now is fired by the next claim.
        inner.write(true, |c| {
            store::schedules::put(c, &row, inner.now())?;
            audit::record(c, inner, "schedule", name, Some(detail), self.reason())?;
            Ok(())
        })?;
        inner.schedules.forget();
        Ok(())
    }

    /// Removes schedule `name`; ticks not yet fired give nothing. `NotFound` if unknown.
    pub fn unschedule(&self, name: &str) -> Result<()> {
        validate::name("schedule", name)?;
        let inner = &self.inner;
        inner.write(false, |c| {
            store::schedules::remove(c, name)?;
            audit::record(c, inner, "unschedule", name, None, self.reason())?;
            Ok(())
        })?;
        self.inner.schedules.forget();
        Ok(())
    }

    /// Every schedule of the file, by name. A pure read: it fires nothing, so a tick that
    /// came due since the last receive shows as a `next_at` in the past.
    pub fn schedules(&self) -> Result<Vec<ScheduleInfo>> {
        let rows = self.inner.read(store::schedules::list)?;
        rows.into_iter().map(schedule::info).collect()
    }

    /// Publishes one message durably; returns its id (for a repeated idempotency key,
    /// the first message's id, and nothing is enqueued).
    pub fn publish(
        &self,
        topic: &str,
        payload: impl AsRef<[u8]>,
        options: PublishOptions,
    ) -> Result<i64> {
        let payload = payload.as_ref();
        publish::validate(&self.inner, topic, payload, &options)?;
        let inner = Arc::clone(&self.inner);
        let (owned, payload) = (topic.to_owned(), payload.to_vec());
        let id = self.inner.write_shared(
            true,
            Box::new(move |c, matches| {
                publish::write(
                    &inner,
                    c,
                    matches,
                    &owned,
                    &payload,
                    &options,
                    Visibility::Committed,
                )
            }),
        )?;
        self.inner.counters.add(Event::Published, topic, "", 1);
        Ok(id)
    }

    /// Publishes every message in one commit: all or none.
    pub fn publish_batch(&self, messages: &[Message]) -> Result<Vec<i64>> {
        publish::validate_batch(&self.inner, messages)?;
        let inner = &self.inner;
        let ids = inner.write(true, |c| publish::write_batch(inner, c, messages))?;
        inner.counters.add_all(
            messages
                .iter()
                .map(|m| (Event::Published, m.topic.clone(), String::new())),
        );
        Ok(ids)
    }

    /// Publishes inside a transaction the caller opened on its own connection to this
    /// queue's file; the message becomes visible when the caller commits.
    pub fn publish_in(
        &self,
        tx: &rusqlite::Connection,
        topic: &str,
        payload: impl AsRef<[u8]>,
        options: PublishOptions,
    ) -> Result<i64> {
        let payload = payload.as_ref();
        publish::validate(&self.inner, topic, payload, &options)?;
        outbox::check_foreign(&self.inner, tx)?;
        self.inner.wake.expect_foreign_commit();
        publish::write_in_callers_tx(&self.inner, tx, topic, payload, &options)
    }

    /// Acks inside a transaction the caller opened on its own connection to this file.
    pub fn ack_in(&self, tx: &rusqlite::Connection, delivery: &Delivery) -> Result<()> {
        outbox::check_foreign(&self.inner, tx)?;
        self.inner.wake.expect_foreign_commit();
        store::all_or_nothing(tx, |c| settle::ack(c, delivery, self.inner.now()))
    }

    /// The inbox (`Transaction::inbox`) inside a transaction the caller opened on its own
    /// connection to this file: true the first time `key` is seen within `window`.
    pub fn inbox_in(
        &self,
        tx: &rusqlite::Connection,
        key: &str,
        window: Option<Duration>,
    ) -> Result<bool> {
        let window = crate::clock::duration_to_ms(outbox::inbox_window(key, window)?);
        outbox::check_foreign(&self.inner, tx)?;
        store::all_or_nothing(tx, |c| store::inbox::see(c, key, self.inner.now(), window))
    }

    /// Takes up to `max` deliveries of `group`, waiting up to `wait` for the first.
    /// Returns an empty list when nothing came.
    pub fn receive(&self, group: &str, options: ReceiveOptions) -> Result<Vec<Delivery>> {
        receive::receive_blocking(&self.inner, group, &options, None)
    }

    /// `receive` that asks `interrupted` every 50 ms while it waits and returns what it
    /// has (nothing) once that says yes: how a binding lets Ctrl-C end a long wait.
    pub fn receive_interruptible(
        &self,
        group: &str,
        options: ReceiveOptions,
        interrupted: &dyn Fn() -> bool,
    ) -> Result<Vec<Delivery>> {
        receive::receive_blocking(&self.inner, group, &options, Some(interrupted))
    }

    /// `receive` for tokio: waiting holds no thread. Call it inside a tokio runtime.
    pub async fn receive_async(
        &self,
        group: &str,
        options: ReceiveOptions,
    ) -> Result<Vec<Delivery>> {
        receive::receive_async(&self.inner, group, &options).await
    }

    /// Ends the delivery successfully. `LeaseLost` if another consumer took it over.
    pub fn ack(&self, delivery: &Delivery) -> Result<()> {
        let inner = Arc::clone(&self.inner);
        let d = delivery.handle();
        self.inner.write_shared(
            delivery.ordering_key.is_some(),
            Box::new(move |c, _| settle::ack(c, &d, inner.now()).map(|()| 0)),
        )?;
        let g = &delivery.consumer_group;
        self.inner.counters.add(Event::Acked, &delivery.topic, g, 1);
        Ok(())
    }

    /// Fails the delivery: it is retried after `delay`, or the policy's next delay, and
    /// goes dead once the policy's retries are used up.
    pub fn nack(&self, delivery: &Delivery, reason: &str, delay: Option<Duration>) -> Result<()> {
        self.nack_outcome(delivery, reason, delay).map(|_| ())
    }

    pub(crate) fn nack_outcome(
        &self,
        delivery: &Delivery,
        reason: &str,
        delay: Option<Duration>,
    ) -> Result<crate::retry::AfterFailure> {
        validate::nack_delay(delay)?;
        let reason = validate::error_text(reason);
        let inner = &self.inner;
        let after = inner.write(true, |c| {
            settle::nack(
                c,
                delivery,
                &reason,
                delay.map(duration_to_ms),
                inner.now(),
                inner.rng.unit(),
            )
        })?;
        let (topic, group) = (&delivery.topic, &delivery.consumer_group);
        inner.counters.add(Event::Nacked, topic, group, 1);
        if after == crate::retry::AfterFailure::Dead {
            inner.counters.add(Event::DeadLettered, topic, group, 1);
        }
        Ok(after)
    }

    /// Renews the lease to `lease` from now and updates `delivery.lease_until`.
    pub fn extend(&self, delivery: &mut Delivery, lease: Duration) -> Result<()> {
        validate::lease(lease)?;
        let inner = &self.inner;
        let until = inner.write(false, |c| {
            settle::extend(c, delivery, duration_to_ms(lease), inner.now())
        })?;
        delivery.lease_until = crate::clock::ms_to_system_time(until);
        Ok(())
    }

    pub async fn publish_async(
        &self,
        topic: &str,
        payload: Vec<u8>,
        options: PublishOptions,
    ) -> Result<i64> {
        // Asked on the caller's thread: the write runs on one of tokio's.
        self.inner.refuse_inside_transaction()?;
        let (q, topic) = (self.clone(), topic.to_owned());
        blocking(move || q.publish(&topic, payload, options)).await
    }

    pub async fn ack_async(&self, delivery: Delivery) -> Result<()> {
        self.inner.refuse_inside_transaction()?;
        let q = self.clone();
        blocking(move || q.ack(&delivery)).await
    }

    pub async fn nack_async(
        &self,
        delivery: Delivery,
        reason: String,
        delay: Option<Duration>,
    ) -> Result<()> {
        self.inner.refuse_inside_transaction()?;
        let q = self.clone();
        blocking(move || q.nack(&delivery, &reason, delay)).await
    }

    /// Opens a write transaction (the outbox). Prefer [`Queue::transaction`], which
    /// cannot forget to finish it.
    pub fn begin(&self) -> Result<Transaction> {
        Transaction::begin(&self.inner)
    }

    /// Runs `f` in one write transaction: commits if it returns `Ok`, rolls back if it
    /// returns `Err` or panics.
    pub fn transaction<T>(&self, f: impl FnOnce(&mut Transaction) -> Result<T>) -> Result<T> {
        let mut tx = self.begin()?;
        let value = f(&mut tx)?;
        tx.commit()?;
        Ok(value)
    }

    /// Stores a half message: invisible to every group until committed.
    pub fn prepare(
        &self,
        topic: &str,
        payload: impl AsRef<[u8]>,
        options: PublishOptions,
    ) -> Result<HalfMessage> {
        let payload = payload.as_ref();
        publish::validate(&self.inner, topic, payload, &options)?;
        let inner = &self.inner;
        let id = inner.write(false, |c| {
            publish::write(
                inner,
                c,
                &mut publish::Matches::default(),
                topic,
                payload,
                &options,
                Visibility::Half,
            )
        })?;
        Ok(HalfMessage {
            id,
            inner: Arc::clone(inner),
        })
    }

    /// Commits half message `id` by hand (an operator's decision: recorded in the audit
    /// trail, unlike `HalfMessage::commit` and the checker's answers). Committing twice is
    /// a no-op (recorded with `"changed": false`).
    pub fn commit_half(&self, id: i64) -> Result<()> {
        half::decide_by_hand(&self.inner, id, true, self.reason())
    }

    /// Rolls half message `id` back by hand, recorded like `commit_half`.
    pub fn rollback_half(&self, id: i64) -> Result<()> {
        half::decide_by_hand(&self.inner, id, false, self.reason())
    }

    /// Registers the check-back for `topic` (replacing an earlier one) and starts the
    /// background checker thread.
    pub fn set_checker<F>(&self, topic: &str, checker: F) -> Result<()>
    where
        F: Fn(&MessageInfo) -> std::result::Result<Resolution, String> + Send + Sync + 'static,
    {
        validate::name("topic", topic)?;
        self.inner.check_open()?;
        let checker: Arc<Checker> = Arc::new(checker);
        self.inner.checks.set(topic, checker);
        self.inner.checks.ensure_thread(Arc::downgrade(&self.inner))
    }

    /// Unregisters the topic's checker; false if there was none.
    pub fn remove_checker(&self, topic: &str) -> bool {
        self.inner.checks.remove(topic)
    }

    /// Runs the due checks now; returns how many half messages were decided.
    pub fn run_checks(&self) -> Result<usize> {
        half::run_checks(&self.inner)
    }

    /// Half messages still undecided (`Some(Half)`), rolled back (`Some(RolledBack)`), or
    /// both (`None`): the `limit` oldest (lowest ids) of those, oldest first. With `None`
    /// both states are one list in id order, so an old rolled-back message comes before a
    /// newer undecided one. Rolled-back messages stay listed until `purge_acked` removes
    /// them after its retention period.
    pub fn half_messages(
        &self,
        state: Option<MessageState>,
        limit: usize,
    ) -> Result<Vec<MessageInfo>> {
        inspect::half_messages(&self.inner, state, limit)
    }

    /// The group's dead letters, oldest death first.
    pub fn dead_letters(&self, group: &str, limit: usize) -> Result<Vec<DeadLetter>> {
        dlq::dead_letters(&self.inner, group, limit)
    }

    /// Puts dead letters back in line with fresh retries: all of them (`None`) or the
    /// given message ids. Returns how many were dead and are now replayed. `None` covers
    /// the letters dead when the call started, each at most once, oldest message first,
    /// a short transaction at a time: a letter that dies again meanwhile stays dead.
    pub fn redrive(&self, group: &str, ids: Option<&[i64]>) -> Result<u64> {
        let n = dlq::redrive(&self.inner, group, ids, self.reason())?;
        self.inner.counters.add(Event::Redriven, "", group, n);
        Ok(n)
    }

    /// `redrive(group, None)` that calls `between` after each of its transactions, before
    /// the next begins, with how long that one ran from BEGIN IMMEDIATE granted to its
    /// last statement, and to COMMIT done: for the benchmark, and for tests that act
    /// between two transactions.
    #[doc(hidden)]
    pub fn redrive_observed(
        &self,
        group: &str,
        between: &mut dyn FnMut(Duration, Duration),
    ) -> Result<u64> {
        dlq::redrive_observed(&self.inner, group, between, self.reason())
    }

    /// Deletes dead letters (all, or those dead for at least `older_than`) that were
    /// dead when the call started, a short transaction at a time.
    pub fn purge_dead_letters(&self, group: &str, older_than: Option<Duration>) -> Result<u64> {
        dlq::purge_dead_letters(&self.inner, group, older_than, self.reason())
    }

    /// Ids of the group's dead letters above message id `after` (and dead for at least
    /// `older_than`, if given), in id order, at most `limit` (1-10,000).
    pub fn dead_letter_ids(
        &self,
        group: &str,
        after: i64,
        older_than: Option<Duration>,
        limit: usize,
    ) -> Result<Vec<i64>> {
        dlq::dead_letter_ids(&self.inner, group, after, older_than, limit)
    }

    /// Deletes the given dead letters of the group in one transaction (ids not dead
    /// there are skipped); returns how many went.
    pub fn purge_dead_letter_ids(&self, group: &str, ids: &[i64]) -> Result<u64> {
        dlq::purge_dead_letter_ids(&self.inner, group, ids, self.reason())
    }

    /// Counts per topic and per consumer group.
    pub fn stats(&self) -> Result<Stats> {
        inspect::stats(&self.inner)
    }

    /// One message with its state in every group and its attempt and check history.
    pub fn message(&self, id: i64) -> Result<MessageInfo> {
        inspect::message(&self.inner, id)
    }

    /// Messages of `topic` with business key `key`, oldest first (at most 10,000).
    pub fn find(&self, topic: &str, key: &str) -> Result<Vec<MessageInfo>> {
        inspect::find(&self.inner, topic, key)
    }

    /// Committed messages of `topic` with ids above `after`, oldest first, at most
    /// `limit` (1-10,000). Read-only: follows a topic without claiming anything.
    pub fn messages_after(
        &self,
        topic: &str,
        after: i64,
        limit: usize,
    ) -> Result<Vec<MessageInfo>> {
        inspect::messages_after(&self.inner, topic, after, limit)
    }

    /// The highest message id of `topic`, any state (`None` if it has none).
    pub fn last_message_id(&self, topic: &str) -> Result<Option<i64>> {
        inspect::last_message_id(&self.inner, topic)
    }

    /// `PRAGMA integrity_check`, the schema version and the application id of the file.
    pub fn check_file(&self) -> Result<FileCheck> {
        inspect::check_file(&self.inner)
    }

    /// Deletes messages published and acked by every group at least `older_than` ago,
    /// half messages rolled back at least `older_than` ago (with their check history),
    /// and idempotency and inbox keys past their window. Returns how many messages went.
    pub fn purge_acked(&self, older_than: Duration) -> Result<u64> {
        retention::purge_acked(&self.inner, older_than, self.reason())
    }

    /// Gives pages freed by purges back to the file system: up to `pages` of them
    /// (`None`: every free page); returns how many pages were freed. Files created before
    /// incremental auto-vacuum keep their mode and free nothing (see `retention`).
    pub fn vacuum(&self, pages: Option<u64>) -> Result<u64> {
        retention::vacuum(&self.inner, pages, self.reason())
    }

    /// (transactions, writes) that went through group commit: single publishes and acks
    /// from concurrent threads share transactions, so the first number grows slower.
    /// Rewrites every page of the encrypted file under `key`, in one transaction (readers
    /// keep going; writers wait). This queue's connections move to the new key at once;
    /// another process's queue finds its key no longer opens the file at its next call and
    /// asks its key source again, so give the new key to its provider (newest first) before
    /// rotating. A plain file is refused with `InvalidArgument`. Recorded in the audit
    /// trail right after the rekey commits.
    pub fn rekey(&self, key: Key) -> Result<()> {
        self.inner.rekey(&key, self.reason())
    }

    pub fn group_commit_counts(&self) -> (u64, u64) {
        self.inner.group_commit.counts()
    }

    /// The queue's clock, for callers that schedule against it.
    pub fn now(&self) -> SystemTime {
        crate::clock::ms_to_system_time(self.inner.now())
    }
}

pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Storage(format!("a blocking queue task failed: {e}")))?
}
