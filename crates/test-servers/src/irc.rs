//! An IRC server (Debian's ngircd) and a client that sits in a channel
//! and records what is said there.

use crate::{ServerProcess, lock, require, temp_dir};
use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, Shutdown, TcpStream};
use std::process::Command;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

const NGIRCD: &str = "/usr/sbin/ngircd";

/// How long the listener waits for the server during registration.
const REGISTRATION_TIMEOUT: Duration = Duration::from_secs(10);

/// An ngircd on 127.0.0.1, configured from scratch in a temporary
/// directory (not /etc/ngircd), stopped on drop.
pub struct IrcServer {
    server: ServerProcess,
    _dir: tempfile::TempDir,
}

/// The configuration, `{port}` and `{dir}` filled in. Nicks keep
/// ngircd's default of 9 bytes, as on many networks; no penalty time (by
/// default ngircd makes a client wait a second or two after a burst of
/// commands, such as a bot's NICK, USER and JOIN, which would make every
/// test seconds slower); connections per IP are not limited (every test
/// client comes from 127.0.0.1), and the include directory is an empty
/// one of ours so the system's /etc/ngircd/ngircd.conf.d is not read.
const CONFIG: &str = "\
[Global]
Name = irc.test.local
Info = buildmesh test server
AdminInfo1 = buildmesh tests
AdminInfo2 = loopback
AdminEMail = nobody@irc.test.local
Listen = 127.0.0.1
Ports = {port}
MotdPhrase = buildmesh test server
PidFile = {dir}/ngircd.pid

[Limits]
MaxConnectionsIP = 0
MaxPenaltyTime = 0
PingTimeout = 120
PongTimeout = 20

[Options]
PAM = no
Ident = no
DNS = no
IncludeDir = {dir}/conf.d
";

impl IrcServer {
    /// Whether ngircd is here (see [`require`]).
    pub fn available() -> bool {
        require("ngircd", NGIRCD, "ngircd")
    }

    /// Starts ngircd on a free port and waits until it listens.
    pub fn start() -> IrcServer {
        let dir = temp_dir("irc");
        let path = dir.path().to_owned();
        let include = path.join("conf.d");
        std::fs::create_dir(&include).unwrap_or_else(|e| panic!("cannot create {include:?}: {e}"));
        let server = ServerProcess::start("ngircd", &path, |port| {
            let config = path.join("ngircd.conf");
            let text = CONFIG
                .replace("{port}", &port.to_string())
                .replace("{dir}", &path.display().to_string());
            std::fs::write(&config, text)
                .unwrap_or_else(|e| panic!("cannot write {config:?}: {e}"));
            let mut command = Command::new(NGIRCD);
            command.arg("-n").arg("-f").arg(&config);
            command
        });
        IrcServer { server, _dir: dir }
    }

    /// The port it listens on (on 127.0.0.1), without TLS.
    pub fn port(&self) -> u16 {
        self.server.port
    }

    /// What the server logged so far (it logs to stderr in the
    /// foreground).
    pub fn log(&self) -> String {
        self.server.stderr()
    }
}

/// A PRIVMSG the listener saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IrcMessage {
    /// The sender's nick.
    pub from: String,
    /// The channel (or our nick).
    pub target: String,
    /// The text.
    pub text: String,
}

#[derive(Default)]
struct Seen {
    lines: Vec<String>,
    messages: Vec<IrcMessage>,
    joins: Vec<String>,
    closed: bool,
}

type Shared = Arc<(Mutex<Seen>, Condvar)>;

/// A client registered with a nick and in a channel, recording the
/// PRIVMSGs it sees and who else joins; disconnects on drop.
pub struct IrcListener {
    stream: TcpStream,
    seen: Shared,
    reader: Option<JoinHandle<()>>,
}

impl IrcListener {
    /// Connects to the server on 127.0.0.1:`port`, registers as `nick`,
    /// joins `channel` and waits until the server has confirmed it (the
    /// end of the channel's names, 366), so anything said in the channel
    /// after this returns is recorded.
    pub fn join(port: u16, nick: &str, channel: &str) -> IrcListener {
        let stream = TcpStream::connect((Ipv4Addr::LOCALHOST, port))
            .unwrap_or_else(|e| panic!("cannot connect to the IRC server on {port}: {e}"));
        stream
            .set_read_timeout(Some(REGISTRATION_TIMEOUT))
            .unwrap_or_else(|e| panic!("cannot set a read timeout: {e}"));
        let mut reader = BufReader::new(clone(&stream));
        let mut writer = clone(&stream);
        send(&mut writer, &format!("NICK {nick}"));
        send(
            &mut writer,
            &format!("USER {nick} 0 * :buildmesh test listener"),
        );
        until(&mut reader, &mut writer, "001", "register");
        send(&mut writer, &format!("JOIN {channel}"));
        until(&mut reader, &mut writer, "366", &format!("join {channel}"));
        stream
            .set_read_timeout(None)
            .unwrap_or_else(|e| panic!("cannot clear the read timeout: {e}"));
        let seen = Shared::default();
        let shared = seen.clone();
        let reader = std::thread::spawn(move || record(reader, writer, &shared));
        IrcListener {
            stream,
            seen,
            reader: Some(reader),
        }
    }

