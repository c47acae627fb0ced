//! Encryption at rest: which key opens the file, and keeping every connection on it.
//!
//! ferrymq is built on SQLCipher 4's SQLite: each 4,096-byte page is encrypted with
//! AES-256-CBC and authenticated with HMAC-SHA512 under a 256-bit key; the file's first 16
//! bytes are a random salt, the rest is ciphertext (the `-wal` holds ciphertext pages too).
//! A file opened without a key is plain SQLite and stays so.
//!
//! A passphrase becomes a key through PBKDF2-HMAC-SHA512 (256,000 rounds) with the file's
//! salt, as SQLCipher's own `PRAGMA key = 'passphrase'` does, so the `sqlcipher` shell opens
//! the file with the same passphrase. The derivation takes 0.14 s here, so it is done once per
//! queue (and per rotation), and every connection gets the derived raw key.
//!
//! Keys never pass through SQL text: they are handed to `sqlite3_key_v2`/`sqlite3_rekey_v2`
//! and wiped from memory when dropped.
//!
//! Rotation: `Queue::rekey` rewrites every page under the new key in one transaction (the
//! salt stays). Another process's connections then fail to read the first page of their
//! next transaction; each queue checks its connection's key when it takes one from its pool,
//! and on failure asks its key source again and reopens (a provider that lists the new key
//! next to the old one lets every process follow a rotation without an error).

use crate::error::{Error, Result};
use std::ffi::{c_char, c_int, c_void};
use std::fmt;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// SQLite's plain-file header; an encrypted file starts with its salt instead.
const PLAIN_MAGIC: &[u8; 16] = b"SQLite format 3\0";
/// SQLCipher 4's page size (`cipher_page_size`), which ferrymq never changes.
pub(crate) const PAGE: u64 = 4096;
const SALT: usize = 16;
const KEY: usize = 32;
/// SQLCipher 4's default `kdf_iter`.
const KDF_ROUNDS: c_int = 256_000;
/// Longest passphrase accepted (a passphrase is not a document).
const MAX_PASSPHRASE: usize = 1024;

unsafe extern "C" {
    // OpenSSL's libcrypto, which SQLCipher links already.
    fn PKCS5_PBKDF2_HMAC(
        pass: *const c_char,
        passlen: c_int,
        salt: *const u8,
        saltlen: c_int,
        iter: c_int,
        digest: *const c_void,
        keylen: c_int,
        out: *mut u8,
    ) -> c_int;
    fn EVP_sha512() -> *const c_void;
}

/// Bytes wiped when dropped.
#[derive(Clone)]
struct Secret(Vec<u8>);

impl Drop for Secret {
    fn drop(&mut self) {
        for b in self.0.iter_mut() {
            // Volatile: the compiler may not drop a store to memory about to be freed.
            unsafe { std::ptr::write_volatile(b, 0) };
        }
    }
}

/// A key that opens an encrypted file: a passphrase, or 32 raw bytes (a data key from a
/// KMS or HSM). Its `Debug` form never shows it.
#[derive(Clone)]
pub struct Key(KeyKind);

#[derive(Clone)]
enum KeyKind {
    Passphrase(Secret),
    Raw(Secret),
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            KeyKind::Passphrase(_) => f.write_str("Key::passphrase(<redacted>)"),
            KeyKind::Raw(_) => f.write_str("Key::raw(<redacted>)"),
        }
    }
}

impl Key {
    /// A passphrase of 1 to 1,024 bytes, stretched with PBKDF2-HMAC-SHA512 (as SQLCipher's
    /// `PRAGMA key = 'passphrase'`).
    pub fn passphrase(passphrase: impl Into<String>) -> Result<Key> {
        let p = Secret(passphrase.into().into_bytes());
        if p.0.is_empty() || p.0.len() > MAX_PASSPHRASE {
            return Err(Error::invalid(format!(
                "a passphrase must be 1 to {MAX_PASSPHRASE} bytes, got {}",
                p.0.len()
            )));
        }
        Ok(Key(KeyKind::Passphrase(p)))
    }

    /// A raw 256-bit key, used as it is.
    pub fn raw(bytes: &[u8]) -> Result<Key> {
        if bytes.len() != KEY {
            return Err(Error::invalid(format!(
                "a raw key must be {KEY} bytes (256 bits), got {}",
                bytes.len()
            )));
        }
        Ok(Key(KeyKind::Raw(Secret(bytes.to_vec()))))
    }

