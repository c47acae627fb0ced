//! Everything a caller can set, with the defaults in one place. Bindings pass `Option`s
//! and leave `None` to these defaults.

use crate::cipher::{Key, KeySource};
use crate::clock::{Clock, ManualClock, SystemClock};
use crate::error::{Error, Result};
use crate::retry::RetryPolicy;
use crate::validate;
use std::collections::BTreeMap;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// Builder methods that each set one field of the same name: `name(arg: Type)` stores
/// `arg`, `=> Some` stores `Some(arg)`, `=> into` `arg.into()`, `=> some_into`
/// `Some(arg.into())`. Methods that do more than store are written out.
macro_rules! setters {
    (@ $arg:ident) => { $arg };
    (@Some $arg:ident) => { Some($arg) };
    (@into $arg:ident) => { $arg.into() };
    (@some_into $arg:ident) => { Some($arg.into()) };
    ($( $(#[$doc:meta])* $field:ident($arg:ident: $ty:ty) $(=> $how:ident)?; )*) => {
        $(
            $(#[$doc])*
            pub fn $field(mut self, $arg: $ty) -> Self {
                self.$field = setters!(@$($how)? $arg);
                self
            }
        )*
    };
}
pub(crate) use setters;

/// SQLite's `synchronous` pragma in WAL mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Synchronous {
    /// A returned publish survives a process crash (kill -9), not a power loss.
    #[default]
    Normal,
    /// A returned publish survives power loss too: every commit waits for fsync.
    Full,
}

impl Synchronous {
    pub(crate) fn pragma(self) -> &'static str {
        match self {
            Synchronous::Normal => "NORMAL",
            Synchronous::Full => "FULL",
        }
    }
}

impl FromStr for Synchronous {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "normal" => Ok(Synchronous::Normal),
            "full" => Ok(Synchronous::Full),
            _ => Err(Error::invalid(format!(
                "synchronous must be \"normal\" or \"full\", got {s:?}"
            ))),
        }
    }
}

/// How a queue opens its file and schedules its work.
#[derive(Debug, Clone)]
pub struct Options {
    pub synchronous: Synchronous,
    /// How long a call waits for another writer before failing with `Busy`.
    pub busy_timeout: Duration,
    /// Largest payload accepted by `publish`, in bytes: at most 999,000,000
    /// (`limits::MAX_PAYLOAD`), since SQLite stores at most 1,000,000,000 bytes in one row.
    /// A longer payload is refused with `InvalidArgument` before it joins a shared commit.
    pub max_payload: usize,
    /// How long an idempotency key is remembered per topic.
    pub idempotency_window: Duration,
    /// Age of an undecided half message before its checker is asked (RocketMQ: 6 s).
    pub check_after: Duration,
    /// Wait between two checks of one half message (RocketMQ: 30 s... 60 s).
    pub check_interval: Duration,
    /// Unknown answers before a half message is rolled back and kept (RocketMQ: 15).
    pub check_max: u32,
    /// How often a waiting `receive` looks for commits made by other connections.
    pub poll_interval: Duration,
    /// Largest size the file may grow to, in bytes (`None`: no cap), from 128 KiB to
    /// `i64::MAX`. A write that would pass it fails with a `Storage` error ("disk full")
    /// and changes nothing. The cap is SQLite's `max_page_count`, a setting of each
    /// connection: it binds this queue's connections only, not other processes (or other
    /// queues) writing to the same file, which must set it too.
    pub max_size: Option<u64>,
    /// SQLite's `foreign_keys` on the queue's connections, which is what FOREIGN KEY
    /// clauses of business tables obey in `Transaction::execute`. `None`: the SQLite
    /// build's default, which is on for the bundled build ferrymq ships with
    /// (`SQLITE_DEFAULT_FOREIGN_KEYS=1`); SQLite's own default elsewhere is off. The
    /// `ferrymq_*` tables have no foreign keys, so this changes nothing for the queue.
    pub foreign_keys: Option<bool>,
    /// Backpressure (`None`: none): a publish through this queue whose message would go
    /// to a consumer group that already has this many deliveries waiting (ready,
    /// scheduled or retrying; inflight ones do not count) fails with `Full` and writes
    /// nothing. 1 to `limits::MAX_FLOW_LIMIT`. The waiting rows are counted in the file,
    /// so every process's consumers and producers count; but the limit itself is this
    /// queue's setting, like `max_size`: other processes (and SQL producers through the
    /// `ferrymq_publish` view) are bound only by their own. A check costs a count of up
    /// to this many index entries per matching group, so keep it to what a group may
    /// really fall behind by.
    pub max_ready: Option<u64>,
    /// Encryption at rest (`None`: a plain file). The key, or a provider asked for the
    /// keys to try when the queue opens and again whenever its key stops opening the
    /// file (after another process's `rekey`). A key given for a plain file, or none for
    /// an encrypted one, is refused with `Encryption` before the file is touched.
    pub key: Option<KeySource>,
    pub(crate) clock: Arc<dyn Clock>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            synchronous: Synchronous::Normal,
            busy_timeout: Duration::from_secs(5),
            max_payload: 4 * 1024 * 1024,
            idempotency_window: Duration::from_secs(24 * 3600),
            check_after: Duration::from_secs(6),
            check_interval: Duration::from_secs(30),
            check_max: 15,
            poll_interval: Duration::from_millis(2),
            max_size: None,
            foreign_keys: None,
            max_ready: None,
            key: None,
            clock: Arc::new(SystemClock),
        }
    }
}

