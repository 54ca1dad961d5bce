//! HTTP receivers that record every request: a webhook sink answering
//! from a script, a commit status API that checks each request against
//! GitHub's (or Gitea's) documented shape, and a site that serves given
//! pages (a node that lies, for `buildmesh verify`).

use crate::lock;
use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::collections::{BTreeMap, VecDeque};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// One request the sink received.
#[derive(Debug, Clone)]
pub struct Request {
    /// `GET`, `POST`, `PUT`…
    pub method: String,
    /// The path and query, as sent.
    pub path: String,
    /// The header fields, names in lower case.
    pub headers: Vec<(String, String)>,
    /// The body, byte for byte.
    pub body: Vec<u8>,
    /// The status the sink answered.
    pub status: u16,
    /// What a status API sink found wrong with the request (empty when it
    /// was valid; always empty for a plain sink).
    pub problems: Vec<String>,
}

impl Request {
    /// The first header field called `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON; panics if it is not.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "the body of {} {} is not JSON ({e}): {}",
                self.method,
                self.path,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// Whether a status API sink found the request valid.
    pub fn valid(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Which commit status API a sink checks requests against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusApi {
    /// GitHub's REST API, at the root (`/repos/…`); `Authorization:
    /// Bearer` (or `token`), `Accept: application/vnd.github+json` and a
    /// `User-Agent` required.
    GitHub,
    /// Gitea's and Forgejo's, under `/api/v1`; `Authorization: token` (or
    /// `Bearer`).
    Gitea,
}

impl StatusApi {
    fn prefix(self) -> &'static str {
        match self {
            StatusApi::GitHub => "",
            StatusApi::Gitea => "/api/v1",
        }
    }
}

enum Mode {
    /// Answers from the script, then 201 `{}`.
    Record,
    /// Checks each request as the API would, with this token.
    Statuses(StatusApi, String),
    /// Answers a path (the query ignored) with its page: content type and
    /// body; anything else with 404.
    Pages(BTreeMap<String, (String, Vec<u8>)>),
}

struct State {
    mode: Mode,
    script: Mutex<VecDeque<u16>>,
    requests: Mutex<Vec<Request>>,
    changed: Condvar,
}

/// An HTTP server on 127.0.0.1 (axum, on a thread of its own with its own
/// runtime, so it serves while a test blocks or awaits), stopped on drop.
pub struct HttpSink {
    address: SocketAddr,
    state: Arc<State>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

/// Bodies larger than this are refused (413).
const BODY_BYTES_MAX: usize = 1 << 20;

impl HttpSink {
    /// A sink that answers the first requests with the statuses of
    /// `script`, in order (`vec![500]`: one failure), and every later one
    /// with 201 and `{}`.
    pub fn start(script: Vec<u16>) -> HttpSink {
        HttpSink::serve(Mode::Record, script)
    }

    /// A commit status API ([`StatusApi`]) that takes `token`: it answers
    /// a valid `POST …/repos/{owner}/{repo}/statuses/{sha}` with 201 and
    /// the status object, a wrong token with 401, any other path with 404
    /// and an invalid request with 422, recording what was wrong.
    pub fn statuses(api: StatusApi, token: &str) -> HttpSink {
        HttpSink::serve(Mode::Statuses(api, token.to_owned()), Vec::new())
    }

    /// A site that answers `GET PATH` (whatever the query) with 200 and
    /// the page's body, given as (path, content type, body), and every
    /// other request with 404 and a JSON error: a stand-in for a node that
    /// serves what the test makes up.
    pub fn pages(pages: Vec<(String, String, Vec<u8>)>) -> HttpSink {
        let pages = pages
            .into_iter()
            .map(|(path, content_type, body)| (path, (content_type, body)))
            .collect();
        HttpSink::serve(Mode::Pages(pages), Vec::new())
    }

    /// [`HttpSink::statuses`] for GitHub.
    pub fn github_statuses(token: &str) -> HttpSink {
        HttpSink::statuses(StatusApi::GitHub, token)
    }

