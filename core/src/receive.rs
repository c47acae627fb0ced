//! Receiving: claim what is due, or wait for it without spinning. Commits through ferrymq
//! wake waiters at once (in every process where the file has a shared wake word, else in
//! this one; see `wake`); other commits are noticed by a cheap `PRAGMA data_version`
//! check, every `poll_interval` or, where the wake word makes that rare, less often (see
//! `Wake::poll`); scheduled work by its due time.
//! Every claim first fires the file's due schedule ticks (`schedule`), and a waiting
//! receive wakes for the next one.

use crate::error::{Error, Result};
use crate::fork;
use crate::inner::{Inner, PooledConn};
use crate::model::Delivery;
use crate::options::ReceiveOptions;
use crate::store::{self, claim};
use crate::{clock::duration_to_ms, validate};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One `receive` call's state: its own connection (data_version is per connection) and
/// what it last saw.
pub(crate) struct Receiver {
    inner: Arc<Inner>,
    conn: PooledConn,
    group: String,
    group_id: i64,
    max: usize,
    lease_ms: Option<i64>,
    data_version: i64,
    next_due: claim::NextDue,
    /// The lease of the last claim (the receive's own or the group's), in ms.
    lease_used: i64,
}

fn data_version(conn: &PooledConn) -> Result<i64> {
    Ok(conn
        .prepare_cached("PRAGMA data_version")?
        .query_row([], |r| r.get(0))?)
}

impl Receiver {
    pub fn new(inner: Arc<Inner>, group: &str, opts: &ReceiveOptions) -> Result<Self> {
        validate::name("consumer group", group)?;
        opts.validate()?;
        // A claim takes the write lock, which this thread may be holding itself.
        inner.refuse_inside_transaction()?;
        let conn = inner.conn()?;
        let group_id = inner.group_id(&conn, group)?;
        // Between polls the connection is outside any transaction: a fork need not wait.
        conn.park(fork::PARKED);
        Ok(Receiver {
            inner,
            conn,
            group: group.to_owned(),
            group_id,
            max: opts.max,
            lease_ms: opts.lease.map(duration_to_ms),
            data_version: 0,
            next_due: claim::NextDue::default(),
            lease_used: 0,
        })
    }

    pub fn try_claim(&mut self) -> Result<Vec<Delivery>> {
        self.inner.check_open()?;
        let conn = self.conn.activate();
        // Due schedule ticks become messages first, so this claim may take them.
        crate::schedule::fire_due(&self.inner, &conn)?;
        let now = self.inner.now();
        // Read before looking, so that any commit after the look changes it.
        self.data_version = data_version(&conn)?;
        if !claim::has_claimable(&conn, self.group_id, now)? {
            self.next_due = claim::next_due(&conn, self.group_id)?;
            return Ok(Vec::new());
        }
        let inner = &self.inner;
        let (group, max, lease_ms) = (&self.group, self.max, self.lease_ms);
        let lease_used = &mut self.lease_used;
        let out = store::write_tx(&conn, |c| {
            let row = store::groups::by_name(c, group)?;
            let lease_ms = lease_ms.unwrap_or(row.lease_ms);
            *lease_used = lease_ms;
            // Read the clock only now that the write lock is ours: a lease counted from
            // before a wait for the lock would be shorter by that wait, and could have
            // run out before the caller even sees the delivery.
            let spec = claim::ClaimSpec {
                group: &row,
                max,
                lease_ms,
                now: inner.now(),
            };
            claim::claim(c, &spec, || inner.rng.token())
        })?;
        if out.is_empty() {
            self.next_due = claim::next_due(&conn, self.group_id)?;
        }
        Ok(out)
    }

    /// How long to sleep before looking again, having waited `waited` since the last
    /// claim: the wake's poll, cut to the next due time this receive knows of, and never
    /// below `poll_interval`. Under a clock that is not real time, or while the group is
    /// at its `max_inflight` (the ack that frees a slot wakes nobody), `poll_interval`.
    fn sleep_for(&self, waited: Duration) -> Duration {
        let base = self.inner.opts.poll_interval;
        if !self.inner.opts.clock.is_wall_clock() || self.next_due.at_capacity {
            return base;
        }
        let poll = self.inner.wake.poll(base, waited);
        let next = [self.next_due.at, self.inner.schedules.next_tick()]
            .into_iter()
            .flatten()
            .min();
        match next {
            Some(t) => {
                let until = Duration::from_millis((t - self.inner.now()).max(0) as u64);
                poll.min(until).max(base)
            }
            None => poll,
        }
    }

    /// Whether another claim could find something: a commit happened elsewhere, or
    /// scheduled work came due. `seen` is the wake-up counter before the last claim.
    pub fn worth_retrying(&mut self, seen: u64) -> Result<bool> {
        self.inner.check_open()?;
        let conn = self.conn.activate();
        if data_version(&conn)? != self.data_version {
            if self.inner.wake.generation() == seen {
                // A commit that bumped nothing (yet): another library's, an ack's, or one
                // by a process without the wake file. If more follow, every receive on
                // the file looks every poll_interval for a while.
                self.inner.wake.unbumped_commit_seen(seen);
            }
            return Ok(true);
        }
        let now = self.inner.now();
        if self.next_due.at.is_some_and(|t| t <= now) {
            return Ok(true);
        }
        // A schedule's tick came due: the next claim fires it.
        self.inner
            .schedules
            .due(&conn, self.inner.opts.poll_interval, now)
    }
}

/// How often a waiting receive asks its caller whether to give up (Ctrl-C in Python).
const INTERRUPT_EVERY: Duration = Duration::from_millis(50);

