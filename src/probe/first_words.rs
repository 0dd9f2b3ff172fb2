//! The first bytes a peer sends, kept while a handshake reads them: when they are not the
//! protocol spoken, they say what answered instead (a web server or captive portal, an SSH
//! server, a SOCKS5 or TLS server where an HTTP proxy was expected).

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// How much of the peer's first words is kept.
const KEPT: usize = 128;

/// What a peer has sent so far: its first `KEPT` bytes, and how many in all.
#[derive(Debug, Default, Clone)]
pub(crate) struct Heard {
    /// The first bytes, at most `KEPT`.
    pub(crate) first: Vec<u8>,
    /// Every byte read, counted.
    pub(crate) total: u64,
}

/// A stream that keeps the first `KEPT` bytes read from it, and counts the rest.
pub(crate) struct First<S> {
    inner: S,
    seen: Arc<Mutex<Heard>>,
}

impl<S> First<S> {
    pub(crate) fn new(inner: S) -> (First<S>, Arc<Mutex<Heard>>) {
        let seen = Arc::new(Mutex::new(Heard::default()));
        let stream = First {
            inner,
            seen: seen.clone(),
        };
        (stream, seen)
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for First<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Ok(mut seen) = self.seen.lock() {
            let new = &buf.filled()[before..];
            seen.total += new.len() as u64;
            let room = KEPT.saturating_sub(seen.first.len());
            seen.first.extend_from_slice(&new[..new.len().min(room)]);
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for First<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, data)
    }

    // Forwarded, so that a flight of handshake messages stays one write, as without the wrapper.
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// What the peer's first bytes say it is, when they are not TLS: `answered in plain HTTP
/// ("HTTP/1.1 302 Found")`. The line is quoted printable and at most 100 characters.
pub(crate) fn what_answered(first: &[u8]) -> Option<String> {
    if first.is_empty() {
        return None;
    }
    let line: String = first
        .split(|&b| b == b'\n')
        .next()
        .unwrap_or_default()
        .iter()
        .map(|&b| match b {
            0x20..=0x7e => char::from(b),
            _ => '.',
        })
        .collect();
    let line = line
        .trim_end_matches('.')
        .trim()
        .chars()
        .take(100)
        .collect::<String>();
    let what = if line.starts_with("HTTP/") {
        format!(
            "answered in plain HTTP (\"{line}\"): a captive portal, a transparent proxy, or a port that does not serve TLS"
        )
    } else if line.starts_with("SSH-") {
        format!("answered as an SSH server (\"{line}\"), not TLS: check the port")
    } else if line.chars().all(|c| c == '.') {
        "answered with bytes that are not TLS".to_string()
    } else {
        format!("answered with something that is not TLS (\"{line}\")")
    };
    Some(what)
}

/// What speaks on a proxy port whose first answer is not the protocol expected: TLS (an
/// `https://` proxy), SOCKS5, or HTTP; `None` when it said nothing or something else.
pub(crate) fn proxy_protocol(first: &[u8]) -> Option<&'static str> {
    match first {
        [] => None,
        [0x15 | 0x16, 0x03, ..] => Some("TLS"),
        [0x05, 0x00 | 0x01 | 0x02 | 0xff, ..] => Some("SOCKS5"),
        [b'H', b'T', b'T', b'P', b'/', ..] => Some("HTTP"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::what_answered;

    #[test]
    fn the_first_line_says_what_answered() {
        let http = what_answered(b"HTTP/1.1 302 Found\r\nLocation: http://portal/\r\n").unwrap();
        assert!(
            http.starts_with("answered in plain HTTP (\"HTTP/1.1 302 Found\")"),
            "{http}"
        );
        let ssh = what_answered(b"SSH-2.0-OpenSSH_9.6\r\n").unwrap();
        assert!(
            ssh.contains("SSH server (\"SSH-2.0-OpenSSH_9.6\")"),
            "{ssh}"
        );
        let long = what_answered(&[b'x'; 300]).unwrap();
        assert!(long.len() < 160, "{long}");
        assert_eq!(what_answered(b""), None);
        let control = what_answered(b"\x1b[2J\x07hello").unwrap();
        assert!(!control.contains('\x1b'), "{control}");
    }
}
