//! A test-only SQLite VFS that wraps the default `unix` VFS to simulate power loss and
//! I/O faults, the way SQLite's own crash tests (`test6.c`) and I/O-error tests do.
//!
//! Every write and truncate of a main database, WAL or rollback journal goes to the real
//! file (so the running process sees what it wrote) and is also recorded as *pending*
//! against the file's *durable image*, an in-memory copy of what the disk would still
//! hold after a power cut. A sync of the file moves its pending writes into the durable
//! image. The real sync is skipped: durability is what this model says, not what the test
//! machine's disk does, and skipping it keeps thousands of cuts fast.
//!
//! `power_cut()` stops the world: every later write, sync, truncate and delete fails
//! (the process is "dead", so nothing more reaches the disk). `restore(rng)` then rebuilds
//! each file from its durable image plus what the disk may have kept of the pending
//! writes, chosen at random per write: all of it, none of it, or torn at 512-byte sector
//! boundaries (each sector of the write kept or not). Bytes outside a write are never
//! touched, which is what SQLite assumes of a disk with powersafe overwrite (the `unix`
//! VFS's default). The rebuilt bytes are written into the same files in place, and the
//! `-shm` is left for SQLite to rebuild, as after a reboot.
//!
//! Faults: `fail_at(kind, n, code)` makes the n-th operation of that kind from now
//! return `code` (`SQLITE_IOERR_*` or `SQLITE_FULL`) and change nothing, once.
//!
//! Installed as the process's default VFS (`install`), so every connection ferrymq opens
//! goes through it without a hook in the library.
#![allow(dead_code)]

use rusqlite::ffi;
use std::collections::HashMap;
use std::ffi::{CStr, c_char, c_int, c_void};
use std::sync::{Mutex, MutexGuard, Once};

const SECTOR: usize = 512;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Op {
    Read,
    Write,
    Sync,
    Truncate,
}

#[derive(Clone, Debug)]
enum Pending {
    Write { offset: usize, data: Vec<u8> },
    Truncate { size: usize },
}

#[derive(Default)]
struct FileState {
    durable: Vec<u8>,
    pending: Vec<Pending>,
}

struct Fault {
    op: Op,
    /// Operations of this kind still to pass before the one that fails.
    left: u64,
    code: c_int,
}

#[derive(Default)]
struct World {
    files: HashMap<String, FileState>,
    dead: bool,
    /// Writes (to tracked files) seen since the last `count_writes_from_zero`.
    writes: u64,
    /// The power goes at this write (it and everything after never reach the disk).
    cut_at_write: Option<u64>,
    fault: Option<Fault>,
    /// Faults that fired since the last `fail_at`.
    fired: u64,
    /// While set, operations are neither counted nor faulted (a test's own preparation).
    disarmed: bool,
    /// Operations on tracked files since the last `count_from_zero`, by kind.
    counts: HashMap<Op, u64>,
}

static WORLD: Mutex<Option<World>> = Mutex::new(None);

fn world() -> MutexGuard<'static, Option<World>> {
    WORLD.lock().unwrap_or_else(|e| e.into_inner())
}

fn with_world<T>(f: impl FnOnce(&mut World) -> T) -> T {
    let mut guard = world();
    f(guard.get_or_insert_with(World::default))
}

/// Makes this VFS the process's default. Idempotent.
pub fn install() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| unsafe {
        let unix = ffi::sqlite3_vfs_find(c"unix".as_ptr());
        assert!(!unix.is_null(), "no unix VFS");
        let mut vfs: ffi::sqlite3_vfs = *unix;
        vfs.szOsFile = (std::mem::size_of::<FaultFile>() + (*unix).szOsFile as usize) as c_int;
        vfs.zName = c"ferrymq-fault".as_ptr();
        vfs.pAppData = unix as *mut c_void;
        vfs.pNext = std::ptr::null_mut();
        vfs.xOpen = Some(x_open);
        vfs.xDelete = Some(x_delete);
        let vfs = Box::leak(Box::new(vfs));
        assert_eq!(ffi::sqlite3_vfs_register(vfs, 1), ffi::SQLITE_OK);
    });
    with_world(|_| ());
}

/// Forgets every file's state (for a test that starts over on new files).
pub fn reset() {
    *world() = Some(World::default());
}

/// From now on, the power goes at the `n`-th write to a tracked file (1-based).
pub fn cut_power_at_write(n: u64) {
    with_world(|w| {
        w.writes = 0;
        w.cut_at_write = Some(n);
    });
}

/// The power goes now.
pub fn power_cut() {
    with_world(|w| w.dead = true);
}

pub fn is_dead() -> bool {
    with_world(|w| w.dead)
}

/// Writes to tracked files since the last `cut_power_at_write` (or start).
pub fn writes() -> u64 {
    with_world(|w| w.writes)
}

