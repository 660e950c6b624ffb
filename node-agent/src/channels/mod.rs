//! Channels between guests: pipes between sessions of this agent, and
//! authenticated TCP connections between agents, handed to guests as bare
//! descriptors.
//!
//! [`Hub`] owns the agent's channel listener (`--channel-port`) and the
//! [`registry`] of channel ends waiting for their other end. A session with
//! channels goes through two steps:
//! 1. [`Hub::prepare`], in the `POST /v1/sessions` handler: the requests are
//!    checked (`spec.rs`), reading ends across nodes and local channel ends are
//!    registered (so a conflict is the request's error, answered at once);
//! 2. [`Pending::wait`], on the session's own thread: connectors run
//!    (`connect.rs`), registered ends are waited for, all until the session's
//!    `channel_wait_secs` deadline or a kill, whichever comes first.
//!
//! The design decision that matters: after the handshake nothing sits
//! between the two guests. The socket (or pipe) is the guest's channel
//! descriptor, a direct channel in the sandbox's terms, so the data path is
//! guest → kernel → guest with no copy in the agent; backpressure is TCP's
//! (or the pipe's), end of stream is the writer guest's exit closing the last
//! descriptor, and the agent's memory does not depend on the traffic.
//! The cost: the agent sees no bytes, so it cannot encrypt them (this kernel
//! offers no kernel TLS), which `docs/agent.md` states plainly.
//!
//! Across nodes the reading end listens and the writing end connects; either
//! may come first (the listener holds a hello for an unknown channel for
//! [`HOLD_TIME`], and the connector retries after a "not yet").

mod connect;
mod listen;
pub mod refusals;
pub mod registry;
pub mod spec;
pub mod wire;

use std::net::SocketAddr;
use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::time::Duration;

use tokio::runtime::Handle;
use tokio::sync::{oneshot, Notify};
use tokio::task::JoinSet;
use tokio::time::{timeout_at, Instant};
use zerolab_sandbox::channel::Channel;
use zerolab_sandbox::manifest::{AccessType, Limits};

use self::registry::{ChannelId, Conflict, LocalEnd, LocalError, Registry};
use self::spec::Peer;
use self::wire::ChannelKey;
use crate::api::{self, ChannelDirection};

pub use self::listen::{HANDSHAKE_TIME, HOLD_TIME, MAX_HANDSHAKES};
pub use self::spec::{MAX_SESSION_CHANNELS, MAX_WAIT_SECS};

