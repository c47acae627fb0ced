//! The console's endpoints. GETs read; POSTs (behind `guard`) change the file through
//! the same core calls as the CLI's commands. Every answer is JSON (`{"error": ...}` on
//! failure) except the page, its assets and `/metrics`. Bad input is a 4xx with a
//! message and reaches no write: ids and bodies are parsed here, names and limits by
//! the core, which refuses before it changes anything. Every action's JSON body may carry
//! `"reason": "..."`, recorded with it in the file's audit trail (`Queue::with_reason`).

use super::App;
use crate::commands::look;
use crate::views;
use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use ferrymq::{ErrorKind, MessageState, Queue};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;

const PAGE: &str = include_str!("console.html");
const SCRIPT: &str = include_str!("console.js");
const STYLE: &str = include_str!("console.css");

/// Most ids one action takes (the core's list limit).
const MAX_IDS: usize = ferrymq::MAX_LIST;

#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
        }
    }

    fn bad(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(json!({ "error": self.message }))).into_response()
    }
}

impl From<ferrymq::Error> for ApiError {
    fn from(e: ferrymq::Error) -> Self {
        let status = match e.kind() {
            ErrorKind::InvalidArgument => StatusCode::BAD_REQUEST,
            ErrorKind::NotFound => StatusCode::NOT_FOUND,
            ErrorKind::LeaseLost => StatusCode::CONFLICT,
            ErrorKind::Busy | ErrorKind::Closed => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError::new(status, e.to_string())
    }
}

type Answer = Result<Json<Value>, ApiError>;
/// A GET's query string as axum extracts it; `query` turns a rejection into a 400.
type Params = Result<Query<HashMap<String, String>>, QueryRejection>;

/// Runs a core call off the async workers (it blocks on SQLite).
async fn blocking<T: Send + 'static>(
    app: &Arc<App>,
    f: impl FnOnce(&Queue) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    let q = app.q.clone();
    tokio::task::spawn_blocking(move || f(&q))
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
}

fn query(q: Params) -> Result<HashMap<String, String>, ApiError> {
    q.map(|Query(m)| m)
        .map_err(|e| ApiError::bad(format!("bad query string: {e}")))
}

fn required<'a>(q: &'a HashMap<String, String>, name: &str) -> Result<&'a str, ApiError> {
    q.get(name)
        .map(String::as_str)
        .ok_or_else(|| ApiError::bad(format!("the query needs {name}=")))
}

fn limit(q: &HashMap<String, String>, default: usize) -> Result<usize, ApiError> {
    match q.get("limit") {
        None => Ok(default),
        Some(v) => v
            .parse()
            .map_err(|_| ApiError::bad(format!("limit must be a number, not {v:?}"))),
    }
}

fn id(text: &str) -> Result<i64, ApiError> {
    text.parse::<i64>()
        .ok()
        .filter(|&id| id > 0)
        .ok_or_else(|| ApiError::bad(format!("{text:?} is not a message id (a positive integer)")))
}

/// An action's body: a JSON object, or nothing at all (`{}`).
fn body_json(body: &Bytes) -> Result<Value, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(json!({}));
    }
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad(format!("the body is not JSON: {e}")))?;
    if !v.is_object() {
        return Err(ApiError::bad("the body must be a JSON object"));
    }
    Ok(v)
}

/// The queue to act through: with the body's `"reason"` (a string, or null or absent for
/// none), which the core checks and records in the audit trail.
fn acting(q: &Queue, body: &Value) -> Result<Queue, ApiError> {
    match body.get("reason") {
        None | Some(Value::Null) => Ok(q.clone()),
        Some(Value::String(r)) => Ok(q.with_reason(r.as_str())?),
        Some(other) => Err(ApiError::bad(format!(
            "reason must be a string, not {other}"
        ))),
    }
}

/// `{"ids": [1, 2, ...]}`: 1 to MAX_IDS positive integers.
fn ids(v: &Value) -> Result<Vec<i64>, ApiError> {
    let list = v
        .get("ids")
        .and_then(Value::as_array)
        .ok_or_else(|| ApiError::bad("the body must be {\"ids\": [message ids]}"))?;
    if list.is_empty() || list.len() > MAX_IDS {
        return Err(ApiError::bad(format!(
            "give 1 to {MAX_IDS} ids, not {}",
            list.len()
        )));
    }
    list.iter()
        .map(|v| {
            v.as_i64().filter(|&id| id > 0).ok_or_else(|| {
                ApiError::bad(format!("{v} is not a message id (a positive integer)"))
            })
        })
        .collect()
}

pub async fn index(State(app): State<Arc<App>>) -> Html<String> {
    let writes = if app.allow_writes { "true" } else { "false" };
    Html(
        PAGE.replace("{{CSRF}}", &app.csrf)
            .replace("{{WRITES}}", writes),
    )
}

pub async fn script() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        SCRIPT,
    )
        .into_response()
}

pub async fn style() -> Response {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], STYLE).into_response()
}

pub async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "no such page or endpoint")
}

pub async fn wrong_method() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "wrong method: reads are GET, actions are POST",
    )
}