impl Options {
    setters! {
        synchronous(s: Synchronous);
        busy_timeout(d: Duration);
        max_payload(bytes: usize);
        idempotency_window(d: Duration);
        check_after(d: Duration);
        check_interval(d: Duration);
        check_max(n: u32);
        poll_interval(d: Duration);
        max_size(bytes: u64) => Some;
    }
    /// Opens (or creates) an encrypted file with this key.
    pub fn key(mut self, key: Key) -> Self {
        self.key = Some(KeySource::Fixed(key));
        self
    }
    /// Opens (or creates) an encrypted file with the first key `provider` returns that
    /// opens it; see [`KeyProvider`](crate::KeyProvider).
    pub fn key_provider(
        mut self,
        provider: impl Fn() -> std::result::Result<Vec<Key>, String> + Send + Sync + 'static,
    ) -> Self {
        self.key = Some(KeySource::Provider(Arc::new(provider)));
        self
    }
    setters! {
        max_ready(n: u64) => Some;
        foreign_keys(on: bool) => Some;
    }

    /// Test-only in spirit: schedules by a clock that moves only when told. Never the
    /// default, and named so that it cannot be set by accident.
    pub fn with_manual_clock(mut self, clock: ManualClock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    pub(crate) fn validate(&self) -> Result<()> {
        validate::bounded_duration("busy_timeout", self.busy_timeout)?;
        validate::positive_duration("idempotency_window", self.idempotency_window)?;
        validate::bounded_duration("check_after", self.check_after)?;
        validate::positive_duration("check_interval", self.check_interval)?;
        validate::positive_duration("poll_interval", self.poll_interval)?;
        if self.check_max == 0 {
            return Err(Error::invalid("check_max must be at least 1"));
        }
        validate::max_payload(self.max_payload)?;
        if let Some(bytes) = self.max_size {
            validate::max_size(bytes)?;
        }
        if let Some(n) = self.max_ready {
            validate::flow_limit("max_ready", n)?;
        }
        Ok(())
    }
}

/// Settings of a consumer group; `subscribe` again with other values updates them.
#[derive(Debug, Clone, PartialEq)]
pub struct SubscribeOptions {
    /// `*`, `created`, or `created || refunded`.
    pub tags: String,
    pub retry: RetryPolicy,
    /// Default lease of a delivery when `receive` names none.
    pub lease: Duration,
    /// At most this many deliveries of the group inflight at once, over every process
    /// (`None`: no limit); 1 to `limits::MAX_FLOW_LIMIT`. A receive that would pass it
    /// gets fewer deliveries, or none until one is settled or its lease runs out.
    pub max_inflight: Option<u64>,
    /// At most this many deliveries per second for the group, over every process
    /// (`None`: no limit); more than 0, at most `limits::MAX_RATE`. A token bucket in the
    /// file, refilled by the queue's clock and taken from inside the claim's write
    /// transaction: a receive with no token left gets fewer deliveries or none, and a
    /// waiting receive wakes when the next token is due.
    pub rate: Option<f64>,
    /// How many deliveries the group may take at once after a quiet spell (the bucket's
    /// size); 1 to `limits::MAX_FLOW_LIMIT`, only with `rate`. `None`: `rate` rounded up.
    pub burst: Option<u64>,
}

impl Default for SubscribeOptions {
    fn default() -> Self {
        SubscribeOptions {
            tags: "*".into(),
            retry: RetryPolicy::default(),
            lease: Duration::from_secs(30),
            max_inflight: None,
            rate: None,
            burst: None,
        }
    }
}

impl SubscribeOptions {
    pub fn new() -> Self {
        Self::default()
    }
    setters! {
        tags(filter: impl Into<String>) => into;
        retry(policy: RetryPolicy);
        lease(d: Duration);
        max_inflight(n: u64) => Some;
        /// Deliveries per second (see the field).
        rate(per_second: f64) => Some;
        burst(n: u64) => Some;
    }

