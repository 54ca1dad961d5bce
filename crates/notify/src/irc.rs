//! IRC: connect, register, join the channel, say the line, quit.
//!
//! One connection per message: notifications are rare (a few an hour), so
//! a bot that stays connected would mostly answer PINGs, and a connection
//! that lives only while it talks has no state to lose across restarts.
//! The protocol is the few commands of RFC 2812 a client needs to speak
//! in a channel, so it is written here rather than pulled in with a
//! client framework.

use crate::Error;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_rustls::rustls::{ClientConfig, RootCertStore};

/// Longest line read from the server, bytes (RFC 2812 allows 512; IRCv3
/// tags make some longer).
const LINE_BYTES_MAX: u64 = 8192;

/// Longest text in one PRIVMSG, bytes: a line is 512 bytes with the
/// command, the channel and the server's prefix for us.
const SAY_BYTES_MAX: usize = 380;

/// How long the server is given to close after our QUIT.
const QUIT_WAIT: Duration = Duration::from_secs(2);

/// How long one whole delivery may take.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(30);

/// One IRC notifier.
#[derive(Debug, Clone)]
pub struct IrcConfig {
    /// The server's host name.
    pub host: String,
    /// Its port (6697 with TLS, 6667 without, by custom).
    pub port: u16,
    /// Whether to speak TLS.
    pub tls: bool,
    /// The bot's nick.
    pub nick: String,
    /// The channel, with its `#`.
    pub channel: String,
    /// The channel's key, if it has one.
    pub channel_key: Option<String>,
    /// The server password (`PASS`), if it wants one.
    pub password: Option<String>,
}

trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// Says `lines` in the channel, then quits.
pub async fn say(config: &IrcConfig, lines: &[String]) -> Result<(), Error> {
    tokio::time::timeout(DELIVERY_TIMEOUT, session(config, lines))
        .await
        .map_err(|_| Error::Irc("the server did not answer in time".into()))?
}

async fn session(config: &IrcConfig, lines: &[String]) -> Result<(), Error> {
    let tcp = TcpStream::connect((config.host.as_str(), config.port))
        .await
        .map_err(|e| Error::Irc(format!("cannot connect: {e}")))?;
    let stream: Box<dyn Stream> = if config.tls {
        Box::new(tls(&config.host, tcp).await?)
    } else {
        Box::new(tcp)
    };
    let mut irc = Connection {
        stream: BufReader::new(stream),
    };
    if let Some(password) = &config.password {
        irc.send(&format!("PASS {password}")).await?;
    }
    register(&mut irc, &config.nick).await?;
    join(&mut irc, config).await?;
    for line in lines {
        for piece in pieces(line) {
            irc.send(&format!("PRIVMSG {} :{piece}", config.channel))
                .await?;
        }
    }
    irc.send("QUIT :buildmesh").await?;
    // Reading until the server closes makes sure it took every line; a
    // server (or bouncer) that does not close has them anyway, and the
    // line must not be said again for it.
    let closed = async { while let Ok(Some(_)) = irc.read().await {} };
    let _ = tokio::time::timeout(QUIT_WAIT, closed).await;
    Ok(())
}