/// Why a session's channels could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum ChannelsError {
    /// A request is malformed (the line names the channel and the fix).
    #[error("{0}")]
    Invalid(String),
    /// A request does not fit what other sessions registered.
    #[error(transparent)]
    Conflict(#[from] Conflict),
    /// A reading end across nodes, but no listener.
    #[error("this agent has no channel listener ({0}); restart it with a free --channel-port")]
    NoListener(String),
    /// A local pipe could not be made.
    #[error("cannot make a pipe for a local channel; the agent is out of descriptors, retry later")]
    Pipe(#[source] std::io::Error),
}

impl From<LocalError> for ChannelsError {
    fn from(e: LocalError) -> Self {
        match e {
            LocalError::Conflict(c) => ChannelsError::Conflict(c),
            LocalError::Pipe(io) => ChannelsError::Pipe(io),
            LocalError::Gone => ChannelsError::Pipe(std::io::Error::other("the other end vanished")),
        }
    }
}

/// The agent's channels: listener and registry.
#[derive(Debug)]
pub struct Hub {
    registry: Arc<Registry>,
    refusals: Arc<refusals::Refusals>,
    runtime: Handle,
    /// The bound port, or why there is none.
    port: Result<u16, String>,
}

impl Hub {
    /// Binds the channel listener on `address` and serves it on the current
    /// tokio runtime. If it cannot bind, the agent still runs guests; only
    /// reading ends across nodes are refused (with the cause), and the
    /// failure is logged.
    pub async fn start(address: SocketAddr) -> Hub {
        let registry = Arc::new(Registry::default());
        let refusals = Arc::new(refusals::Refusals::default());
        let port = match tokio::net::TcpListener::bind(address).await.and_then(|l| Ok((l.local_addr()?, l))) {
            Ok((bound, listener)) => {
                tracing::info!(address = %bound, "listening for channels");
                tokio::spawn(listen::serve(listener, Arc::clone(&registry), Arc::clone(&refusals)));
                Ok(bound.port())
            }
            Err(e) => {
                tracing::error!(%address, error = %e, "cannot listen for channels; channels across nodes will fail");
                Err(format!("cannot listen on {address}: {e}"))
            }
        };
        Hub { registry, refusals, runtime: Handle::current(), port }
    }

    /// Connections to the channel port refused since the agent started
    /// (failed or unauthenticated handshakes, and those closed because too
    /// many were in progress).
    pub fn refused_connections(&self) -> u64 {
        self.refusals.total()
    }

    /// The channel port, if the listener runs.
    pub fn port(&self) -> Option<u16> {
        self.port.as_ref().ok().copied()
    }

    /// Checks session `owner`'s channel requests and registers its waiting
    /// ends; the session then calls [`Pending::wait`] on its own thread.
    pub fn prepare(&self, owner: &str, specs: &[api::ChannelSpec], wait_secs: u64) -> Result<Pending, ChannelsError> {
        let checked = spec::check(specs, wait_secs).map_err(ChannelsError::Invalid)?;
        if let (Err(why), true) = (&self.port, checked.iter().any(|c| c.peer == Peer::Listen)) {
            return Err(ChannelsError::NoListener(why.clone()));
        }
        let mut pending = Pending {
            registry: Arc::clone(&self.registry),
            runtime: self.runtime.clone(),
            wait: Duration::from_secs(wait_secs),
            port: self.port(),
            ends: Vec::with_capacity(checked.len()),
            regs: Vec::new(),
        };
        for c in checked {
            let how = match c.peer {
                Peer::Local => match self.registry.local(owner, c.id.clone(), c.key, c.direction)? {
                    LocalEnd::Connected(fd) => How::Ready(fd),
                    LocalEnd::Waiting { end, claimed, reg } => {
                        pending.regs.push((c.id.clone(), reg));
                        How::Local { end, claimed }
                    }
                },
                Peer::Listen => {
                    let (reg, rx) = self.registry.listen(owner, c.id.clone(), c.key)?;
                    pending.regs.push((c.id.clone(), reg));
                    How::Listen { rx, reg }
                }
                Peer::Connect(address) => How::Connect { address, key: c.key },
            };
            pending.ends.push(End { alias: c.alias, direction: c.direction, id: c.id, how });
        }
        Ok(pending)
    }
}

/// One requested channel end and how it gets connected.
#[derive(Debug)]
struct End {
    alias: String,
    direction: ChannelDirection,
    id: ChannelId,
    how: How,
}

#[derive(Debug)]
enum How {
    /// Connected already (the other local session asked first).
    Ready(OwnedFd),
    /// Our pipe end; usable once the other local session takes its end.
    Local { end: OwnedFd, claimed: oneshot::Receiver<()> },
    /// The listener hands the socket over.
    Listen { rx: oneshot::Receiver<std::net::TcpStream>, reg: u64 },
    /// We connect.
    Connect { address: SocketAddr, key: ChannelKey },
}

/// Why one channel end was not connected.
#[derive(Debug, thiserror::Error)]
pub enum EndError {
    /// The writer's connector gave up at the deadline.
    #[error("channel {channel} ({alias}): no connection to {address} within {secs} s (last try: {last})")]
    ConnectTimeout {
        /// Channel id.
        channel: String,
        /// Alias.
        alias: String,
        /// The reader's agent.
        address: SocketAddr,
        /// Seconds waited.
        secs: u64,
        /// The latest attempt's failure.
        last: String,
    },
    /// The other agent's answer ends the wait.
    #[error("channel {channel} ({alias}): {address} refused the connection: {why}")]
    Refused {
        /// Channel id.
        channel: String,
        /// Alias.
        alias: String,
        /// The reader's agent.
        address: SocketAddr,
        /// Its answer.
        why: String,
    },
    /// The reading end was never connected to.
    #[error(
        "channel {channel} ({alias}): no connection from the writer's agent to this agent's channel port {port} \
         within {secs} s{}",
        last.as_ref().map(|l| format!(" ({l})")).unwrap_or_default()
    )]
    ListenTimeout {
        /// Channel id.
        channel: String,
        /// Alias.
        alias: String,
        /// This agent's channel port.
        port: u16,
        /// Seconds waited.
        secs: u64,
        /// The latest refused connection for it, if any.
        last: Option<String>,
    },
    /// The other local session never asked.
    #[error("channel {channel} ({alias}): no session on this node took the other end within {secs} s")]
    LocalTimeout {
        /// Channel id.
        channel: String,
        /// Alias.
        alias: String,
        /// Seconds waited.
        secs: u64,
    },
}

