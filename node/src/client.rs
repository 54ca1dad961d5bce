//! A small HTTP/1.1 client for talking to a node's API from the command
//! line: one request per connection, JSON in and out, and (for
//! `buildmesh verify`) answers read as they come within stated bounds.

mod body;

use crate::data_dir::DataDir;
use anyhow::{Context, Result, bail};
use std::io::{BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

/// How long a node may take to answer.
pub const ANSWER_WAIT: Duration = Duration::from_secs(60);

/// Largest answer read: a node's JSON answers are far smaller.
pub const ANSWER_BYTES_MAX: u64 = 64 * 1024 * 1024;

/// Longest wait for a connection to a node.
pub const CONNECT_WAIT: Duration = Duration::from_secs(10);

/// Bounds on one answer read as it comes ([`NodeApi::get_body`]).
#[derive(Debug, Clone)]
pub struct Bounds {
    /// Largest body; reading past it fails.
    pub bytes_max: u64,
    /// Time for the whole answer, head and body.
    pub within: Duration,
    /// The error past `bytes_max`: what the answer was and how to allow more.
    pub too_large: String,
}

impl Bounds {
    /// The bounds of a JSON answer: [`ANSWER_BYTES_MAX`], [`ANSWER_WAIT`].
    pub fn json() -> Bounds {
        Bounds {
            bytes_max: ANSWER_BYTES_MAX,
            within: ANSWER_WAIT,
            too_large: format!(
                "the answer is larger than {} MiB, more than any JSON answer of a node",
                ANSWER_BYTES_MAX >> 20
            ),
        }
    }
}

/// The node a command talks to when told nothing else.
pub const DEFAULT_NODE: &str = "http://127.0.0.1:7878";

/// A node's HTTP API, such as `http://127.0.0.1:7878`.
#[derive(Debug, Clone)]
pub struct NodeApi {
    authority: String,
    /// What to check when the node cannot be reached.
    hint: String,
}

impl NodeApi {
    /// Parses `http://HOST:PORT` (a trailing `/` is fine; no https: a node
    /// serves plain HTTP on loopback, behind a proxy for anything else).
    pub fn parse(url: &str) -> Result<NodeApi> {
        let Some(rest) = url.strip_prefix("http://") else {
            bail!("{url}: the node's URL starts with http://, e.g. http://127.0.0.1:7878");
        };
        let authority = rest.trim_end_matches('/');
        if authority.is_empty() || authority.contains('/') {
            bail!("{url}: give the node's base URL, e.g. http://127.0.0.1:7878");
        }
        Ok(NodeApi {
            authority: authority.to_owned(),
            hint: "is `buildmesh node` or `buildmesh up` running? pick another with --node".into(),
        })
    }

    /// The node `given` names, else the one whose data dir is `data_dir`
    /// (its `http.url`, written at each start: what finds an `up`
    /// checkout's node on whatever port), else [`DEFAULT_NODE`].
    pub fn locate(given: Option<&str>, data_dir: &DataDir) -> Result<NodeApi> {
        if let Some(url) = given {
            return NodeApi::parse(url);
        }
        let file = data_dir.http_url();
        match std::fs::read_to_string(&file) {
            Ok(url) => {
                let mut api =
                    NodeApi::parse(url.trim()).with_context(|| format!("in {}", file.display()))?;
                api.hint = format!(
                    "its address is from {}: is that node running? start it, or pick another with --node",
                    file.display()
                );
                api.check_is_of(data_dir)?;
                Ok(api)
            }
            Err(_) => NodeApi::parse(DEFAULT_NODE),
        }
    }

    /// Fails unless the node answering is the one whose data dir is
    /// `data_dir`: after that node stopped, another (a second `up` on the
    /// default port) may answer at its address, and entries signed for
    /// one project must not go to a stranger's node by accident.
    fn check_is_of(&self, data_dir: &DataDir) -> Result<()> {
        let Ok(key) = crate::keyfile::read(&data_dir.key_file()) else {
            return Ok(());
        };
        let expected = buildmesh_protocol::PublicKey::from(key.verifying_key()).to_string();
        let (code, node) = self.get("/api/v1/node")?;
        let answered = node["public_key"].as_str().unwrap_or_default();
        if code == 200 && answered == expected {
            return Ok(());
        }
        bail!(
            "the node of {} is not running: another node answers at http://{} (key {}); start \
             it (buildmesh up in its checkout, or buildmesh node), or pick a node with --node",
            data_dir.root().display(),
            self.authority,
            answered.chars().take(12).collect::<String>()
        )
    }

    /// `http://HOST:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.authority)
    }

    /// `GET path`: the status code and the JSON body.
    pub fn get(&self, path: &str) -> Result<(u16, serde_json::Value)> {
        self.request("GET", path, None)
    }

    /// `POST path` with a JSON body.
    pub fn post(&self, path: &str, body: &serde_json::Value) -> Result<(u16, serde_json::Value)> {
        self.request("POST", path, Some(body))
    }

    /// `GET path`, its body read as it comes, within `bounds`: reading
    /// fails (never stops short) past the size or the time.
    pub fn get_body(&self, path: &str, bounds: &Bounds) -> Result<(u16, Box<dyn Read + Send>)> {
        let url = format!("http://{}{path}", self.authority);
        let mut stream = self.connect()?;
        let head = format!(
            "GET {path} HTTP/1.1\r\nHost: {}\r\nAccept: application/json\r\nConnection: close\r\n\r\n",
            self.authority
        );
        stream
            .write_all(head.as_bytes())
            .with_context(|| format!("cannot send to {url}"))?;
        let deadline = Instant::now() + bounds.within;
        let what = format!("the answer of {url}");
        let reader = body::Deadline::new(stream, deadline, ANSWER_WAIT, what);
        let mut input = BufReader::with_capacity(64 * 1024, reader);
        let head = body::read_head(&mut input).with_context(|| format!("no answer from {url}"))?;
        let body = body::body(input, &head, bounds.bytes_max, bounds.too_large.clone());
        Ok((head.status, body))
    }

    /// `GET path` within [`Bounds::json`]: the status and the body as JSON,
    /// or (inner `Err`) why the body is not JSON. The outer `Err` is a
    /// failure to talk to the node at all.
    pub fn get_json(&self, path: &str) -> Result<(u16, Result<serde_json::Value, String>)> {
        let (status, mut body) = self.get_body(path, &Bounds::json())?;
        let mut bytes = Vec::new();
        body.read_to_end(&mut bytes)
            .with_context(|| format!("reading http://{}{path}", self.authority))?;
        let json = serde_json::from_slice(&bytes).map_err(|e| format!("not JSON: {e}"));
        Ok((status, json))
    }

    /// A connection to the node, given up after [`CONNECT_WAIT`].
    fn connect(&self) -> Result<TcpStream> {
        let unreachable = || {
            format!(
                "cannot reach a node at http://{} ({})",
                self.authority, self.hint
            )
        };
        let addresses = self.authority.to_socket_addrs().with_context(unreachable)?;
        let mut last = None;
        for address in addresses {
            match TcpStream::connect_timeout(&address, CONNECT_WAIT) {
                Ok(stream) => return Ok(stream),
                Err(error) => last = Some(error),
            }
        }
        match last {
            Some(error) => Err(error).with_context(unreachable),
            None => bail!("{}: the name resolves to no address", unreachable()),
        }
    }

    fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<(u16, serde_json::Value)> {
        let url = format!("http://{}{path}", self.authority);
        let body = body.map(serde_json::Value::to_string).unwrap_or_default();
        let mut stream = TcpStream::connect(&self.authority).with_context(|| {
            format!(
                "cannot reach a node at http://{} ({})",
                self.authority, self.hint
            )
        })?;
        stream.set_read_timeout(Some(ANSWER_WAIT))?;
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            self.authority,
            body.len()
        );
        stream
            .write_all(head.as_bytes())
            .and_then(|()| stream.write_all(body.as_bytes()))
            .with_context(|| format!("cannot send to {url}"))?;
        let mut answer = Vec::new();
        stream
            .take(ANSWER_BYTES_MAX)
            .read_to_end(&mut answer)
            .with_context(|| format!("no answer from {url}"))?;
        parse_answer(&answer).with_context(|| format!("bad answer from {url}"))
    }
}

