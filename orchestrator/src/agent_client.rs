//! Talking to a node's `zerolab-agent`: HTTP/1.1 over its Unix socket, reached through
//! the node's SSH connection (a `direct-streamlocal` channel, see [`Session::open_streamlocal`]),
//! either one this process holds or the one the lab's keeper holds ([`Link`]).
//!
//! ```no_run
//! # async fn run(session: &zerolab::ssh::Session) -> Result<(), zerolab::agent_client::AgentError> {
//! use std::time::Duration;
//! use zerolab::agent_client;
//! let version = agent_client::version(session, Duration::from_secs(5)).await?;
//! println!("{} ({})", version.version, version.build);
//! # Ok(())
//! # }
//! ```
//!
//! Design: one short-lived HTTP connection per request, on its own SSH channel. Channels
//! are cheap on the open SSH connection, and a fresh one per request means a dead or
//! restarted agent never leaves a half-used HTTP connection behind. The agent's API
//! types (blob names as [`Sha256`](api::Sha256) included) come from the
//! `zerolab-agent-api` crate, so both sides agree on them by construction.
//! Answers of the API are small and read whole; a session's outputs can be as large as
//! the guest made them, so [`save_session_output`] streams them to a file piece by
//! piece (memory stays flat whatever their size), and an error answer is read only up
//! to [`MAX_ERROR_BODY`].

use std::time::Duration;

use futures_util::StreamExt;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Bytes;
use hyper::body::Frame;
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde::de::DeserializeOwned;
use zerolab_agent_api as api;

use hyper::body::Incoming;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

use crate::keeper::{FailureKind, Keeper, KeeperError};
use crate::ssh::{self, Session, Target};

/// Where the agent listens on every node.
pub const SOCKET: &str = "/run/zerolab/agent.sock";
/// Largest error answer read; the rest is dropped (an error is one line of JSON).
pub const MAX_ERROR_BODY: usize = 64 << 10;

