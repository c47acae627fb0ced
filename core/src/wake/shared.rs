//! Cross-process wake-ups on Linux: a commit counter in a small file next to the
//! database (`<db>-wake`), mapped shared by every process that opens the queue. A
//! commit through ferrymq adds one to it and, when some process is waiting, wakes the
//! waiters with a futex on that word (the kernel keys a shared futex by file and offset,
//! so it reaches other processes). A waiter sleeps on the word instead of polling.
//!
//! The file holds no data, only the words below, so an encrypted queue leaks nothing
//! through it. Where it cannot be created (a read-only directory) or elsewhere than
//! Linux, there is none and receives poll `PRAGMA data_version` as before. Like SQLite's
//! `-shm`, it must not be truncated while the queue is open (a process touching a
//! mapped page past the end gets SIGBUS); deleting it only splits the processes that
//! had it open from those that open it afresh (they then find each other's commits by
//! polling).
//!
//! Layout (native-endian, 4 KiB so the mapping is one page):
//!   0: u32 commit counter (the futex word; wraps)
//!   4: u32 processes' threads sleeping on it (a hint: with none, a commit makes no
//!      system call; a process killed while waiting leaves it too high, which costs
//!      only a wake call per commit)
//!   8: u64 until when (ms since the Unix epoch) commits made without ferrymq are
//!      expected: a `publish_in` / `ack_in` on another library's connection commits
//!      there, where no bump follows, so waiting receives poll at `poll_interval` until
//!      then (see `Wake::poll`)

use std::fs::OpenOptions;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const LEN: usize = 4096;

pub(crate) struct SharedWord {
    map: NonNull<libc::c_void>,
}

// The mapping is only reached through the atomics below.
unsafe impl Send for SharedWord {}
unsafe impl Sync for SharedWord {}

/// The wake file of the database at `db`.
pub(crate) fn path_for(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push("-wake");
    PathBuf::from(name)
}

impl SharedWord {
    /// Maps the wake file of `db`, creating it (with the database's permission bits, so
    /// whoever may write the database may bump the counter) if needed. None if it cannot
    /// be had: receives then poll.
    pub fn open(db: &Path) -> Option<SharedWord> {
        let mode = std::fs::metadata(db).ok()?.permissions().mode() & 0o666;
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            // Never emptied: other processes hold the counter mapped.
            .truncate(false)
            .mode(mode)
            .open(path_for(db))
            .ok()?;
        // The page's disk block is allocated before it is mapped: a first write into a
        // hole would need one, and a full disk would then kill the process (SIGBUS) where
        // this returns None. posix_fallocate only adds blocks and length, so a racing
        // opener (or a file in use) keeps its counter.
        // SAFETY: a plain call on a descriptor we hold.
        if unsafe { libc::posix_fallocate(file.as_raw_fd(), 0, LEN as libc::off_t) } != 0 {
            return None;
        }
        // SAFETY: a fresh shared mapping of a file we hold open and at least LEN bytes
        // long; the kernel keeps the mapping alive after the descriptor closes.
        let map = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                LEN,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                file.as_raw_fd(),
                0,
            )
        };
        if map == libc::MAP_FAILED {
            return None;
        }
        NonNull::new(map).map(|map| SharedWord { map })
    }

    fn counter(&self) -> &AtomicU32 {
        // SAFETY: the page is mapped for our lifetime and 4-byte aligned.
        unsafe { &*(self.map.as_ptr() as *const AtomicU32) }
    }

    fn sleepers(&self) -> &AtomicU32 {
        // SAFETY: as `counter`, the next word.
        unsafe { &*(self.map.as_ptr() as *const AtomicU32).add(1) }
    }

    fn foreign_until(&self) -> &AtomicU64 {
        // SAFETY: as `counter`, 8 bytes in, 8-byte aligned.
        unsafe { &*(self.map.as_ptr() as *const AtomicU64).add(1) }
    }

    /// Says commits made without ferrymq are coming, for `window`. True if none were
    /// expected until now: receives sleeping long then need a bump to look again.
    pub fn expect_foreign(&self, window: Duration) -> bool {
        let (now, window) = (wall_ms(), window.as_millis() as u64);
        let until = self.foreign_until().load(Ordering::Relaxed);
        // Still fresh for half the window: no write, so a busy `publish_in` loop does
        // not bounce the page between processes.
        if until >= now + window / 2 {
            return false;
        }
        self.foreign_until()
            .fetch_max(now + window, Ordering::SeqCst);
        until < now
    }

    /// Whether commits made without ferrymq are expected now.
    pub fn foreign_expected(&self) -> bool {
        self.foreign_until().load(Ordering::Relaxed) >= wall_ms()
    }

    pub fn load(&self) -> u32 {
        self.counter().load(Ordering::SeqCst)
    }

    /// Says a commit happened: every process waiting on the word wakes. Returns the
    /// counter's new value.
    pub fn bump(&self) -> u32 {
        // SeqCst on both sides: either the waiter's futex call sees the new value, or this
        // sees its sleeper count (the two orders a lost wake-up would need are excluded).
        let now = self
            .counter()
            .fetch_add(1, Ordering::SeqCst)
            .wrapping_add(1);
        if self.sleepers().load(Ordering::SeqCst) > 0 {
            // SAFETY: FUTEX_WAKE on a valid word; its result (how many woke) is not needed.
            unsafe {
                libc::syscall(
                    libc::SYS_futex,
                    self.counter().as_ptr(),
                    libc::FUTEX_WAKE,
                    i32::MAX,
                );
            }
        }
        now
    }

    /// Sleeps until the counter differs from `seen`, or `timeout` passes (or a signal or
    /// a spurious wake-up ends the wait early). True if the counter moved.
    pub fn wait(&self, seen: u32, timeout: Duration) -> bool {
        self.sleepers().fetch_add(1, Ordering::SeqCst);
        let ts = libc::timespec {
            tv_sec: timeout.as_secs().min(i32::MAX as u64) as libc::time_t,
            tv_nsec: timeout.subsec_nanos() as libc::c_long,
        };
        // SAFETY: FUTEX_WAIT (shared, not PRIVATE: other processes wake it) on a valid
        // word with a relative timeout; it returns at once if the word is not `seen`.
        unsafe {
            libc::syscall(
                libc::SYS_futex,
                self.counter().as_ptr(),
                libc::FUTEX_WAIT,
                seen,
                &ts as *const libc::timespec,
            );
        }
        self.sleepers().fetch_sub(1, Ordering::SeqCst);
        self.load() != seen
    }
}