    /// A key written as text (a file, an environment variable): SQLCipher's raw key syntax
    /// `x'<64 hex digits>'` is a raw key, anything else a passphrase.
    pub fn from_text(text: &str) -> Result<Key> {
        let hex = text
            .strip_prefix("x'")
            .or_else(|| text.strip_prefix("X'"))
            .and_then(|t| t.strip_suffix('\''));
        let Some(hex) = hex else {
            return Key::passphrase(text);
        };
        let digits = hex.as_bytes();
        if digits.len() != KEY * 2 || !digits.iter().all(u8::is_ascii_hexdigit) {
            return Err(Error::invalid(format!(
                "a raw key is x'...' with {} hex digits, got {} characters between the quotes",
                KEY * 2,
                digits.len()
            )));
        }
        let bytes: Vec<u8> = digits
            .chunks(2)
            .map(|pair| {
                let text = std::str::from_utf8(pair).unwrap_or("00");
                u8::from_str_radix(text, 16).unwrap_or(0)
            })
            .collect();
        Key::raw(&bytes)
    }

    /// The raw key this key means for a file with `salt`.
    fn derive(&self, salt: &[u8; SALT]) -> Result<Secret> {
        match &self.0 {
            KeyKind::Raw(k) => Ok(k.clone()),
            KeyKind::Passphrase(p) => pbkdf2(&p.0, salt),
        }
    }
}

fn pbkdf2(pass: &[u8], salt: &[u8; SALT]) -> Result<Secret> {
    let mut out = Secret(vec![0; KEY]);
    // Lengths are bounded by MAX_PASSPHRASE, SALT and KEY.
    let ok = unsafe {
        PKCS5_PBKDF2_HMAC(
            pass.as_ptr().cast(),
            pass.len() as c_int,
            salt.as_ptr(),
            SALT as c_int,
            KDF_ROUNDS,
            EVP_sha512(),
            KEY as c_int,
            out.0.as_mut_ptr(),
        )
    };
    if ok != 1 {
        return Err(Error::Encryption(
            "deriving the key from the passphrase failed in OpenSSL".into(),
        ));
    }
    Ok(out)
}

/// A callback that returns the keys to try, newest first: during a rotation, the new key
/// and the old one. Called when a queue opens and whenever its key stops opening the file.
/// An `Err` is reported as an `Encryption` error carrying its text.
pub type KeyProvider = dyn Fn() -> std::result::Result<Vec<Key>, String> + Send + Sync;

/// Where a queue's key comes from (`Options::key`, `Options::key_provider`).
#[derive(Clone)]
pub enum KeySource {
    Fixed(Key),
    Provider(Arc<KeyProvider>),
}

impl fmt::Debug for KeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeySource::Fixed(k) => write!(f, "Fixed({k:?})"),
            KeySource::Provider(_) => f.write_str("Provider(..)"),
        }
    }
}

impl KeySource {
    /// Keys read from a file whenever they are needed: one per line (`Key::from_text`),
    /// newest first, so an operator rotates by writing the new key above the old one.
    pub fn file(path: impl Into<std::path::PathBuf>) -> KeySource {
        let path = path.into();
        KeySource::Provider(Arc::new(move || {
            let text = std::fs::read_to_string(&path)
                .map_err(|e| format!("cannot read the key file {}: {e}", path.display()))?;
            keys_in(&text)
        }))
    }

    /// Keys read from an environment variable whenever they are needed (as in `file`).
    pub fn env(var: impl Into<String>) -> KeySource {
        let var = var.into();
        KeySource::Provider(Arc::new(move || {
            let text = std::env::var(&var).map_err(|_| {
                format!("the environment variable {var} holding the key is not set")
            })?;
            keys_in(&text)
        }))
    }

    /// The keys the source gives now (a provider is called), at least one.
    pub fn keys(&self) -> Result<Vec<Key>> {
        let keys = match self {
            KeySource::Fixed(k) => vec![k.clone()],
            KeySource::Provider(p) => {
                match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| p())) {
                    Ok(Ok(keys)) => keys,
                    Ok(Err(why)) => {
                        return Err(Error::Encryption(format!("the key provider failed: {why}")));
                    }
                    Err(panic) => {
                        return Err(Error::Encryption(format!(
                            "the key provider panicked: {}",
                            crate::error::panic_text(panic.as_ref())
                        )));
                    }
                }
            }
        };
        if keys.is_empty() {
            return Err(Error::Encryption("the key provider returned no key".into()));
        }
        Ok(keys)
    }
}