    fn serve(mode: Mode, script: Vec<u16>) -> HttpSink {
        let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .unwrap_or_else(|e| panic!("cannot bind 127.0.0.1:0: {e}"));
        listener
            .set_nonblocking(true)
            .unwrap_or_else(|e| panic!("cannot make a listener non-blocking: {e}"));
        let address = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("a bound listener has no address: {e}"));
        let state = Arc::new(State {
            mode,
            script: Mutex::new(script.into()),
            requests: Mutex::new(Vec::new()),
            changed: Condvar::new(),
        });
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let app = axum::Router::new()
            .fallback(receive)
            .with_state(state.clone());
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap_or_else(|e| panic!("cannot build a runtime: {e}"));
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener)
                    .unwrap_or_else(|e| panic!("cannot register the listener: {e}"));
                // Stopping drops the runtime, which ends every connection.
                tokio::select! {
                    served = axum::serve(listener, app) => {
                        if let Err(e) = served { eprintln!("the HTTP sink stopped: {e}") }
                    }
                    _ = stopped => {}
                }
            });
        });
        HttpSink {
            address,
            state,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// `http://127.0.0.1:PORT`, without a trailing `/`.
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// For a status sink, the API root a client is configured with
    /// (`http://127.0.0.1:PORT` for GitHub, `…/api/v1` for Gitea); the
    /// same as [`HttpSink::url`] for a plain sink.
    pub fn api_root(&self) -> String {
        match &self.state.mode {
            Mode::Statuses(api, _) => format!("{}{}", self.url(), api.prefix()),
            Mode::Record | Mode::Pages(_) => self.url(),
        }
    }

    /// The port it listens on (on 127.0.0.1).
    pub fn port(&self) -> u16 {
        self.address.port()
    }

    /// Every request received so far, oldest first.
    pub fn requests(&self) -> Vec<Request> {
        lock(&self.state.requests).clone()
    }

    /// The first `n` requests, waiting up to `timeout` for them; panics
    /// with those that did arrive if they do not.
    pub fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Request> {
        let (requests, _) = self
            .state
            .changed
            .wait_timeout_while(lock(&self.state.requests), timeout, |r| r.len() < n)
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        assert!(
            requests.len() >= n,
            "the HTTP sink got {} requests, not {n}, within {timeout:?}: {requests:#?}",
            requests.len()
        );
        requests.clone()
    }
}