/// Splits a `Connection: close` answer into its status and JSON body. The
/// body stays bytes until it is whole: chunk sizes count bytes, and a chunk
/// may end inside a character.
fn parse_answer(answer: &[u8]) -> Result<(u16, serde_json::Value)> {
    let end = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .context("no header end")?;
    let head = String::from_utf8_lossy(&answer[..end]);
    let body = &answer[end + 4..];
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .context("no status code")?;
    let chunked = head.lines().any(|l| {
        l.to_ascii_lowercase()
            .starts_with("transfer-encoding: chunked")
    });
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_vec()
    };
    let json = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
    Ok((status, json))
}

/// The bytes of a chunked body, up to its last chunk or the first chunk
/// that is malformed or cut short.
fn dechunk(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut rest = body;
    while let Some(line_end) = rest.windows(2).position(|w| w == b"\r\n") {
        let size = std::str::from_utf8(&rest[..line_end])
            .ok()
            .and_then(|size| usize::from_str_radix(size.trim(), 16).ok());
        let tail = &rest[line_end + 2..];
        let Some(size) = size.filter(|&size| size > 0 && size <= tail.len()) else {
            break;
        };
        out.extend_from_slice(&tail[..size]);
        rest = tail[size..].strip_prefix(b"\r\n").unwrap_or(&tail[size..]);
    }
    out
}

/// What the node said when it answered with an error.
pub fn error_text(code: u16, body: &serde_json::Value) -> String {
    match body["error"].as_str() {
        Some(message) => format!("the node answered {code}: {message}"),
        None => format!("the node answered {code}"),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_answers_parse() {
        assert!(NodeApi::parse("http://127.0.0.1:7878/").is_ok());
        assert!(NodeApi::parse("127.0.0.1:7878").is_err());
        assert!(NodeApi::parse("http://127.0.0.1:7878/api").is_err());
        let (code, json) =
            parse_answer(b"HTTP/1.1 200 OK\r\ncontent-length: 8\r\n\r\n{\"a\":1}\n").unwrap();
        assert_eq!((code, json["a"].as_u64()), (200, Some(1)));
        let (code, json) = parse_answer(
            b"HTTP/1.1 400 Bad\r\ntransfer-encoding: chunked\r\n\r\n4\r\n{\"e\"\r\n4\r\n:\"x\"\r\n1\r\n}\r\n0\r\n\r\n",
        )
        .unwrap();
        assert_eq!((code, json["e"].as_str()), (400, Some("x")));
    }

    /// Issue 14, item 8.3: a chunk that ends inside a character (here
    /// `é`, two bytes, one in each chunk) once panicked the slicing.
    #[test]
    fn a_character_split_across_chunks_is_whole() {
        let (code, json) = parse_answer(
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n7\r\n{\"e\":\"\xc3\r\n3\r\n\xa9\"}\r\n0\r\n\r\n",
        )
        .unwrap();
        assert_eq!((code, json["e"].as_str()), (200, Some("é")));
    }
}
