//! serve's connections under hostile clients: each has a deadline for its request head (which
//! also ends a keep-alive connection left idle), a deadline for every write the client does
//! not read, and a lifetime; and when `MAX_CONNECTIONS` are held, a new one closes the oldest
//! connection that is not being answered, so that idle or slow clients can never keep a
//! scraper out. A response's bytes are shared with the state they came from, not copied.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Frame, Incoming, SizeHint};
use hyper::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::Notify;

/// Connections held at once; past this, the oldest one not being answered is closed.
pub(super) const MAX_CONNECTIONS: usize = 256;
/// The longest a client may take to send a request head, counted from when the connection
/// opens or its last answer was written (so it is also the keep-alive idle timeout).
pub(super) const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// The longest a write may wait for a client that does not read.
pub(super) const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest a connection is held, whatever it does.
const LIFETIME: Duration = Duration::from_secs(60);

/// The connections being held, oldest first.
#[derive(Default)]
pub(super) struct Open {
    held: Arc<Mutex<Held>>,
}

#[derive(Default)]
struct Held {
    next: u64,
    by_age: BTreeMap<u64, Connection>,
}

struct Connection {
    /// Requests being answered (from the request head until the body is handed over).
    answering: Arc<AtomicUsize>,
    close: Arc<Notify>,
}

impl Open {
    /// Serves `stream` in a task of its own, answering each request with `answer`.
    pub(super) fn serve<A, F>(&self, stream: TcpStream, answer: A)
    where
        A: Fn(Request<Incoming>, Busy) -> F + Send + Sync + 'static,
        F: Future<Output = Result<Response<Tracked>, Infallible>> + Send + 'static,
    {
        let answering = Arc::new(AtomicUsize::new(0));
        let close = Arc::new(Notify::new());
        let id = {
            let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
            if held.by_age.len() >= MAX_CONNECTIONS {
                held.make_room();
            }
            let id = held.next;
            held.next += 1;
            held.by_age.insert(
                id,
                Connection {
                    answering: answering.clone(),
                    close: close.clone(),
                },
            );
            id
        };
        let held = self.held.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                answer(request, Busy::new(answering.clone()))
            });
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .max_buf_size(16 * 1024)
                .serve_connection(TokioIo::new(Deadline::new(stream)), service);
            tokio::select! {
                _ = tokio::time::timeout(LIFETIME, connection) => {}
                () = close.notified() => {}
            }
            held.lock()
                .unwrap_or_else(|e| e.into_inner())
                .by_age
                .remove(&id);
        });
    }
}

impl Held {
    /// Closes the oldest connection not being answered (the oldest of all when every one is).
    fn make_room(&mut self) {
        let idle = self
            .by_age
            .iter()
            .find(|(_, c)| c.answering.load(Ordering::Relaxed) == 0)
            .or_else(|| self.by_age.iter().next())
            .map(|(&id, _)| id);
        if let Some(connection) = idle.and_then(|id| self.by_age.remove(&id)) {
            connection.close.notify_one();
        }
    }
}

/// A request being answered: counted from its head until its body is handed over.
pub(super) struct Busy(Arc<AtomicUsize>);

impl Busy {
    fn new(answering: Arc<AtomicUsize>) -> Busy {
        answering.fetch_add(1, Ordering::Relaxed);
        Busy(answering)
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A response body that keeps its request counted as being answered until it is written.
pub(super) struct Tracked {
    body: Full<Bytes>,
    _busy: Busy,
}

impl Tracked {
    pub(super) fn new(body: Full<Bytes>, busy: Busy) -> Tracked {
        Tracked { body, _busy: busy }
    }
}

impl hyper::body::Body for Tracked {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// A stream whose writes fail once one has waited `WRITE_TIMEOUT` for a client that does not
/// read.
struct Deadline {
    stream: TcpStream,
    waiting: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl Deadline {
    fn new(stream: TcpStream) -> Deadline {
        Deadline {
            stream,
            waiting: None,
        }
    }

    /// What a write that is not done yet returns: pending, or an error once it has waited
    /// too long.
    fn pending<T>(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<T>> {
        let sleep = self
            .waiting
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(WRITE_TIMEOUT)));
        match sleep.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the client read nothing in time",
            ))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn written<T>(
        &mut self,
        done: Poll<io::Result<T>>,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<T>> {
        match done {
            Poll::Ready(result) => {
                self.waiting = None;
                Poll::Ready(result)
            }
            Poll::Pending => self.pending(cx),
        }
    }
}

impl AsyncRead for Deadline {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Deadline {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let done = Pin::new(&mut this.stream).poll_write(cx, buf);
        this.written(done, cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let done = Pin::new(&mut this.stream).poll_write_vectored(cx, bufs);
        this.written(done, cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let done = Pin::new(&mut this.stream).poll_flush(cx);
        this.written(done, cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}