impl Drop for HttpSink {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Every request: answered, then recorded (so a test that sees it
/// recorded knows what was answered).
async fn receive(
    axum::extract::State(state): axum::extract::State<Arc<State>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Response {
    let body = match axum::body::to_bytes(body, BODY_BYTES_MAX).await {
        Ok(body) => body,
        Err(e) => return (StatusCode::PAYLOAD_TOO_LARGE, e.to_string()).into_response(),
    };
    let mut request = Request {
        method: method.to_string(),
        path: uri
            .path_and_query()
            .map_or_else(|| uri.path().to_owned(), |p| p.to_string()),
        headers: headers
            .iter()
            .map(|(name, value)| {
                let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
                (name.as_str().to_owned(), value)
            })
            .collect(),
        body: body.to_vec(),
        status: 0,
        problems: Vec::new(),
    };
    if let Mode::Pages(pages) = &state.mode {
        let page = pages.get(uri.path()).filter(|_| method == Method::GET);
        request.status = if page.is_some() { 200 } else { 404 };
        lock(&state.requests).push(request);
        state.changed.notify_all();
        return match page {
            Some((content_type, body)) => (
                [(axum::http::header::CONTENT_TYPE, content_type.clone())],
                body.clone(),
            )
                .into_response(),
            None => (
                StatusCode::NOT_FOUND,
                axum::Json(json!({ "error": "no such page here" })),
            )
                .into_response(),
        };
    }
    let (status, answer) = match &state.mode {
        Mode::Record | Mode::Pages(_) => scripted(&state),
        Mode::Statuses(api, token) => {
            let (status, answer, problems) = check_status(*api, token, &request, &body);
            request.problems = problems;
            (status, answer)
        }
    };
    request.status = status.as_u16();
    lock(&state.requests).push(request);
    state.changed.notify_all();
    (status, axum::Json(answer)).into_response()
}

fn scripted(state: &State) -> (StatusCode, Value) {
    match lock(&state.script).pop_front() {
        Some(code) => (
            StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            json!({ "error": format!("scripted {code}") }),
        ),
        None => (StatusCode::CREATED, json!({})),
    }
}

/// The answer of the API to `request` and what was wrong with it. The
/// checks follow GitHub's "Create a commit status" documentation
/// (docs.github.com/rest/commits/statuses) and Gitea's
/// `POST /repos/{owner}/{repo}/statuses/{sha}`; `context` is required
/// here (GitHub would default it to "default", which buildmesh never
/// wants).
fn check_status(
    api: StatusApi,
    token: &str,
    request: &Request,
    body: &Bytes,
) -> (StatusCode, Value, Vec<String>) {
    let not_found = |why: String| {
        (
            StatusCode::NOT_FOUND,
            json!({ "message": "Not Found" }),
            vec![why],
        )
    };
    if request.method != "POST" {
        return not_found(format!("method {} is not POST", request.method));
    }
    let Some(sha) = status_path(api, &request.path) else {
        return not_found(format!(
            "path {:?} is not {}/repos/{{owner}}/{{repo}}/statuses/{{sha}}",
            request.path,
            api.prefix()
        ));
    };
    let authorization = request.header("authorization").unwrap_or("");
    let given = authorization
        .strip_prefix("Bearer ")
        .or_else(|| authorization.strip_prefix("token "));
    if given != Some(token) {
        return (
            StatusCode::UNAUTHORIZED,
            json!({ "message": "Bad credentials" }),
            vec![format!(
                "authorization {authorization:?} does not carry the token"
            )],
        );
    }
    let mut problems = header_problems(api, request);
    if sha.len() != 40 || !sha.bytes().all(|b| b.is_ascii_hexdigit()) {
        problems.push(format!("sha {sha:?} is not 40 hex digits"));
    }
    let status = match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(fields)) => Value::Object(fields),
        Ok(other) => {
            problems.push(format!("the body is not a JSON object: {other}"));
            Value::Null
        }
        Err(e) => {
            problems.push(format!("the body is not JSON: {e}"));
            Value::Null
        }
    };
    if status.is_object() {
        problems.extend(body_problems(&status));
    }
    if !problems.is_empty() {
        let errors: Vec<Value> = problems.iter().map(|p| json!({ "message": p })).collect();
        return (
            StatusCode::UNPROCESSABLE_ENTITY,
            json!({
                "message": "Validation Failed",
                "errors": errors,
                "documentation_url": "https://docs.github.com/rest/commits/statuses#create-a-commit-status",
            }),
            problems,
        );
    }
    (StatusCode::CREATED, created(sha, &status), problems)
}

/// The sha of `{prefix}/repos/{owner}/{repo}/statuses/{sha}`.
fn status_path(api: StatusApi, path: &str) -> Option<&str> {
    let rest = path.strip_prefix(api.prefix())?.strip_prefix("/repos/")?;
    let parts: Vec<&str> = rest.split('/').collect();
    match parts.as_slice() {
        [owner, repo, "statuses", sha] if !owner.is_empty() && !repo.is_empty() => Some(sha),
        _ => None,
    }
}

fn header_problems(api: StatusApi, request: &Request) -> Vec<String> {
    let mut problems = Vec::new();
    let content_type = request.header("content-type").unwrap_or("");
    if !content_type.starts_with("application/json") {
        problems.push(format!(
            "content-type {content_type:?} is not application/json"
        ));
    }
    if api == StatusApi::GitHub {
        let accept = request.header("accept").unwrap_or("");
        if !accept.contains("application/vnd.github+json") {
            problems.push(format!(
                "accept {accept:?} is not application/vnd.github+json"
            ));
        }
        if request.header("user-agent").is_none_or(str::is_empty) {
            problems.push("no user-agent (GitHub refuses requests without one)".into());
        }
    }
    problems
}

fn body_problems(status: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    match status.get("state").and_then(Value::as_str) {
        Some("pending" | "success" | "failure" | "error") => {}
        other => problems.push(format!(
            "state {other:?} is not pending, success, failure or error"
        )),
    }
    if !status.get("context").is_some_and(Value::is_string) {
        problems.push("context is not a string".into());
    }
    match status.get("target_url") {
        None | Some(Value::Null) => {}
        Some(Value::String(url)) if is_http_url(url) => {}
        Some(other) => problems.push(format!("target_url {other} is not an http(s) URL")),
    }
    match status.get("description") {
        None | Some(Value::Null) => {}
        Some(Value::String(text)) if text.chars().count() <= 140 => {}
        Some(Value::String(_)) => {
            problems.push("description is too long (maximum is 140 characters)".into())
        }
        Some(other) => problems.push(format!("description {other} is not a string")),
    }
    problems
}

fn is_http_url(url: &str) -> bool {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    rest.is_some_and(|rest| {
        let host = rest.split(['/', '?', '#']).next().unwrap_or("");
        !host.is_empty() && !url.contains(char::is_whitespace)
    })
}

/// The status object the API answers a valid request with.
fn created(sha: &str, status: &Value) -> Value {
    json!({
        "url": format!("https://api.github.invalid/repos/statuses/{sha}"),
        "id": 1,
        "state": status["state"],
        "description": status.get("description").cloned().unwrap_or(Value::Null),
        "target_url": status.get("target_url").cloned().unwrap_or(Value::Null),
        "context": status["context"],
        "created_at": "2025-11-24T16:00:00Z",
        "updated_at": "2025-11-24T16:00:00Z",
        "creator": { "login": "buildmesh-test" },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_status_body_is_checked_field_by_field() {
        let good = json!({ "state": "success", "context": "buildmesh/linux",
            "target_url": "https://ci.example.org/r/1", "description": "Passed" });
        assert!(body_problems(&good).is_empty());
        let bad = json!({ "state": "passed", "target_url": "ftp://x",
            "description": "x".repeat(141) });
        assert_eq!(body_problems(&bad).len(), 4, "{:?}", body_problems(&bad));
        assert_eq!(
            status_path(StatusApi::Gitea, "/api/v1/repos/o/r/statuses/abc"),
            Some("abc")
        );
        assert_eq!(
            status_path(StatusApi::GitHub, "/repos/o/statuses/abc"),
            None
        );
    }
}