/// The `n`-th (1-based) operation of kind `op` from now fails with `code`, once.
pub fn fail_at(op: Op, n: u64, code: c_int) {
    assert!(n >= 1);
    with_world(|w| {
        w.fault = Some(Fault {
            op,
            left: n - 1,
            code,
        });
        w.fired = 0;
    });
}

/// How many injected faults fired since the last `fail_at`.
pub fn fired() -> u64 {
    with_world(|w| w.fired)
}

/// Until `arm`, operations are neither counted nor faulted.
pub fn disarm() {
    with_world(|w| w.disarmed = true);
}

pub fn arm() {
    with_world(|w| w.disarmed = false);
}

/// Starts counting operations from zero.
pub fn count_from_zero() {
    with_world(|w| w.counts.clear());
}

/// Operations of kind `op` on tracked files since `count_from_zero`.
pub fn count(op: Op) -> u64 {
    with_world(|w| w.counts.get(&op).copied().unwrap_or(0))
}

pub fn clear_fault() {
    with_world(|w| w.fault = None);
}

/// Rebuilds every tracked file from what the disk holds after the cut, writes it in
/// place, and brings the power back. Each pending write is kept whole, lost, or torn
/// (each of its sectors kept or lost), as `below(n)` (a random number below `n`)
/// decides. Call only after every connection to the files is closed.
pub fn restore(mut below: impl FnMut(u64) -> u64) -> Restored {
    let mut report = Restored::default();
    with_world(|w| {
        for (path, file) in w.files.iter_mut() {
            let mut image = std::mem::take(&mut file.durable);
            for op in file.pending.drain(..) {
                report.pending += 1;
                match op {
                    Pending::Truncate { size } => match below(2) {
                        0 => report.dropped += 1,
                        _ => image.truncate(size),
                    },
                    Pending::Write { offset, data } => match below(3) {
                        0 => apply(&mut image, offset, &data),
                        1 => report.dropped += 1,
                        _ => {
                            report.torn += 1;
                            let mut at = 0;
                            while at < data.len() {
                                // Sectors are aligned to the file, not to the write.
                                let end = ((offset + at) / SECTOR + 1) * SECTOR - offset;
                                let end = end.min(data.len());
                                if below(2) == 0 {
                                    apply(&mut image, offset + at, &data[at..end]);
                                }
                                at = end;
                            }
                        }
                    },
                }
            }
            std::fs::write(path, &image).unwrap();
            file.durable = image;
        }
        w.dead = false;
        w.cut_at_write = None;
    });
    report
}

#[derive(Default, Debug, Clone, Copy)]
pub struct Restored {
    pub pending: u64,
    pub dropped: u64,
    pub torn: u64,
}

fn apply(image: &mut Vec<u8>, offset: usize, data: &[u8]) {
    if image.len() < offset + data.len() {
        image.resize(offset + data.len(), 0);
    }
    image[offset..offset + data.len()].copy_from_slice(data);
}

/// Decides the fate of an operation: `Err(code)` fails it (nothing reaches the disk).
fn gate(w: &mut World, op: Op) -> Result<(), c_int> {
    if w.dead {
        return Err(match op {
            Op::Read => ffi::SQLITE_IOERR_READ,
            Op::Write => ffi::SQLITE_IOERR_WRITE,
            Op::Sync => ffi::SQLITE_IOERR_FSYNC,
            Op::Truncate => ffi::SQLITE_IOERR_TRUNCATE,
        });
    }
    if w.disarmed {
        return Ok(());
    }
    *w.counts.entry(op).or_default() += 1;
    if op == Op::Write {
        w.writes += 1;
        if w.cut_at_write.is_some_and(|n| w.writes >= n) {
            w.dead = true;
            return Err(ffi::SQLITE_IOERR_WRITE);
        }
    }
    if let Some(f) = w.fault.as_mut().filter(|f| f.op == op) {
        if f.left == 0 {
            let code = f.code;
            w.fault = None;
            w.fired += 1;
            return Err(code);
        }
        f.left -= 1;
    }
    Ok(())
}

#[repr(C)]
struct FaultFile {
    base: ffi::sqlite3_file,
    /// The unix VFS's file, in the bytes that follow this struct.
    real: *mut ffi::sqlite3_file,
    /// Key into `World::files`; `None` for files not modelled (temp files).
    path: Option<Box<str>>,
}

unsafe fn unix(vfs: *mut ffi::sqlite3_vfs) -> *mut ffi::sqlite3_vfs {
    unsafe { (*vfs).pAppData as *mut ffi::sqlite3_vfs }
}

unsafe fn real(file: *mut ffi::sqlite3_file) -> *mut ffi::sqlite3_file {
    unsafe { (*(file as *mut FaultFile)).real }
}

