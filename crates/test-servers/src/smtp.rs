//! An SMTP server that keeps every mail: Debian's aiosmtpd with its
//! Mailbox handler, which writes each message into a maildir.

use crate::{POLL_INTERVAL, PYTHON, ServerProcess, require, require_python_module, temp_dir};
use base64::Engine;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime};

/// An SMTP server on 127.0.0.1 that accepts any mail, without TLS or
/// auth, and keeps it in a maildir; stopped on drop.
pub struct SmtpSink {
    server: ServerProcess,
    maildir: PathBuf,
    _dir: tempfile::TempDir,
}

/// One received mail, decoded so tests can search its text.
#[derive(Debug, Clone)]
pub struct Mail {
    /// The header fields in order, unfolded, RFC 2047 encoded words
    /// decoded. aiosmtpd adds `X-MailFrom` (the envelope sender),
    /// `X-RcptTo` (the envelope recipients) and `X-Peer`.
    pub headers: Vec<(String, String)>,
    /// The body, its Content-Transfer-Encoding (quoted-printable or
    /// base64) undone, as UTF-8 (lossily), with `\n` line ends.
    pub body: String,
    /// The file as the server wrote it.
    pub raw: Vec<u8>,
}

impl Mail {
    /// The first header field called `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Parses a mail as the maildir holds it: one part (what lettre sends
    /// for a text body), in UTF-8 or ASCII.
    pub fn parse(raw: &[u8]) -> Mail {
        let text = String::from_utf8_lossy(raw).replace("\r\n", "\n");
        let (head, body) = text.split_once("\n\n").unwrap_or((text.as_str(), ""));
        let mut headers: Vec<(String, String)> = Vec::new();
        for line in head.lines() {
            if line.starts_with([' ', '\t']) {
                if let Some((_, value)) = headers.last_mut() {
                    value.push(' ');
                    value.push_str(line.trim());
                }
            } else if let Some((name, value)) = line.split_once(':') {
                headers.push((name.trim().to_owned(), value.trim().to_owned()));
            }
        }
        for (_, value) in &mut headers {
            *value = decode_words(value);
        }
        let mut mail = Mail {
            headers,
            body: String::new(),
            raw: raw.to_vec(),
        };
        let encoding = mail
            .header("content-transfer-encoding")
            .unwrap_or("7bit")
            .to_ascii_lowercase();
        mail.body = decode_body(&encoding, body).replace("\r\n", "\n");
        mail
    }
}

/// `body` with its transfer encoding undone.
fn decode_body(encoding: &str, body: &str) -> String {
    let bytes = match encoding {
        "quoted-printable" => {
            quoted_printable::decode(body.as_bytes(), quoted_printable::ParseMode::Robust)
                .unwrap_or_else(|e| panic!("bad quoted-printable body ({e}):\n{body}"))
        }
        "base64" => {
            let compact: String = body.chars().filter(|c| !c.is_whitespace()).collect();
            base64::engine::general_purpose::STANDARD
                .decode(compact)
                .unwrap_or_else(|e| panic!("bad base64 body ({e}):\n{body}"))
        }
        _ => body.as_bytes().to_vec(),
    };
    String::from_utf8_lossy(&bytes).into_owned()
}

/// A header value with its RFC 2047 encoded words (`=?utf-8?b?…?=`,
/// `=?utf-8?q?…?=`) decoded; the space between two encoded words goes.
fn decode_words(value: &str) -> String {
    let mut out = String::new();
    let mut rest = value;
    let mut after_word = false;
    while let Some(start) = rest.find("=?") {
        let (before, word) = rest.split_at(start);
        let Some((decoded, len)) = decode_word(word) else {
            out.push_str(&rest[..start + 2]);
            rest = &rest[start + 2..];
            after_word = false;
            continue;
        };
        if !(after_word && before.trim().is_empty()) {
            out.push_str(before);
        }
        out.push_str(&decoded);
        rest = &word[len..];
        after_word = true;
    }
    out.push_str(rest);
    out
}