/// One key per non-empty line.
fn keys_in(text: &str) -> std::result::Result<Vec<Key>, String> {
    text.lines()
        .map(str::trim_end)
        .filter(|l| !l.is_empty())
        .map(|l| Key::from_text(l).map_err(|e| e.to_string()))
        .collect()
}

/// What the file on disk is, from its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FileKind {
    /// Absent or empty: it becomes whatever the opener asks for.
    New,
    Plain,
    Encrypted {
        salt: [u8; SALT],
    },
    /// Neither SQLite's header nor whole encrypted pages: an encrypted file cut short, or
    /// not a database.
    Unreadable {
        len: u64,
    },
}

/// Reads the file's header without SQLite's pager (which must not touch a file opened
/// the wrong way), but through its VFS: a descriptor of the file closed outside it would
/// drop the POSIX locks of another SQLite library in this process (see `lock_isolation`).
pub(crate) fn inspect(path: &Path) -> Result<FileKind> {
    crate::lock_isolation::install();
    let len = match std::fs::metadata(path) {
        Ok(m) => m.len(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(FileKind::New),
        Err(e) => {
            return Err(Error::Storage(format!(
                "cannot read {}: {e}",
                path.display()
            )));
        }
    };
    if len == 0 {
        return Ok(FileKind::New);
    }
    let head = read_head(path)?;
    if len >= SALT as u64 && &head == PLAIN_MAGIC {
        return Ok(FileKind::Plain);
    }
    if len % PAGE != 0 {
        return Ok(FileKind::Unreadable { len });
    }
    Ok(FileKind::Encrypted { salt: head })
}

/// The first 16 bytes of the file (zeros past its end), read with the default VFS.
fn read_head(path: &Path) -> Result<[u8; SALT]> {
    use rusqlite::ffi;
    let cannot = |what: &str, rc: c_int| {
        Error::Storage(format!("cannot {what} {} (code {rc})", path.display()))
    };
    let name = std::ffi::CString::new(path.as_os_str().as_encoded_bytes())
        .map_err(|_| Error::invalid(format!("{} contains a NUL byte", path.display())))?;
    let mut head = [0u8; SALT];
    // SAFETY: the VFS contract: a zeroed, 8-byte aligned buffer of szOsFile bytes for the
    // file object; xClose is called once iff xOpen succeeded; the name outlives the file.
    unsafe {
        let vfs = ffi::sqlite3_vfs_find(std::ptr::null());
        if vfs.is_null() {
            return Err(cannot("find SQLite's VFS to read", 0));
        }
        let words = ((*vfs).szOsFile as usize).div_ceil(8);
        let mut buf = vec![0u64; words.max(1)];
        let file = buf.as_mut_ptr().cast::<ffi::sqlite3_file>();
        let open = (*vfs).xOpen.ok_or_else(|| cannot("open", 0))?;
        let mut out = 0;
        let flags = ffi::SQLITE_OPEN_READONLY | ffi::SQLITE_OPEN_MAIN_DB;
        let rc = open(vfs, name.as_ptr(), file, flags, &mut out);
        if rc != ffi::SQLITE_OK {
            if !(*file).pMethods.is_null() {
                if let Some(close) = (*(*file).pMethods).xClose {
                    close(file);
                }
            }
            return Err(cannot("open", rc));
        }
        let methods = &*(*file).pMethods;
        let rc = match methods.xRead {
            Some(read) => read(file, head.as_mut_ptr().cast(), SALT as c_int, 0),
            None => ffi::SQLITE_IOERR,
        };
        if let Some(close) = methods.xClose {
            close(file);
        }
        // A short read zero-fills the rest, which is what we want.
        if rc != ffi::SQLITE_OK && rc != ffi::SQLITE_IOERR_SHORT_READ {
            return Err(cannot("read", rc));
        }
    }
    Ok(head)
}

/// Refuses a plain file opened with a key and an encrypted one opened without, before
/// SQLite reads (or writes) anything.
pub(crate) fn check_kind(path: &Path, kind: FileKind, keyed: bool) -> Result<()> {
    match (kind, keyed) {
        (FileKind::Plain, true) => Err(Error::Encryption(format!(
            "{} is a plain (unencrypted) SQLite file, but a key was given: open it without a \
             key, or encrypt a copy with `ferrymq encrypt`",
            path.display()
        ))),
        (FileKind::Encrypted { .. }, false) => Err(Error::Encryption(format!(
            "{} is encrypted (or not a SQLite file): open it with its key",
            path.display()
        ))),
        (FileKind::Unreadable { len }, true) => Err(Error::Encryption(format!(
            "{} is {len} bytes, not a whole number of {PAGE}-byte pages: an encrypted file cut \
             short (a partial copy?), or not a database at all",
            path.display()
        ))),
        (FileKind::Unreadable { len }, false) => Err(Error::Storage(format!(
            "{} is not a SQLite database: no SQLite header, and {len} bytes is not a whole \
             number of encrypted pages either (cut short?)",
            path.display()
        ))),
        _ => Ok(()),
    }
}

/// Hands `key` (raw key bytes or a passphrase) to SQLCipher for the connection's main
/// database. Nothing is read until the next statement.
fn key_connection(conn: &rusqlite::Connection, spec: &Spec) -> Result<()> {
    let rc = with_key(conn, spec, rusqlite::ffi::sqlite3_key_v2);
    if rc != rusqlite::ffi::SQLITE_OK {
        return Err(Error::Encryption(format!(
            "SQLCipher refused the key (code {rc})"
        )));
    }
    Ok(())
}

/// Calls SQLCipher's `sqlite3_key_v2` or `sqlite3_rekey_v2` (same signature) for the
/// connection's main database with `spec`'s bytes; returns its result code.
fn with_key(
    conn: &rusqlite::Connection,
    spec: &Spec,
    call: unsafe extern "C" fn(
        *mut rusqlite::ffi::sqlite3,
        *const c_char,
        *const c_void,
        c_int,
    ) -> c_int,
) -> c_int {
    let bytes = spec.pragma_bytes();
    // Safety: the handle is open for the borrow of `conn`, the name is a C string, and
    // the key buffer outlives the call, which copies it.
    unsafe {
        call(
            conn.handle(),
            c"main".as_ptr(),
            bytes.0.as_ptr().cast(),
            bytes.0.len() as c_int,
        )
    }
}

/// Whether the connection's key reads the file's first page.
pub(crate) fn opens(conn: &rusqlite::Connection) -> Result<bool> {
    match conn
        .prepare_cached("PRAGMA schema_version")
        .and_then(|mut s| s.query_row([], |r| r.get::<_, i64>(0)))
    {
        Ok(_) => Ok(true),
        Err(e) if is_wrong_key(&e) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// SQLCipher reports a page it cannot authenticate as "file is not a database".
pub(crate) fn is_wrong_key(e: &rusqlite::Error) -> bool {
    e.sqlite_error_code() == Some(rusqlite::ErrorCode::NotADatabase)
}

/// What a connection is keyed with.
#[derive(Clone)]
enum Spec {
    /// A derived or raw key.
    Raw(Secret),
    /// A passphrase for a file that has no salt yet: SQLCipher derives it itself.
    Passphrase(Secret),
}

impl Spec {
    fn pragma_bytes(&self) -> Secret {
        match self {
            // SQLCipher's raw key syntax: x'64 hex digits'.
            Spec::Raw(k) => {
                let mut s = Vec::with_capacity(KEY * 2 + 3);
                s.extend_from_slice(b"x'");
                for b in &k.0 {
                    s.extend_from_slice(format!("{b:02X}").as_bytes());
                }
                s.push(b'\'');
                Secret(s)
            }
            Spec::Passphrase(p) => p.clone(),
        }
    }
}

/// A queue's key: where it comes from, the one its connections use now, and a count of
/// changes so connections keyed before a change are not pooled again.
pub(crate) struct Keyring {
    source: KeySource,
    current: Mutex<Spec>,
    epoch: AtomicU64,
    /// Makes a refresh's check of the epoch and its move one step.
    refreshing: Mutex<()>,
}

impl Keyring {
    /// The keyring for a file of `kind` (checked already), with the key that opens it.
    pub(crate) fn open(source: KeySource, path: &Path, kind: FileKind) -> Result<Keyring> {
        let spec = match kind {
            FileKind::Encrypted { salt } => find_key(&source, path, &salt)?,
            _ => match source.keys()?.swap_remove(0).0 {
                KeyKind::Raw(k) => Spec::Raw(k),
                KeyKind::Passphrase(p) => Spec::Passphrase(p),
            },
        };
        Ok(Keyring {
            source,
            current: Mutex::new(spec),
            epoch: AtomicU64::new(0),
            refreshing: Mutex::new(()),
        })
    }

    pub(crate) fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// Keys a fresh connection with the current key; returns the epoch it belongs to.
    pub(crate) fn apply(&self, conn: &rusqlite::Connection) -> Result<u64> {
        let epoch = self.epoch();
        let spec = crate::inner::lock(&self.current).clone();
        key_connection(conn, &spec)?;
        Ok(epoch)
    }

    /// After the file was created with a passphrase: derive its key once, from the salt
    /// SQLCipher wrote, so further connections skip the derivation.
    pub(crate) fn settle(&self, path: &Path) -> Result<()> {
        let mut current = crate::inner::lock(&self.current);
        let Spec::Passphrase(p) = &*current else {
            return Ok(());
        };
        let FileKind::Encrypted { salt } = inspect(path)? else {
            return Ok(());
        };
        *current = Spec::Raw(pbkdf2(&p.0, &salt)?);
        Ok(())
    }

    /// The key stopped opening the file (seen at `seen` epoch): ask the source again.
    /// The source is asked without holding a lock: a provider may wait for a thread
    /// (Node's JS thread) that is itself refreshing. Racing threads may each ask; the
    /// first to finish moves the epoch, the others find it moved and keep its key.
    pub(crate) fn refresh(&self, path: &Path, seen: u64) -> Result<()> {
        if self.epoch() != seen {
            return Ok(());
        }
        let FileKind::Encrypted { salt } = inspect(path)? else {
            return Err(Error::Encryption(format!(
                "{} is no longer an encrypted file",
                path.display()
            )));
        };
        let spec = find_key(&self.source, path, &salt)?;
        let _one = crate::inner::lock(&self.refreshing);
        if self.epoch() == seen {
            self.set(spec);
        }
        Ok(())
    }

    fn set(&self, spec: Spec) {
        *crate::inner::lock(&self.current) = spec;
        self.epoch.fetch_add(1, Ordering::AcqRel);
    }

    /// Rewrites the file under `new` through `conn` (keyed with the current key, outside
    /// any transaction), then makes `new` current.
    pub(crate) fn rekey(&self, conn: &rusqlite::Connection, path: &Path, new: &Key) -> Result<()> {
        let FileKind::Encrypted { salt } = inspect(path)? else {
            return Err(Error::Encryption(format!(
                "{} is not encrypted",
                path.display()
            )));
        };
        let spec = Spec::Raw(new.derive(&salt)?);
        let rc = with_key(conn, &spec, rusqlite::ffi::sqlite3_rekey_v2);
        if rc != rusqlite::ffi::SQLITE_OK {
            let text =
                unsafe { std::ffi::CStr::from_ptr(rusqlite::ffi::sqlite3_errmsg(conn.handle())) }
                    .to_string_lossy()
                    .into_owned();
            return Err(match rc & 0xff {
                rusqlite::ffi::SQLITE_BUSY | rusqlite::ffi::SQLITE_LOCKED => Error::Busy(format!(
                    "the file stayed locked past busy_timeout; nothing was rekeyed ({text})"
                )),
                _ => Error::Encryption(format!("rekey failed (code {rc}): {text}")),
            });
        }
        self.set(spec);
        Ok(())
    }
}

/// The first of the source's keys that opens the file, tried on a connection of its own.
/// A rotation may land between asking the source and trying its keys (the new key was
/// handed out before the rekey, the old one no longer opens the file); so when none
/// opens, the source is asked again, and its keys are tried again if they changed.
fn find_key(source: &KeySource, path: &Path, salt: &[u8; SALT]) -> Result<Spec> {
    let mut keys = source.keys()?;
    loop {
        if let Some(spec) = first_opening(&keys, path, salt)? {
            return Ok(spec);
        }
        let again = source.keys()?;
        if same_keys(&again, &keys) {
            break;
        }
        keys = again;
    }
    Err(Error::Encryption(format!(
        "{} is encrypted and {} opens it: a wrong key, or the file was rekeyed and the key \
         source does not have the new key",
        path.display(),
        match keys.len() {
            1 => "the key given never".to_string(),
            n => format!("none of the {n} keys given"),
        }
    )))
}

fn first_opening(keys: &[Key], path: &Path, salt: &[u8; SALT]) -> Result<Option<Spec>> {
    for key in keys {
        let spec = Spec::Raw(key.derive(salt)?);
        let probe = rusqlite::Connection::open_with_flags(
            path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        quiet();
        key_connection(&probe, &spec)?;
        if opens(&probe)? {
            return Ok(Some(spec));
        }
    }
    Ok(None)
}

fn same_keys(a: &[Key], b: &[Key]) -> bool {
    let bytes = |k: &Key| match &k.0 {
        KeyKind::Raw(s) | KeyKind::Passphrase(s) => s.0.clone(),
    };
    a.len() == b.len()
        && a.iter().zip(b).all(|(x, y)| {
            matches!(
                (&x.0, &y.0),
                (KeyKind::Raw(_), KeyKind::Raw(_))
                    | (KeyKind::Passphrase(_), KeyKind::Passphrase(_))
            ) && bytes(x) == bytes(y)
        })
}

/// SQLCipher logs each page it cannot authenticate to stderr; ferrymq reports it as a
/// typed error instead.
pub(crate) fn quiet() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        if let Ok(c) = rusqlite::Connection::open_in_memory() {
            let _ = c.execute_batch("PRAGMA cipher_log_level = NONE");
        }
    });
}

/// Writes an encrypted copy of the plain file `src` to `dst` (which must not exist),
/// calling `progress(bytes written, bytes to write)` a few times a second. Other processes
/// should stop writing to `src` first: what they commit meanwhile may miss the copy.
pub fn encrypt_file(
    src: &Path,
    dst: &Path,
    key: &Key,
    progress: impl FnMut(u64, u64) + Send,
) -> Result<()> {
    match inspect(src)? {
        FileKind::Plain => {}
        FileKind::New => return Err(missing(src)),
        FileKind::Encrypted { .. } => {
            return Err(Error::Encryption(format!(
                "{} is encrypted already (to change its key: rekey)",
                src.display()
            )));
        }
        kind @ FileKind::Unreadable { .. } => check_kind(src, kind, false)?,
    }
    let target = match &key.0 {
        KeyKind::Passphrase(p) => p.clone(),
        KeyKind::Raw(k) => Spec::Raw(k.clone()).pragma_bytes(),
    };
    convert(src, None, dst, target, progress)
}

/// Writes a plain copy of the encrypted file `src` (opened with `key`) to `dst`; see
/// [`encrypt_file`].
pub fn decrypt_file(
    src: &Path,
    dst: &Path,
    key: &Key,
    progress: impl FnMut(u64, u64) + Send,
) -> Result<()> {
    let salt = match inspect(src)? {
        FileKind::Encrypted { salt } => salt,
        FileKind::New => return Err(missing(src)),
        FileKind::Plain => {
            return Err(Error::Encryption(format!(
                "{} is not encrypted",
                src.display()
            )));
        }
        kind @ FileKind::Unreadable { .. } => {
            check_kind(src, kind, true)?;
            return Err(missing(src));
        }
    };
    let spec = find_key(&KeySource::Fixed(key.clone()), src, &salt)?;
    convert(src, Some(spec), dst, Secret(Vec::new()), progress)
}

fn missing(path: &Path) -> Error {
    Error::NotFound(format!("{} does not exist or is empty", path.display()))
}

/// `sqlcipher_export` of `src` (schema and rows) into a new file attached with `dst_key`
/// (empty: plain), then the file's marks (`user_version`, `application_id`).
fn convert(
    src: &Path,
    src_key: Option<Spec>,
    dst: &Path,
    dst_key: Secret,
    mut progress: impl FnMut(u64, u64) + Send,
) -> Result<()> {
    if dst.exists() {
        return Err(Error::invalid(format!(
            "{} exists: a conversion writes a new file",
            dst.display()
        )));
    }
    let dst_text = dst
        .to_str()
        .ok_or_else(|| Error::invalid(format!("{} is not valid UTF-8", dst.display())))?;
    quiet();
    // CREATE for the attached copy: attached files take the main file's open flags.
    let conn = rusqlite::Connection::open_with_flags(
        src,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE
            | rusqlite::OpenFlags::SQLITE_OPEN_CREATE
            | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    if let Some(spec) = &src_key {
        key_connection(&conn, spec)?;
    }
    let pages: i64 = conn.query_row("PRAGMA page_count", [], |r| r.get(0))?;
    let page = crate::store::schema::page_size(&conn)?;
    let vacuum: i64 = conn.query_row("PRAGMA auto_vacuum", [], |r| r.get(0))?;
    let total = (pages.max(0) * page.max(0)) as u64;
    let done = std::sync::atomic::AtomicBool::new(false);
    let result = std::thread::scope(|scope| {
        scope.spawn(|| {
            while !done.load(Ordering::Acquire) {
                let written = std::fs::metadata(dst).map(|m| m.len()).unwrap_or(0);
                progress(written.min(total), total);
                std::thread::park_timeout(std::time::Duration::from_millis(200));
            }
        });
        let run = || -> Result<()> {
            conn.execute(
                "ATTACH DATABASE ?1 AS ferrymq_export KEY ?2",
                rusqlite::params![dst_text, dst_key.0.as_slice()],
            )?;
            conn.pragma_update(Some("ferrymq_export"), "auto_vacuum", vacuum)?;
            conn.query_row("SELECT sqlcipher_export('ferrymq_export')", [], |_| Ok(()))?;
            // The marks that tell a ferrymq file (and its schema version) apart.
            for mark in ["user_version", "application_id"] {
                let v: i64 = conn.query_row(&format!("PRAGMA main.{mark}"), [], |r| r.get(0))?;
                conn.pragma_update(Some("ferrymq_export"), mark, v)?;
            }
            conn.execute_batch("DETACH DATABASE ferrymq_export")?;
            Ok(())
        };
        let r = run();
        done.store(true, Ordering::Release);
        r
    });
    if result.is_err() {
        let _ = std::fs::remove_file(dst);
    } else {
        progress(total, total);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_passphrase_derived_here_opens_what_sqlcipher_derived_itself() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.db");
        let c = rusqlite::Connection::open(&path).unwrap();
        c.pragma_update(None, "key", "correct horse").unwrap();
        c.execute_batch("CREATE TABLE t(x); INSERT INTO t VALUES (1)")
            .unwrap();
        drop(c);
        let FileKind::Encrypted { salt } = inspect(&path).unwrap() else {
            panic!("not encrypted");
        };
        let key = Key::passphrase("correct horse").unwrap();
        let spec = Spec::Raw(key.derive(&salt).unwrap());
        let c = rusqlite::Connection::open(&path).unwrap();
        key_connection(&c, &spec).unwrap();
        assert!(opens(&c).unwrap());
        let wrong = Spec::Raw(Key::passphrase("wrong").unwrap().derive(&salt).unwrap());
        let c = rusqlite::Connection::open(&path).unwrap();
        quiet();
        key_connection(&c, &wrong).unwrap();
        assert!(!opens(&c).unwrap());
    }

    #[test]
    fn text_keys_are_raw_in_sqlciphers_syntax_and_passphrases_otherwise() {
        let raw = Key::from_text(&format!("x'{}'", "ab".repeat(32))).unwrap();
        assert!(matches!(&raw.0, KeyKind::Raw(k) if k.0 == vec![0xab; 32]));
        let pass = Key::from_text("x'not hex'").unwrap_err();
        assert_eq!(pass.kind(), crate::ErrorKind::InvalidArgument);
        assert!(matches!(
            Key::from_text("hunter2").unwrap().0,
            KeyKind::Passphrase(_)
        ));
    }

    #[test]
    fn keys_are_checked_and_never_printed() {
        assert!(Key::passphrase("").is_err());
        assert!(Key::raw(&[0; 31]).is_err());
        let k = Key::raw(&[7; 32]).unwrap();
        assert_eq!(format!("{k:?}"), "Key::raw(<redacted>)");
    }
}
