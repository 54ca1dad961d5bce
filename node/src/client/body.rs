//! Reading an answer's head and body as they come, bounded: a node being
//! checked is a stranger, and a log may be far larger than any JSON
//! answer. Every bound fails loudly: a body cut short would read as a
//! shorter log, which is a different (and wrong) verdict.

use std::io::{self, BufRead, Read};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// Longest answer head (status line and header fields).
pub const HEAD_BYTES_MAX: u64 = 64 * 1024;

/// Longest chunk-size line of a chunked body (extensions included).
const CHUNK_LINE_BYTES_MAX: u64 = 1024;

/// Most trailer fields after the last chunk.
const TRAILERS_MAX: usize = 100;

/// A connection whose reads fail once `deadline` has passed, however
/// slowly the peer trickles bytes (a per-read timeout alone would let a
/// byte a minute go on for ever).
pub struct Deadline {
    stream: TcpStream,
    deadline: Instant,
    /// Longest wait for one read.
    read_wait: Duration,
    /// What the error says: which answer took too long.
    what: String,
}

impl Deadline {
    /// Reads of `stream` that give up at `deadline`, or after `read_wait`
    /// without a byte.
    pub fn new(stream: TcpStream, deadline: Instant, read_wait: Duration, what: String) -> Self {
        Deadline {
            stream,
            deadline,
            read_wait,
            what,
        }
    }
}

impl Read for Deadline {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("{} took too long", self.what),
            ));
        }
        self.stream
            .set_read_timeout(Some(left.min(self.read_wait)))?;
        self.stream.read(buf)
    }
}

/// What the head of an answer says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    /// The status code.
    pub status: u16,
    /// Whether the body is chunked.
    pub chunked: bool,
    /// The body's length, if given (and not chunked).
    pub length: Option<u64>,
}

/// Reads the head off `input`, leaving it at the first body byte.
pub fn read_head(input: &mut impl BufRead) -> io::Result<Head> {
    let mut head = Vec::new();
    let mut limited = input.take(HEAD_BYTES_MAX);
    let mut lines = Vec::new();
    loop {
        head.clear();
        if limited.read_until(b'\n', &mut head)? == 0 || head.last() != Some(&b'\n') {
            return Err(invalid(
                "the answer's head is cut short or longer than 64 KiB",
            ));
        }
        let line = String::from_utf8_lossy(&head).trim_end().to_owned();
        if line.is_empty() {
            break;
        }
        lines.push(line);
    }
    let status = lines
        .first()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| invalid("the answer has no HTTP status line"))?;
    let field = |name: &str| {
        lines.iter().skip(1).find_map(|l| {
            let (key, value) = l.split_once(':')?;
            key.trim()
                .eq_ignore_ascii_case(name)
                .then(|| value.trim().to_ascii_lowercase())
        })
    };
    let chunked = field("transfer-encoding").is_some_and(|v| v.contains("chunked"));
    let length = match field("content-length") {
        Some(v) if !chunked => Some(
            v.parse()
                .map_err(|_| invalid("the answer's Content-Length is not a number"))?,
        ),
        _ => None,
    };
    Ok(Head {
        status,
        chunked,
        length,
    })
}

/// The body after `head`, read from `input`: de-chunked, or exactly its
/// length, or up to the connection's end; at most `bytes_max` bytes, past
/// which reading fails with `too_large` as the message.
pub fn body<R: BufRead + Send + 'static>(
    input: R,
    head: &Head,
    bytes_max: u64,
    too_large: String,
) -> Box<dyn Read + Send> {
    let inner: Box<dyn Read + Send> = match (head.chunked, head.length) {
        (true, _) => Box::new(Chunked::new(input)),
        (false, Some(length)) => Box::new(Exactly {
            inner: input,
            left: length,
        }),
        (false, None) => Box::new(input),
    };
    Box::new(Capped {
        inner,
        left: bytes_max,
        message: too_large,
    })
}

/// A chunked body's bytes (RFC 9112 §7.1). Ending before the last chunk
/// is an error, never a short body.
struct Chunked<R> {
    inner: R,
    /// Bytes left in the current chunk.
    left: u64,
    done: bool,
}

impl<R: BufRead> Chunked<R> {
    fn new(inner: R) -> Self {
        Chunked {
            inner,
            left: 0,
            done: false,
        }
    }

    /// Reads the next chunk-size line.
    fn next_size(&mut self) -> io::Result<u64> {
        let line = self.line()?;
        let digits = line.split(';').next().unwrap_or("").trim();
        u64::from_str_radix(digits, 16).map_err(|_| invalid("a malformed chunk size"))
    }