fn wall_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Drop for SharedWord {
    fn drop(&mut self) {
        // SAFETY: our own mapping, unmapped once.
        unsafe {
            libc::munmap(self.map.as_ptr(), LEN);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Instant;

    /// An empty database file in a fresh directory (the wake file takes its mode).
    fn db_file() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("q.db");
        std::fs::write(&db, b"").unwrap();
        (dir, db)
    }

    #[test]
    fn two_mappings_of_one_file_wake_each_other() {
        let (_dir, db) = db_file();
        // Two mappings stand for two processes: the futex is keyed by file and offset.
        let a = SharedWord::open(&db).unwrap();
        let b = Arc::new(SharedWord::open(&db).unwrap());
        let seen = b.load();
        let b2 = Arc::clone(&b);
        let t = std::thread::spawn(move || {
            let start = Instant::now();
            (b2.wait(seen, Duration::from_secs(10)), start.elapsed())
        });
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(a.bump(), seen.wrapping_add(1));
        let (moved, waited) = t.join().unwrap();
        assert!(moved);
        assert!(waited < Duration::from_secs(10), "woke by the timeout");
        assert_eq!(b.sleepers().load(Ordering::SeqCst), 0);
    }

    #[test]
    fn a_wait_on_a_stale_value_returns_at_once_and_a_quiet_one_times_out() {
        let (_dir, db) = db_file();
        let w = SharedWord::open(&db).unwrap();
        let seen = w.load();
        w.bump();
        assert!(w.wait(seen, Duration::from_secs(10)));
        assert!(!w.wait(w.load(), Duration::from_millis(5)));
    }

    #[test]
    fn foreign_commits_are_expected_for_the_window_and_only_the_first_call_says_so() {
        let (_dir, db) = db_file();
        let (a, b) = (
            SharedWord::open(&db).unwrap(),
            SharedWord::open(&db).unwrap(),
        );
        assert!(!b.foreign_expected());
        assert!(a.expect_foreign(Duration::from_secs(10)));
        assert!(b.foreign_expected());
        assert!(!a.expect_foreign(Duration::from_secs(10)));
        assert!(!a.expect_foreign(Duration::from_millis(1)));
    }

    #[test]
    fn no_wake_file_in_a_directory_that_is_not_there() {
        assert!(SharedWord::open(Path::new("/nonexistent-dir/q.db")).is_none());
    }

    #[test]
    fn the_wake_file_has_the_databases_permission_bits_and_a_whole_page() {
        let (_dir, db) = db_file();
        std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o660)).unwrap();
        let w = SharedWord::open(&db).unwrap();
        w.bump();
        let meta = std::fs::metadata(path_for(&db)).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o660 & !umask());
        assert_eq!(meta.len(), LEN as u64);
        // Another opener keeps the counter.
        assert_eq!(SharedWord::open(&db).unwrap().load(), w.load());
    }

    /// The process's umask, read without setting it (other tests create files meanwhile).
    fn umask() -> u32 {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let line = status.lines().find(|l| l.starts_with("Umask:")).unwrap();
        u32::from_str_radix(line["Umask:".len()..].trim(), 8).unwrap()
    }
}
