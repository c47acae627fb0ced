//! The command line, as clap derives it. Each doc comment is the help text.

use crate::duration;
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use std::time::Duration;

fn dur(text: &str) -> Result<Duration, String> {
    duration::parse(text)
}

/// Message ids given as `1,2,3`.
#[derive(Clone, Debug)]
pub struct Ids(pub Vec<i64>);

fn ids(text: &str) -> Result<Ids, String> {
    text.split(',')
        .map(|s| {
            s.trim()
                .parse::<i64>()
                .ok()
                .filter(|&id| id > 0)
                .ok_or_else(|| format!("{s:?} is not a message id (a positive integer)"))
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Ids)
}

fn positive_rate(text: &str) -> Result<u64, String> {
    match text.parse::<u64>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!(
            "{text:?} is not a rate (letters per second, at least 1)"
        )),
    }
}

/// Where a new key comes from (rekey, encrypt): its first line.
#[derive(Args, Debug)]
#[group(required = true, multiple = false)]
pub struct NewKey {
    /// A file holding the new key (as in --key-file).
    #[arg(long, value_name = "PATH")]
    pub new_key_file: Option<PathBuf>,
    /// The name of an environment variable holding the new key.
    #[arg(long, value_name = "VAR")]
    pub new_key_env: Option<String>,
}