/// Why a session's channels were not all connected.
#[derive(Debug, thiserror::Error)]
pub enum WaitError {
    /// A `DELETE` came while waiting.
    #[error("killed")]
    Killed,
    /// A channel failed (the first); `more` others were still waiting.
    #[error("{first}{}", if *more > 0 { format!("; {more} more channels not connected") } else { String::new() })]
    Channel {
        /// The first failure.
        first: EndError,
        /// Channels still unconnected then.
        more: usize,
    },
    /// The connected descriptor could not become a channel.
    #[error("channel {alias}: cannot use the connected descriptor")]
    Descriptor {
        /// Alias.
        alias: String,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// A waiting task failed (a panic: a bug).
    #[error("agent error while waiting for channels: {0}")]
    Task(String),
}

/// A session's channels, registered and waiting. Dropping it withdraws the
/// ends still registered and closes every descriptor it holds.
#[derive(Debug)]
pub struct Pending {
    registry: Arc<Registry>,
    runtime: Handle,
    wait: Duration,
    port: Option<u16>,
    ends: Vec<End>,
    regs: Vec<(ChannelId, u64)>,
}

impl Drop for Pending {
    fn drop(&mut self) {
        self.registry.unregister(&self.regs);
    }
}

impl Pending {
    /// The aliases of the channels not connected yet, in request order.
    pub fn unconnected(&self) -> Vec<String> {
        self.ends.iter().filter(|e| !matches!(e.how, How::Ready(_))).map(|e| e.alias.clone()).collect()
    }

