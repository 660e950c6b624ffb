//! The TCP side of a connection: connect with retries while a node boots, and a socket
//! wrapper that acknowledges every read at once.
//!
//! Why quick ACKs: sshd sets `TCP_NODELAY` only for interactive (pty) sessions, so for an
//! exec it holds back its second small packet (exit status, EOF, close) until the first
//! is acknowledged, and Linux delays that ACK up to 40 ms. `TCP_QUICKACK` is not sticky
//! (the kernel drops back to delayed ACKs), so it is set again after every read.

use std::io;
use std::os::fd::AsRawFd;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use super::{ConnectOptions, Error};
use crate::backoff::Backoff;

/// TCP connect with retries for the failures a booting node shows (refused, reset,
/// timed out, no route yet), backing off 1×, 2×, 4× ... up to 2 s.
pub(super) async fn connect_tcp(node: &str, address: &str, options: &ConnectOptions) -> Result<QuickAck, Error> {
    let mut backoff = Backoff::doubling(options.backoff, Duration::from_secs(2), options.retries);
    loop {
        let error = match tokio::time::timeout(options.connect_timeout, TcpStream::connect(address)).await {
            Ok(Ok(socket)) => {
                // Our own small packets (channel requests) go out at once; a failure
                // only costs latency.
                let _ = socket.set_nodelay(true);
                return Ok(QuickAck(socket));
            }
            Ok(Err(e)) => e,
            Err(_) => io::Error::new(io::ErrorKind::TimedOut, "connect timed out"),
        };
        use io::ErrorKind::*;
        let transient = matches!(
            error.kind(),
            ConnectionRefused | ConnectionReset | ConnectionAborted | TimedOut | HostUnreachable | NetworkUnreachable
        );
        let attempt = backoff.retries() + 1;
        if !transient || !backoff.wait().await {
            return Err(Error::Unreachable {
                node: node.to_string(),
                address: address.to_string(),
                attempts: attempt,
                source: error,
            });
        }
        tracing::debug!(node, address, attempt, "connect failed, retried: {error}");
    }
}

/// A TCP stream that re-arms `TCP_QUICKACK` after each read (see the module doc).
pub(super) struct QuickAck(TcpStream);

impl QuickAck {
    fn quickack(&self) {
        let on: libc::c_int = 1;
        // SAFETY: the fd is open for as long as `self.0` lives; `on` is a valid c_int and
        // the length passed is its size. A failure only costs latency, so it is ignored.
        unsafe {
            libc::setsockopt(
                self.0.as_raw_fd(),
                libc::IPPROTO_TCP,
                libc::TCP_QUICKACK,
                (&on as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            );
        }
    }
}

impl AsyncRead for QuickAck {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let polled = Pin::new(&mut self.0).poll_read(cx, buf);
        if polled.is_ready() {
            self.quickack();
        }
        polled
    }
}

impl AsyncWrite for QuickAck {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}
