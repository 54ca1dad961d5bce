//! Real servers on loopback for buildmesh's tests (issue 15).
//!
//! Notifications are only tested when something real receives them: an
//! SMTP server ([`SmtpSink`], Debian's python3-aiosmtpd), an IRC server
//! ([`IrcServer`], Debian's ngircd) with a client in the channel
//! ([`IrcListener`]), and HTTP receivers that record what they get
//! ([`HttpSink`], also in a mode that checks GitHub's and Gitea's commit
//! status API). Each listens on 127.0.0.1 on a free port, is started by the
//! test itself and is stopped when dropped. `scripts/setup` installs the
//! Debian packages; a test calls [`require`] (or a server's `available()`)
//! first. Without them it fails if `BUILDMESH_REQUIRE_SERVERS` is set (as
//! `scripts/test` sets it), and is otherwise [`skip`]ped, saying so.
//!
//! And for `/metrics`, Prometheus itself ([`Prometheus`], Debian's
//! prometheus) scraping a node, and its linter ([`check_metrics`]),
//! required when `BUILDMESH_REQUIRE_PROMETHEUS` is set.
//!
//! [`skip`] is also how any other test that needs a program (Chromium,
//! curl) says it cannot run here; [`skip_unusable`] says a program is
//! installed but cannot run here, and [`skip_sandbox`] tells the two apart
//! for bubblewrap, whose sandbox a container often forbids;
//! [`skip_not_installed`] names the command that installs a program that
//! is no Debian package.
//!
//! A failure here is a failed test, so this crate panics, with what it
//! was waiting for and what the server printed.

mod http;
mod irc;
mod prometheus;
mod smtp;

pub use http::{HttpSink, Request, StatusApi};
pub use irc::{IrcListener, IrcMessage, IrcServer};
pub use prometheus::{Prometheus, REQUIRE_PROMETHEUS_ENV, check_metrics};
pub use smtp::{Mail, SmtpSink};

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// The environment variable that turns a missing server into a failure
/// (set by `scripts/test`, so its run, and CI's, never passes by skipping).
pub const REQUIRE_ENV: &str = "BUILDMESH_REQUIRE_SERVERS";

/// The environment variable that turns a bubblewrap sandbox that cannot
/// run into a failure (set by `scripts/test`).
pub const REQUIRE_SANDBOX_ENV: &str = "BUILDMESH_REQUIRE_SANDBOX";

/// The environment variable that turns a missing tool of buildmesh's own
/// recipe (rust-code-analysis-cli, which `scripts/complexity` runs) into
/// a failure. `scripts/test` does not set it: those tools come from the
/// Rust registry, not Debian, and `scripts/setup` does not install them.
pub const REQUIRE_RECIPE_TOOLS_ENV: &str = "BUILDMESH_REQUIRE_RECIPE_TOOLS";

/// The file to which [`skip`] adds a line per skipped test: `scripts/test`
/// names one and prints it after the run, since nextest shows nothing a
/// passing test printed.
pub const SKIPPED_LOG_ENV: &str = "BUILDMESH_SKIPPED_LOG";

/// How long a server may take to listen.
pub const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// The Python that has Debian's modules (a `python3` earlier on `PATH`,
/// pyenv's say, may not have them).
pub const PYTHON: &str = "/usr/bin/python3";

/// How often the waits look again.
const POLL_INTERVAL: Duration = Duration::from_millis(10);

/// Tries to start a server on a free port this many times (another process
/// may take the port between our probe and the server's bind).
const START_ATTEMPTS: usize = 5;

/// Whether `path` (the program `name`, from the Debian `package`) is
/// here; if not, [`skip`] under [`REQUIRE_ENV`].
pub fn require(name: &str, path: &str, package: &str) -> bool {
    Path::new(path).exists() || skip(&format!("{name} ({path})"), package, REQUIRE_ENV)
}

