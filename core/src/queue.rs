//! The `Queue` handle: a cheap clone over one queue's state. Every public call lives
//! here and delegates to the capability modules.

use crate::clock::duration_to_ms;
use crate::error::{Error, Result};
use crate::half::{self, Checker, HalfMessage};
use crate::inner::Inner;
use crate::model::{DeadLetter, Delivery, MessageInfo, MessageState, Resolution, Stats};
use crate::options::{Message, Options, PublishOptions, ReceiveOptions, SubscribeOptions};
use crate::outbox::{self, Transaction};
use crate::publish::{self, Visibility};
use crate::store::{self, settle};
use crate::validate;
use crate::{filter::TagFilter, receive};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// Rows handled per transaction by bulk operations (purges).
const CHUNK: usize = 500;
/// Most dead letters one redrive or purge transaction handles...
const DEAD_PAGE: usize = 128;
/// ...and how long it keeps going before it commits. Measured (docs/benchmarks.md, "DLQ"):
/// with 128 and 2 ms a transaction held the lock 2.4-4.2 ms at the median, and
/// publishers waited less than with 256 and 4 ms at the same redrive speed; the time
/// bound keeps a slow disk or a busy CPU from stretching one transaction much.
const DEAD_HOLD: Duration = Duration::from_millis(2);
/// Most rows returned by one listing call.
pub const MAX_LIST: usize = 10_000;

/// A durable message queue in one SQLite file. Clone it freely: clones share one set of
/// connections. Safe to use from many threads.
#[derive(Clone)]
pub struct Queue {
    pub(crate) inner: Arc<Inner>,
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

pub(crate) fn validate_batch(inner: &Inner, messages: &[Message]) -> Result<()> {
    if messages.len() > validate::MAX_BATCH {
        return Err(Error::invalid(format!(
            "a batch holds at most {} messages, got {}",
            validate::MAX_BATCH,
            messages.len()
        )));
    }
    for (i, m) in messages.iter().enumerate() {
        publish::validate(inner, &m.topic, &m.payload, &m.options)
            .map_err(|e| Error::invalid(format!("message {i} of the batch: {e}")))?;
    }
    Ok(())
}

pub(crate) fn validate_nack(delay: Option<Duration>) -> Result<()> {
    if let Some(d) = delay {
        validate::bounded_duration("nack delay", d)?;
    }
    Ok(())
}

fn validate_limit(limit: usize) -> Result<()> {
    if limit == 0 || limit > MAX_LIST {
        return Err(Error::invalid(format!(
            "limit must be between 1 and {MAX_LIST}, got {limit}"
        )));
    }
    Ok(())
}

impl Queue {
    /// Opens (creating with mode 0600 and migrating if needed) the queue in `path`.
    pub fn open(path: impl AsRef<Path>, options: Options) -> Result<Queue> {
        Ok(Queue {
            inner: Inner::open(path.as_ref(), options)?,
        })
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
        let inner = &self.inner;
        inner.write(false, |c| {
            let topic_id = inner.topic_id(c, topic)?;
            let sub = store::groups::Subscription {
                group,
                topic_id,
                topic,
                filter: &filter,
                retry: &options.retry,
                lease_ms: duration_to_ms(options.lease),
            };
            store::groups::subscribe(c, &sub, inner.now())
        })
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
        let (topic, payload) = (topic.to_owned(), payload.to_vec());
        self.inner.write_shared(
            true,
            Box::new(move |c, matches| {
                publish::write(
                    &inner,
                    c,
                    matches,
                    &topic,
                    &payload,
                    &options,
                    Visibility::Committed,
                )
            }),
        )
    }

    /// Publishes every message in one commit: all or none.
    pub fn publish_batch(&self, messages: &[Message]) -> Result<Vec<i64>> {
        validate_batch(&self.inner, messages)?;
        let inner = &self.inner;
        inner.write(true, |c| publish::write_batch(inner, c, messages))
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
        publish::write_in_callers_tx(&self.inner, tx, topic, payload, &options)
    }

