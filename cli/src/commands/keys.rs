//! Encrypted files: where the CLI finds a key (never on its command line), and the rekey,
//! encrypt and decrypt commands.

use crate::args::NewKey;
use crate::exit::{Failure, Result};
use crate::output;
use crate::progress;
use ferrymq::{Key, KeySource, Queue};
use serde_json::json;
use std::path::{Path, PathBuf};

/// Where the key of --db comes from.
#[derive(Clone)]
pub enum KeyOrigin {
    File(PathBuf),
    Env(String),
}

impl KeyOrigin {
    pub fn from_args(file: Option<PathBuf>, env: Option<String>) -> Option<KeyOrigin> {
        file.map(KeyOrigin::File).or(env.map(KeyOrigin::Env))
    }

    /// The first (newest) key.
    fn first(&self) -> Result<Key> {
        self.source()
            .keys()?
            .into_iter()
            .next()
            .ok_or_else(|| Failure::usage("the key file or variable holds no key"))
    }

    /// A provider that reads the keys again each time it is asked (after a rotation).
    pub fn source(&self) -> KeySource {
        match self {
            KeyOrigin::File(p) => KeySource::file(p),
            KeyOrigin::Env(var) => KeySource::env(var),
        }
    }
}

fn new_key(args: &NewKey) -> Result<Key> {
    KeyOrigin::from_args(args.new_key_file.clone(), args.new_key_env.clone())
        .ok_or_else(|| Failure::usage("give --new-key-file or --new-key-env"))?
        .first()
}

pub fn rekey(q: &Queue, json: bool, args: &NewKey) -> Result<()> {
    q.rekey(new_key(args)?)?;
    let path = q.path().display();
    output::outcome(
        json,
        json!({ "rekeyed": path.to_string() }),
        format!("rekeyed {path}"),
    );
    Ok(())
}

pub fn encrypt(src: &Path, dst: &Path, args: &NewKey, json: bool, forced: bool) -> Result<()> {
    let key = new_key(args)?;
    convert(json, forced, "encrypting", dst, |progress| {
        ferrymq::encrypt_file(src, dst, &key, progress)
    })
}

pub fn decrypt(
    src: &Path,
    origin: Option<&KeyOrigin>,
    dst: &Path,
    json: bool,
    forced: bool,
) -> Result<()> {
    let key = origin
        .ok_or_else(|| Failure::usage("give the key of --db with --key-file or --key-env"))?
        .first()?;
    convert(json, forced, "decrypting", dst, |progress| {
        ferrymq::decrypt_file(src, dst, &key, progress)
    })
}

fn convert(
    json: bool,
    forced: bool,
    what: &str,
    dst: &Path,
    run: impl FnOnce(&mut (dyn FnMut(u64, u64) + Send)) -> ferrymq::Result<()>,
) -> Result<()> {
    let bar = progress::bar(0, forced, what);
    let mut report = |done: u64, total: u64| {
        bar.set_length(total);
        bar.set_position(done);
    };
    run(&mut report)?;
    bar.finish_and_clear();
    let dst = dst.display();
    output::outcome(
        json,
        json!({ "written": dst.to_string() }),
        format!("wrote {dst}"),
    );
    Ok(())
}