/// Whether Debian's Python ([`PYTHON`]) can import `module` (from the
/// Debian `package`); if not, [`skip`] under [`REQUIRE_ENV`].
pub fn require_python_module(module: &str, package: &str) -> bool {
    let imported = Command::new(PYTHON)
        .args(["-c", &format!("import {module}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    imported
        || skip(
            &format!("the Python module {module} (for {PYTHON})"),
            package,
            REQUIRE_ENV,
        )
}

/// For a test that cannot run here because `what` (from the Debian
/// `package`) is missing: with `require_env` set it panics, naming the
/// package, so the run fails; otherwise it prints a SKIPPED line, adds it
/// to [`SKIPPED_LOG_ENV`]'s file, and returns false, and the test returns
/// (it passes without having run: hence the noise).
pub fn skip(what: &str, package: &str, require_env: &str) -> bool {
    not_here(
        &format!("{what}, which is missing: install Debian's {package} (scripts/setup does)"),
        &format!("{what} is missing (Debian's {package}; scripts/setup installs it)"),
        require_env,
    )
}

/// The environment variable that names the venv `scripts/setup` makes
/// for the PyPI packages of `scripts/python-requirements.txt` (by default
/// `~/.cache/buildmesh/venv`).
pub const VENV_ENV: &str = "BUILDMESH_VENV";

/// The venv's Python, where `scripts/setup` puts it.
pub fn venv_python() -> PathBuf {
    let venv = std::env::var_os(VENV_ENV)
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("/"), PathBuf::from);
            home.join(".cache/buildmesh/venv")
        });
    venv.join("bin/python3")
}

/// The venv's Python ([`venv_python`]) if it can import `module` (a
/// package of `scripts/python-requirements.txt`); if not, [`skip`] under
/// [`REQUIRE_ENV`] (a failure when `scripts/test` runs it), naming
/// `scripts/setup`, which makes the venv.
pub fn require_venv_module(module: &str) -> Option<PathBuf> {
    let python = venv_python();
    let imported = Command::new(&python)
        .args(["-c", &format!("import {module}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    if imported {
        return Some(python);
    }
    let what = format!(
        "the Python module {module} (in the venv of {})",
        python.display()
    );
    skip_not_installed(&what, "scripts/setup", REQUIRE_ENV);
    None
}

/// As [`skip`], for `what` that is installed but cannot run here, for a
/// reason (`why`) that installing it again does not change: the message
/// says so, rather than naming a package the machine already has.
pub fn skip_unusable(what: &str, why: &str, require_env: &str) -> bool {
    not_here(
        &format!("{what}, which is installed but cannot run here: {why}"),
        &format!("{what} is installed but cannot run here: {why}"),
        require_env,
    )
}

/// As [`skip`], for `what`, a program that is no Debian package: the
/// messages name `install`, the command that installs it (`cargo install
/// --locked ...`).
pub fn skip_not_installed(what: &str, install: &str, require_env: &str) -> bool {
    not_here(
        &format!("{what}, which is missing: install it with `{install}`"),
        &format!("{what} is missing (`{install}` installs it)"),
        require_env,
    )
}

/// For a test that needs a bubblewrap sandbox that the runner's probe
/// could not start (`error`, its reason). `missing`: the Debian package of
/// a program that is not installed (`bubblewrap`, `util-linux`); `None`:
/// all are, and the system refuses to let `bwrap` make a sandbox (most
/// often unprivileged user namespaces are off: a container, Ubuntu's
/// AppArmor), which no package changes. [`skip`] or [`skip_unusable`]
/// under [`REQUIRE_SANDBOX_ENV`].
pub fn skip_sandbox(missing: Option<&str>, error: &dyn std::fmt::Display) -> bool {
    match missing {
        Some(package) => skip(
            &format!("a program the sandbox runs ({error})"),
            package,
            REQUIRE_SANDBOX_ENV,
        ),
        None => skip_unusable(
            "bubblewrap (bwrap)",
            &format!(
                "it cannot start a sandbox (user namespaces off? installing bubblewrap again \
                 does not help; see docs/operating.md, \"User namespaces\"): {error}"
            ),
            REQUIRE_SANDBOX_ENV,
        ),
    }
}

/// A test cannot run here: with `require_env` set, panic with `needs`;
/// otherwise print `skipped`, add it to [`SKIPPED_LOG_ENV`]'s file, and
/// return false.
fn not_here(needs: &str, skipped: &str, require_env: &str) -> bool {
    let test = running_test();
    assert!(
        std::env::var_os(require_env).is_none(),
        "{test} needs {needs}; or skip this test with BUILDMESH_SKIP_MISSING=1 scripts/test \
         ({require_env} is set)"
    );
    let line = format!("SKIPPED {test}: {skipped}");
    eprintln!("{line}");
    if let Some(path) = std::env::var_os(SKIPPED_LOG_ENV) {
        // Appends: the lines of tests in other processes do not mix.
        let file = OpenOptions::new().create(true).append(true).open(&path);
        if let Err(error) = file.and_then(|mut file| writeln!(file, "{line}")) {
            eprintln!("cannot add to {path:?}: {error}");
        }
    }
    false
}

/// `binary::test`, as near as we can tell: the test binary's name without
/// cargo's hash, and the thread's name, which libtest sets to the test's.
fn running_test() -> String {
    let binary = std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.file_stem()?.to_string_lossy().into_owned()))
        .map(|stem| match stem.rsplit_once('-') {
            Some((name, hash)) if hash.chars().all(|c| c.is_ascii_hexdigit()) => name.to_owned(),
            _ => stem,
        })
        .unwrap_or_default();
    let thread = std::thread::current();
    format!("{binary}::{}", thread.name().unwrap_or("?"))
}