/// What went wrong asking a node's agent.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// Nothing listens on the agent's socket: the node refused to connect to it.
    #[error("agent socket {SOCKET} not reachable: no agent listens there; `zerolab up` starts it")]
    NotListening,
    /// The SSH channel to the agent's socket could not be opened (the connection failed).
    #[error("agent socket {SOCKET} not reachable")]
    Connect(#[source] ssh::Error),
    /// The lab's keeper could not open the channel to the agent's socket.
    #[error("agent socket {SOCKET} not reachable")]
    Unreached(#[source] crate::keeper::Failure),
    /// The lab's keeper itself could not be asked.
    #[error(transparent)]
    Keeper(#[from] KeeperError),
    /// The HTTP exchange failed (the agent closed the connection, ...).
    #[error("agent request {method} {path} failed")]
    Http {
        method: Method,
        path: String,
        #[source]
        source: hyper::Error,
    },
    /// The agent answered with an error status.
    #[error("agent answered {method} {path} with {status}: {message}")]
    Status { method: Method, path: String, status: StatusCode, message: String },
    /// The answer is not the expected JSON.
    #[error("agent answered {method} {path} with a body that is not the expected JSON")]
    Body {
        method: Method,
        path: String,
        #[source]
        source: serde_json::Error,
    },
    /// No answer in time.
    #[error("agent did not answer {method} {path} within {timeout:?}")]
    Timeout { method: Method, path: String, timeout: Duration },
    /// The health check answered, but not `ok`.
    #[error("agent reports health `{status}`")]
    Unhealthy { status: String },
}

/// Why a streamed output could not be saved: the agent, or the local file.
#[derive(Debug, thiserror::Error)]
pub enum SaveError {
    /// Asking the agent failed.
    #[error(transparent)]
    Agent(#[from] AgentError),
    /// Writing what it sent failed.
    #[error("cannot write the output locally")]
    Write(#[source] std::io::Error),
}

/// How requests reach a node's agent.
#[derive(Clone, Copy)]
pub enum Link<'a> {
    /// Over an SSH connection this process holds.
    Session(&'a Session),
    /// Over the connection the lab's keeper holds to this node.
    Keeper(&'a Keeper, &'a Target),
}

impl<'a> From<&'a Session> for Link<'a> {
    fn from(session: &'a Session) -> Link<'a> {
        Link::Session(session)
    }
}

/// A byte stream to the agent's socket, however it was reached.
trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

impl Link<'_> {
    async fn open(self) -> Result<Box<dyn Io>, AgentError> {
        match self {
            Link::Session(session) => match session.open_streamlocal(SOCKET).await {
                Ok(stream) => Ok(Box::new(stream)),
                // sshd's answer when its connect(2) to the socket fails: no agent there.
                Err(ssh::Error::Ssh { ref source, .. })
                    if matches!(
                        **source,
                        russh::Error::ChannelOpenFailure(russh::ChannelOpenFailure::ConnectFailed)
                    ) =>
                {
                    Err(AgentError::NotListening)
                }
                Err(e) => Err(AgentError::Connect(e)),
            },
            Link::Keeper(mux, target) => match mux.stream(target, SOCKET).await? {
                Ok(stream) => Ok(Box::new(stream)),
                Err(failure) if failure.kind == FailureKind::Refused => Err(AgentError::NotListening),
                Err(failure) => Err(AgentError::Unreached(failure)),
            },
        }
    }
}

/// `GET /v1/health`; `Ok` only when the agent says `ok`.
pub async fn health(link: impl Into<Link<'_>>, timeout: Duration) -> Result<(), AgentError> {
    health_report(link, timeout).await.map(drop)
}

/// `GET /v1/health` with what the agent reports (its store's size among it); `Ok`
/// only when the agent says `ok`.
pub async fn health_report(link: impl Into<Link<'_>>, timeout: Duration) -> Result<api::Health, AgentError> {
    let health: api::Health = get(link, "/v1/health", timeout).await?;
    if health.status == "ok" {
        Ok(health)
    } else {
        Err(AgentError::Unhealthy { status: health.status })
    }
}

/// `GET /v1/version`.
pub async fn version(link: impl Into<Link<'_>>, timeout: Duration) -> Result<api::Version, AgentError> {
    get(link, "/v1/version", timeout).await
}

/// `PUT /v1/blobs/{sha256}`: stores `bytes` (whose SHA-256 is `sha256`) on the node.
pub async fn put_blob(
    link: impl Into<Link<'_>>,
    sha256: &api::Sha256,
    bytes: Bytes,
    timeout: Duration,
) -> Result<api::BlobStored, AgentError> {
    let path = format!("/v1/blobs/{sha256}");
    json(&path, Method::PUT, request(link, Method::PUT, &path, bytes, timeout).await?)
}

/// `PUT /v1/blobs/{sha256}` of a file, streamed from disk in 256 KiB pieces (a blob may
/// be larger than this machine would like to hold; the agent streams it to disk too).
pub async fn put_blob_file(
    link: impl Into<Link<'_>>,
    sha256: &api::Sha256,
    file: tokio::fs::File,
    timeout: Duration,
) -> Result<api::BlobStored, AgentError> {
    let path = format!("/v1/blobs/{sha256}");
    let length = file.metadata().await.map(|m| m.len()).ok();
    let frames = tokio_util::io::ReaderStream::with_capacity(file, 256 << 10).map(|chunk| chunk.map(Frame::data));
    let body = BodyExt::boxed(StreamBody::new(frames));
    json(&path, Method::PUT, send(link.into(), Method::PUT, &path, body, length, timeout).await?)
}

/// `POST /v1/sessions`: starts one guest.
pub async fn start_session(
    link: impl Into<Link<'_>>,
    body: &api::SessionRequest,
    timeout: Duration,
) -> Result<api::SessionCreated, AgentError> {
    let body = Bytes::from(serde_json::to_vec(body).expect("a session request serializes"));
    let path = "/v1/sessions";
    json(path, Method::POST, request(link, Method::POST, path, body, timeout).await?)
}

/// `GET /v1/sessions/{id}/stdout` or `/stderr`: what the guest wrote so far, raw.
pub async fn session_output(
    link: impl Into<Link<'_>>,
    id: &str,
    stream: &str,
    timeout: Duration,
) -> Result<Bytes, AgentError> {
    request(link, Method::GET, &format!("/v1/sessions/{id}/{stream}"), Bytes::new(), timeout).await
}

/// `GET /v1/sessions/{id}/{stream}` (`stdout`, `stderr`, `output`) written to `out` as
/// it arrives, one piece at a time: the orchestrator's memory does not grow with the
/// output. The answer must start within `timeout`, and no piece may take longer than
/// `timeout` after the one before (a large output may take as long as it needs while
/// it flows). Returns the bytes written; `out` is flushed.
pub async fn save_session_output<W: AsyncWrite + Unpin>(
    link: impl Into<Link<'_>>,
    id: &str,
    stream: &str,
    out: &mut W,
    timeout: Duration,
) -> Result<u64, SaveError> {
    Ok(follow_session_output(link, id, stream, 0, out, timeout).await?.bytes)
}

/// What one read of a followed output gave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Followed {
    /// The bytes written (those from the offset on).
    pub bytes: u64,
    /// The session had ended before the read: nothing follows these bytes.
    pub ended: bool,
}

/// As [`save_session_output`], from byte `offset` on
/// (`GET /v1/sessions/{id}/{stream}?offset=N`): a follower reads only what is new, and
/// learns from the agent's [`api::SESSION_STATE_HEADER`] when it read the last piece.
pub async fn follow_session_output<W: AsyncWrite + Unpin>(
    link: impl Into<Link<'_>>,
    id: &str,
    stream: &str,
    offset: u64,
    out: &mut W,
    timeout: Duration,
) -> Result<Followed, SaveError> {
    let path = match offset {
        0 => format!("/v1/sessions/{id}/{stream}"),
        _ => format!("/v1/sessions/{id}/{stream}?offset={offset}"),
    };
    let timed_out = || AgentError::Timeout { method: Method::GET, path: path.clone(), timeout };
    let http = |source| AgentError::Http { method: Method::GET, path: path.clone(), source };
    let head = respond(link.into(), Method::GET, &path, full(Bytes::new()), Some(0));
    let response = tokio::time::timeout(timeout, head).await.map_err(|_| timed_out())??;
    let ended = response.headers().get(api::SESSION_STATE_HEADER).is_some_and(|state| state == "done");
    let mut body = response.into_body();
    let mut written = 0u64;
    while let Some(frame) = tokio::time::timeout(timeout, body.frame()).await.map_err(|_| timed_out())? {
        if let Ok(data) = frame.map_err(http)?.into_data() {
            out.write_all(&data).await.map_err(SaveError::Write)?;
            written += data.len() as u64;
        }
    }
    out.flush().await.map_err(SaveError::Write)?;
    Ok(Followed { bytes: written, ended })
}

/// `HEAD /v1/blobs/{sha256}`: whether the node already stores that blob.
pub async fn blob_stored(
    link: impl Into<Link<'_>>,
    sha256: &api::Sha256,
    timeout: Duration,
) -> Result<bool, AgentError> {
    match request(link, Method::HEAD, &format!("/v1/blobs/{sha256}"), Bytes::new(), timeout).await {
        Ok(_) => Ok(true),
        Err(AgentError::Status { status: StatusCode::NOT_FOUND, .. }) => Ok(false),
        Err(e) => Err(e),
    }
}

/// `GET /v1/sessions`: every session the agent knows, oldest first.
pub async fn sessions(link: impl Into<Link<'_>>, timeout: Duration) -> Result<api::SessionList, AgentError> {
    get(link, "/v1/sessions", timeout).await
}

/// `GET /v1/sessions/{id}`: a session's state, and its report once done.
pub async fn session_status(
    link: impl Into<Link<'_>>,
    id: &str,
    timeout: Duration,
) -> Result<api::SessionStatus, AgentError> {
    get(link, &format!("/v1/sessions/{id}"), timeout).await
}

/// `DELETE /v1/sessions/{id}`: kills a session's guest (a finished one stays as it was).
pub async fn kill_session(
    link: impl Into<Link<'_>>,
    id: &str,
    timeout: Duration,
) -> Result<api::SessionStatus, AgentError> {
    let path = format!("/v1/sessions/{id}");
    json(&path, Method::DELETE, request(link, Method::DELETE, &path, Bytes::new(), timeout).await?)
}

/// `POST /v1/leases`: renews the leases of `sessions` (each for its own lease's length
/// from now); which were renewed and which not (unknown, done, or without a lease).
pub async fn renew_leases(
    link: impl Into<Link<'_>>,
    sessions: Vec<String>,
    timeout: Duration,
) -> Result<api::LeasesRenewed, AgentError> {
    let body = Bytes::from(serde_json::to_vec(&api::LeaseRenewal { sessions }).expect("a renewal serializes"));
    let path = "/v1/leases";
    json(path, Method::POST, request(link, Method::POST, path, body, timeout).await?)
}

/// `GET path` on the agent, decoded as `T`, within `timeout`.
pub async fn get<T: DeserializeOwned>(
    link: impl Into<Link<'_>>,
    path: &str,
    timeout: Duration,
) -> Result<T, AgentError> {
    json(path, Method::GET, request(link, Method::GET, path, Bytes::new(), timeout).await?)
}

fn json<T: DeserializeOwned>(path: &str, method: Method, body: Bytes) -> Result<T, AgentError> {
    serde_json::from_slice(&body).map_err(|source| AgentError::Body { method, path: path.to_owned(), source })
}

/// `method path` with `body` on the agent, within `timeout`: the answer's body when its
/// status is a success, the agent's error otherwise.
pub async fn request(
    link: impl Into<Link<'_>>,
    method: Method,
    path: &str,
    body: Bytes,
    timeout: Duration,
) -> Result<Bytes, AgentError> {
    let length = Some(body.len() as u64);
    send(link.into(), method, path, full(body), length, timeout).await
}

/// A request body held whole in memory.
fn full(body: Bytes) -> BoxBody<Bytes, std::io::Error> {
    Full::new(body).map_err(|never| match never {}).boxed()
}

/// One request with `body` (of `length` bytes, when known) on a fresh connection,
/// within `timeout`.
async fn send(
    link: Link<'_>,
    method: Method,
    path: &str,
    body: BoxBody<Bytes, std::io::Error>,
    length: Option<u64>,
    timeout: Duration,
) -> Result<Bytes, AgentError> {
    match tokio::time::timeout(timeout, send_now(link, method.clone(), path, body, length)).await {
        Ok(result) => result,
        Err(_) => Err(AgentError::Timeout { method, path: path.to_owned(), timeout }),
    }
}

async fn send_now(
    link: Link<'_>,
    method: Method,
    path: &str,
    body: BoxBody<Bytes, std::io::Error>,
    length: Option<u64>,
) -> Result<Bytes, AgentError> {
    let http = |source| AgentError::Http { method: method.clone(), path: path.to_owned(), source };
    let response = respond(link, method.clone(), path, body, length).await?;
    Ok(response.into_body().collect().await.map_err(http)?.to_bytes())
}

/// Sends one request on a fresh connection and returns the answer once its head
/// arrived with a success status, its body not yet read; an error status becomes
/// [`AgentError::Status`] with the agent's message (at most [`MAX_ERROR_BODY`] read).
async fn respond(
    link: Link<'_>,
    method: Method,
    path: &str,
    body: BoxBody<Bytes, std::io::Error>,
    length: Option<u64>,
) -> Result<hyper::Response<Incoming>, AgentError> {
    let http = |source| AgentError::Http { method: method.clone(), path: path.to_owned(), source };
    let stream = link.open().await?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.map_err(http)?;
    // The connection task ends when the request is done and `sender` is dropped.
    tokio::spawn(connection);
    let mut request = Request::builder().method(method.clone()).uri(path).header("host", "agent");
    if let Some(length) = length {
        request = request.header("content-length", length);
    }
    let request = request.body(body).expect("a valid request");
    let response = sender.send_request(request).await.map_err(http)?;
    let status = response.status();
    if !status.is_success() {
        let mut body = response.into_body();
        let mut text = Vec::new();
        while let Some(frame) = body.frame().await {
            if let Ok(data) = frame.map_err(http)?.into_data() {
                text.extend_from_slice(&data[..data.len().min(MAX_ERROR_BODY - text.len())]);
                if text.len() == MAX_ERROR_BODY {
                    break;
                }
            }
        }
        let message = serde_json::from_slice::<api::ErrorBody>(&text)
            .map(|e| e.error)
            .unwrap_or_else(|_| String::from_utf8_lossy(&text).trim().to_owned());
        return Err(AgentError::Status { method, path: path.to_owned(), status, message });
    }
    Ok(response)
}
