//! `ferrymq serve`: the operators' web console and `/metrics` over HTTP, on one queue
//! file. axum on a small tokio runtime; every core call (they block on SQLite) runs on
//! `spawn_blocking`. The page, its script and style are compiled in (`include_str!`), so
//! the console loads nothing from the network.
//!
//! Security (`guard.rs`): read-only unless `--allow-writes`; a bind beyond loopback needs
//! `--token`, which every request must then carry; every POST needs the per-server CSRF
//! token the page embeds, a JSON body, and a same-origin `Origin` when the browser sends
//! one; without a token, only loopback `Host` names are answered (DNS rebinding).

mod api;
mod guard;

use crate::exit::{Failure, Result};
use axum::Router;
use axum::routing::{get, post};
use ferrymq::Queue;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;

/// What every handler sees.
pub struct App {
    pub q: Queue,
    pub csrf: String,
    pub token: Option<String>,
    pub allow_writes: bool,
    pub metrics: bool,
    pub port: u16,
}

/// A token is a shared secret typed or pasted by people: long enough to not be guessed.
const MIN_TOKEN: usize = 16;

pub fn run(q: Queue, opts: &crate::args::Serve) -> Result<()> {
    check_options(opts)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(8)
        .enable_all()
        .build()?;
    rt.block_on(serve(q, opts))
}

fn check_options(opts: &crate::args::Serve) -> Result<()> {
    if let Some(t) = &opts.token {
        if t.chars().count() < MIN_TOKEN || t.chars().any(|c| c.is_control()) {
            return Err(Failure::usage(format!(
                "--token must be at least {MIN_TOKEN} characters, without control characters"
            )));
        }
    } else if !opts.bind.is_loopback() {
        return Err(Failure::usage(format!(
            "refusing to serve on {} (not loopback) without --token: anyone who reaches \
             the port could read the queue{}",
            opts.bind,
            if opts.allow_writes {
                " and change it"
            } else {
                ""
            }
        )));
    }
    Ok(())
}

async fn serve(q: Queue, opts: &crate::args::Serve) -> Result<()> {
    let listener = tokio::net::TcpListener::bind(SocketAddr::new(opts.bind, opts.port)).await?;
    let addr = listener.local_addr()?;
    let app = Arc::new(App {
        q,
        csrf: random_token()?,
        token: opts.token.clone(),
        allow_writes: opts.allow_writes,
        metrics: opts.metrics,
        port: addr.port(),
    });
    let router = routes(Arc::clone(&app));
    let mode = if opts.allow_writes {
        "writes allowed"
    } else {
        "read-only"
    };
    // The first line on stdout is the URL, so a script (or a test) using --port 0 finds it.
    println!("ferrymq console on http://{addr}/ ({mode})");
    std::io::stdout().flush()?;
    axum::serve(listener, router)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}

fn routes(app: Arc<App>) -> Router {
    Router::new()
        .route("/", get(api::index))
        .route("/console.js", get(api::script))
        .route("/console.css", get(api::style))
        .route("/metrics", get(api::metrics))
        .route("/api/overview", get(api::overview))
        .route("/api/find", get(api::find))
        .route("/api/messages/{id}", get(api::message))
        .route("/api/messages/{id}/trace", get(api::trace))
        .route("/api/dlq/{group}", get(api::dead_letters))
        .route("/api/dlq/{group}/redrive", post(api::redrive))
        .route("/api/dlq/{group}/purge", post(api::purge))
        .route("/api/half", get(api::half_messages))
        .route("/api/half/{id}/commit", post(api::commit_half))
        .route("/api/half/{id}/rollback", post(api::rollback_half))
        .route("/api/groups/{group}/pause", post(api::pause))
        .route("/api/groups/{group}/resume", post(api::resume))
        .fallback(api::not_found)
        .method_not_allowed_fallback(api::wrong_method)
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&app),
            guard::guard,
        ))
        .with_state(app)
}

/// 32 random bytes from the kernel, in hex: the CSRF token of this server's life.
fn random_token() -> Result<String> {
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}
