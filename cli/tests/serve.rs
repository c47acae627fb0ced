//! `ferrymq serve` as a real process over real HTTP: what it refuses (writes without
//! --allow-writes, a public bind without a token, actions without the CSRF token or from
//! another origin, bad input) and that a refusal leaves the file as it was.

mod common;

use common::{BIN, Fixture};
use ferrymq::{PublishOptions, SubscribeOptions};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// A running `ferrymq serve`, killed when dropped.
struct Server {
    child: Child,
    port: u16,
}

impl Server {
    fn start(db: &Path, args: &[&str]) -> Server {
        let mut child = Command::new(BIN)
            .arg("serve")
            .arg(db)
            .args(["--port", "0"])
            .args(args)
            .env_remove("FERRYMQ_TOKEN")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut first = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first)
            .unwrap();
        let port = first
            .split("127.0.0.1:")
            .nth(1)
            .and_then(|rest| rest.split('/').next())
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no URL on stdout: {first:?}"));
        Server { child, port }
    }

    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// One request (HTTP/1.1, Connection: close) with extra header lines.
    fn request(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Reply {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        let mut req = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\n");
        if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
            req += &format!("Host: {}\r\n", self.host());
        }
        for (k, v) in headers {
            req += &format!("{k}: {v}\r\n");
        }
        req += &format!("Content-Length: {}\r\n\r\n{body}", body.len());
        s.write_all(req.as_bytes()).unwrap();
        let mut raw = String::new();
        s.read_to_string(&mut raw).unwrap();
        let (head, body) = raw.split_once("\r\n\r\n").unwrap();
        let status = head.split(' ').nth(1).unwrap().parse().unwrap();
        Reply {
            status,
            head: head.to_ascii_lowercase(),
            body: body.to_owned(),
        }
    }

    fn get(&self, path: &str) -> Reply {
        self.request("GET", path, &[], "")
    }

    /// The CSRF token the page embeds.
    fn csrf(&self) -> String {
        let page = self.get("/").body;
        let at = page.find("name=\"ferrymq-csrf\" content=\"").unwrap() + 29;
        page[at..at + 64].to_owned()
    }

    /// A POST as the console sends it.
    fn post(&self, path: &str, csrf: &str, body: &str) -> Reply {
        let origin = format!("http://{}", self.host());
        self.request(
            "POST",
            path,
            &[
                ("Content-Type", "application/json"),
                ("X-Ferrymq-Csrf", csrf),
                ("Origin", &origin),
            ],
            body,
        )
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Header lines of a request.
type Headers<'a> = Vec<(&'a str, &'a str)>;

struct Reply {
    status: u16,
    head: String,
    body: String,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }

    /// A refusal: the status, and a JSON message saying why.
    fn refused(&self, status: u16) -> String {
        assert_eq!(self.status, status, "{}", self.body);
        let message = self.json()["error"].as_str().unwrap().to_owned();
        assert!(message.len() > 10, "{message}");
        message
    }
}

/// A group with two dead letters, a half message, a paused-able group.
fn file() -> (Fixture, Vec<i64>, i64) {
    let f = Fixture::new();
    f.fragile("pay", "payments");
    f.q.subscribe("audit", "payments", SubscribeOptions::new())
        .unwrap();
    let dead = vec![
        f.publish("payments", "p1", PublishOptions::new().key("order-1")),
        f.publish("payments", "p2", PublishOptions::new().key("order-2")),
    ];
    assert_eq!(f.fail("pay", 2, "card declined"), 2);
    let half =
        f.q.prepare("payments", "h", PublishOptions::new())
            .unwrap()
            .id;
    (f, dead, half)
}

#[test]
fn writes_are_refused_without_allow_writes() {
    let (f, dead, half) = file();
    let before = f.snapshot();
    let s = Server::start(&f.db(), &[]);
    let csrf = s.csrf();
    assert!(
        s.get("/")
            .body
            .contains("name=\"ferrymq-writes\" content=\"false\"")
    );
    let ids = json!({ "ids": dead }).to_string();
    for path in [
        "/api/dlq/pay/redrive".to_string(),
        "/api/dlq/pay/purge".to_string(),
        format!("/api/half/{half}/commit"),
        format!("/api/half/{half}/rollback"),
        "/api/groups/pay/pause".to_string(),
        "/api/groups/pay/resume".to_string(),
    ] {
        let m = s.post(&path, &csrf, &ids).refused(403);
        assert!(m.contains("--allow-writes"), "{path}: {m}");
    }
    // Reads work.
    let o = s.get("/api/overview");
    assert_eq!(o.status, 200, "{}", o.body);
    assert_eq!(o.json()["writes"], json!(false));
    assert_eq!(s.get("/api/dlq/pay").json().as_array().unwrap().len(), 2);
    assert_eq!(f.snapshot(), before);
    assert!(f.q.half_messages(None, 10).unwrap()[0].state == ferrymq::MessageState::Half);
}

