//! Publishing and acking on a connection of another SQLite library, in its transaction.
//!
//! A service that already writes its rows through its own SQLite library (Python's
//! `sqlite3` or an ORM on it, better-sqlite3, sqlite-jdbc) publishes by running
//! [`PUBLISH`] on that connection: an INSERT into the view `ferrymq_publish`, whose
//! trigger (schema version 4) writes the message and its fan-out exactly as
//! `Queue::publish` does, so it commits or rolls back with the caller's rows. [`ACK`]
//! does the same for an ack. The bindings' `publish_in` / `ack_in` are these statements
//! plus the checks here; a client without a ferrymq library runs the INSERT itself.
//!
//! What stays in ferrymq: [`PublishRow::new`] validates and resolves the options into
//! the view's columns (the same checks as `publish`, with a queue's limits and clock when
//! one is given), and [`host_error`] turns the host library's error text into ferrymq's
//! error kinds. [`publish_in`] and [`ack_in`] are the reference, on a `rusqlite` connection.
//! [`INBOX`] / [`inbox_in`] are the inbox (`Transaction::inbox`) the same way: one plain
//! statement on the table, whose rows-changed count is the answer.

use crate::clock::{duration_to_ms, system_time_to_ms};
use crate::error::{Error, ErrorKind, Result};
use crate::model::Delivery;
use crate::options::{Options, PublishOptions};
use crate::publish;
use crate::queue::Queue;
use crate::store;
use rusqlite::types::Value;
use rusqlite::{ToSql, params, params_from_iter};

/// Publishes one message: bind `topic`, `payload`, then the fields of a [`PublishRow`]
/// in order (`tag`, `key`, `headers`, `ordering_key`, `idempotency_key`, `delay_ms`,
/// `deliver_at`, `idempotency_window_ms`, `published_at`, `priority`).
pub const PUBLISH: &str = "INSERT INTO ferrymq_publish (topic, payload, tag, key, headers, \
     ordering_key, idempotency_key, delay_ms, deliver_at, idempotency_window_ms, published_at, \
     priority) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";

/// The id of the message [`PUBLISH`] just wrote (or, for a repeated idempotency key, of
/// the first one), read in the same transaction: bind `topic`, `idempotency_key`.
pub const PUBLISHED_ID: &str = "SELECT coalesce(\
     (SELECT i.message_id FROM ferrymq_idempotency i JOIN ferrymq_topics t ON t.id = i.topic_id \
      WHERE t.name = ? AND i.idem_key = ?), \
     (SELECT max(id) FROM ferrymq_messages))";

/// Acks a held delivery: bind the fields of an [`AckRow`] in order (`message_id`,
/// `consumer_group`, `lease_token`, `acked_at`). Fails with `ferrymq LEASE_LOST` in the
/// error text when the lease was lost.
pub const ACK: &str = "INSERT INTO ferrymq_ack (message_id, consumer_group, lease_token, acked_at) \
     VALUES (?, ?, ?, ?)";

/// The inbox (`Transaction::inbox`) on the caller's connection: bind the fields of an
/// [`InboxRow`] in order (`key`, `now`, `window_ms`). One row changed (the library's
/// rowcount, or `SELECT changes()`): the key is new and now remembered until `now +
/// window_ms`, if the transaction commits; none: it is seen within its window.
pub const INBOX: &str = "INSERT INTO ferrymq_inbox (key, seen_at, expires_at) \
     SELECT k, n, n + w FROM (SELECT ? AS k, \
         coalesce(?, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)) AS n, ? AS w) \
     WHERE 1 \
     ON CONFLICT (key) DO UPDATE SET seen_at = excluded.seen_at, expires_at = excluded.expires_at \
     WHERE ferrymq_inbox.expires_at <= excluded.seen_at";

/// The path of the connection's main database file (empty for an in-memory one), for
/// [`check_file`].
pub const MAIN_FILE: &str = "SELECT file FROM pragma_database_list WHERE name = 'main'";

/// Every statement above, for a binding to hand to its host.
pub fn statements() -> crate::SqlStatements {
    crate::SqlStatements {
        publish: PUBLISH.into(),
        published_id: PUBLISHED_ID.into(),
        ack: ACK.into(),
        main_file: MAIN_FILE.into(),
        inbox: INBOX.into(),
    }
}

/// Refuses a connection (whose [`MAIN_FILE`] is `main_file`) to another file than
/// `queue`'s: its clock and limits would apply to a queue they do not belong to.
pub fn check_file(queue: &Queue, main_file: &str) -> Result<()> {
    if queue.inner.is_file(main_file) {
        return Ok(());
    }
    Err(Error::invalid(format!(
        "the connection is open on {main_file:?}, not on the queue's file ({})",
        queue.inner.path.display()
    )))
}