    /// The bucket's size: `burst`, or `rate` rounded up (at least 1).
    pub(crate) fn rate_limit(&self) -> Result<Option<(f64, u64)>> {
        let Some(rate) = self.rate else {
            if self.burst.is_some() {
                return Err(Error::invalid("burst needs rate (deliveries per second)"));
            }
            return Ok(None);
        };
        validate::rate(rate)?;
        let burst = self.burst.unwrap_or((rate.ceil() as u64).max(1));
        validate::flow_limit("burst", burst)?;
        Ok(Some((rate, burst)))
    }
}

/// The optional parts of a message.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PublishOptions {
    pub tag: Option<String>,
    /// Business key for lookup with `find` (an order id).
    pub key: Option<String>,
    pub headers: BTreeMap<String, String>,
    /// Messages with one ordering key reach each consumer group strictly in order.
    pub ordering_key: Option<String>,
    pub idempotency_key: Option<String>,
    pub delay: Option<Duration>,
    pub deliver_at: Option<SystemTime>,
    /// 0 (the default) to 9: within a consumer group, ready messages of a higher priority
    /// are received first (strictly: a steady stream of high priority holds back lower
    /// ones). Messages of one ordering key stay in order whatever their priorities.
    pub priority: i32,
}

impl PublishOptions {
    pub fn new() -> Self {
        Self::default()
    }
    setters! {
        tag(tag: impl Into<String>) => some_into;
        key(key: impl Into<String>) => some_into;
        ordering_key(key: impl Into<String>) => some_into;
        idempotency_key(key: impl Into<String>) => some_into;
        delay(d: Duration) => Some;
        deliver_at(t: SystemTime) => Some;
        priority(p: i32);
    }
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.insert(name.into(), value.into());
        self
    }
}

/// One message of `publish_batch`.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub topic: String,
    pub payload: Vec<u8>,
    pub options: PublishOptions,
}

impl Message {
    pub fn new(topic: impl Into<String>, payload: impl Into<Vec<u8>>) -> Self {
        Message {
            topic: topic.into(),
            payload: payload.into(),
            options: PublishOptions::default(),
        }
    }
    pub fn with_options(mut self, options: PublishOptions) -> Self {
        self.options = options;
        self
    }
    pub fn tag(mut self, tag: impl Into<String>) -> Self {
        self.options = self.options.tag(tag);
        self
    }
    pub fn key(mut self, key: impl Into<String>) -> Self {
        self.options = self.options.key(key);
        self
    }
    pub fn ordering_key(mut self, key: impl Into<String>) -> Self {
        self.options = self.options.ordering_key(key);
        self
    }
}

/// How many deliveries to take, how long to wait for the first, and under which lease.
#[derive(Debug, Clone, PartialEq)]
pub struct ReceiveOptions {
    pub max: usize,
    pub wait: Duration,
    /// `None`: the consumer group's lease.
    pub lease: Option<Duration>,
}

impl Default for ReceiveOptions {
    fn default() -> Self {
        ReceiveOptions {
            max: 1,
            wait: Duration::ZERO,
            lease: None,
        }
    }
}

impl ReceiveOptions {
    pub fn new() -> Self {
        Self::default()
    }
    setters! {
        max(n: usize);
        wait(d: Duration);
        lease(d: Duration) => Some;
    }

    pub(crate) fn validate(&self) -> Result<()> {
        if self.max == 0 || self.max > validate::MAX_RECEIVE {
            return Err(Error::invalid(format!(
                "max must be between 1 and {}, got {}",
                validate::MAX_RECEIVE,
                self.max
            )));
        }
        validate::bounded_duration("wait", self.wait)?;
        if let Some(lease) = self.lease {
            validate::lease(lease)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synchronous_parses_case_insensitively() {
        assert_eq!("FULL".parse::<Synchronous>().unwrap(), Synchronous::Full);
        assert!("off".parse::<Synchronous>().is_err());
    }

    #[test]
    fn defaults_are_rocketmq_like() {
        let o = Options::default();
        assert_eq!(o.check_after, Duration::from_secs(6));
        assert_eq!(o.check_max, 15);
        assert!(o.validate().is_ok());
        assert!(Options::default().check_max(0).validate().is_err());
    }

    #[test]
    fn receive_refuses_absurd_max_and_zero_lease() {
        assert!(ReceiveOptions::new().max(0).validate().is_err());
        assert!(ReceiveOptions::new().max(1_000_000).validate().is_err());
        assert!(
            ReceiveOptions::new()
                .lease(Duration::ZERO)
                .validate()
                .is_err()
        );
        assert!(ReceiveOptions::new().max(10).validate().is_ok());
    }
}