#[test]
fn a_bind_beyond_loopback_needs_a_token_and_then_every_request_carries_it() {
    let f = Fixture::new();
    let refused = Command::new(BIN)
        .args(["serve", "--bind", "0.0.0.0", "--port", "0"])
        .arg(f.db())
        .env_remove("FERRYMQ_TOKEN")
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--token"));
    let short = Command::new(BIN)
        .args(["serve", "--token", "short", "--port", "0"])
        .arg(f.db())
        .output()
        .unwrap();
    assert_eq!(short.status.code(), Some(2));

    let token = "a-long-enough-secret-42";
    let s = Server::start(&f.db(), &["--token", token, "--metrics"]);
    for path in ["/", "/api/overview", "/metrics", "/console.js"] {
        s.get(path).refused(401);
        s.request(
            "GET",
            path,
            &[("Authorization", "Bearer wrong-secret-000000")],
            "",
        )
        .refused(401);
        let bearer = format!("Bearer {token}");
        let ok = s.request("GET", path, &[("Authorization", &bearer)], "");
        assert_eq!(ok.status, 200, "{path}: {}", ok.body);
    }
    // Opened once as /?token=..., the browser keeps it as a cookie.
    let first = s.get(&format!("/?token={token}"));
    assert_eq!(first.status, 200);
    assert!(first.head.contains(&format!(
        "set-cookie: ferrymq_token={token}; httponly; samesite=strict"
    )));
    let cookie = format!("ferrymq_token={token}");
    assert_eq!(
        s.request("GET", "/api/overview", &[("Cookie", &cookie)], "")
            .status,
        200
    );
    // With a token, any Host name is answered (it is how a remote browser names it).
    let bearer = format!("Bearer {token}");
    let r = s.request(
        "GET",
        "/api/overview",
        &[("Authorization", &bearer), ("Host", "queue.example")],
        "",
    );
    assert_eq!(r.status, 200);
}

#[test]
fn actions_need_the_csrf_token_json_and_the_same_origin() {
    let (f, dead, _) = file();
    let before = f.snapshot();
    let s = Server::start(&f.db(), &["--allow-writes"]);
    let csrf = s.csrf();
    let body = json!({ "ids": [dead[0]] }).to_string();
    let path = "/api/dlq/pay/redrive";
    let origin = format!("http://{}", s.host());
    let cases: Vec<(&str, Headers, u16)> = vec![
        (
            "no token",
            vec![("Content-Type", "application/json"), ("Origin", &origin)],
            403,
        ),
        (
            "wrong token",
            vec![
                ("Content-Type", "application/json"),
                ("X-Ferrymq-Csrf", "0123"),
                ("Origin", &origin),
            ],
            403,
        ),
        (
            "other origin",
            vec![
                ("Content-Type", "application/json"),
                ("X-Ferrymq-Csrf", &csrf),
                ("Origin", "http://evil.example"),
            ],
            403,
        ),
        (
            "cross-site fetch",
            vec![
                ("Content-Type", "application/json"),
                ("X-Ferrymq-Csrf", &csrf),
                ("Sec-Fetch-Site", "cross-site"),
            ],
            403,
        ),
        (
            "a form post",
            vec![
                ("Content-Type", "application/x-www-form-urlencoded"),
                ("X-Ferrymq-Csrf", &csrf),
                ("Origin", &origin),
            ],
            415,
        ),
    ];
    for (what, headers, status) in cases {
        let m = s.request("POST", path, &headers, &body).refused(status);
        println!("{what}: {m}");
    }
    // A page on another host name (DNS rebinding) is not answered at all.
    s.request("GET", "/api/overview", &[("Host", "evil.example")], "")
        .refused(403);
    s.request(
        "POST",
        path,
        &[("Host", "evil.example:80"), ("X-Ferrymq-Csrf", &csrf)],
        &body,
    )
    .refused(403);
    assert_eq!(f.snapshot(), before);

    let ok = s.post(path, &csrf, &body);
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert_eq!(ok.json(), json!({"group": "pay", "redriven": 1}));
    assert_eq!(f.q.stats().unwrap().groups["pay"].dead, 1);
    let paused = s.post("/api/groups/audit/pause", &csrf, "{}");
    assert_eq!(paused.json(), json!({"group": "audit", "paused": true}));
    assert!(f.q.stats().unwrap().groups["audit"].paused);
}

