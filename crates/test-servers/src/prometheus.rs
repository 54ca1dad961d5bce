//! Prometheus itself (Debian's prometheus package) scraping a node, and
//! its `promtool check metrics`: what reads `/metrics` in production,
//! asked whether it reads ours as we mean it.

use crate::{POLL_INTERVAL, ServerProcess, skip, temp_dir};
use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const PROMETHEUS: &str = "/usr/bin/prometheus";
const PROMTOOL: &str = "/usr/bin/promtool";

/// The environment variable that turns a missing prometheus or promtool
/// into a failure (set by `scripts/test`).
pub const REQUIRE_PROMETHEUS_ENV: &str = "BUILDMESH_REQUIRE_PROMETHEUS";

/// How long the first scrape may take: Prometheus 2.42 hands new targets
/// to its scrapers at most every 5 s, so it comes 5 to 6 s after start.
const SCRAPE_TIMEOUT: Duration = Duration::from_secs(30);

/// A Prometheus on 127.0.0.1 that scrapes one target every second, with
/// its configuration and storage in a temporary directory; stopped on
/// drop.
pub struct Prometheus {
    server: ServerProcess,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    /// Whether prometheus and promtool are here; if not, [`skip`] under
    /// [`REQUIRE_PROMETHEUS_ENV`].
    pub fn available() -> bool {
        [PROMETHEUS, PROMTOOL].iter().all(|program| {
            std::path::Path::new(program).exists()
                || skip(program, "prometheus", REQUIRE_PROMETHEUS_ENV)
        })
    }

    /// Starts Prometheus scraping `http://{target}/metrics` (`target` is
    /// host:port) and waits until it listens.
    pub fn scraping(target: &str) -> Prometheus {
        let dir = temp_dir("prometheus");
        let path = dir.path().to_owned();
        let config = path.join("prometheus.yml");
        let text = format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: node\n    \
             static_configs:\n      - targets: ['{target}']\n"
        );
        std::fs::write(&config, text).unwrap_or_else(|e| panic!("cannot write {config:?}: {e}"));
        let server = ServerProcess::start("prometheus", &path, |port| {
            let mut command = Command::new(PROMETHEUS);
            command
                .arg(format!("--config.file={}", config.display()))
                .arg(format!(
                    "--storage.tsdb.path={}",
                    path.join("data").display()
                ))
                .arg(format!("--web.listen-address=127.0.0.1:{port}"));
            command
        });
        Prometheus { server, _dir: dir }
    }

    /// The target once it has been scraped (`/api/v1/targets`' entry:
    /// `health`, `lastError`…); panics if that takes longer than
    /// [`SCRAPE_TIMEOUT`].
    pub fn scraped(&self) -> serde_json::Value {
        let deadline = Instant::now() + SCRAPE_TIMEOUT;
        loop {
            // Until it is ready, Prometheus answers 503.
            let targets = self.get("/api/v1/targets");
            if let Ok(targets) = &targets {
                let target = &targets["activeTargets"][0];
                if matches!(target["health"].as_str(), Some("up" | "down")) {
                    return target.clone();
                }
            }
            assert!(
                Instant::now() < deadline,
                "prometheus did not scrape within {SCRAPE_TIMEOUT:?}: {targets:?}; it said:\n{}",
                self.server.stderr()
            );
            std::thread::sleep(POLL_INTERVAL * 10);
        }
    }

    /// The `data` of Prometheus's answer to `GET path` (an HTTP API path
    /// with its query); panics on an error answer.
    pub fn api(&self, path: &str) -> serde_json::Value {
        self.get(path).unwrap_or_else(|error| panic!("{error}"))
    }

    fn get(&self, path: &str) -> Result<serde_json::Value, String> {
        let address = (Ipv4Addr::LOCALHOST, self.server.port);
        let mut stream = TcpStream::connect(address)
            .map_err(|e| format!("cannot connect to prometheus: {e}"))?;
        // HTTP/1.0: the answer is the rest of the stream, never chunked.
        write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
            .and_then(|()| stream.set_read_timeout(Some(Duration::from_secs(10))))
            .map_err(|e| format!("cannot ask prometheus for {path}: {e}"))?;
        let mut response = String::new();
        stream
            .read_to_string(&mut response)
            .map_err(|e| format!("cannot read prometheus's answer to {path}: {e}"))?;
        let body = response.split_once("\r\n\r\n").map_or("", |(_, body)| body);
        let answer: serde_json::Value = serde_json::from_str(body)
            .map_err(|e| format!("prometheus answered {path} with {response:?}: {e}"))?;
        if answer["status"] != "success" {
            return Err(format!("prometheus answered {path} with {answer}"));
        }
        Ok(answer["data"].clone())
    }
}

/// What `promtool check metrics` says of `body` (a Prometheus text format
/// exposition, which it reads from stdin): `Ok` if it exits 0, else its
/// exit code and output. It parses the body, then lints it (exit 3 for a
/// counter not named `…_total`, a family with no help…).
pub fn check_metrics(body: &[u8]) -> Result<(), String> {
    let mut child = Command::new(PROMTOOL)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {PROMTOOL}: {e}"));
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(body)
            .unwrap_or_else(|e| panic!("cannot write to promtool: {e}"));
    }
    let output = child
        .wait_with_output()
        .unwrap_or_else(|e| panic!("promtool did not finish: {e}"));
    if output.status.success() {
        return Ok(());
    }
    Err(format!(
        "promtool check metrics: {}\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    ))
}
