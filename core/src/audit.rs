//! The audit trail of operator actions: who (pid, executable, host, OS user) did what
//! (action, target, detail), when, and why (`Queue::with_reason`), appended to
//! `ferrymq_audit` (migration 0010, whose triggers make it append-only on every
//! connection).
//!
//! The rule: an action that is one write transaction calls [`record`] inside that
//! transaction, so the record exists if and only if the action committed, and an action
//! that fails (rolls back) leaves none. A bulk run of several transactions (`redrive` or
//! `purge_dead_letters` of a whole DLQ, `purge_acked`, `vacuum`) records once, inside its
//! last transaction, with the total ([`bulk`], [`Bulk::finish`]); a run that had nothing
//! to write records in a transaction of its own. If it stops on an error after some of
//! its transactions committed, a record still goes in, with the count done so far and the
//! error, since those changes happened. Actions that changed nothing
//! (a pause of a paused group, a redrive of ids that are not dead) record what was asked
//! with a count of 0 or `"changed": false`: the trail shows every decision an operator made.

use crate::api::AuditRecord;
use crate::error::{Error, Result};
use crate::inner::Inner;
use crate::store::audit::{self as sql, Actor, Entry};
use rusqlite::Connection;
use serde_json::Value;
use std::sync::{Arc, OnceLock};

/// Most bytes of a reason.
pub const MAX_REASON_LEN: usize = 1000;

/// Checks a reason for `Queue::with_reason`.
pub(crate) fn validate_reason(reason: &str) -> Result<()> {
    if reason.trim().is_empty() {
        return Err(Error::invalid(
            "the reason is empty; say why, or leave it out",
        ));
    }
    if reason.len() > MAX_REASON_LEN {
        return Err(Error::invalid(format!(
            "the reason is {} bytes; at most {MAX_REASON_LEN}",
            reason.len()
        )));
    }
    if reason.contains('\0') {
        return Err(Error::invalid("the reason contains a NUL character"));
    }
    Ok(())
}

/// Appends the record of `action` on `conn`, which must be inside the action's own write
/// transaction; returns the record's id.
pub(crate) fn record(
    conn: &Connection,
    inner: &Inner,
    action: &str,
    target: &str,
    detail: Option<Value>,
    reason: Option<&str>,
) -> Result<i64> {
    let detail = detail.map(|d| d.to_string());
    let me = me();
    let entry = Entry {
        at: inner.now(),
        action,
        target,
        detail: detail.as_deref(),
        reason,
    };
    let who = Actor {
        // Asked each time: a forked child has its own.
        pid: i64::from(std::process::id()),
        process: &me.process,
        host: &me.host,
        user: &me.user,
    };
    sql::insert(conn, &entry, &who)
}

/// A bulk action under way: what to record when it ends.
pub(crate) struct Bulk<'a> {
    inner: &'a Inner,
    action: &'a str,
    target: &'a str,
    detail: Value,
    count_key: &'a str,
    reason: Option<&'a str>,
    recorded: std::cell::Cell<bool>,
}

impl Bulk<'_> {
    /// Records the run with `total` done in all; call it inside the run's last
    /// transaction, so that the record commits with the last of the work.
    pub fn finish(&self, conn: &Connection, total: u64) -> Result<()> {
        self.write(conn, total, None)?;
        self.recorded.set(true);
        Ok(())
    }

    fn write(&self, conn: &Connection, total: u64, error: Option<&Error>) -> Result<i64> {
        let mut detail = self.detail.clone();
        detail[self.count_key] = Value::from(total);
        if let Some(e) = error {
            detail["error"] = Value::from(e.to_string());
        }
        record(
            conn,
            self.inner,
            self.action,
            self.target,
            Some(detail),
            self.reason,
        )
    }
}

