//! Sharing a process with another SQLite library (Python's `sqlite3`, better-sqlite3,
//! sqlite-jdbc) that opens the same file.
//!
//! SQLite locks a file with POSIX record locks (`fcntl(F_SETLK)`), which belong to the
//! process, not to a descriptor: closing ANY descriptor of the file drops every lock the
//! process holds on it. One SQLite library copes by keeping its own table of open files
//! and deferring closes; two copies in one process know nothing of each other's. So when
//! the host's `sqlite3` closes a connection, ferrymq's locks on the file silently vanish
//! (another process may then write under a ferrymq reader or writer: corruption), and
//! when ferrymq closes one, the host's locks vanish. The two copies' locks do not even
//! conflict with each other, since both belong to the same process.
//!
//! On Linux, ferrymq's copy of SQLite locks with open file description (OFD) locks
//! instead (`F_OFD_SETLK`): they belong to one open file description and are released
//! only when the last descriptor of it closes. Through SQLite's system-call table, every
//! lock request on a file goes to one description per file that ferrymq opens for the
//! purpose and never closes while the file exists, so ferrymq's connections share their
//! locks as before, the host's closes cannot drop them, and they conflict with the
//! host's POSIX locks as another process's would. And ferrymq never closes a descriptor
//! of a database or `-shm` file that still exists: it keeps it, and reuses it when it
//! opens that file again, so ferrymq's closes cannot drop the host's locks.
//!
//! After `fork()`, the child shares the parent's lock descriptions: the child drops its
//! copies (closing them releases nothing while the parent holds its own) and opens its
//! own on its next lock request (`after_fork_in_child`).
//!
//! Elsewhere than Linux there are no OFD locks, and this is not installed: a process
//! there must not mix ferrymq with another SQLite library on one file.

#[cfg(target_os = "linux")]
pub(crate) use linux::{after_fork_in_child, after_fork_in_parent, install, prepare_fork};

#[cfg(not(target_os = "linux"))]
pub(crate) fn install() {}
#[cfg(not(target_os = "linux"))]
pub(crate) fn prepare_fork() {}
#[cfg(not(target_os = "linux"))]
pub(crate) fn after_fork_in_parent() {}
#[cfg(not(target_os = "linux"))]
pub(crate) fn after_fork_in_child() {}

#[cfg(target_os = "linux")]
mod linux {
    use libc::{c_char, c_int, c_void};
    use rusqlite::ffi;
    use std::cell::UnsafeCell;
    use std::collections::HashMap;
    use std::ffi::CStr;
    use std::sync::Once;
    use std::sync::atomic::{AtomicBool, Ordering};

    /// A file: (device, inode).
    type Key = (u64, u64);

    #[derive(Default)]
    struct File {
        /// The description every lock request on this file goes to; -1 until the first.
        lock_fd: Option<c_int>,
        /// Descriptors SQLite closed while the file still existed, with their access
        /// mode, for its next open of the file.
        kept: Vec<(c_int, c_int)>,
        /// Descriptors SQLite holds open.
        open: usize,
    }

    #[derive(Default)]
    struct State {
        /// SQLite's open descriptors of database and `-shm` files.
        fds: HashMap<c_int, Key>,
        files: HashMap<Key, File>,
    }

    /// A spin lock, not a `Mutex`: the fork handlers take it in `prepare` and release it
    /// in the parent and the child, which a `Mutex` guard cannot span. Held for a few
    /// system calls at most.
    struct Guarded {
        busy: AtomicBool,
        state: UnsafeCell<Option<State>>,
    }

    // SAFETY: `state` is only touched while `busy` is held.
    unsafe impl Sync for Guarded {}

    static STATE: Guarded = Guarded {
        busy: AtomicBool::new(false),
        state: UnsafeCell::new(None),
    };

    impl Guarded {
        fn acquire(&self) {
            while self
                .busy
                .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
                .is_err()
            {
                std::hint::spin_loop();
            }
        }

        fn release(&self) {
            self.busy.store(false, Ordering::Release);
        }

        fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
            self.acquire();
            // SAFETY: held exclusively until `release`.
            let out = f(unsafe { &mut *self.state.get() }.get_or_insert_with(State::default));
            self.release();
            out
        }
    }

    type OpenFn = unsafe extern "C" fn(*const c_char, c_int, c_int) -> c_int;
    type CloseFn = unsafe extern "C" fn(c_int) -> c_int;
    static mut REAL_OPEN: Option<OpenFn> = None;
    static mut REAL_CLOSE: Option<CloseFn> = None;

    /// Installs the shims when the program or library is loaded, before any thread can
    /// use SQLite: a connection that took a POSIX lock before them would then ask for the
    /// next lock through them, and its own POSIX lock would refuse its OFD request
    /// (`database is locked` on a file nobody else holds). `connect` calls `install` too,
    /// in case a linker dropped this entry.
    #[used]
    #[unsafe(link_section = ".init_array")]
    static INSTALL_AT_LOAD: extern "C" fn() = {
        extern "C" fn at_load() {
            install();
        }
        at_load
    };

    /// Puts the shims into SQLite's system-call table, once, before ferrymq's first
    /// connection opens.
    pub(crate) fn install() {
        static ONCE: Once = Once::new();
        ONCE.call_once(|| {
            // SAFETY: the VFS table is replaced before this process opens a connection
            // through ferrymq, under `Once`; the replaced pointers are kept to call on.
            unsafe {
                ffi::sqlite3_initialize();
                let vfs = ffi::sqlite3_vfs_find(std::ptr::null());
                if vfs.is_null() || (*vfs).iVersion < 3 {
                    return;
                }
                let (Some(get), Some(set)) = ((*vfs).xGetSystemCall, (*vfs).xSetSystemCall) else {
                    return;
                };
                let open = get(vfs, c"open".as_ptr());
                let close = get(vfs, c"close".as_ptr());
                let (Some(open), Some(close)) = (open, close) else {
                    return;
                };
                REAL_OPEN = Some(std::mem::transmute::<unsafe extern "C" fn(), OpenFn>(open));
                REAL_CLOSE = Some(std::mem::transmute::<unsafe extern "C" fn(), CloseFn>(
                    close,
                ));
                type FcntlFn = unsafe extern "C" fn(c_int, c_int, *mut c_void) -> c_int;
                type Erased = unsafe extern "C" fn();
                // SQLite calls fcntl as variadic with one pointer or integer argument:
                // on Linux (x86_64, aarch64) that passes it as a third ordinary
                // argument, which is how `fcntl_shim` reads it.
                let shims: [(&CStr, Erased); 3] = [
                    (c"open", std::mem::transmute::<OpenFn, Erased>(open_shim)),
                    (c"close", std::mem::transmute::<CloseFn, Erased>(close_shim)),
                    (c"fcntl", std::mem::transmute::<FcntlFn, Erased>(fcntl_shim)),
                ];
                for (name, shim) in shims {
                    set(vfs, name.as_ptr(), Some(shim));
                }
            }
        });
    }

    fn stat_fd(fd: c_int) -> Option<libc::stat> {
        // SAFETY: `st` is written by fstat before it is read.
        unsafe {
            let mut st: libc::stat = std::mem::zeroed();
            (libc::fstat(fd, &mut st) == 0).then_some(st)
        }
    }

    fn is_file(st: &libc::stat) -> bool {
        st.st_mode & libc::S_IFMT == libc::S_IFREG
    }

    /// The files SQLite locks: databases and `-shm`. A `-wal` or `-journal` file is
    /// never locked, so closing it drops nothing.
    fn lockable(path: &CStr) -> bool {
        let p = path.to_bytes();
        !(p.ends_with(b"-wal") || p.ends_with(b"-journal"))
    }

    fn access_mode(fd: c_int) -> c_int {
        // SAFETY: F_GETFL takes no argument.
        unsafe { libc::fcntl(fd, libc::F_GETFL) & libc::O_ACCMODE }
    }

    /// Whether an open with `flags` would be allowed now: a kept descriptor was allowed
    /// when it was opened, and the file's permissions (or immutable flag) may have changed
    /// since.
    fn may_open(path: *const c_char, flags: c_int) -> bool {
        let need = match flags & libc::O_ACCMODE {
            libc::O_RDONLY => libc::R_OK,
            libc::O_WRONLY => libc::W_OK,
            _ => libc::R_OK | libc::W_OK,
        };
        // SAFETY: a NUL-terminated path.
        unsafe { libc::access(path, need) == 0 }
    }

    unsafe extern "C" fn open_shim(path: *const c_char, flags: c_int, mode: c_int) -> c_int {
        // SAFETY: SQLite passes a NUL-terminated path.
        let name = unsafe { CStr::from_ptr(path) };
        let track = lockable(name);
        if track && flags & (libc::O_EXCL | libc::O_TRUNC) == 0 && may_open(path, flags) {
            // SAFETY: `st` is written by stat before it is read.
            let st = unsafe {
                let mut st: libc::stat = std::mem::zeroed();
                (libc::stat(path, &mut st) == 0).then_some(st)
            };
            if let Some(st) = st.filter(is_file) {
                let key = (st.st_dev, st.st_ino);
                let want = flags & libc::O_ACCMODE;
                let reused = STATE.with(|s| {
                    let file = s.files.get_mut(&key)?;
                    let at = file.kept.iter().position(|&(_, m)| m == want)?;
                    let (fd, _) = file.kept.swap_remove(at);
                    file.open += 1;
                    s.fds.insert(fd, key);
                    Some(fd)
                });
                if let Some(fd) = reused {
                    return fd;
                }
            }
        }
        // SAFETY: the pointer SQLite had in its table.
        let fd = unsafe { REAL_OPEN.expect("installed")(path, flags, mode) };
        if fd >= 0
            && track
            && let Some(st) = stat_fd(fd).filter(is_file)
        {
            let key = (st.st_dev, st.st_ino);
            STATE.with(|s| {
                s.fds.insert(fd, key);
                s.files.entry(key).or_default().open += 1;
            });
        }
        fd
    }

    unsafe extern "C" fn close_shim(fd: c_int) -> c_int {
        let linked = stat_fd(fd).is_some_and(|st| st.st_nlink > 0);
        let mode = access_mode(fd);
        let (keep, to_close) = STATE.with(|s| {
            let keep = match s.fds.remove(&fd) {
                Some(key) => {
                    let file = s.files.entry(key).or_default();
                    file.open = file.open.saturating_sub(1);
                    if linked {
                        file.kept.push((fd, mode));
                    }
                    linked
                }
                None => false,
            };
            (keep, sweep(s))
        });
        for fd in to_close {
            // SAFETY: descriptors this module owns, of files that no longer exist.
            unsafe { REAL_CLOSE.expect("installed")(fd) };
        }
        if keep {
            return 0;
        }
        // SAFETY: the pointer SQLite had in its table.
        unsafe { REAL_CLOSE.expect("installed")(fd) }
    }

    /// The kept and lock descriptors of files deleted since (a `-wal`'s database
    /// removed by a test, a `-shm` unlinked at the last close): closing those cannot drop
    /// a lock anyone still needs.
    fn sweep(s: &mut State) -> Vec<c_int> {
        let mut out = Vec::new();
        s.files.retain(|_, file| {
            file.kept.retain(|&(fd, _)| {
                let gone = stat_fd(fd).is_none_or(|st| st.st_nlink == 0);
                if gone {
                    out.push(fd);
                }
                !gone
            });
            if file.open > 0 || !file.kept.is_empty() {
                return true;
            }
            let gone = file
                .lock_fd
                .is_none_or(|fd| stat_fd(fd).is_none_or(|st| st.st_nlink == 0));
            if gone {
                out.extend(file.lock_fd);
            }
            !gone
        });
        out
    }

    /// The lock description of `fd`'s file, opened anew (not `dup`ed, which would share
    /// the description of an inherited descriptor) through /proc.
    fn lock_fd_for(s: &mut State, fd: c_int) -> Option<c_int> {
        let key = match s.fds.get(&fd) {
            Some(&key) => key,
            None => {
                let st = stat_fd(fd).filter(is_file)?;
                (st.st_dev, st.st_ino)
            }
        };
        let file = s.files.entry(key).or_default();
        if let Some(l) = file.lock_fd {
            return Some(l);
        }
        let path = std::ffi::CString::new(format!("/proc/self/fd/{fd}")).ok()?;
        let l = [libc::O_RDWR, libc::O_RDONLY]
            .into_iter()
            .find_map(|mode| {
                // SAFETY: a NUL-terminated path.
                let l = unsafe { libc::open(path.as_ptr(), mode | libc::O_CLOEXEC) };
                (l >= 0).then_some(l)
            })?;
        file.lock_fd = Some(l);
        Some(l)
    }

    unsafe extern "C" fn fcntl_shim(fd: c_int, cmd: c_int, arg: *mut c_void) -> c_int {
        let ofd = match cmd {
            libc::F_SETLK => libc::F_OFD_SETLK,
            libc::F_SETLKW => libc::F_OFD_SETLKW,
            libc::F_GETLK => libc::F_OFD_GETLK,
            // SAFETY: SQLite's own call, passed on unchanged.
            _ => return unsafe { libc::fcntl(fd, cmd, arg) },
        };
        // Without /proc: POSIX locks as before.
        let Some(l) = STATE.with(|s| lock_fd_for(s, fd)) else {
            // SAFETY: SQLite's own call, passed on unchanged.
            return unsafe { libc::fcntl(fd, cmd, arg) };
        };
        // SAFETY: for these commands SQLite passes a `struct flock`.
        let lock = unsafe { &mut *arg.cast::<libc::flock>() };
        // OFD requests must carry l_pid 0; SQLite leaves it unset.
        let pid = lock.l_pid;
        lock.l_pid = 0;
        // SAFETY: a valid descriptor and flock.
        let rc = unsafe { libc::fcntl(l, ofd, lock as *mut libc::flock) };
        if cmd != libc::F_GETLK {
            lock.l_pid = pid;
        }
        rc
    }

    /// Holds the table across `fork()`, so the child inherits it whole.
    pub(crate) fn prepare_fork() {
        STATE.acquire();
    }

    pub(crate) fn after_fork_in_parent() {
        STATE.release();
    }

    /// The child's lock descriptions are the parent's: unlocking through them would
    /// release the parent's locks. Drops them; the next lock request opens the child's own.
    pub(crate) fn after_fork_in_child() {
        // SAFETY: held since `prepare_fork`; only the forking thread runs in the child.
        if let Some(s) = unsafe { &mut *STATE.state.get() } {
            for file in s.files.values_mut() {
                if let Some(l) = file.lock_fd.take() {
                    // SAFETY: the child's copy of a descriptor this module owns.
                    unsafe { libc::close(l) };
                }
            }
        }
        STATE.release();
    }
}