#[derive(Parser, Debug)]
#[command(
    name = "ferrymq",
    version,
    about = "Look after a ferrymq queue file: statistics, messages, dead letters, half \
             messages, retention, integrity, export and import.",
    after_help = crate::exit::HELP
)]
pub struct Cli {
    /// The queue file (never created, except by import: a missing file is an error).
    #[arg(long, env = "FERRYMQ_DB", global = true, value_name = "PATH")]
    pub db: Option<PathBuf>,
    /// Print JSON for scripts (shapes in cli/README.md) instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
    /// The key of an encrypted --db: a file holding it (a passphrase, or x'<64 hex
    /// digits>' for a raw key). During a rotation, one key per line, newest first; the
    /// file is read again whenever the key stops opening the queue file.
    #[arg(long, env = "FERRYMQ_KEY_FILE", global = true, value_name = "PATH")]
    pub key_file: Option<PathBuf>,
    /// The name of an environment variable holding the key of an encrypted --db (as in
    /// --key-file). Never put a key itself on the command line.
    #[arg(long, global = true, value_name = "VAR", conflicts_with = "key_file")]
    pub key_env: Option<String>,
    /// Why: recorded in the file's audit trail with the action (pause, resume,
    /// unschedule, dlq redrive and purge, half commit and rollback, purge-acked, vacuum);
    /// refused with any other command. At most 1,000 bytes.
    #[arg(long, global = true, value_name = "TEXT")]
    pub reason: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Counts per topic and per consumer group.
    Stats {
        /// Repeat every SECS seconds (2 if no value is given) until Ctrl-C.
        #[arg(long, value_name = "SECS", num_args = 0..=1, default_missing_value = "2")]
        watch: Option<f64>,
    },
    /// Topics: messages kept, undecided half messages, their consumer groups.
    Topics,
    /// Consumer groups: ready, scheduled, in flight, retrying, dead, oldest ready age.
    Groups,
    /// Messages of a topic with a business key, oldest first.
    Find {
        topic: String,
        /// The business key (`key` at publish).
        #[arg(long)]
        key: String,
    },
    /// One message and its delivery in every consumer group.
    Show { id: i64 },
    /// The timeline of one message: published, each attempt, dead, redriven, acked.
    Trace { id: i64 },
    /// Follow a topic's new messages as they are published (read-only: claims and acks
    /// nothing); Ctrl-C ends it.
    Tail {
        topic: String,
        /// Only messages delivered to this consumer group (matching its tag filter).
        #[arg(long)]
        group: Option<String>,
        /// Start after this message id instead of at the newest message.
        #[arg(long, value_name = "ID")]
        from_id: Option<i64>,
        /// How often to look for new messages.
        #[arg(long, default_value = "200ms", value_parser = dur)]
        interval: Duration,
        /// Exit after printing N messages (default: follow until Ctrl-C).
        #[arg(long, value_name = "N")]
        count: Option<u64>,
    },
    /// Stop handing out a consumer group's deliveries, in every process, until resume.
    Pause {
        /// The consumer group.
        group: String,
    },
    /// Hand out a paused consumer group's deliveries again.
    Resume {
        /// The consumer group.
        group: String,
    },
    /// The recurring messages kept in the file: rule, time zone, next tick, ticks fired.
    Schedules,
    /// Remove a schedule: no more ticks (messages already published stay).
    Unschedule {
        /// The schedule's name.
        name: String,
        /// Do not ask (needed when stdin is not a terminal).
        #[arg(long)]
        yes: bool,
    },
    /// Print the Prometheus text exposition of the file's counts (what serve --metrics
    /// serves on /metrics).
    Metrics,
    /// The operators' web console (and /metrics) over HTTP, read-only unless
    /// --allow-writes; Ctrl-C ends it.
    Serve(Serve),
    /// Forward consumer groups to Kafka, RabbitMQ or RocketMQ and bring Kafka's and
    /// RabbitMQ's messages in, as
    /// CONFIG says (format: bridge/src/config.rs); SIGTERM or Ctrl-C stops it gracefully.
    /// The file is the config's `db`, not --db. Needs the standalone build (feature
    /// `relay`).
    Relay {
        #[arg(long, value_name = "CONFIG")]
        config: PathBuf,
    },
    /// The dead-letter queue of a consumer group.
    #[command(subcommand)]
    Dlq(Dlq),
    /// Half (transactional) messages.
    #[command(subcommand)]
    Half(Half),
    /// Delete messages acked by every group, and half messages rolled back, at least
    /// DURATION ago (with expired idempotency keys).
    PurgeAcked {
        /// Age like 7d, 12h, 30m or 10s.
        #[arg(long, value_name = "DURATION", value_parser = dur)]
        older_than: Duration,
    },
    /// Give pages freed by purges back to the file system.
    Vacuum {
        /// Free at most N pages (default: every free page).
        #[arg(long, value_name = "N")]
        pages: Option<u64>,
    },
    /// PRAGMA integrity_check, schema version and application id; exit 1 if not ok.
    Check,
    /// Change the key of the encrypted --db (whose current key --key-file/--key-env
    /// give) to the first key of --new-key-file/--new-key-env, rewriting every page in one
    /// transaction while other processes keep running. Give the new key to their key
    /// providers first (newest first): a process that cannot find it stops with an
    /// encryption error.
    Rekey {
        #[command(flatten)]
        new_key: NewKey,
    },
    /// Write an encrypted copy of the plain --db to OUTPUT (refused if it exists). Stop
    /// the processes writing to --db first: what they commit during the copy may miss it.
    Encrypt {
        output: PathBuf,
        #[command(flatten)]
        new_key: NewKey,
        /// Show progress even when stderr is not a terminal.
        #[arg(long)]
        progress: bool,
    },
    /// Write a plain copy of the encrypted --db (opened with --key-file/--key-env) to
    /// OUTPUT (refused if it exists).
    Decrypt {
        output: PathBuf,
        /// Show progress even when stderr is not a terminal.
        #[arg(long)]
        progress: bool,
    },
    /// The audit trail: operator actions (who, when, what, why), oldest first.
    Audit {
        /// The queue file (instead of --db).
        #[arg(value_name = "FILE")]
        file: Option<PathBuf>,
        /// Only records with ids above ID.
        #[arg(long, value_name = "ID")]
        after: Option<i64>,
        /// At most N records (1-10000).
        #[arg(long, value_name = "N", default_value_t = 100)]
        limit: usize,
    },
    /// Write a topic's committed messages as JSON lines (to stdout or --output).
    Export {
        topic: String,
        /// Only messages with ids above N.
        #[arg(long, value_name = "N", default_value_t = 0)]
        from_id: i64,
        /// Write to this file instead of stdout (refused if it exists).
        #[arg(long, short, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Publish the messages of an export file (JSON lines), all in one transaction, into
    /// --db (created if missing). The original id is the idempotency key, so importing a
    /// file twice adds nothing.
    Import {
        /// The export file ("-" for stdin).
        file: PathBuf,
        /// Prefix of the idempotency key ("<prefix><original id>").
        #[arg(long, value_name = "PREFIX", default_value = "import:")]
        key_prefix: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum Dlq {
    /// List a group's dead letters, oldest death first.
    List {
        #[command(flatten)]
        group: Group,
        /// Only letters dead for at least DURATION.
        #[arg(long, value_name = "DURATION", value_parser = dur)]
        older_than: Option<Duration>,
        /// At most N letters (1-10000).
        #[arg(long, value_name = "N", default_value_t = 100)]
        limit: usize,
    },
    /// One dead letter: the message, its attempts and last error in the group.
    Show {
        #[command(flatten)]
        group: Group,
        id: i64,
    },
    /// Put dead letters back in line with fresh retries.
    Redrive {
        #[command(flatten)]
        group: Group,
        #[command(flatten)]
        bulk: Bulk,
        /// At most N letters per second.
        #[arg(long, value_name = "N", value_parser = positive_rate)]
        rate: Option<u64>,
    },
    /// Delete dead letters.
    Purge {
        #[command(flatten)]
        group: Group,
        #[command(flatten)]
        bulk: Bulk,
    },
}

#[derive(Args, Debug)]
pub struct Group {
    /// The consumer group.
    #[arg(long, short)]
    pub group: String,
}

#[derive(Args, Debug)]
pub struct Bulk {
    /// Only these message ids (comma-separated); without it, every dead letter.
    #[arg(long, value_name = "ID,...", value_parser = ids, conflicts_with = "older_than")]
    pub ids: Option<Ids>,
    /// Only letters dead for at least DURATION (7d, 12h, 30m, 10s).
    #[arg(long, value_name = "DURATION", value_parser = dur)]
    pub older_than: Option<Duration>,
    /// Do it without asking (required when stdin is not a terminal).
    #[arg(long, short)]
    pub yes: bool,
    /// Show the progress bar on stderr even when it is not a terminal.
    #[arg(long)]
    pub progress: bool,
}

#[derive(Subcommand, Debug)]
pub enum Half {
    /// Half messages: undecided, rolled back, or both (default).
    List {
        /// half or rolled_back.
        #[arg(long)]
        state: Option<String>,
        /// At most N messages (1-10000).
        #[arg(long, value_name = "N", default_value_t = 1000)]
        limit: usize,
    },
    /// Make a half message deliverable.
    Commit { id: i64 },
    /// Discard a half message (kept for audit).
    Rollback { id: i64 },
}

#[derive(Args, Debug)]
pub struct Serve {
    /// The queue file (instead of --db).
    #[arg(value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// The address to listen on; anything but loopback needs --token.
    #[arg(long, default_value = "127.0.0.1", value_name = "ADDR")]
    pub bind: std::net::IpAddr,
    /// The port (0: any free port; the URL is printed on stdout).
    #[arg(long, default_value_t = 7373)]
    pub port: u16,
    /// Allow the console's actions (redrive, purge, commit, rollback, pause, resume);
    /// without it they answer 403.
    #[arg(long)]
    pub allow_writes: bool,
    /// A secret every request must carry (Authorization: Bearer, or ?token= once in the
    /// browser); required to bind beyond loopback.
    #[arg(
        long,
        env = "FERRYMQ_TOKEN",
        value_name = "SECRET",
        hide_env_values = true
    )]
    pub token: Option<String>,
    /// Serve /metrics (Prometheus text format) as well.
    #[arg(long)]
    pub metrics: bool,
}