/// Runs a bulk action of several transactions, which adds to its counter as each
/// commits and calls [`Bulk::finish`] in its last; records it as `detail` plus
/// `count_key`: the count. A run that wrote nothing and so never called `finish` is
/// recorded in a transaction of its own; a run that failed after committing some of its
/// work, with the count done and its error. Returns the count.
pub(crate) fn bulk(
    inner: &Arc<Inner>,
    action: &str,
    target: &str,
    detail: Value,
    count_key: &str,
    reason: Option<&str>,
    run: impl FnOnce(&Bulk<'_>, &mut u64) -> Result<()>,
) -> Result<u64> {
    let b = Bulk {
        inner,
        action,
        target,
        detail,
        count_key,
        reason,
        recorded: std::cell::Cell::new(false),
    };
    let mut done = 0;
    match run(&b, &mut done) {
        Ok(()) => {
            if !b.recorded.get() {
                inner.write(false, |c| b.write(c, done, None))?;
            }
            Ok(done)
        }
        Err(e) => {
            if done > 0 {
                // Best effort: the run's own error is what the caller must hear.
                let _ = inner.write(false, |c| b.write(c, done, Some(&e)));
            }
            Err(e)
        }
    }
}

/// Records with ids above `after` (all with `None`), oldest first, at most `limit`.
pub(crate) fn list(
    inner: &Arc<Inner>,
    after: Option<i64>,
    limit: usize,
) -> Result<Vec<AuditRecord>> {
    crate::validate::limit(limit)?;
    let rows = inner.read(|c| sql::list(c, after.unwrap_or(0), limit))?;
    Ok(rows
        .into_iter()
        .map(|r| AuditRecord {
            id: r.id,
            at: crate::clock::ms_to_system_time(r.at),
            action: r.action,
            target: r.target,
            detail: r.detail,
            pid: r.pid,
            process: r.process,
            host: r.host,
            user: r.user,
            reason: r.reason,
        })
        .collect())
}

/// This process's executable, host and user, read once.
struct Me {
    process: String,
    host: String,
    user: String,
}

fn me() -> &'static Me {
    static ME: OnceLock<Me> = OnceLock::new();
    ME.get_or_init(|| Me {
        process: process_name(),
        host: host_name(),
        user: user_name(),
    })
}

fn process_name() -> String {
    let from_exe = std::env::current_exe()
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()));
    let from_args = || {
        std::env::args_os().next().and_then(|a| {
            std::path::Path::new(&a)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
        })
    };
    from_exe.or_else(from_args).unwrap_or_else(|| "?".into())
}

fn host_name() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is writable for its length; the result is cut at the first NUL.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return "?".into();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

/// The effective user's name from the password database (getpwuid_r), else $USER or
/// $LOGNAME, else the numeric uid.
fn user_name() -> String {
    // SAFETY: geteuid cannot fail.
    let uid = unsafe { libc::geteuid() };
    passwd_name(uid)
        .or_else(|| std::env::var("USER").ok().filter(|u| !u.is_empty()))
        .or_else(|| std::env::var("LOGNAME").ok().filter(|u| !u.is_empty()))
        .unwrap_or_else(|| uid.to_string())
}

fn passwd_name(uid: libc::uid_t) -> Option<String> {
    let mut buf = vec![0u8; 4096];
    loop {
        // SAFETY: all-zero is a valid passwd (null pointers, zero ids).
        let mut pw: libc::passwd = unsafe { std::mem::zeroed() };
        let mut found: *mut libc::passwd = std::ptr::null_mut();
        // SAFETY: pw, buf and found are valid for writing; buf's length is passed.
        let rc = unsafe {
            libc::getpwuid_r(uid, &mut pw, buf.as_mut_ptr().cast(), buf.len(), &mut found)
        };
        if rc == libc::ERANGE && buf.len() < 1 << 20 {
            buf.resize(buf.len() * 2, 0);
            continue;
        }
        if rc != 0 || found.is_null() || pw.pw_name.is_null() {
            return None;
        }
        // SAFETY: on success pw_name points to a NUL-terminated string inside buf.
        let name = unsafe { std::ffi::CStr::from_ptr(pw.pw_name) };
        return Some(name.to_string_lossy().into_owned()).filter(|n| !n.is_empty());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reason_must_say_something_briefly_without_nul() {
        assert!(validate_reason("ticket OPS-12").is_ok());
        assert!(validate_reason(&"x".repeat(MAX_REASON_LEN)).is_ok());
        for bad in ["", "  \n\t", "a\0b", &"x".repeat(MAX_REASON_LEN + 1)] {
            let e = validate_reason(bad).unwrap_err();
            assert_eq!(e.kind(), crate::ErrorKind::InvalidArgument, "{bad:?}");
        }
    }

    #[test]
    fn the_actor_is_named() {
        let me = me();
        assert!(!me.process.is_empty() && me.process != "?");
        assert!(!me.host.is_empty() && me.host != "?");
        assert!(!me.user.is_empty());
    }
}