/// The text of the encoded word `word` starts with, and its length.
fn decode_word(word: &str) -> Option<(String, usize)> {
    let inner = word.strip_prefix("=?")?;
    let mut parts = inner.splitn(3, '?');
    let (_charset, encoding, tail) = (parts.next()?, parts.next()?, parts.next()?);
    let end = tail.find("?=")?;
    let text = &tail[..end];
    let bytes = match encoding {
        "b" | "B" => base64::engine::general_purpose::STANDARD
            .decode(text)
            .ok()?,
        "q" | "Q" => quoted_printable::decode(
            text.replace('_', " ").as_bytes(),
            quoted_printable::ParseMode::Robust,
        )
        .ok()?,
        _ => return None,
    };
    let len = word.len() - tail.len() + end + 2;
    Some((String::from_utf8_lossy(&bytes).into_owned(), len))
}

impl SmtpSink {
    /// Whether aiosmtpd is here (see [`require`]).
    pub fn available() -> bool {
        require("python3", PYTHON, "python3")
            && require_python_module("aiosmtpd", "python3-aiosmtpd")
    }

    /// Starts aiosmtpd on a free port and waits until it listens.
    pub fn start() -> SmtpSink {
        let dir = temp_dir("smtp");
        let maildir = dir.path().join("maildir");
        let server = ServerProcess::start("aiosmtpd", dir.path(), |port| {
            let mut command = Command::new(PYTHON);
            command
                .args(["-m", "aiosmtpd", "-n", "-l"])
                .arg(format!("127.0.0.1:{port}"))
                .args(["-c", "aiosmtpd.handlers.Mailbox"])
                .arg(&maildir);
            command
        });
        SmtpSink {
            server,
            maildir,
            _dir: dir,
        }
    }

    /// The port it listens on (on 127.0.0.1).
    pub fn port(&self) -> u16 {
        self.server.port
    }

    /// Every mail received so far, oldest first. The handler writes a mail
    /// before it answers the DATA command, so a mail whose sending
    /// returned is here.
    pub fn mails(&self) -> Vec<Mail> {
        let new = self.maildir.join("new");
        let Ok(entries) = std::fs::read_dir(&new) else {
            return Vec::new(); // no mail yet: the handler makes the maildir
        };
        let mut files: Vec<(SystemTime, PathBuf)> = entries
            .filter_map(|entry| entry.ok())
            .map(|entry| {
                let at = entry
                    .metadata()
                    .and_then(|m| m.modified())
                    .unwrap_or(SystemTime::UNIX_EPOCH);
                (at, entry.path())
            })
            .collect();
        files.sort();
        files.iter().map(|(_, path)| read_mail(path)).collect()
    }

    /// The first `n` mails, waiting up to `timeout` for them; panics with
    /// what did arrive (and the server's stderr) if they do not.
    pub fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Mail> {
        let deadline = Instant::now() + timeout;
        loop {
            let mails = self.mails();
            if mails.len() >= n {
                return mails;
            }
            if Instant::now() > deadline {
                panic!(
                    "the SMTP sink got {} mails, not {n}, within {timeout:?}: {mails:#?}\naiosmtpd said:\n{}",
                    mails.len(),
                    self.server.stderr()
                );
            }
            std::thread::sleep(POLL_INTERVAL);
        }
    }
}

fn read_mail(path: &Path) -> Mail {
    let raw = std::fs::read(path).unwrap_or_else(|e| panic!("cannot read the mail {path:?}: {e}"));
    Mail::parse(&raw)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_folded_encoded_mail_is_read_back() {
        let raw = b"Subject: =?utf-8?b?W2RlbW9dIGNhZsOp?=\r\n =?utf-8?q?_br=C3=BBl=C3=A9?=\r\nContent-Transfer-Encoding: quoted-printable\r\nX-RcptTo: a@example.org\r\n\r\nlong =\r\nline caf=C3=A9\r\nnext\r\n";
        let mail = Mail::parse(raw);
        assert_eq!(mail.header("subject"), Some("[demo] café brûlé"));
        assert_eq!(mail.header("X-RCPTTO"), Some("a@example.org"));
        assert_eq!(mail.body, "long line café\nnext\n");
        let base64 = Mail::parse(b"Content-Transfer-Encoding: base64\n\nY2Fmw6kK\n");
        assert_eq!(base64.body, "café\n");
        assert_eq!(decode_words("plain =? text"), "plain =? text");
    }
}
