//! Dispatch: opens the file named by `--db` and runs one command on it.

mod dlq;
mod keys;
pub(crate) mod look;
mod maintain;
mod transfer;

use crate::args::{Cli, Command};
use crate::exit::{self, Failure, Result};
use ferrymq::{Options, Queue};
use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;

pub fn run(cli: Cli) -> Result<()> {
    // The relay's config names its file.
    if let Command::Relay { config } = &cli.command {
        return relay(config);
    }
    // `serve FILE` and `audit FILE` name the file themselves.
    let db = match &cli.command {
        Command::Serve(s) => s.file.clone().or(cli.db),
        Command::Audit { file, .. } => file.clone().or(cli.db),
        _ => cli.db,
    };
    let path = db.ok_or_else(|| {
        Failure::usage("the queue file is missing: give --db PATH or set FERRYMQ_DB")
    })?;
    let json = cli.json;
    if cli.reason.is_some() && !records_audit(&cli.command) {
        return Err(Failure::usage(
            "--reason goes with a command the audit trail records (pause, resume, \
             unschedule, dlq redrive, dlq purge, half commit, half rollback, purge-acked, \
             vacuum, rekey); this one records nothing",
        ));
    }
    let origin = keys::KeyOrigin::from_args(cli.key_file, cli.key_env);
    let db = Db {
        path: path.clone(),
        key: origin.as_ref().map(keys::KeyOrigin::source),
        reason: cli.reason,
    };
    match cli.command {
        Command::Stats { watch } => look::stats(&open(&db)?, json, watch),
        Command::Topics => look::topics(&open(&db)?, json),
        Command::Groups => look::groups(&open(&db)?, json),
        Command::Find { topic, key } => look::find(&open(&db)?, json, &topic, &key),
        Command::Show { id } => look::show(&open(&db)?, json, id),
        Command::Trace { id } => look::trace(&open(&db)?, json, id),
        Command::Tail {
            topic,
            group,
            from_id,
            interval,
            count,
        } => look::tail(
            &open(&db)?,
            json,
            &look::Follow {
                topic,
                group,
                from_id,
                interval,
                count,
            },
        ),
        Command::Pause { group } => maintain::pause(&open(&db)?, json, &group, true),
        Command::Resume { group } => maintain::pause(&open(&db)?, json, &group, false),
        Command::Schedules => maintain::schedules(&open(&db)?, json),
        Command::Unschedule { name, yes } => {
            confirm(&format!("Remove schedule {name}?"), yes)?;
            maintain::unschedule(&open(&db)?, json, &name)
        }
        Command::Metrics => {
            print!("{}", ferrymq::metrics::render(&open(&db)?)?);
            Ok(())
        }
        Command::Serve(opts) => crate::serve::run(open(&db)?, &opts),
        Command::Relay { config } => relay(&config),
        Command::Dlq(cmd) => dlq::run(&open(&db)?, json, cmd),
        Command::Half(cmd) => maintain::half(&open(&db)?, json, cmd),
        Command::PurgeAcked { older_than } => maintain::purge_acked(&open(&db)?, json, older_than),
        Command::Vacuum { pages } => maintain::vacuum(&open(&db)?, json, pages),
        Command::Check => maintain::check(&open(&db)?, json),
        Command::Rekey { new_key } => keys::rekey(&open(&db)?, json, &new_key),
        Command::Encrypt {
            output,
            new_key,
            progress,
        } => keys::encrypt(&path, &output, &new_key, json, progress),
        Command::Decrypt { output, progress } => {
            keys::decrypt(&path, origin.as_ref(), &output, json, progress)
        }
        Command::Audit { after, limit, .. } => look::audit(&open(&db)?, json, after, limit),
        Command::Export {
            topic,
            from_id,
            output,
        } => transfer::export(&open(&db)?, json, &topic, from_id, output.as_deref()),
        Command::Import { file, key_prefix } => {
            let records = transfer::read(&file)?;
            // The one command that creates a missing file: loading a fresh one is its use.
            let options = db.options(transfer::options());
            let q = if path.exists() {
                open_with(&db, options)?
            } else {
                Queue::open(&path, options)?
            };
            transfer::import(&q, json, &records, &key_prefix)
        }
    }
}

/// Whether the command performs an action the audit trail records.
fn records_audit(command: &Command) -> bool {
    use crate::args::{Dlq, Half};
    matches!(
        command,
        Command::Pause { .. }
            | Command::Resume { .. }
            | Command::Unschedule { .. }
            | Command::PurgeAcked { .. }
            | Command::Vacuum { .. }
            | Command::Rekey { .. }
            | Command::Dlq(Dlq::Redrive { .. } | Dlq::Purge { .. })
            | Command::Half(Half::Commit { .. } | Half::Rollback { .. })
    )
}

/// The file a command works on, the key of an encrypted one, and the operator's reason.
struct Db {
    path: std::path::PathBuf,
    key: Option<ferrymq::KeySource>,
    reason: Option<String>,
}

impl Db {
    fn options(&self, mut options: Options) -> Options {
        options.key = self.key.clone();
        options
    }
}

fn open(db: &Db) -> Result<Queue> {
    let q = open_with(db, db.options(Options::default()))?;
    Ok(match &db.reason {
        Some(r) => q.with_reason(r.as_str())?,
        None => q,
    })
}

/// Opens an existing file only: `Queue::open` would create a missing one, and an
/// operator who mistyped a path should hear so instead.
fn open_with(db: &Db, options: Options) -> Result<Queue> {
    let path = db.path.as_path();
    if !path.exists() {
        return Err(Failure::new(
            exit::NOT_FOUND,
            format!("{} does not exist", path.display()),
        ));
    }
    if !path.is_file() {
        return Err(Failure::usage(format!("{} is not a file", path.display())));
    }
    Ok(Queue::open(path, options)?)
}

/// Asks before a destructive run: `--yes` goes ahead; on a terminal the operator
/// answers; otherwise it is refused, since nobody can answer.
fn confirm(question: &str, yes: bool) -> Result<()> {
    if yes {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() {
        return Err(Failure::new(
            exit::REFUSED,
            format!("{question} Refused: stdin is not a terminal; add --yes to go ahead"),
        ));
    }
    eprint!("{question} [y/N] ");
    std::io::stderr().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    match answer.trim().to_ascii_lowercase().as_str() {
        "y" | "yes" => Ok(()),
        _ => Err(Failure::new(exit::REFUSED, "aborted; nothing changed")),
    }
}

#[cfg(feature = "relay")]
fn relay(config: &Path) -> Result<()> {
    ferrymq_bridge::run_config(config).map_err(|e| Failure::new(exit::ERROR, e.0))
}

/// The Python and Node packages are built without the broker clients (no librdkafka in a
/// wheel or an npm addon this round).
#[cfg(not(feature = "relay"))]
fn relay(_config: &Path) -> Result<()> {
    Err(Failure::usage(
        "`ferrymq relay` needs the standalone ferrymq command (crate ferrymq-cli, built \
         with its default feature `relay`); this package's command is built without the \
         broker clients",
    ))
}
