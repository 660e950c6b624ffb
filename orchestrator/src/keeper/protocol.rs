//! What the keeper and its clients say to each other over the keeper's Unix socket.
//!
//! One request per connection. The client writes a [`Request`] as one JSON line; the
//! keeper answers with one [`Reply`] JSON line. After [`Reply::Output`] come exactly
//! `stdout_len` then `stderr_len` raw bytes (command output is bytes, not text). After
//! [`Reply::Streaming`] the connection is a raw byte pipe to the node's Unix socket
//! until either side closes it.

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::service::{ServiceSpec, ServiceStatus};
use crate::ssh::Target;

/// The longest request line the keeper reads (a request names nodes and a command).
pub const MAX_LINE: usize = 1 << 20;

/// What a client asks of the keeper.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Request {
    /// Run `command` on the node over its kept connection.
    Exec {
        /// The node.
        target: Target,
        /// The shell command.
        command: String,
        /// Limit for the command, in milliseconds.
        timeout_ms: u64,
    },
    /// Turn this connection into a byte pipe to the Unix socket `socket` on the node.
    Stream {
        /// The node.
        target: Target,
        /// The socket's path on the node.
        socket: String,
    },
    /// Connect to these nodes now (in the background), so the next requests find them open.
    Warm {
        /// The nodes.
        targets: Vec<Target>,
    },
    /// Start a service (or keep it, when one of that name runs with the same spec) and
    /// answer once it is healthy.
    StartService {
        /// The service.
        service: ServiceSpec,
    },
    /// Say what every service is doing.
    Services,
    /// Stop every service, close every connection and exit.
    Stop,
}

/// The keeper's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reply {
    /// The command ran; its output follows as raw bytes.
    Output {
        /// Exit status (`None` when killed by a signal).
        status: Option<u32>,
        /// The signal that killed it, by name.
        signal: Option<String>,
        /// Bytes of standard output that follow.
        stdout_len: usize,
        /// Bytes of standard error that follow (after stdout's).
        stderr_len: usize,
    },
    /// The pipe to the node's socket is open: raw bytes from here on.
    Streaming,
    /// The request was done (`Warm`, `Stop`).
    Done,
    /// The services (`StartService`: the one started; `Services`: every one, by name).
    Services {
        /// Their states.
        services: Vec<ServiceStatus>,
    },
    /// The request failed on its node.
    Failed {
        /// What kind of failure.
        kind: FailureKind,
        /// Why, as one line.
        cause: String,
    },
}

/// What kind of failure a [`Reply::Failed`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// The node could not be reached at all (as opposed to: reached, then failed).
    Unreachable,
    /// The node refused to connect to the socket: nothing listens there.
    Refused,
    /// Anything else.
    Other,
}

/// Writes `message` as one JSON line.
pub async fn write_line<T: Serialize>(out: &mut (impl AsyncWrite + Unpin), message: &T) -> std::io::Result<()> {
    let mut line = serde_json::to_vec(message).map_err(std::io::Error::other)?;
    line.push(b'\n');
    out.write_all(&line).await?;
    out.flush().await
}

/// Reads one JSON line (at most [`MAX_LINE`] bytes); `None` at end of stream.
pub async fn read_line<T: for<'de> Deserialize<'de>>(
    input: &mut (impl AsyncBufRead + Unpin),
) -> std::io::Result<Option<T>> {
    let mut line = Vec::new();
    let mut limited = input.take(MAX_LINE as u64);
    let n = limited.read_until(b'\n', &mut line).await?;
    if n == 0 {
        return Ok(None);
    }
    if line.last() != Some(&b'\n') {
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, "message line too long or cut short"));
    }
    serde_json::from_slice(&line).map(Some).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn messages_round_trip_as_lines() {
        let target =
            Target { node: "n-1".into(), address: "10.0.0.2".into(), port: 22, user: "root".into(), key: "/k".into() };
        let request = Request::Exec { target, command: "true".into(), timeout_ms: 5 };
        let mut buffer = Vec::new();
        write_line(&mut buffer, &request).await.unwrap();
        write_line(&mut buffer, &Request::Stop).await.unwrap();
        let mut input = tokio::io::BufReader::new(&buffer[..]);
        assert_eq!(read_line::<Request>(&mut input).await.unwrap(), Some(request));
        assert_eq!(read_line::<Request>(&mut input).await.unwrap(), Some(Request::Stop));
        assert_eq!(read_line::<Request>(&mut input).await.unwrap(), None);
    }

    #[tokio::test]
    async fn a_cut_line_is_an_error_not_a_message() {
        let mut input = tokio::io::BufReader::new(&b"{\"stop\""[..]);
        assert!(read_line::<Request>(&mut input).await.is_err());
        let mut garbage = tokio::io::BufReader::new(&b"nonsense\n"[..]);
        assert!(read_line::<Request>(&mut garbage).await.is_err());
    }
}