/// After a wake-up that brought nothing (commits to other topics and groups bump the same
/// counter), the next wake-up is acted on no sooner than this after it (or
/// `poll_interval`, if shorter): a busy file costs a waiting receive no more looks than
/// the 2 ms poll did, and a wake-up that brings something is never held back.
const FRUITLESS_GAP: Duration = Duration::from_millis(2);

/// How long to hold back acting on a wake-up, given when the last one brought nothing.
fn hold_back(fruitless: Option<Instant>, poll: Duration, left: Duration) -> Duration {
    fruitless.map_or(Duration::ZERO, |at| {
        FRUITLESS_GAP
            .min(poll)
            .saturating_sub(at.elapsed())
            .min(left)
    })
}

pub(crate) fn receive_blocking(
    inner: &Arc<Inner>,
    group: &str,
    opts: &ReceiveOptions,
    interrupted: Option<&dyn Fn() -> bool>,
) -> Result<Vec<Delivery>> {
    receive_leased(inner, group, opts, interrupted).map(|(ds, _)| ds)
}

/// `receive_blocking`, also returning the lease the deliveries got (ms): what the
/// worker's heartbeat renews them by.
pub(crate) fn receive_leased(
    inner: &Arc<Inner>,
    group: &str,
    opts: &ReceiveOptions,
    interrupted: Option<&dyn Fn() -> bool>,
) -> Result<(Vec<Delivery>, i64)> {
    let mut r = Receiver::new(Arc::clone(inner), group, opts)?;
    let deadline = Instant::now() + opts.wait;
    let mut asked = Instant::now();
    let (mut woken, mut fruitless) = (false, None);
    loop {
        let seen = inner.wake.generation();
        let got = r.try_claim()?;
        if !got.is_empty() {
            return Ok((got, r.lease_used));
        }
        if woken {
            fruitless = Some(Instant::now());
        }
        let since = Instant::now();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok((Vec::new(), 0));
            }
            if let Some(stop) = interrupted
                && asked.elapsed() >= INTERRUPT_EVERY
            {
                asked = Instant::now();
                if stop() {
                    return Ok((Vec::new(), 0));
                }
            }
            let mut sleep = r.sleep_for(since.elapsed()).min(left);
            if interrupted.is_some() {
                sleep = sleep.min(INTERRUPT_EVERY);
            }
            if inner.wake.wait(seen, sleep) {
                std::thread::sleep(hold_back(fruitless.take(), inner.opts.poll_interval, left));
                woken = true;
                break;
            }
            if r.worth_retrying(seen)? {
                woken = false;
                break;
            }
        }
    }
}

/// Deliveries claimed for a caller that may have gone: when an async receive is cancelled
/// (dropped) while its claim runs on the blocking pool, the claim still completes, and
/// its result is dropped unseen. Dropping this guard puts those deliveries back at once,
/// without counting an attempt, instead of leaving them leased to nobody.
struct Unclaimed {
    inner: Arc<Inner>,
    deliveries: Vec<Delivery>,
}

impl Unclaimed {
    fn new(inner: &Arc<Inner>, deliveries: Vec<Delivery>) -> Self {
        Unclaimed {
            inner: Arc::clone(inner),
            deliveries,
        }
    }

    fn keep(mut self) -> Vec<Delivery> {
        std::mem::take(&mut self.deliveries)
    }
}

impl Drop for Unclaimed {
    fn drop(&mut self) {
        if self.deliveries.is_empty() {
            return;
        }
        let ds = std::mem::take(&mut self.deliveries);
        // Best effort: if this fails, the leases expire and the messages come back anyway.
        let _ = self.inner.write(true, |c| {
            ds.iter().try_for_each(|d| store::settle::release(c, d))
        });
    }
}

fn join_error(e: tokio::task::JoinError) -> Error {
    Error::Storage(format!("a blocking queue task failed: {e}"))
}

pub(crate) async fn receive_async(
    inner: &Arc<Inner>,
    group: &str,
    opts: &ReceiveOptions,
) -> Result<Vec<Delivery>> {
    receive_async_leased(inner, group, opts)
        .await
        .map(|(ds, _)| ds)
}

/// `receive_async`, also returning the lease the deliveries got (ms), as
/// `receive_leased` does.
pub(crate) async fn receive_async_leased(
    inner: &Arc<Inner>,
    group: &str,
    opts: &ReceiveOptions,
) -> Result<(Vec<Delivery>, i64)> {
    // Asked here, on the caller's thread: the claim runs on another one.
    inner.refuse_inside_transaction()?;
    let (i, g, o) = (Arc::clone(inner), group.to_owned(), opts.clone());
    let mut r = tokio::task::spawn_blocking(move || Receiver::new(i, &g, &o))
        .await
        .map_err(join_error)??;
    let deadline = tokio::time::Instant::now() + opts.wait;
    let (mut woken, mut fruitless) = (false, None);
    loop {
        let notified = inner.wake.notify().notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let seen = inner.wake.generation();
        let (back, got) = tokio::task::spawn_blocking(move || {
            let got = r.try_claim().map(|ds| Unclaimed::new(&r.inner, ds));
            (r, got)
        })
        .await
        .map_err(join_error)?;
        r = back;
        let got = got?.keep();
        if !got.is_empty() {
            return Ok((got, r.lease_used));
        }
        if woken {
            fruitless = Some(Instant::now());
        }
        let since = Instant::now();
        loop {
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return Ok((Vec::new(), 0));
            }
            let left = deadline - now;
            let step = r.sleep_for(since.elapsed()).min(left);
            woken = tokio::select! {
                _ = &mut notified => true,
                _ = tokio::time::sleep(step) => false,
            };
            if woken {
                let gap = hold_back(fruitless.take(), inner.opts.poll_interval, left);
                tokio::time::sleep(gap).await;
                break;
            }
            if r.worth_retrying(seen)? {
                break;
            }
        }
    }
}