    /// Acks inside a transaction the caller opened on its own connection to this file.
    pub fn ack_in(&self, tx: &rusqlite::Connection, delivery: &Delivery) -> Result<()> {
        outbox::check_foreign(&self.inner, tx)?;
        store::all_or_nothing(tx, |c| settle::ack(c, delivery, self.inner.now()))
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
        self.inner
            .write_shared(
                delivery.ordering_key.is_some(),
                Box::new(move |c, _| settle::ack(c, &d, inner.now()).map(|()| 0)),
            )
            .map(|_| ())
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
        validate_nack(delay)?;
        let reason = validate::error_text(reason);
        let inner = &self.inner;
        inner.write(true, |c| {
            settle::nack(
                c,
                delivery,
                &reason,
                delay.map(duration_to_ms),
                inner.now(),
                inner.rng.unit(),
            )
        })
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

    pub fn commit_half(&self, id: i64) -> Result<()> {
        half::commit(&self.inner, id)
    }

    pub fn rollback_half(&self, id: i64) -> Result<()> {
        half::rollback(&self.inner, id)
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
        validate_limit(limit)?;
        let states = match state {
            None => vec![store::HALF, store::ROLLED_BACK],
            Some(MessageState::Half) => vec![store::HALF],
            Some(MessageState::RolledBack) => vec![store::ROLLED_BACK],
            Some(MessageState::Committed) => {
                return Err(Error::invalid(
                    "half_messages lists half or rolled_back messages",
                ));
            }
        };
        let now = self.inner.now();
        self.inner.read(|c| {
            // The `limit` oldest of the union are among the `limit` oldest of each state.
            let mut ids = Vec::new();
            for s in states {
                ids.extend(store::half::ids_in_state(c, s, limit)?);
            }
            ids.sort_unstable();
            ids.truncate(limit);
            ids.into_iter()
                .map(|id| store::inspect::message(c, id, now))
                .collect()
        })
    }

    /// The group's dead letters, oldest death first.
    pub fn dead_letters(&self, group: &str, limit: usize) -> Result<Vec<DeadLetter>> {
        validate::name("consumer group", group)?;
        validate_limit(limit)?;
        self.inner.read(|c| {
            let g = store::groups::by_name(c, group)?;
            store::dlq::list(c, g.id, limit)
        })
    }

    /// Puts dead letters back in line with fresh retries: all of them (`None`) or the
    /// given message ids. Returns how many were dead and are now replayed. `None` covers
    /// the letters dead when the call started, each at most once, oldest message first,
    /// a short transaction at a time: a letter that dies again meanwhile stays dead.
    pub fn redrive(&self, group: &str, ids: Option<&[i64]>) -> Result<u64> {
        validate::name("consumer group", group)?;
        let group_id = self.inner.read(|c| store::groups::by_name(c, group))?.id;
        let inner = &self.inner;
        match ids {
            Some(ids) => inner.write(true, |c| {
                let mut ids = ids.to_vec();
                ids.sort_unstable();
                let mut n = 0;
                for &id in &ids {
                    n += u64::from(store::dlq::redrive_one(c, group_id, id, inner.now())?);
                }
                Ok(n)
            }),
            None => self.redrive_all(group_id, &mut |_, _| {}),
        }
    }

    /// `redrive(group, None)` that calls `between` after each of its transactions, before
    /// the next begins, with how long that one ran from BEGIN IMMEDIATE granted to its
    /// last statement, and to COMMIT done (which includes a WAL auto-checkpoint when one
    /// is due): for the benchmark, and for tests that act between two transactions.
    #[doc(hidden)]
    pub fn redrive_observed(
        &self,
        group: &str,
        between: &mut dyn FnMut(Duration, Duration),
    ) -> Result<u64> {
        validate::name("consumer group", group)?;
        let group_id = self.inner.read(|c| store::groups::by_name(c, group))?.id;
        self.redrive_all(group_id, between)
    }

    fn redrive_all(&self, group_id: i64, hold: &mut dyn FnMut(Duration, Duration)) -> Result<u64> {
        self.dead_in_chunks(true, i64::MAX, group_id, hold, store::dlq::redrive_one)
    }

    /// Deletes dead letters (all, or those dead for at least `older_than`) that were
    /// dead when the call started, a short transaction at a time.
    pub fn purge_dead_letters(&self, group: &str, older_than: Option<Duration>) -> Result<u64> {
        validate::name("consumer group", group)?;
        if let Some(d) = older_than {
            validate::bounded_duration("older_than", d)?;
        }
        let group_id = self.inner.read(|c| store::groups::by_name(c, group))?.id;
        let cutoff = older_than.map_or(i64::MAX, |d| self.inner.now() - duration_to_ms(d));
        self.dead_in_chunks(false, cutoff, group_id, &mut |_, _| {}, |c, g, id, _| {
            store::dlq::purge_one(c, g, id)
        })
    }

    /// Applies `apply` to every delivery of the group that is dead now (died at or
    /// before `cutoff`), in message id order. The run is bounded by what it sees at the
    /// start (the highest dead id, the clock) and visits each id once, so letters that die
    /// again while it runs (a consumer failing the redriven ones) cannot keep it going.
    /// Each transaction stops after `DEAD_PAGE` rows or `DEAD_HOLD`, whichever comes
    /// first, so publishers never wait long for the write lock.
    fn dead_in_chunks(
        &self,
        wake: bool,
        cutoff: i64,
        group_id: i64,
        hold: &mut dyn FnMut(Duration, Duration),
        apply: impl Fn(&rusqlite::Connection, i64, i64, i64) -> Result<bool>,
    ) -> Result<u64> {
        let inner = &self.inner;
        let cutoff = cutoff.min(inner.now());
        let Some(through) = inner.read(|c| store::dlq::last_dead_id(c, group_id))? else {
            return Ok(0);
        };
        let mut after = 0;
        let mut total = 0;
        loop {
            let (mut granted, mut worked) = (None, Duration::ZERO);
            let (last, n, done) = inner.write(wake, |c| {
                let t0 = Instant::now();
                granted = Some(t0);
                let ids = store::dlq::dead_page(c, group_id, after, through, cutoff, DEAD_PAGE)?;
                let (mut last, mut n) = (after, 0);
                for &id in &ids {
                    n += u64::from(apply(c, group_id, id, inner.now())?);
                    last = id;
                    if t0.elapsed() >= DEAD_HOLD {
                        break;
                    }
                }
                let done = ids.len() < DEAD_PAGE && ids.last().is_none_or(|&l| l == last);
                worked = t0.elapsed();
                Ok((last, n, done))
            })?;
            if let Some(t0) = granted {
                hold(worked, t0.elapsed());
            }
            total += n;
            after = last;
            if done {
                return Ok(total);
            }
        }
    }

    /// Counts per topic and per consumer group.
    pub fn stats(&self) -> Result<Stats> {
        let now = self.inner.now();
        self.inner.read(|c| {
            let mut stats = Stats::default();
            for (id, name) in store::inspect::topics(c)? {
                stats
                    .topics
                    .insert(name, store::inspect::topic_stats(c, id)?);
            }
            for (id, name, topic) in store::groups::all(c)? {
                stats
                    .groups
                    .insert(name, store::inspect::group_stats(c, id, topic, now)?);
            }
            Ok(stats)
        })
    }

    /// One message with its state in every group and its attempt and check history.
    pub fn message(&self, id: i64) -> Result<MessageInfo> {
        let now = self.inner.now();
        self.inner.read(|c| store::inspect::message(c, id, now))
    }

    /// Messages of `topic` with business key `key`, oldest first (at most 10,000).
    pub fn find(&self, topic: &str, key: &str) -> Result<Vec<MessageInfo>> {
        validate::name("topic", topic)?;
        validate::text("key", key, validate::MAX_KEY_LEN)?;
        let now = self.inner.now();
        self.inner.read(|c| {
            let Some(topic_id) = store::publish::find_topic(c, topic)? else {
                return Ok(Vec::new());
            };
            store::inspect::ids_by_key(c, topic_id, key, MAX_LIST)?
                .into_iter()
                .map(|id| store::inspect::message(c, id, now))
                .collect()
        })
    }

    /// Deletes messages published and acked by every group at least `older_than` ago,
    /// half messages rolled back at least `older_than` ago (with their check history),
    /// and idempotency keys past their window. Returns how many messages went.
    pub fn purge_acked(&self, older_than: Duration) -> Result<u64> {
        validate::bounded_duration("older_than", older_than)?;
        let inner = &self.inner;
        let now = inner.now();
        let cutoff = now - duration_to_ms(older_than);
        let mut after = 0;
        let mut total = 0;
        loop {
            let chunk = inner.write(false, |c| {
                store::purge::acked_chunk(c, after, cutoff, CHUNK)
            })?;
            total += chunk.deleted;
            after = chunk.last_id;
            if chunk.done {
                break;
            }
        }
        loop {
            let n = inner.write(false, |c| store::purge::rolled_back_chunk(c, cutoff, CHUNK))?;
            total += n;
            if (n as usize) < CHUNK {
                break;
            }
        }
        while inner.write(false, |c| {
            store::purge::expired_idempotency_keys(c, now, CHUNK)
        })? as usize
            == CHUNK
        {}
        Ok(total)
    }

    /// Gives pages freed by purges back to the file system: up to `pages` of them
    /// (`None`: every free page), in transactions of at most 4,096 pages so publishers
    /// wait little. Returns how many pages were freed; the file shrinks by that much once
    /// the WAL is checkpointed (tried at once; a reader in the way delays it). Works on
    /// files ferrymq created (`auto_vacuum = INCREMENTAL`); a file created before, or a
    /// business database ferrymq adopted, keeps its mode and this returns 0: nothing went
    /// wrong, SQLite cannot shrink such a file except by a full `VACUUM`.
    pub fn vacuum(&self, pages: Option<u64>) -> Result<u64> {
        const VACUUM_CHUNK: u64 = 4096;
        if pages == Some(0) {
            return Err(Error::invalid(
                "pages must be at least 1 (leave it out to free every free page)",
            ));
        }
        let inner = &self.inner;
        let mut left = pages.unwrap_or(u64::MAX);
        let mut total = 0;
        while left > 0 {
            let chunk = left.min(VACUUM_CHUNK);
            let freed = inner.write(false, |c| store::schema::incremental_vacuum(c, chunk))?;
            total += freed;
            left -= freed.min(left);
            if freed < chunk {
                break;
            }
        }
        if total > 0 {
            store::schema::checkpoint(&*inner.conn()?)?;
        }
        Ok(total)
    }

    /// (transactions, writes) that went through group commit: single publishes and acks
    /// from concurrent threads share transactions, so the first number grows slower.
    pub fn group_commit_counts(&self) -> (u64, u64) {
        self.inner.group_commit.counts()
    }

    /// The queue's clock, for callers that schedule against it.
    pub fn now(&self) -> SystemTime {
        crate::clock::ms_to_system_time(self.inner.now())
    }
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Storage(format!("a blocking queue task failed: {e}")))?
}
