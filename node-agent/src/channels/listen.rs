//! The channel listener: accepts connections from other agents on the
//! channel port and runs the listener's side of the handshake.
//!
//! Each connection gets its own task, at most [`MAX_HANDSHAKES`] at once
//! (more are closed at once) and at most [`HANDSHAKE_TIME`] from accept to
//! hand-over, so a client that sends garbage, stalls or never speaks costs
//! one task for a few seconds and never delays anyone else. A connection
//! that fails is closed and counted, and logged with the peer's address and
//! the reason within the bounds of [`Refusals`] (a flood of bad connections
//! cannot fill the disk with log lines); only one that passed every step
//! reaches a session, and then as the bare socket: the agent copies no data.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::time::{timeout_at, Instant};

use super::refusals::{Kind, Refusals};
use super::registry::{ChannelId, Registry};
use super::wire::{self, Message, Refusal, Role, Transcript, WireError};

/// Longest a connection may take from accept to hand-over.
pub const HANDSHAKE_TIME: Duration = Duration::from_secs(5);
/// Longest a hello for a channel no session waits for yet is held before
/// the answer is [`Message::NotYet`] (the connector then retries).
pub const HOLD_TIME: Duration = Duration::from_secs(2);
/// Handshakes in progress at once; connections beyond are closed at once.
pub const MAX_HANDSHAKES: usize = 256;

/// Why a connection was closed before it reached a session.
#[derive(Debug, thiserror::Error)]
pub enum Rejected {
    /// Reading or writing a frame failed.
    #[error("{step}")]
    Wire {
        /// What was being read or written.
        step: &'static str,
        /// Cause.
        #[source]
        source: WireError,
    },
    /// A message out of turn.
    #[error("expected {expected}, got another message")]
    Unexpected {
        /// What was expected.
        expected: &'static str,
    },
    /// No session waits for the channel.
    #[error("{0}: no session waits for it here (told to retry)")]
    NotYet(ChannelId),
    /// The proof did not verify.
    #[error("{0}: wrong key (the proof did not verify)")]
    Key(ChannelId),
    /// The channel was connected meanwhile, or its session stopped waiting.
    #[error("{0}: already connected or no longer waited for")]
    Taken(ChannelId),
    /// No nonce or socket options.
    #[error("local failure")]
    Local(#[source] std::io::Error),
}

impl Rejected {
    /// Its kind, for the bounded log.
    fn kind(&self) -> Kind {
        match self {
            Rejected::Wire { .. } | Rejected::NotYet(_) => Kind::Wire,
            Rejected::Unexpected { .. } => Kind::Unexpected,
            Rejected::Key(_) => Kind::Key,
            Rejected::Taken(_) => Kind::Taken,
            Rejected::Local(_) => Kind::Local,
        }
    }
}

fn wire(step: &'static str) -> impl FnOnce(WireError) -> Rejected {
    move |source| Rejected::Wire { step, source }
}

/// Accepts channel connections until the runtime stops; refusals are
/// counted and logged through `refusals`.
pub async fn serve(listener: TcpListener, registry: Arc<Registry>, refusals: Arc<Refusals>) {
    let slots = Arc::new(Semaphore::new(MAX_HANDSHAKES));
    let flusher = Arc::clone(&refusals);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Refusals::INTERVAL);
        tick.tick().await; // the first tick is immediate
        loop {
            tick.tick().await;
            flusher.flush();
        }
    });
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of descriptors, most likely: back off instead of spinning.
                tracing::warn!(error = %e, "channel listener cannot accept; retrying in 100 ms");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            drop(stream);
            refusals.refused(peer, Kind::Busy, &format!("{MAX_HANDSHAKES} handshakes already in progress"));
            continue;
        };
        let registry = Arc::clone(&registry);
        let refusals = Arc::clone(&refusals);
        tokio::spawn(async move {
            match accept(stream, peer, &registry).await {
                Ok(id) => tracing::info!(%peer, %id, "channel connected"),
                // Part of the protocol (the connector retries), not a refusal.
                Err(e @ Rejected::NotYet(_)) => tracing::debug!(%peer, "channel connection closed: {e}"),
                Err(e) => refusals.refused(peer, e.kind(), &zerolab_sandbox::session::error_chain(&e)),
            }
            drop(slot);
        });
    }
}