/// The validated columns of [`PUBLISH`] after `topic` and `payload`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishRow {
    pub tag: Option<String>,
    pub key: Option<String>,
    /// A JSON object of strings; `None` for no headers.
    pub headers: Option<String>,
    pub ordering_key: Option<String>,
    pub idempotency_key: Option<String>,
    pub delay_ms: Option<i64>,
    pub deliver_at: Option<i64>,
    pub idempotency_window_ms: i64,
    /// The queue's clock when a queue was given; `None`: SQLite's clock.
    pub published_at: Option<i64>,
    /// 0 to 9 (schema version 7).
    pub priority: i64,
}

impl PublishRow {
    /// Checks the message as `Queue::publish` does, with `queue`'s `max_payload`,
    /// idempotency window and clock, or the defaults without one.
    pub fn new(
        topic: &str,
        payload_len: usize,
        options: &PublishOptions,
        queue: Option<&Queue>,
    ) -> Result<PublishRow> {
        let defaults;
        let opts = match queue {
            Some(q) => &q.inner.opts,
            None => {
                defaults = Options::default();
                &defaults
            }
        };
        publish::validate_with(opts, topic, payload_len, options)?;
        if let Some(q) = queue {
            // The caller commits this on its own connection, where no wake-up follows.
            q.inner.wake.expect_foreign_commit();
        }
        Ok(PublishRow {
            tag: options.tag.clone(),
            key: options.key.clone(),
            headers: store::encode_headers(&options.headers)?,
            ordering_key: options.ordering_key.clone(),
            idempotency_key: options.idempotency_key.clone(),
            delay_ms: options.delay.map(duration_to_ms),
            deliver_at: options.deliver_at.and_then(system_time_to_ms),
            idempotency_window_ms: duration_to_ms(opts.idempotency_window),
            published_at: queue.map(|q| q.inner.now()),
            priority: i64::from(options.priority),
        })
    }

    /// The parameters of [`PUBLISH`] after `topic` and `payload`, in its order: what
    /// every binding binds on the caller's connection.
    pub fn params(&self) -> Vec<Value> {
        vec![
            self.tag.clone().into(),
            self.key.clone().into(),
            self.headers.clone().into(),
            self.ordering_key.clone().into(),
            self.idempotency_key.clone().into(),
            self.delay_ms.into(),
            self.deliver_at.into(),
            self.idempotency_window_ms.into(),
            self.published_at.into(),
            self.priority.into(),
        ]
    }
}

/// The columns of [`ACK`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AckRow {
    pub message_id: i64,
    pub consumer_group: String,
    pub lease_token: i64,
    /// The queue's clock when a queue was given; `None`: SQLite's clock.
    pub acked_at: Option<i64>,
}

impl AckRow {
    pub fn new(delivery: &Delivery, queue: Option<&Queue>) -> AckRow {
        if let Some(q) = queue {
            // An ack can free what waits behind it (an ordering key, `max_inflight`), and
            // the caller commits it where no wake-up follows.
            q.inner.wake.expect_foreign_commit();
        }
        AckRow {
            message_id: delivery.message_id,
            consumer_group: delivery.consumer_group.clone(),
            lease_token: delivery.lease_token,
            acked_at: queue.map(|q| q.inner.now()),
        }
    }

    /// The parameters of [`ACK`], in its order.
    pub fn params(&self) -> Vec<Value> {
        vec![
            self.message_id.into(),
            self.consumer_group.clone().into(),
            self.lease_token.into(),
            self.acked_at.into(),
        ]
    }
}

/// The columns of [`INBOX`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboxRow {
    pub key: String,
    /// The queue's clock when a queue was given; `None`: SQLite's clock.
    pub now: Option<i64>,
    pub window_ms: i64,
}

impl InboxRow {
    /// Checks the key and window as `Transaction::inbox` does (`None`: the default
    /// window, `defaults::INBOX_WINDOW`).
    pub fn new(
        key: &str,
        window: Option<std::time::Duration>,
        queue: Option<&Queue>,
    ) -> Result<InboxRow> {
        let window = crate::outbox::inbox_window(key, window)?;
        Ok(InboxRow {
            key: key.to_owned(),
            now: queue.map(|q| q.inner.now()),
            window_ms: duration_to_ms(window),
        })
    }

    /// The parameters of [`INBOX`], in its order.
    pub fn params(&self) -> Vec<Value> {
        vec![
            self.key.clone().into(),
            self.now.into(),
            self.window_ms.into(),
        ]
    }
}

/// What `publish_in` / `ack_in` say when the caller's connection is outside a transaction:
/// the statement would commit on its own, apart from the caller's rows.
pub fn no_transaction() -> Error {
    Error::invalid(
        "no transaction is open on this connection: begin one (BEGIN, or the library's \
         transaction), or use publish / ack",
    )
}