/// A port on 127.0.0.1 nobody listened on a moment ago.
fn free_port() -> u16 {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap_or_else(|e| panic!("cannot bind 127.0.0.1:0: {e}"));
    listener
        .local_addr()
        .unwrap_or_else(|e| panic!("a bound listener has no address: {e}"))
        .port()
}

/// A server started by a test: killed and reaped on drop.
struct ServerProcess {
    name: &'static str,
    child: Child,
    port: u16,
    stderr: PathBuf,
}

impl ServerProcess {
    /// Runs `command(port)` on free ports until one listens within
    /// [`READY_TIMEOUT`]; its stdout and stderr go to files in `dir`.
    fn start(name: &'static str, dir: &Path, command: impl Fn(u16) -> Command) -> ServerProcess {
        let stderr = dir.join(format!("{name}.stderr"));
        for _ in 0..START_ATTEMPTS {
            let port = free_port();
            let mut command = command(port);
            let out = |path: &Path| {
                File::create(path).unwrap_or_else(|e| panic!("cannot create {path:?}: {e}"))
            };
            command
                .stdin(Stdio::null())
                .stdout(out(&dir.join(format!("{name}.stdout"))))
                .stderr(out(&stderr));
            let child = command
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
            let mut server = ServerProcess {
                name,
                child,
                port,
                stderr: stderr.clone(),
            };
            if server.ready() {
                return server;
            }
            // It exited: most likely it lost the port; try another.
        }
        panic!(
            "{name} did not start in {START_ATTEMPTS} attempts; it said:\n{}",
            read_lossy(&stderr)
        );
    }

    /// Waits until the port takes a connection (true) or the process
    /// exits (false); panics, with the server's stderr, on a timeout.
    fn ready(&mut self) -> bool {
        let address = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Ok(Some(_)) = self.child.try_wait() {
                return false;
            }
            if TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_ok() {
                return true;
            }
            if Instant::now() > deadline {
                panic!(
                    "{} did not listen on {address} within {READY_TIMEOUT:?}; it said:\n{}",
                    self.name,
                    read_lossy(&self.stderr)
                );
            }
            std::thread::sleep(POLL_INTERVAL);
        }
    }

    /// What the server printed on stderr so far.
    fn stderr(&self) -> String {
        read_lossy(&self.stderr)
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn read_lossy(path: &Path) -> String {
    match std::fs::read(path) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(e) => format!("({path:?} cannot be read: {e})"),
    }
}

/// A lock that a panicking test thread left behind is still good: the
/// recorded data is only ever appended to.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A temporary directory for a server's files.
fn temp_dir(name: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("buildmesh-{name}-"))
        .tempdir()
        .unwrap_or_else(|e| panic!("cannot create a temporary directory: {e}"))
}