pub async fn metrics(State(app): State<Arc<App>>) -> Result<Response, ApiError> {
    if !app.metrics {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "/metrics is off: start ferrymq serve with --metrics",
        ));
    }
    let text = blocking(&app, |q| Ok(ferrymq::metrics::render(q)?)).await?;
    let kind = "text/plain; version=0.0.4; charset=utf-8";
    Ok(([(header::CONTENT_TYPE, kind)], text).into_response())
}

pub async fn overview(State(app): State<Arc<App>>) -> Answer {
    let writes = app.allow_writes;
    blocking(&app, move |q| {
        let s = q.stats()?;
        Ok(Json(json!({
            "file": q.path().display().to_string(),
            "now": views::time(q.now()),
            "writes": writes,
            "stats": views::stats(&s),
        })))
    })
    .await
}

pub async fn find(State(app): State<Arc<App>>, q: Params) -> Answer {
    let q = query(q)?;
    let (topic, key) = (
        required(&q, "topic")?.to_owned(),
        required(&q, "key")?.to_owned(),
    );
    blocking(&app, move |queue| {
        let found = queue.find(&topic, &key)?;
        Ok(Json(views::messages(&found)))
    })
    .await
}

pub async fn message(State(app): State<Arc<App>>, Path(raw): Path<String>) -> Answer {
    let id = id(&raw)?;
    blocking(&app, move |q| Ok(Json(views::message(&q.message(id)?)))).await
}

pub async fn trace(State(app): State<Arc<App>>, Path(raw): Path<String>) -> Answer {
    let id = id(&raw)?;
    blocking(&app, move |q| Ok(Json(look::trace_json(&q.message(id)?)))).await
}

pub async fn dead_letters(
    State(app): State<Arc<App>>,
    Path(group): Path<String>,
    q: Params,
) -> Answer {
    let limit = limit(&query(q)?, ferrymq::defaults::DEAD_LETTERS_LIMIT)?;
    blocking(&app, move |q| {
        let letters = q.dead_letters(&group, limit)?;
        Ok(Json(views::dead_letters(&group, &letters)))
    })
    .await
}

pub async fn redrive(
    State(app): State<Arc<App>>,
    Path(group): Path<String>,
    body: Bytes,
) -> Answer {
    on_dead_letters(app, group, &body, "redriven", |q, g, ids| {
        q.redrive(g, Some(ids))
    })
    .await
}

pub async fn purge(State(app): State<Arc<App>>, Path(group): Path<String>, body: Bytes) -> Answer {
    on_dead_letters(app, group, &body, "purged", Queue::purge_dead_letter_ids).await
}

/// An action on the dead letters of `group` the body lists; the answer gives how many it
/// took under the name `done`.
async fn on_dead_letters(
    app: Arc<App>,
    group: String,
    body: &Bytes,
    done: &'static str,
    act: fn(&Queue, &str, &[i64]) -> ferrymq::Result<u64>,
) -> Answer {
    let body = body_json(body)?;
    let ids = ids(&body)?;
    blocking(&app, move |q| {
        let n = act(&acting(q, &body)?, &group, &ids)?;
        Ok(Json(json!({ "group": group, done: n })))
    })
    .await
}

pub async fn half_messages(State(app): State<Arc<App>>, q: Params) -> Answer {
    let q = query(q)?;
    let limit = limit(&q, ferrymq::defaults::HALF_MESSAGES_LIMIT)?;
    let state = match q.get("state").map(String::as_str) {
        None | Some("") | Some("all") => None,
        Some(s) => Some(s.parse::<MessageState>()?),
    };
    blocking(&app, move |q| {
        let list = q.half_messages(state, limit)?;
        Ok(Json(views::messages(&list)))
    })
    .await
}

pub async fn commit_half(
    State(app): State<Arc<App>>,
    Path(raw): Path<String>,
    body: Bytes,
) -> Answer {
    decide_half(app, &raw, &body, true).await
}

pub async fn rollback_half(
    State(app): State<Arc<App>>,
    Path(raw): Path<String>,
    body: Bytes,
) -> Answer {
    decide_half(app, &raw, &body, false).await
}

/// Commits (`commit`) or rolls back the half message the path names.
async fn decide_half(app: Arc<App>, raw: &str, body: &Bytes, commit: bool) -> Answer {
    let id = id(raw)?;
    let body = body_json(body)?;
    blocking(&app, move |q| {
        let q = acting(q, &body)?;
        let state = if commit {
            q.commit_half(id)?;
            "committed"
        } else {
            q.rollback_half(id)?;
            "rolled_back"
        };
        Ok(Json(json!({ "id": id, "state": state })))
    })
    .await
}

pub async fn pause(State(app): State<Arc<App>>, Path(group): Path<String>, body: Bytes) -> Answer {
    set_paused(app, group, body_json(&body)?, true).await
}

pub async fn resume(State(app): State<Arc<App>>, Path(group): Path<String>, body: Bytes) -> Answer {
    set_paused(app, group, body_json(&body)?, false).await
}

async fn set_paused(app: Arc<App>, group: String, body: Value, paused: bool) -> Answer {
    blocking(&app, move |q| {
        let q = acting(q, &body)?;
        if paused {
            q.pause(&group)?;
        } else {
            q.resume(&group)?;
        }
        Ok(Json(json!({ "group": group, "paused": paused })))
    })
    .await
}
