//! The checks every request passes before its handler, in this order: the Host name
//! (without a token: loopback names only, against DNS rebinding), the token (when the
//! server has one: 401 without it), then for anything but GET and HEAD: writes allowed
//! (403), same origin (403), the CSRF token (403) and a JSON body (415). Every answer
//! gets headers that keep the page out of frames and other origins.

use super::App;
use super::api::ApiError;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

pub const CSRF_HEADER: &str = "x-ferrymq-csrf";
const TOKEN_COOKIE: &str = "ferrymq_token";

pub async fn guard(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    let from_query = match check(&app, &req) {
        Ok(from_query) => from_query,
        Err(e) => return secured(e.into_response()),
    };
    let mut res = next.run(req).await;
    if from_query {
        // The browser keeps the token from `/?token=...` for the page's own requests.
        if let Some(t) = &app.token {
            let cookie = format!("{TOKEN_COOKIE}={t}; HttpOnly; SameSite=Strict; Path=/");
            if let Ok(v) = HeaderValue::from_str(&cookie) {
                res.headers_mut().insert(header::SET_COOKIE, v);
            }
        }
    }
    secured(res)
}

/// `Ok(true)` when the token came in the query string (then it is set as a cookie).
fn check(app: &App, req: &Request) -> Result<bool, ApiError> {
    let h = req.headers();
    let from_query = match &app.token {
        None => {
            check_host(h, app.port)?;
            false
        }
        Some(t) => check_token(h, req.uri().query(), t)?,
    };
    if req.method() != Method::GET && req.method() != Method::HEAD {
        check_write(app, h)?;
    }
    Ok(from_query)
}

fn check_host(h: &HeaderMap, port: u16) -> Result<(), ApiError> {
    let host = h
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let ok = ["127.0.0.1", "localhost", "[::1]"]
        .iter()
        .any(|name| host == format!("{name}:{port}") || (port == 80 && host == *name));
    if ok {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            format!("Host {host:?} is not this server's loopback address"),
        ))
    }
}

fn check_token(h: &HeaderMap, query: Option<&str>, token: &str) -> Result<bool, ApiError> {
    let bearer = h
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let cookie = h
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().strip_prefix("ferrymq_token="))
        .next();
    let in_query = query
        .into_iter()
        .flat_map(|q| q.split('&'))
        .filter_map(|p| p.strip_prefix("token="))
        .map(percent_decode)
        .next();
    if bearer.is_some_and(|b| same(b, token)) || cookie.is_some_and(|c| same(c, token)) {
        return Ok(false);
    }
    if in_query.as_deref().is_some_and(|q| same(q, token)) {
        return Ok(true);
    }
    Err(ApiError::new(
        StatusCode::UNAUTHORIZED,
        "this server needs its token: Authorization: Bearer <token>, or open /?token=<token>",
    ))
}

fn check_write(app: &App, h: &HeaderMap) -> Result<(), ApiError> {
    let forbidden = |m: &str| Err(ApiError::new(StatusCode::FORBIDDEN, m));
    if !app.allow_writes {
        return forbidden("this console is read-only: start ferrymq serve with --allow-writes");
    }
    let host = h.get(header::HOST).and_then(|v| v.to_str().ok());
    if let Some(origin) = h.get(header::ORIGIN) {
        let same_origin = host
            .is_some_and(|host| origin.to_str().ok() == Some(format!("http://{host}").as_str()));
        if !same_origin {
            return forbidden("the request comes from another origin");
        }
    }
    let site = h.get("sec-fetch-site").and_then(|v| v.to_str().ok());
    if site.is_some_and(|s| s != "same-origin" && s != "none") {
        return forbidden("the request comes from another site");
    }
    let csrf = h.get(CSRF_HEADER).and_then(|v| v.to_str().ok());
    if !csrf.is_some_and(|c| same(c, &app.csrf)) {
        return forbidden("missing or wrong X-Ferrymq-Csrf header (reload the console)");
    }
    let json = h
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(';').next() == Some("application/json"));
    if !json {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "actions take Content-Type: application/json",
        ));
    }
    Ok(())
}

/// Compares secrets in time that depends on their lengths only.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// `%XX` and `+` of a query value; bad escapes stay as they are (and then do not match).
fn percent_decode(v: &str) -> String {
    let b = v.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = b
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        match (b[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (b'+', _) => {
                out.push(b' ');
                i += 1;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn secured(mut res: Response) -> Response {
    let h = res.headers_mut();
    let set = |h: &mut HeaderMap, k: header::HeaderName, v: &'static str| {
        h.insert(k, HeaderValue::from_static(v));
    };
    set(
        h,
        header::CONTENT_SECURITY_POLICY,
        "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'none'",
    );
    set(h, header::X_FRAME_OPTIONS, "DENY");
    set(h, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(h, header::REFERRER_POLICY, "no-referrer");
    set(h, header::CACHE_CONTROL, "no-store");
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_compare_and_query_values_decode() {
        assert!(same("abc", "abc"));
        assert!(!same("abc", "abd"));
        assert!(!same("abc", "abcd"));
        assert_eq!(percent_decode("a%20b+c%zz"), "a b c%zz");
    }
}