/// The listener's side of the handshake, step by step (see `wire` for the
/// messages). The socket reaches a session only after the last step.
async fn accept(mut stream: TcpStream, peer: SocketAddr, registry: &Registry) -> Result<ChannelId, Rejected> {
    let deadline = Instant::now() + HANDSHAKE_TIME;
    // 1. The hello: which channel, and the connector's nonce. A bounded frame
    //    by the deadline, or the connection is dropped unanswered.
    let (their_nonce, id) = match wire::read(&mut stream, deadline).await {
        Ok(Message::Hello { nonce, job, channel }) => (nonce, ChannelId { job, channel }),
        Ok(_) => return Err(Rejected::Unexpected { expected: "a hello" }),
        Err(WireError::Version(v)) => {
            let _ = wire::write(&mut stream, &Message::Refused(Refusal::Version), deadline).await;
            return Err(wire("hello")(WireError::Version(v)));
        }
        Err(e) => return Err(wire("hello")(e)),
    };
    // 2. The channel's key, waiting up to HOLD_TIME for its session to
    //    register: order between the two agents does not matter.
    let Some((reg, key)) = registered(registry, &id).await else {
        let _ = wire::write(&mut stream, &Message::NotYet, deadline).await;
        return Err(Rejected::NotYet(id));
    };
    // 3. Our fresh nonce: the connector's proof must be made for it, so no
    //    recorded proof can be replayed.
    let our_nonce = wire::nonce().map_err(Rejected::Local)?;
    wire::write(&mut stream, &Message::Challenge(our_nonce), deadline).await.map_err(wire("challenge"))?;
    let t = Transcript { job: &id.job, channel: &id.channel, connector: &their_nonce, listener: &our_nonce };
    // 4. Their proof, checked in constant time, before we prove anything.
    let Message::Proof(mac) = wire::read(&mut stream, deadline).await.map_err(wire("proof"))? else {
        return Err(Rejected::Unexpected { expected: "a proof" });
    };
    if !t.verify(&key, Role::Connect, &mac) {
        let _ = wire::write(&mut stream, &Message::Refused(Refusal::Key), deadline).await;
        registry.note_refusal(&id, reg, format!("a connection from {peer} had the wrong key"));
        return Err(Rejected::Key(id));
    }
    // 5. Our proof, under the other label so it cannot be reflected back.
    let ours = Message::Accept(t.proof(&key, Role::Accept));
    wire::write(&mut stream, &ours, deadline).await.map_err(wire("accept"))?;
    // 6. Their confirmation that our proof checked out: only now is the
    //    connection the channel's.
    match wire::read(&mut stream, deadline).await.map_err(wire("confirmation"))? {
        Message::Confirm => {}
        _ => return Err(Rejected::Unexpected { expected: "a confirmation" }),
    }
    // 7. Hand the socket itself to the session; it closes our copy once its
    //    guest holds the descriptor.
    let stream = super::handover(stream).map_err(Rejected::Local)?;
    registry.deliver(&id, reg, stream).map_err(|_| Rejected::Taken(id.clone()))?;
    Ok(id)
}

/// The key of `id`'s waiting session, waiting up to [`HOLD_TIME`] for one.
async fn registered(registry: &Registry, id: &ChannelId) -> Option<(u64, wire::ChannelKey)> {
    let until = Instant::now() + HOLD_TIME;
    loop {
        // Made before the lookup, so a registration in between still wakes us.
        let woken = registry.registered.notified();
        if let Some(found) = registry.listen_key(id) {
            return Some(found);
        }
        timeout_at(until, woken).await.ok()?;
    }
}