async fn tls(
    host: &str,
    tcp: TcpStream,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>, Error> {
    let roots = RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    let provider = Arc::new(tokio_rustls::rustls::crypto::aws_lc_rs::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Irc(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = ServerName::try_from(host.to_owned())
        .map_err(|_| Error::Irc(format!("{host:?} is not a server name")))?;
    TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .map_err(|e| Error::Irc(format!("TLS: {e}")))
}

/// NICK and USER, answering PINGs, until the welcome (001). A nick in use
/// is tried again as its first 8 characters and a digit (`buildme1`,
/// `buildme2`, `buildme3`): many servers allow 9 characters only.
async fn register(irc: &mut Connection, nick: &str) -> Result<(), Error> {
    irc.send(&format!("NICK {nick}")).await?;
    irc.send(&format!("USER {nick} 0 * :buildmesh notifier"))
        .await?;
    let stem: String = nick.chars().take(8).collect();
    let mut tries = 0;
    loop {
        let reply = irc.expect_line().await?;
        match command(&reply) {
            "001" => return Ok(()),
            "433" | "432" if tries < 3 && (tries > 0 || command(&reply) == "433") => {
                tries += 1;
                irc.send(&format!("NICK {stem}{tries}")).await?;
            }
            "433" | "432" | "464" | "465" | "ERROR" => {
                return Err(Error::Irc(format!("the server refused us: {reply}")));
            }
            _ => {}
        }
    }
}

/// JOIN, until the end of the channel's names (366) or a refusal.
async fn join(irc: &mut Connection, config: &IrcConfig) -> Result<(), Error> {
    let key = config.channel_key.as_deref().unwrap_or("");
    irc.send(format!("JOIN {} {key}", config.channel).trim_end())
        .await?;
    loop {
        let reply = irc.expect_line().await?;
        match command(&reply) {
            "366" => return Ok(()),
            "403" | "405" | "471" | "473" | "474" | "475" | "476" | "ERROR" => {
                return Err(Error::Irc(format!(
                    "cannot join {}: {reply}",
                    config.channel
                )));
            }
            _ => {}
        }
    }
}

/// `text` in pieces that fit one PRIVMSG, cut on character boundaries.
fn pieces(text: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    for c in text.chars().filter(|c| !c.is_control()) {
        if out
            .last()
            .is_some_and(|l| l.len() + c.len_utf8() > SAY_BYTES_MAX)
        {
            out.push(String::new());
        }
        if let Some(last) = out.last_mut() {
            last.push(c);
        }
    }
    out
}

/// The command (or numeric) of a line, past its `:prefix`.
fn command(line: &str) -> &str {
    let mut words = line.split(' ');
    let first = words.next().unwrap_or("");
    if first.starts_with(':') {
        words.next().unwrap_or("")
    } else {
        first
    }
}

struct Connection {
    stream: BufReader<Box<dyn Stream>>,
}

impl Connection {
    async fn send(&mut self, line: &str) -> Result<(), Error> {
        let stream = self.stream.get_mut();
        stream
            .write_all(format!("{line}\r\n").as_bytes())
            .await
            .map_err(|e| Error::Irc(format!("cannot write: {e}")))?;
        stream
            .flush()
            .await
            .map_err(|e| Error::Irc(format!("cannot write: {e}")))
    }

    /// The next line the server says that is not a PING (answered here),
    /// or `None` when it closes.
    async fn read(&mut self) -> Result<Option<String>, Error> {
        loop {
            let mut buffer = Vec::new();
            let read = (&mut self.stream)
                .take(LINE_BYTES_MAX)
                .read_until(b'\n', &mut buffer)
                .await
                .map_err(|e| Error::Irc(format!("cannot read: {e}")))?;
            if read == 0 {
                return Ok(None);
            }
            let line = String::from_utf8_lossy(&buffer).trim_end().to_owned();
            if let Some(token) = line.strip_prefix("PING") {
                self.send(&format!("PONG{token}")).await?;
                continue;
            }
            return Ok(Some(line));
        }
    }

    async fn expect_line(&mut self) -> Result<String, Error> {
        self.read()
            .await?
            .ok_or_else(|| Error::Irc("the server closed the connection".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_text_is_said_in_pieces_and_commands_are_read_past_the_prefix() {
        let long = "é".repeat(500);
        let said = pieces(&long);
        assert_eq!(said.len(), 3);
        assert!(said.iter().all(|p| p.len() <= SAY_BYTES_MAX));
        assert_eq!(said.concat(), long);
        assert_eq!(pieces("a\r\nb"), ["ab"]);
        assert_eq!(command(":irc.example.net 001 bot :Welcome"), "001");
        assert_eq!(command("ERROR :Closing link"), "ERROR");
    }
}
