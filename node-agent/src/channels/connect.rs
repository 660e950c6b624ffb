//! The connector: the writing end's agent connects to the reading end's
//! agent and runs the connector's side of the handshake, retrying until the
//! session's channel deadline.
//!
//! Attempts that may succeed later are retried with backoff (50 ms doubling
//! to 1 s): nothing listens yet, the connection broke, or the other agent has
//! no session waiting for the channel yet (it holds our hello up to its
//! `HOLD_TIME` first, so the usual race costs no retry at all). Answers that
//! cannot change — the other end refused our key, or could not prove it holds
//! the key, or speaks another protocol version — end the wait at once.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::time::{sleep_until, timeout_at, Instant};

use super::listen::HANDSHAKE_TIME;
use super::registry::ChannelId;
use super::wire::{self, ChannelKey, Message, Refusal, Role, Transcript, WireError};

/// Why no connection was made.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The deadline passed; `last` is the latest attempt's failure.
    #[error("{last}")]
    Timeout {
        /// The latest attempt's failure.
        last: String,
    },
    /// The other agent's answer means retrying cannot help.
    #[error("{0}")]
    Refused(String),
}

enum Failure {
    Retry(String),
    Fatal(String),
}

fn retry(step: &'static str) -> impl FnOnce(WireError) -> Failure {
    move |e| Failure::Retry(format!("{step}: {}", zerolab_sandbox::session::error_chain(&e)))
}

/// Connects to `address` for channel `id` by `deadline`.
pub async fn connect(
    address: SocketAddr,
    id: &ChannelId,
    key: &ChannelKey,
    deadline: Instant,
) -> Result<std::net::TcpStream, ConnectError> {
    let mut pause = Duration::from_millis(50);
    let mut last = "no attempt finished".to_string();
    while Instant::now() < deadline {
        match attempt(address, id, key, deadline).await {
            Ok(stream) => return Ok(stream),
            Err(Failure::Fatal(why)) => return Err(ConnectError::Refused(why)),
            Err(Failure::Retry(why)) => {
                tracing::debug!(%address, %id, "channel connect attempt failed: {why}");
                last = why;
            }
        }
        sleep_until(deadline.min(Instant::now() + pause)).await;
        pause = (pause * 2).min(Duration::from_secs(1));
    }
    Err(ConnectError::Timeout { last })
}

/// One attempt: the connector's side of the handshake, step by step.
async fn attempt(
    address: SocketAddr,
    id: &ChannelId,
    key: &ChannelKey,
    deadline: Instant,
) -> Result<std::net::TcpStream, Failure> {
    let step = deadline.min(Instant::now() + HANDSHAKE_TIME);
    // 1. The connection, by the deadline.
    let mut stream = match timeout_at(step, TcpStream::connect(address)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return Err(Failure::Retry(format!("connect: {e}"))),
        Err(_) => return Err(Failure::Retry("connect: no answer in time".into())),
    };
    // Small handshake messages go out at once; `handover` turns Nagle back on.
    stream.set_nodelay(true).map_err(|e| Failure::Retry(format!("socket option: {e}")))?;
    // 2. The hello: the channel, and our fresh nonce (so no recorded answer
    //    of the listener can be replayed to us).
    let ours = wire::nonce().map_err(|e| Failure::Fatal(e.to_string()))?;
    let hello = Message::Hello { nonce: ours, job: id.job.clone(), channel: id.channel.clone() };
    wire::write(&mut stream, &hello, step).await.map_err(retry("hello"))?;
    // 3. Its nonce, or "not yet" (no session there waits for the channel).
    let theirs = match wire::read(&mut stream, step).await.map_err(retry("challenge"))? {
        Message::Challenge(n) => n,
        Message::NotYet => return Err(Failure::Retry("no session there waits for this channel yet".into())),
        Message::Refused(Refusal::Version) => {
            return Err(Failure::Fatal(
                "it speaks another protocol version; run one zerolab-agent build on every node".into(),
            ))
        }
        _ => return Err(Failure::Retry("challenge: an unexpected answer".into())),
    };
    let t = Transcript { job: &id.job, channel: &id.channel, connector: &ours, listener: &theirs };
    // 4. Our proof of the key, for this channel and both nonces.
    wire::write(&mut stream, &Message::Proof(t.proof(key, Role::Connect)), step).await.map_err(retry("proof"))?;
    // 5. Its proof, checked in constant time.
    match wire::read(&mut stream, step).await.map_err(retry("accept"))? {
        Message::Accept(mac) if t.verify(key, Role::Accept, &mac) => {}
        Message::Accept(_) => {
            return Err(Failure::Fatal(
                "it did not prove it holds the channel's key (another key, or not this job's agent)".into(),
            ))
        }
        Message::Refused(Refusal::Key) => {
            return Err(Failure::Fatal("it refused our key: the two ends were given different keys".into()))
        }
        _ => return Err(Failure::Retry("accept: an unexpected answer".into())),
    }
    // 6. Our confirmation: from here the connection is the channel's.
    wire::write(&mut stream, &Message::Confirm, step).await.map_err(retry("confirmation"))?;
    // 7. The bare socket, for the guest.
    super::handover(stream).map_err(|e| Failure::Fatal(format!("socket hand-over: {e}")))
}