    /// One line (without its end), bounded.
    fn line(&mut self) -> io::Result<String> {
        let mut line = Vec::new();
        (&mut self.inner)
            .take(CHUNK_LINE_BYTES_MAX)
            .read_until(b'\n', &mut line)?;
        if line.last() != Some(&b'\n') {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the answer ended before its last chunk",
            ));
        }
        Ok(String::from_utf8_lossy(&line).trim_end().to_owned())
    }

    fn trailers(&mut self) -> io::Result<()> {
        for _ in 0..TRAILERS_MAX {
            if self.line()?.is_empty() {
                return Ok(());
            }
        }
        Err(invalid("too many trailer fields"))
    }
}

impl<R: BufRead> Read for Chunked<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.done || buf.is_empty() {
            return Ok(0);
        }
        if self.left == 0 {
            self.left = self.next_size()?;
            if self.left == 0 {
                self.trailers()?;
                self.done = true;
                return Ok(0);
            }
        }
        let read = read_within(
            &mut self.inner,
            buf,
            &mut self.left,
            "the answer ended inside a chunk",
        )?;
        if self.left == 0 && !self.line()?.is_empty() {
            return Err(invalid("a chunk longer than its size"));
        }
        Ok(read)
    }
}

/// A body of a known length: ending early is an error.
struct Exactly<R> {
    inner: R,
    left: u64,
}

impl<R: Read> Read for Exactly<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 || buf.is_empty() {
            return Ok(0);
        }
        read_within(
            &mut self.inner,
            buf,
            &mut self.left,
            "the answer ended before its Content-Length",
        )
    }
}

/// Reads no more than the `left` bytes still owed, and counts them off;
/// a stream that ends before them is an error that says where (`ended`).
fn read_within(
    inner: &mut impl Read,
    buf: &mut [u8],
    left: &mut u64,
    ended: &'static str,
) -> io::Result<usize> {
    let want = buf.len().min(usize::try_from(*left).unwrap_or(usize::MAX));
    let read = inner.read(&mut buf[..want])?;
    if read == 0 {
        return Err(io::Error::new(io::ErrorKind::UnexpectedEof, ended));
    }
    *left -= read as u64;
    Ok(read)
}

/// Fails once more than `left` bytes have come.
struct Capped {
    inner: Box<dyn Read + Send>,
    left: u64,
    message: String,
}

impl Read for Capped {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        // One byte more than allowed tells "exactly the cap" from "more".
        let want = buf
            .len()
            .min(usize::try_from(self.left.saturating_add(1)).unwrap_or(usize::MAX));
        let read = self.inner.read(&mut buf[..want])?;
        if read as u64 > self.left {
            return Err(io::Error::new(
                io::ErrorKind::FileTooLarge,
                self.message.clone(),
            ));
        }
        self.left -= read as u64;
        Ok(read)
    }
}

fn invalid(message: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message.to_owned())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use std::io::Cursor;

    fn read_all(answer: &[u8], bytes_max: u64) -> io::Result<(Head, Vec<u8>)> {
        let mut input = Cursor::new(answer.to_vec());
        let head = read_head(&mut input)?;
        let mut body = Vec::new();
        super::body(input, &head, bytes_max, "too large".into()).read_to_end(&mut body)?;
        Ok((head, body))
    }

    #[test]
    fn a_chunked_body_is_whole_or_an_error() {
        let answer = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\nTrailer: 1\r\n\r\n";
        let (head, body) = read_all(answer, 100).unwrap();
        assert_eq!(
            (head.status, head.chunked, body),
            (200, true, b"abcde".to_vec())
        );
        let cut = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nd";
        let error = read_all(cut, 100).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::UnexpectedEof);
        let no_last_chunk = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n";
        assert!(read_all(no_last_chunk, 100).is_err());
        let bad_size =
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n";
        assert!(read_all(bad_size, 100).is_err());
    }

    #[test]
    fn a_sized_body_must_be_whole() {
        let (head, body) =
            read_all(b"HTTP/1.1 404 No\r\nContent-Length: 2\r\n\r\n{}", 100).unwrap();
        assert_eq!(
            (head.status, head.length, body),
            (404, Some(2), b"{}".to_vec())
        );
        assert!(read_all(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n{}", 100).is_err());
        let (_, body) = read_all(b"HTTP/1.1 200 OK\r\n\r\nto the end", 100).unwrap();
        assert_eq!(body, b"to the end");
    }

    #[test]
    fn a_body_past_its_cap_fails_rather_than_being_cut() {
        let answer = b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789";
        assert_eq!(read_all(answer, 10).unwrap().1.len(), 10);
        let error = read_all(answer, 9).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::FileTooLarge);
        assert_eq!(error.to_string(), "too large");
    }

    #[test]
    fn a_head_without_an_end_or_status_is_refused() {
        assert!(read_head(&mut Cursor::new(b"HTTP/1.1 200 OK\r\n".to_vec())).is_err());
        assert!(read_head(&mut Cursor::new(b"garbage\r\n\r\n".to_vec())).is_err());
        let endless = [b"HTTP/1.1 200 OK\r\nX: ".to_vec(), vec![b'a'; 70_000]].concat();
        assert!(read_head(&mut Cursor::new(endless)).is_err());
    }
}