unsafe fn methods(file: *mut ffi::sqlite3_file) -> &'static ffi::sqlite3_io_methods {
    unsafe { &*(*real(file)).pMethods }
}

unsafe fn tracked(file: *mut ffi::sqlite3_file) -> Option<&'static str> {
    unsafe { (*(file as *mut FaultFile)).path.as_deref() }
}

const TRACKED: c_int =
    ffi::SQLITE_OPEN_MAIN_DB | ffi::SQLITE_OPEN_WAL | ffi::SQLITE_OPEN_MAIN_JOURNAL;

unsafe extern "C" fn x_open(
    vfs: *mut ffi::sqlite3_vfs,
    name: ffi::sqlite3_filename,
    file: *mut ffi::sqlite3_file,
    flags: c_int,
    out_flags: *mut c_int,
) -> c_int {
    unsafe {
        let ff = file as *mut FaultFile;
        let inner = (ff as *mut u8).add(std::mem::size_of::<FaultFile>()) as *mut ffi::sqlite3_file;
        std::ptr::write(
            ff,
            FaultFile {
                base: ffi::sqlite3_file {
                    pMethods: std::ptr::null(),
                },
                real: inner,
                path: None,
            },
        );
        let unix = unix(vfs);
        let rc = ((*unix).xOpen.unwrap())(unix, name, inner, flags, out_flags);
        if rc != ffi::SQLITE_OK || (*inner).pMethods.is_null() {
            std::ptr::drop_in_place(ff);
            return rc;
        }
        if flags & TRACKED != 0 && !name.is_null() {
            let path: Box<str> = CStr::from_ptr(name).to_string_lossy().into();
            with_world(|w| {
                w.files
                    .entry(path.to_string())
                    .or_insert_with(|| FileState {
                        durable: std::fs::read(&*path).unwrap_or_default(),
                        pending: Vec::new(),
                    });
            });
            (*ff).path = Some(path);
        }
        (*ff).base.pMethods = &IO_METHODS;
        ffi::SQLITE_OK
    }
}

unsafe extern "C" fn x_delete(
    vfs: *mut ffi::sqlite3_vfs,
    name: *const c_char,
    sync_dir: c_int,
) -> c_int {
    unsafe {
        let path = CStr::from_ptr(name).to_string_lossy().into_owned();
        let gone = with_world(|w| {
            if w.dead {
                return Err(ffi::SQLITE_IOERR_DELETE);
            }
            // A delete is taken as durable at once (the directory is synced with it).
            w.files.remove(&path);
            Ok(())
        });
        if let Err(code) = gone {
            return code;
        }
        let unix = unix(vfs);
        ((*unix).xDelete.unwrap())(unix, name, sync_dir)
    }
}

unsafe extern "C" fn x_close(file: *mut ffi::sqlite3_file) -> c_int {
    unsafe {
        let rc = (methods(file).xClose.unwrap())(real(file));
        std::ptr::drop_in_place(file as *mut FaultFile);
        rc
    }
}

unsafe extern "C" fn x_read(
    file: *mut ffi::sqlite3_file,
    buf: *mut c_void,
    amt: c_int,
    ofst: i64,
) -> c_int {
    unsafe {
        if tracked(file).is_some()
            && let Err(code) = with_world(|w| gate(w, Op::Read))
        {
            return code;
        }
        (methods(file).xRead.unwrap())(real(file), buf, amt, ofst)
    }
}

unsafe extern "C" fn x_write(
    file: *mut ffi::sqlite3_file,
    buf: *const c_void,
    amt: c_int,
    ofst: i64,
) -> c_int {
    unsafe {
        let Some(path) = tracked(file) else {
            return (methods(file).xWrite.unwrap())(real(file), buf, amt, ofst);
        };
        let mut guard = world();
        let w = guard.get_or_insert_with(World::default);
        if let Err(code) = gate(w, Op::Write) {
            return code;
        }
        let rc = (methods(file).xWrite.unwrap())(real(file), buf, amt, ofst);
        if rc == ffi::SQLITE_OK {
            let data = std::slice::from_raw_parts(buf as *const u8, amt as usize).to_vec();
            w.files
                .entry(path.to_string())
                .or_default()
                .pending
                .push(Pending::Write {
                    offset: ofst as usize,
                    data,
                });
        }
        rc
    }
}

unsafe extern "C" fn x_truncate(file: *mut ffi::sqlite3_file, size: i64) -> c_int {
    unsafe {
        let Some(path) = tracked(file) else {
            return (methods(file).xTruncate.unwrap())(real(file), size);
        };
        let mut guard = world();
        let w = guard.get_or_insert_with(World::default);
        if let Err(code) = gate(w, Op::Truncate) {
            return code;
        }
        let rc = (methods(file).xTruncate.unwrap())(real(file), size);
        if rc == ffi::SQLITE_OK {
            w.files
                .entry(path.to_string())
                .or_default()
                .pending
                .push(Pending::Truncate {
                    size: size as usize,
                });
        }
        rc
    }
}

