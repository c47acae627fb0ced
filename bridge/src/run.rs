//! The long-running command: `ferrymq relay --config relay.toml` (and the
//! `ferrymq-bridge` binary). Opens the file, starts one task per `[[egress]]` and
//! `[[ingress]]` section, prints the counters as JSON lines to stderr every
//! `stats_interval_ms` and once more to stdout at exit. SIGTERM or SIGINT stops every
//! task between batches (what is in flight is confirmed and settled first), then exits 0.

use crate::config::BridgeConfig;
use crate::counters::Counters;
use crate::metrics::{self, Section};
use crate::{BridgeError, BridgeResult, envelope, ingress, relay};
use ferrymq::{Options, Queue};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// `[--config] PATH`; returns the process exit code.
pub fn main_with_args(args: impl IntoIterator<Item = String>) -> i32 {
    let args: Vec<String> = args.into_iter().collect();
    let path = match args.as_slice() {
        [flag, p] if flag == "--config" => PathBuf::from(p),
        [p] if !p.starts_with('-') => PathBuf::from(p),
        _ => {
            eprintln!("usage: ferrymq relay --config relay.toml");
            return 2;
        }
    };
    match run_config(&path) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("relay: {e}");
            1
        }
    }
}

/// Loads the config and runs it until SIGTERM or SIGINT (what `ferrymq relay` calls).
pub fn run_config(path: &Path) -> BridgeResult<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| BridgeError(format!("cannot start the runtime: {e}")))?;
    rt.block_on(async {
        // Before anything slow: a SIGTERM from here on stops the relay gracefully, and the
        // line below tells a supervisor (and the tests) that it now would.
        let signals = Signals::install()?;
        let cfg = BridgeConfig::load(path)?;
        eprintln!(
            "relay: running {} egress and {} ingress sections; SIGTERM or SIGINT stops them",
            cfg.egress.len(),
            cfg.ingress.len()
        );
        let (tx, rx) = watch::channel(false);
        tokio::spawn(async move {
            signals.wait().await;
            let _ = tx.send(true);
        });
        run(cfg, rx).await
    })
}

struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> BridgeResult<Signals> {
        use tokio::signal::unix::{SignalKind, signal};
        let handler = |kind, name| {
            signal(kind).map_err(|e| BridgeError(format!("cannot handle {name}: {e}")))
        };
        Ok(Signals {
            term: handler(SignalKind::terminate(), "SIGTERM")?,
            int: handler(SignalKind::interrupt(), "SIGINT")?,
        })
    }

    async fn wait(mut self) {
        tokio::select! {
            _ = self.term.recv() => {}
            _ = self.int.recv() => {}
        }
    }
}

/// Runs every section until `stop` turns true or one of them fails on the file.
pub async fn run(cfg: BridgeConfig, stop: watch::Receiver<bool>) -> BridgeResult<()> {
    let q = Queue::open(&cfg.db, Options::default())?;
    let origin = cfg
        .origin
        .clone()
        .unwrap_or_else(|| envelope::default_origin(&cfg.db));
    // Bound before any section starts, so that a bad address stops nothing midway.
    let listener = match &cfg.metrics_listen {
        Some(addr) => Some(bind_metrics(addr).await?),
        None => None,
    };
    let mut tasks = tokio::task::JoinSet::new();
    let mut all: Vec<Section> = Vec::new();
    let section = |name, direction| Section {
        name,
        direction,
        counters: Arc::new(Counters::default()),
    };
    for e in &cfg.egress {
        let sink = relay::prepare(&q, e, &origin)?;
        let s = section(e.label(), "egress");
        let c = s.counters.clone();
        all.push(s);
        tasks.spawn(relay::run(q.clone(), e.clone(), sink, c, stop.clone()));
    }
    for i in &cfg.ingress {
        let s = section(i.label(), "ingress");
        let c = s.counters.clone();
        all.push(s);
        tasks.spawn(ingress::run(q.clone(), i.clone(), c, stop.clone()));
    }
    let sections = Arc::new(all.clone());
    let server = listener.map(|l| tokio::spawn(metrics::serve(l, q.clone(), sections)));
    let printer = print_every(cfg.stats_interval_ms, all.clone());
    let mut first_error = None;
    while let Some(r) = tasks.join_next().await {
        let r = r
            .map_err(|e| BridgeError(format!("task: {e}")))
            .and_then(|r| r);
        if let Err(e) = r {
            first_error.get_or_insert(e);
            tasks.abort_all();
        }
    }
    for t in [printer, server].into_iter().flatten() {
        t.abort();
    }
    for s in &all {
        println!("{}", s.counters.to_json(&s.name));
    }
    q.close()?;
    first_error.map_or(Ok(()), Err)
}

/// Binds `addr` for `/metrics`; says where on stderr.
async fn bind_metrics(addr: &str) -> BridgeResult<tokio::net::TcpListener> {
    let fail = |e: std::io::Error| BridgeError(format!("metrics_listen {addr}: {e}"));
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(fail)?;
    let bound = listener.local_addr().map_err(fail)?;
    eprintln!("relay: metrics on http://{bound}/metrics");
    Ok(listener)
}

fn print_every(ms: u64, all: Vec<Section>) -> Option<tokio::task::JoinHandle<()>> {
    (ms > 0).then(|| {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(ms));
            tick.tick().await;
            loop {
                tick.tick().await;
                for s in &all {
                    eprintln!("{}", s.counters.to_json(&s.name));
                }
            }
        })
    })
}
