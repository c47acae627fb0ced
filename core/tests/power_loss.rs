//! Power cuts, simulated with the fault VFS (`faultvfs`): a queue works until the power
//! goes at a random write; the files are rebuilt from what the disk would hold (each
//! write not yet synced kept, lost or torn at sector boundaries, at random), and opened
//! again. What each `synchronous` setting must survive:
//! - FULL: every publish and every ack that returned `Ok` before the cut is in the file.
//! - NORMAL: the file is never corrupt, and only the last transactions before the cut may
//!   be gone: a publish confirmed before a lost one is never lost ("a suffix").
//!
//! Cuts per test: `FERRYMQ_POWER_CUTS` (default 1,000 each, so 2,000 in CI).

mod faultvfs;

use ferrymq::{
    ManualClock, Message, Options, PublishOptions, Queue, ReceiveOptions, SubscribeOptions,
    Synchronous,
};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

/// The VFS and its model are process-wide: one test at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn cuts() -> u64 {
    std::env::var("FERRYMQ_POWER_CUTS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000)
}

/// xorshift64*: reproducible from the seed printed on failure.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// What the application was told before the cut.
#[derive(Default)]
struct Confirmed {
    /// Publishes that returned Ok, in the order they returned.
    published: Vec<i64>,
    acked: Vec<i64>,
}

fn open(path: &Path, sync: Synchronous, clock: &ManualClock) -> ferrymq::Result<Queue> {
    Queue::open(
        path,
        Options::default()
            .synchronous(sync)
            .with_manual_clock(clock.clone()),
    )
}

/// One round of work: single publishes, batches and outbox transactions, receives with
/// acks and nacks, a purge now and then. Stops at the first error (the power is out).
fn work(q: &Queue, rng: &mut Rng, round: u64, seen: &mut Confirmed) -> ferrymq::Result<()> {
    for i in 0..40 {
        match rng.below(6) {
            0 | 1 => {
                let id = q.publish(
                    "t",
                    format!("r{round}-{i}"),
                    PublishOptions::new().key(format!("k{}", rng.below(50))),
                )?;
                seen.published.push(id);
            }
            2 => {
                let batch: Vec<Message> = (0..3)
                    .map(|j| Message::new("t", format!("r{round}-{i}-{j}")))
                    .collect();
                seen.published.extend(q.publish_batch(&batch)?);
            }
            3 => {
                let mut tx = q.begin()?;
                let id = tx.publish("t", format!("tx{round}-{i}"), PublishOptions::new())?;
                tx.commit()?;
                seen.published.push(id);
            }
            _ => {
                let got = q.receive("g", ReceiveOptions::new().max(4))?;
                for d in got {
                    if rng.below(4) == 0 {
                        q.nack(&d, "retry", Some(Duration::ZERO))?;
                    } else {
                        q.ack(&d)?;
                        seen.acked.push(d.message_id);
                    }
                }
            }
        }
        if i == 20 && round % 10 == 0 {
            q.purge_acked(Duration::ZERO)?;
        }
    }
    Ok(())
}

fn integrity(path: &Path) -> String {
    let c = rusqlite::Connection::open(path).unwrap();
    c.query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap()
}

/// Rounds per file: unacked messages pile up and every restore rewrites the whole file,
/// so a long run starts a fresh file every so often to stay linear.
const ROUNDS_PER_FILE: u64 = 500;

/// A fresh file with the group subscribed, in a new temporary directory.
fn fresh_file(sync: Synchronous, clock: &ManualClock) -> (tempfile::TempDir, std::path::PathBuf) {
    faultvfs::reset();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q.db");
    let q = open(&path, sync, clock).unwrap();
    q.subscribe("g", "t", SubscribeOptions::new()).unwrap();
    (dir, path)
}