unsafe extern "C" fn x_sync(file: *mut ffi::sqlite3_file, flags: c_int) -> c_int {
    unsafe {
        let Some(path) = tracked(file) else {
            return (methods(file).xSync.unwrap())(real(file), flags);
        };
        with_world(|w| {
            gate(w, Op::Sync)?;
            let f = w.files.entry(path.to_string()).or_default();
            for op in f.pending.drain(..) {
                match op {
                    Pending::Write { offset, data } => apply(&mut f.durable, offset, &data),
                    Pending::Truncate { size } => f.durable.truncate(size),
                }
            }
            Ok(())
        })
        .err()
        .unwrap_or(ffi::SQLITE_OK)
    }
}

unsafe extern "C" fn x_file_size(file: *mut ffi::sqlite3_file, size: *mut i64) -> c_int {
    unsafe { (methods(file).xFileSize.unwrap())(real(file), size) }
}
unsafe extern "C" fn x_lock(file: *mut ffi::sqlite3_file, l: c_int) -> c_int {
    unsafe { (methods(file).xLock.unwrap())(real(file), l) }
}
unsafe extern "C" fn x_unlock(file: *mut ffi::sqlite3_file, l: c_int) -> c_int {
    unsafe { (methods(file).xUnlock.unwrap())(real(file), l) }
}
unsafe extern "C" fn x_check_reserved_lock(file: *mut ffi::sqlite3_file, out: *mut c_int) -> c_int {
    unsafe { (methods(file).xCheckReservedLock.unwrap())(real(file), out) }
}
unsafe extern "C" fn x_file_control(
    file: *mut ffi::sqlite3_file,
    op: c_int,
    arg: *mut c_void,
) -> c_int {
    unsafe { (methods(file).xFileControl.unwrap())(real(file), op, arg) }
}
unsafe extern "C" fn x_sector_size(file: *mut ffi::sqlite3_file) -> c_int {
    unsafe { (methods(file).xSectorSize.unwrap())(real(file)) }
}
unsafe extern "C" fn x_device_characteristics(file: *mut ffi::sqlite3_file) -> c_int {
    unsafe { (methods(file).xDeviceCharacteristics.unwrap())(real(file)) }
}
unsafe extern "C" fn x_shm_map(
    file: *mut ffi::sqlite3_file,
    pg: c_int,
    pgsz: c_int,
    extend: c_int,
    pp: *mut *mut c_void,
) -> c_int {
    unsafe {
        match methods(file).xShmMap {
            Some(f) => f(real(file), pg, pgsz, extend, pp),
            None => ffi::SQLITE_IOERR_SHMMAP,
        }
    }
}
unsafe extern "C" fn x_shm_lock(
    file: *mut ffi::sqlite3_file,
    offset: c_int,
    n: c_int,
    flags: c_int,
) -> c_int {
    unsafe {
        match methods(file).xShmLock {
            Some(f) => f(real(file), offset, n, flags),
            None => ffi::SQLITE_IOERR_SHMLOCK,
        }
    }
}
unsafe extern "C" fn x_shm_barrier(file: *mut ffi::sqlite3_file) {
    unsafe {
        if let Some(f) = methods(file).xShmBarrier {
            f(real(file))
        }
    }
}
unsafe extern "C" fn x_shm_unmap(file: *mut ffi::sqlite3_file, delete: c_int) -> c_int {
    unsafe {
        match methods(file).xShmUnmap {
            Some(f) => f(real(file), delete),
            None => ffi::SQLITE_OK,
        }
    }
}

// No xFetch/xUnfetch (version 2): SQLite then reads through xRead, which the model sees.
static IO_METHODS: ffi::sqlite3_io_methods = ffi::sqlite3_io_methods {
    iVersion: 2,
    xClose: Some(x_close),
    xRead: Some(x_read),
    xWrite: Some(x_write),
    xTruncate: Some(x_truncate),
    xSync: Some(x_sync),
    xFileSize: Some(x_file_size),
    xLock: Some(x_lock),
    xUnlock: Some(x_unlock),
    xCheckReservedLock: Some(x_check_reserved_lock),
    xFileControl: Some(x_file_control),
    xSectorSize: Some(x_sector_size),
    xDeviceCharacteristics: Some(x_device_characteristics),
    xShmMap: Some(x_shm_map),
    xShmLock: Some(x_shm_lock),
    xShmBarrier: Some(x_shm_barrier),
    xShmUnmap: Some(x_shm_unmap),
    xFetch: None,
    xUnfetch: None,
};