#[test]
fn an_actions_reason_goes_into_the_audit_trail() {
    let (f, dead, half) = file();
    let s = Server::start(&f.db(), &["--allow-writes"]);
    let csrf = s.csrf();
    let body = json!({"ids": [dead[0]], "reason": "replay after fix"}).to_string();
    let ok = s.post("/api/dlq/pay/redrive", &csrf, &body);
    assert_eq!(ok.status, 200, "{}", ok.body);
    let ok = s.post(
        "/api/groups/audit/pause",
        &csrf,
        r#"{"reason": "incident 7"}"#,
    );
    assert_eq!(ok.status, 200, "{}", ok.body);
    let ok = s.post(&format!("/api/half/{half}/commit"), &csrf, "");
    assert_eq!(ok.status, 200, "{}", ok.body);
    // A bad reason is the caller's error and changes nothing.
    let before = f.snapshot();
    for bad in [r#"{"reason": ""}"#, r#"{"reason": 7}"#, "[1]"] {
        s.post("/api/groups/audit/resume", &csrf, bad).refused(400);
    }
    assert_eq!(f.snapshot(), before);
    let trail = f.q.audit(None, 10).unwrap();
    let seen: Vec<_> = trail
        .iter()
        .map(|r| (r.action.as_str(), r.target.clone(), r.reason.as_deref()))
        .collect();
    assert_eq!(
        seen,
        [
            ("redrive", "pay".to_string(), Some("replay after fix")),
            ("pause", "audit".to_string(), Some("incident 7")),
            ("commit_half", half.to_string(), None),
        ]
    );
    assert!(trail.iter().all(|r| r.process == "ferrymq"));
}

#[test]
fn bad_input_is_a_4xx_with_a_message_and_changes_nothing() {
    let (f, dead, half) = file();
    let committed = f.publish("payments", "c", PublishOptions::new());
    let before = f.snapshot();
    let s = Server::start(&f.db(), &["--allow-writes"]);
    let csrf = s.csrf();
    let gets = [
        "/api/messages/abc",
        "/api/messages/0",
        "/api/messages/-4",
        "/api/messages/99999999999999999999999",
        "/api/messages/424242",
        "/api/messages/424242/trace",
        "/api/find?topic=payments",
        "/api/find?topic=bad%20name&key=k",
        "/api/dlq/nobody",
        "/api/dlq/bad%20name",
        "/api/dlq/pay?limit=abc",
        "/api/dlq/pay?limit=0",
        "/api/dlq/pay?limit=99999999",
        "/api/half?state=bogus",
        "/api/half?state=committed",
        "/api/half?limit=-1",
        "/metrics",
        "/no/such/page",
    ];
    for path in gets {
        let r = s.get(path);
        assert!(
            (400..500).contains(&r.status),
            "{path}: {} {}",
            r.status,
            r.body
        );
        r.refused(r.status);
    }
    let d = dead[0];
    let posts = [
        ("/api/dlq/pay/redrive", "not json".to_string()),
        ("/api/dlq/pay/redrive", "{}".to_string()),
        ("/api/dlq/pay/redrive", r#"{"ids": []}"#.to_string()),
        ("/api/dlq/pay/redrive", r#"{"ids": [-1]}"#.to_string()),
        ("/api/dlq/pay/redrive", r#"{"ids": ["1"]}"#.to_string()),
        ("/api/dlq/pay/redrive", r#"{"ids": [1.5]}"#.to_string()),
        (
            "/api/dlq/pay/redrive",
            format!(r#"{{"ids": [{}]}}"#, vec!["1"; 10_001].join(",")),
        ),
        ("/api/dlq/nobody/redrive", format!(r#"{{"ids": [{d}]}}"#)),
        ("/api/dlq/bad%20name/purge", format!(r#"{{"ids": [{d}]}}"#)),
        ("/api/dlq/pay/purge", r#"{"ids": null}"#.to_string()),
        ("/api/half/abc/commit", "{}".to_string()),
        ("/api/half/0/rollback", "{}".to_string()),
        ("/api/half/424242/commit", "{}".to_string()),
        (&*format!("/api/half/{committed}/commit"), "{}".to_string()),
        (&*format!("/api/half/{d}/rollback"), "{}".to_string()),
        ("/api/groups/nobody/pause", "{}".to_string()),
        ("/api/groups/bad%20name/resume", "{}".to_string()),
        ("/api/overview", "{}".to_string()),
    ]
    .map(|(p, b)| (p.to_owned(), b));
    for (path, body) in &posts {
        let r = s.post(path, &csrf, body);
        assert!(
            (400..500).contains(&r.status),
            "{path} {body}: {} {}",
            r.status,
            r.body
        );
        r.refused(r.status);
    }
    assert_eq!(f.snapshot(), before);
    assert_eq!(f.q.half_messages(None, 10).unwrap()[0].id, half);
    assert_eq!(
        f.q.half_messages(None, 10).unwrap()[0].state,
        ferrymq::MessageState::Half
    );
}