/// Runs `cuts()` rounds, a fresh file every `ROUNDS_PER_FILE`; returns, per round, the
/// confirmed publishes that the reopened file lacks (FULL must have none).
fn run(sync: Synchronous, seed: u64) -> Vec<Vec<i64>> {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    faultvfs::install();
    let clock = ManualClock::new(1_700_000_000_000);
    let (mut _dir, mut path) = fresh_file(sync, &clock);
    let mut rng = Rng(seed);
    let mut lost_per_round = Vec::new();
    let mut totals = Totals::default();
    for round in 0..cuts() {
        if round > 0 && round % ROUNDS_PER_FILE == 0 {
            (_dir, path) = fresh_file(sync, &clock);
        }
        let context = format!("seed {seed}, round {round}");
        faultvfs::cut_power_at_write(1 + rng.below(400));
        let mut seen = Confirmed::default();
        match open(&path, sync, &clock) {
            Ok(q) => {
                if work(&q, &mut rng, round, &mut seen).is_err() {
                    totals.mid_work += 1;
                }
                faultvfs::power_cut();
                drop(q);
            }
            Err(_) => faultvfs::power_cut(),
        }
        clock.advance(Duration::from_millis(10));
        let r = faultvfs::restore(|n| rng.below(n));
        totals.pending += r.pending;
        totals.dropped += r.dropped;
        totals.torn += r.torn;
        totals.confirmed += seen.published.len() as u64;
        assert_eq!(integrity(&path), "ok", "{context}");
        let q = open(&path, sync, &clock).unwrap_or_else(|e| panic!("{context}: reopen: {e}"));
        let mut lost = Vec::new();
        // An acked message may have been purged (purge_acked): acks are checked below.
        for &id in &seen.published {
            if !seen.acked.contains(&id) && q.message(id).is_err() {
                lost.push(id);
            }
        }
        if sync == Synchronous::Full {
            assert!(
                lost.is_empty(),
                "{context}: confirmed publishes lost: {lost:?}"
            );
            for &id in &seen.acked {
                if let Ok(m) = q.message(id) {
                    assert_eq!(
                        m.deliveries["g"].state,
                        ferrymq::DeliveryState::Acked,
                        "{context}: confirmed ack of {id} lost"
                    );
                }
            }
        } else {
            // Lost publishes are the last ones confirmed, never one before a kept one.
            let unacked: Vec<i64> = seen
                .published
                .iter()
                .copied()
                .filter(|id| !seen.acked.contains(id))
                .collect();
            if let Some(at) = unacked.iter().position(|id| lost.contains(id)) {
                assert_eq!(
                    &unacked[at..],
                    &lost[..],
                    "{context}: a publish was lost before a kept one"
                );
            }
        }
        // Receivable again after the cut: whatever was inflight comes back once its
        // lease runs out; nothing is stuck.
        clock.advance(Duration::from_secs(3_600));
        drop(q);
        lost_per_round.push(lost);
    }
    eprintln!("{sync:?}: {} cuts: {totals:?}", cuts());
    // The cuts must land inside the work and throw writes away, or nothing was tested.
    assert!(totals.mid_work * 2 > cuts(), "{totals:?}");
    assert!(totals.dropped + totals.torn > cuts() / 2, "{totals:?}");
    lost_per_round
}

/// What the cuts did, summed over a run.
#[derive(Default, Debug)]
struct Totals {
    /// Rounds whose work the cut interrupted (the rest were cut after it finished).
    mid_work: u64,
    /// Confirmed publishes.
    confirmed: u64,
    /// Writes not yet synced at the cut, and of them those lost whole and torn.
    pending: u64,
    dropped: u64,
    torn: u64,
}

#[test]
fn power_cut_at_full_loses_nothing_confirmed() {
    let lost = run(Synchronous::Full, 0x5eed_f011);
    assert!(lost.iter().all(Vec::is_empty));
}

#[test]
fn power_cut_at_normal_never_corrupts_and_loses_only_the_last_transactions() {
    let lost = run(Synchronous::Normal, 0x5eed_0a11);
    let mut histogram: BTreeMap<usize, u64> = BTreeMap::new();
    for l in &lost {
        *histogram.entry(l.len()).or_default() += 1;
    }
    // The figures docs/reliability.md quotes.
    eprintln!("NORMAL: confirmed publishes lost per cut (lost -> cuts): {histogram:?}");
}