    /// The first message `wanted` accepts, waiting up to `timeout`;
    /// panics with every line seen if none comes.
    pub fn wait_for_message(
        &self,
        wanted: impl Fn(&IrcMessage) -> bool,
        timeout: Duration,
    ) -> IrcMessage {
        let (mutex, changed) = &*self.seen;
        let found = |seen: &Seen| seen.messages.iter().find(|m| wanted(m)).cloned();
        let (seen, _) = changed
            .wait_timeout_while(lock(mutex), timeout, |seen| {
                !seen.closed && found(seen).is_none()
            })
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        found(&seen).unwrap_or_else(|| {
            panic!(
                "no such message within {timeout:?}{}; the listener saw:\n{}",
                if seen.closed {
                    " (the server closed the connection)"
                } else {
                    ""
                },
                seen.lines.join("\n")
            )
        })
    }

    /// Every message seen so far.
    pub fn messages(&self) -> Vec<IrcMessage> {
        lock(&self.seen.0).messages.clone()
    }

    /// The nicks that joined the channel after us, in order.
    pub fn joins(&self) -> Vec<String> {
        lock(&self.seen.0).joins.clone()
    }

    /// Every line the server sent since we joined.
    pub fn lines(&self) -> Vec<String> {
        lock(&self.seen.0).lines.clone()
    }
}

impl Drop for IrcListener {
    fn drop(&mut self) {
        let _ = self.stream.shutdown(Shutdown::Both);
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
    }
}

fn clone(stream: &TcpStream) -> TcpStream {
    stream
        .try_clone()
        .unwrap_or_else(|e| panic!("cannot clone a socket: {e}"))
}

fn send(writer: &mut TcpStream, line: &str) {
    writer
        .write_all(format!("{line}\r\n").as_bytes())
        .unwrap_or_else(|e| panic!("cannot write to the IRC server: {e}"));
}

/// The next line, PINGs answered; `None` when the server closes or the
/// socket is shut down.
fn next_line(reader: &mut BufReader<TcpStream>, writer: &mut TcpStream) -> Option<String> {
    loop {
        let mut buffer = Vec::new();
        match reader.read_until(b'\n', &mut buffer) {
            Ok(0) | Err(_) => return None,
            Ok(_) => {}
        }
        let line = String::from_utf8_lossy(&buffer).trim_end().to_owned();
        if let Some(token) = line.strip_prefix("PING") {
            let _ = writer.write_all(format!("PONG{token}\r\n").as_bytes());
            continue;
        }
        return Some(line);
    }
}

/// The replies that end a registration or a join: ERROR, a bad or taken
/// nick, a wrong password, no such or a closed channel.
const REFUSALS: [&str; 14] = [
    "ERROR", "403", "405", "431", "432", "433", "436", "437", "464", "465", "471", "473", "474",
    "475",
];

/// Reads until a reply with the numeric `code`; panics on a refusal.
fn until(reader: &mut BufReader<TcpStream>, writer: &mut TcpStream, code: &str, doing: &str) {
    let mut said = Vec::new();
    loop {
        let Some(line) = next_line(reader, writer) else {
            panic!(
                "the IRC server closed or stopped answering before we could {doing}:\n{}",
                said.join("\n")
            );
        };
        let parsed = Line::parse(&line);
        if parsed.command == code {
            return;
        }
        if REFUSALS.contains(&parsed.command) {
            panic!("the IRC server refused to let us {doing}: {line}");
        }
        said.push(line);
    }
}

/// The reader thread: records lines until the connection ends.
fn record(mut reader: BufReader<TcpStream>, mut writer: TcpStream, seen: &Shared) {
    let (mutex, changed) = &**seen;
    while let Some(line) = next_line(&mut reader, &mut writer) {
        let parsed = Line::parse(&line);
        let mut seen = lock(mutex);
        match (parsed.command, parsed.params.as_slice()) {
            ("PRIVMSG", [target, text]) => seen.messages.push(IrcMessage {
                from: parsed.nick.to_owned(),
                target: (*target).to_owned(),
                text: (*text).to_owned(),
            }),
            ("JOIN", [_, ..]) => seen.joins.push(parsed.nick.to_owned()),
            _ => {}
        }
        seen.lines.push(line);
        changed.notify_all();
    }
    lock(mutex).closed = true;
    changed.notify_all();
}

/// One line of the protocol, split (RFC 2812 §2.3.1).
struct Line<'a> {
    /// The prefix's nick (or server name), empty without a prefix.
    nick: &'a str,
    command: &'a str,
    /// The middle parameters, then the trailing one.
    params: Vec<&'a str>,
}

impl<'a> Line<'a> {
    fn parse(line: &'a str) -> Line<'a> {
        let (prefix, rest) = match line.strip_prefix(':') {
            Some(tail) => tail.split_once(' ').unwrap_or((tail, "")),
            None => ("", line),
        };
        let nick = prefix.split(['!', '@']).next().unwrap_or("");
        let (middle, trailing) = match rest.split_once(" :") {
            Some((middle, trailing)) => (middle, Some(trailing)),
            None => (rest, None),
        };
        let mut words = middle.split(' ').filter(|w| !w.is_empty());
        let command = words.next().unwrap_or("");
        let mut params: Vec<&str> = words.collect();
        params.extend(trailing);
        Line {
            nick,
            command,
            params,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_split_into_prefix_command_and_parameters() {
        let line = Line::parse(":bot!~bot@localhost PRIVMSG #ci :[demo] main broken: a :b");
        assert_eq!(line.nick, "bot");
        assert_eq!(line.command, "PRIVMSG");
        assert_eq!(line.params, ["#ci", "[demo] main broken: a :b"]);
        let join = Line::parse(":bot!~bot@localhost JOIN :#ci");
        assert_eq!(
            (join.command, join.params.as_slice()),
            ("JOIN", &["#ci"][..])
        );
        assert_eq!(Line::parse("PING :x").command, "PING");
    }
}