/// The ferrymq error for the text of an error the host library raised running [`PUBLISH`],
/// [`PUBLISHED_ID`] or [`ACK`] (`delivery`: the one acked).
pub fn host_error(message: &str, delivery: Option<&Delivery>) -> Error {
    if let Some((kind, text)) = raised(message) {
        return match (kind, delivery) {
            (ErrorKind::LeaseLost, Some(d)) => Error::LeaseLost {
                message_id: d.message_id,
                group: d.consumer_group.clone(),
            },
            (ErrorKind::InvalidArgument, _) => Error::InvalidArgument(text.to_owned()),
            _ => Error::Storage(text.to_owned()),
        };
    }
    let lower = message.to_ascii_lowercase();
    if lower.contains("no such table: ferrymq_publish")
        || lower.contains("no such table: ferrymq_ack")
        || lower.contains("no such table: main.ferrymq_")
        || lower.contains("no such table: ferrymq_inbox")
    {
        return Error::NotFound(format!(
            "the file has no ferrymq schema of version {} or later: open it once with \
             Queue.open (which creates or migrates it) before publishing or acking with SQL \
             ({message})",
            store::schema::VERSION
        ));
    }
    if lower.contains("database is locked") || lower.contains("database table is locked") {
        return Error::Busy(format!("the database file stayed locked ({message})"));
    }
    if lower.contains("readonly") || lower.contains("read-only") {
        return Error::Storage(format!("database is read-only: {message}"));
    }
    Error::Storage(message.to_owned())
}

/// `ferrymq CODE: text` anywhere in a message (libraries wrap SQLite's text in their own).
fn raised(message: &str) -> Option<(ErrorKind, &str)> {
    const KINDS: [ErrorKind; 2] = [ErrorKind::InvalidArgument, ErrorKind::LeaseLost];
    KINDS.into_iter().find_map(|kind| {
        let mark = format!("ferrymq {}: ", kind.code());
        let at = message.find(&mark)?;
        let text = &message[at + mark.len()..];
        let end = text.find([')', ']']).unwrap_or(text.len());
        Some((kind, text[..end].trim_end()))
    })
}

/// Publishes on `conn`, which must be inside a transaction, on a file of schema 4 or
/// later: what each binding's `publish_in` does, on a `rusqlite` connection.
pub fn publish_in(
    conn: &rusqlite::Connection,
    topic: &str,
    payload: &[u8],
    options: &PublishOptions,
    queue: Option<&Queue>,
) -> Result<i64> {
    let row = PublishRow::new(topic, payload.len(), options, queue)?;
    if conn.is_autocommit() {
        return Err(no_transaction());
    }
    if let Some(q) = queue {
        check_file(q, conn.path().unwrap_or(""))?;
    }
    let run = || -> rusqlite::Result<i64> {
        let rest = row.params();
        let all: Vec<&dyn ToSql> = [&topic as &dyn ToSql, &payload]
            .into_iter()
            .chain(rest.iter().map(|v| v as &dyn ToSql))
            .collect();
        conn.prepare_cached(PUBLISH)?.execute(all.as_slice())?;
        conn.prepare_cached(PUBLISHED_ID)?
            .query_row(params![topic, row.idempotency_key], |r| r.get(0))
    };
    run().map_err(|e| host_error(&e.to_string(), None))
}

/// Acks `delivery` on `conn`, inside its transaction: what each binding's `ack_in` does.
pub fn ack_in(
    conn: &rusqlite::Connection,
    delivery: &Delivery,
    queue: Option<&Queue>,
) -> Result<()> {
    if conn.is_autocommit() {
        return Err(no_transaction());
    }
    if let Some(q) = queue {
        check_file(q, conn.path().unwrap_or(""))?;
    }
    let row = AckRow::new(delivery, queue);
    conn.prepare_cached(ACK)?
        .execute(params_from_iter(row.params()))
        .map(|_| ())
        .map_err(|e| host_error(&e.to_string(), Some(delivery)))
}

/// The inbox on `conn`, inside its transaction, on a file of schema 9 or later: what
/// each binding's `inbox_in` does. True the first time `key` is seen within `window`.
pub fn inbox_in(
    conn: &rusqlite::Connection,
    key: &str,
    window: Option<std::time::Duration>,
    queue: Option<&Queue>,
) -> Result<bool> {
    let row = InboxRow::new(key, window, queue)?;
    if conn.is_autocommit() {
        return Err(no_transaction());
    }
    if let Some(q) = queue {
        check_file(q, conn.path().unwrap_or(""))?;
    }
    conn.prepare_cached(INBOX)?
        .execute(params_from_iter(row.params()))
        .map(|n| n == 1)
        .map_err(|e| host_error(&e.to_string(), None))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raised_errors_keep_their_kind_inside_a_librarys_wrapping() {
        let jdbc = "[SQLITE_CONSTRAINT_TRIGGER] A RAISE function within a trigger fired, \
                    causing the SQL statement to abort (ferrymq INVALID_ARGUMENT: tag must be x)";
        let e = host_error(jdbc, None);
        assert_eq!(e, Error::InvalidArgument("tag must be x".into()));
        assert_eq!(
            host_error("no such table: ferrymq_publish", None).kind(),
            ErrorKind::NotFound
        );
        assert_eq!(
            host_error("database is locked", None).kind(),
            ErrorKind::Busy
        );
        assert_eq!(
            host_error("disk I/O error", None).kind(),
            ErrorKind::Storage
        );
    }
}