    /// Blocks the calling (session) thread until every channel is connected,
    /// the wait passes, or `cancel` is notified. `progress` gets the aliases
    /// still unconnected whenever that list changes.
    pub fn wait(mut self, cancel: &Notify, progress: impl FnMut(Vec<String>)) -> Result<Vec<Channel>, WaitError> {
        let ends = std::mem::take(&mut self.ends);
        let deadline = Deadline {
            at: Instant::now() + self.wait,
            secs: self.wait.as_secs(),
            port: self.port.unwrap_or(0),
            registry: Arc::clone(&self.registry),
        };
        self.runtime.block_on(wait_all(ends, deadline, cancel, progress))
        // Dropping `self` withdraws what is still registered.
    }
}

/// What the wait of every end shares.
#[derive(Clone)]
struct Deadline {
    at: Instant,
    secs: u64,
    port: u16,
    registry: Arc<Registry>,
}

async fn wait_all(
    ends: Vec<End>,
    deadline: Deadline,
    cancel: &Notify,
    mut progress: impl FnMut(Vec<String>),
) -> Result<Vec<Channel>, WaitError> {
    let names: Vec<(String, ChannelDirection)> = ends.iter().map(|e| (e.alias.clone(), e.direction)).collect();
    let mut fds: Vec<Option<OwnedFd>> = (0..ends.len()).map(|_| None).collect();
    let mut set = JoinSet::new();
    for (i, End { alias, id, how, .. }) in ends.into_iter().enumerate() {
        match how {
            How::Ready(fd) => fds[i] = Some(fd),
            how => {
                let deadline = deadline.clone();
                set.spawn(async move { connected(how, id, alias, deadline).await.map(|fd| (i, fd)) });
            }
        }
    }
    let unconnected = |fds: &[Option<OwnedFd>]| -> Vec<String> {
        fds.iter().zip(&names).filter(|(fd, _)| fd.is_none()).map(|(_, (a, _))| a.clone()).collect()
    };
    progress(unconnected(&fds));
    // Dropping `set` on any early return aborts the connectors still running.
    loop {
        tokio::select! {
            biased;
            () = cancel.notified() => return Err(WaitError::Killed),
            next = set.join_next() => match next {
                None => break,
                Some(Ok(Ok((i, fd)))) => {
                    fds[i] = Some(fd);
                    progress(unconnected(&fds));
                }
                Some(Ok(Err(first))) => return Err(WaitError::Channel { first, more: set.len() }),
                Some(Err(e)) => return Err(WaitError::Task(e.to_string())),
            },
        }
    }
    into_channels(fds, names)
}

/// One end's descriptor once it is connected, or why not by the deadline.
async fn connected(how: How, id: ChannelId, alias: String, d: Deadline) -> Result<OwnedFd, EndError> {
    let (channel, secs) = (id.channel.clone(), d.secs);
    match how {
        How::Ready(fd) => Ok(fd),
        How::Local { end, claimed } => match timeout_at(d.at, claimed).await {
            Ok(Ok(())) => Ok(end),
            _ => Err(EndError::LocalTimeout { channel, alias, secs }),
        },
        How::Listen { rx, reg } => match timeout_at(d.at, rx).await {
            Ok(Ok(stream)) => Ok(OwnedFd::from(stream)),
            _ => {
                Err(EndError::ListenTimeout { last: d.registry.refusal(&id, reg), channel, alias, port: d.port, secs })
            }
        },
        How::Connect { address, key } => match connect::connect(address, &id, &key, d.at).await {
            Ok(stream) => Ok(OwnedFd::from(stream)),
            Err(connect::ConnectError::Timeout { last }) => {
                Err(EndError::ConnectTimeout { channel, alias, address, secs, last })
            }
            Err(connect::ConnectError::Refused(why)) => Err(EndError::Refused { channel, alias, address, why }),
        },
    }
}

/// The sandbox's channels: sequential, unlimited (so direct), read-only for
/// readers and write-only for writers.
fn into_channels(fds: Vec<Option<OwnedFd>>, names: Vec<(String, ChannelDirection)>) -> Result<Vec<Channel>, WaitError> {
    let read_only = Limits { puts: 0, put_size: 0, ..Limits::UNLIMITED };
    let write_only = Limits { gets: 0, get_size: 0, ..Limits::UNLIMITED };
    fds.into_iter()
        .zip(names)
        .map(|(fd, (alias, direction))| {
            let fd = fd.ok_or_else(|| WaitError::Task(format!("channel {alias} was never connected")))?;
            let limits = if direction == ChannelDirection::In { read_only } else { write_only };
            Channel::from_fd(alias.clone(), AccessType::SeqGetSeqPut, limits, fd)
                .map_err(|source| WaitError::Descriptor { alias, source })
        })
        .collect()
}

/// A pipe for a local channel: close-on-exec both ends (the jail gives the
/// guest its end explicitly), 1 MiB of buffer where the system allows it.
fn pipe() -> std::io::Result<(OwnedFd, OwnedFd)> {
    let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    // Best effort: a bigger pipe means fewer wake-ups; the default 64 KiB works too.
    let _ = nix::fcntl::fcntl(&write, nix::fcntl::FcntlArg::F_SETPIPE_SZ(1 << 20));
    Ok((read, write))
}

/// Keep-alive probes on a channel socket: a reader whose writer's node
/// vanished learns it in about 25 s (10 s idle, then 3 probes 5 s apart),
/// not only at the session's `Timeout`.
fn keepalive() -> socket2::TcpKeepalive {
    socket2::TcpKeepalive::new()
        .with_time(Duration::from_secs(10))
        .with_interval(Duration::from_secs(5))
        .with_retries(3)
}

/// The socket as the guest gets it: blocking (the guest's calls wait for
/// data), Nagle on (a guest's small writes coalesce), keep-alive on.
fn handover(stream: tokio::net::TcpStream) -> std::io::Result<std::net::TcpStream> {
    stream.set_nodelay(false)?;
    socket2::SockRef::from(&stream).set_tcp_keepalive(&keepalive())?;
    let stream = stream.into_std()?;
    stream.set_nonblocking(false)?;
    Ok(stream)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn end(peer: api::ChannelPeer, direction: ChannelDirection) -> api::ChannelSpec {
        api::ChannelSpec {
            alias: "/dev/in/w".into(),
            direction,
            job: "j".into(),
            channel: "w>r".into(),
            key: "ab".repeat(32),
            peer,
        }
    }

    #[tokio::test]
    async fn a_hub_that_cannot_listen_refuses_only_reading_ends_across_nodes() {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let hub = Hub::start(taken.local_addr().unwrap()).await;
        assert_eq!(hub.port(), None);
        let err = hub.prepare("s1", &[end(api::ChannelPeer::Listen, ChannelDirection::In)], 5).unwrap_err();
        assert!(matches!(err, ChannelsError::NoListener(_)), "{err}");
        assert!(err.to_string().contains("--channel-port"), "{err}");
        let local = hub.prepare("s1", &[end(api::ChannelPeer::Local, ChannelDirection::In)], 5).unwrap();
        assert_eq!(local.unconnected(), ["/dev/in/w"]);
    }

    #[tokio::test]
    async fn a_refused_request_leaves_nothing_registered() {
        let hub = Hub::start("127.0.0.1:0".parse().unwrap()).await;
        assert!(hub.port().is_some_and(|p| p != 0));
        let listen = end(api::ChannelPeer::Listen, ChannelDirection::In);
        let bad =
            api::ChannelSpec { alias: "/dev/in/x".into(), channel: "x>r".into(), key: "no".into(), ..listen.clone() };
        let err = hub.prepare("s1", &[listen.clone(), bad], 5).unwrap_err();
        assert!(matches!(err, ChannelsError::Invalid(_)), "{err}");
        let first = hub.prepare("s2", std::slice::from_ref(&listen), 5).unwrap();
        assert!(matches!(hub.prepare("s3", std::slice::from_ref(&listen), 5), Err(ChannelsError::Conflict(_))));
        drop(first);
        assert!(hub.prepare("s3", &[listen], 5).is_ok(), "dropping a pending session withdraws its ends");
    }
}
