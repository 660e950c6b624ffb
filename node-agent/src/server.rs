//! The HTTP server: axum router over a Unix socket, and the node's facts.
//!
//! [`serve`] starts the channel listener ([`Hub::start`]), binds the socket
//! (parent directory 0700 when it creates it, socket 0600), builds
//! [`AppState`], sweeps it every [`Retention::sweep_period`] (finished sessions
//! expired, blobs collected), kills the sessions whose lease ran out every
//! [`LEASE_CHECK_PERIOD`], and runs [`router`] until the future given to it resolves. Handlers never unwrap: every failure becomes an
//! [`ApiError`] — a status and an [`api::ErrorBody`] with one actionable line.
//! Request bodies are parsed by hand (not with axum's `Json` extractor) so a
//! malformed body gets the same JSON error shape as everything else.

use std::net::SocketAddr;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use axum::body::{Body, Bytes};
use axum::extract::{Path as UrlPath, RawQuery, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use http_body_util::BodyExt;
use zerolab_sandbox::session::Options;

use crate::api::{self, ParseSha256Error, Sha256};
use crate::blobs::{BlobError, BlobWriter, Blobs};
use crate::channels::{ChannelsError, Hub};
use crate::devices::DevicesError;
use crate::fetch::Fetcher;
use crate::sessions::lease::LEASE_CHECK_PERIOD;
use crate::sessions::{Output, Sessions, SessionsError};
use crate::state::{create_private_dir, Retention, StateDir};

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The state directory could not be prepared.
    #[error("cannot prepare state directory {}", path.display())]
    State {
        /// Directory.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// The socket could not be bound.
    #[error("cannot listen on {}", path.display())]
    Bind {
        /// Socket path.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// Serving failed.
    #[error("serving {} failed", path.display())]
    Serve {
        /// Socket path.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
}

/// What every handler shares.
#[derive(Debug)]
pub struct AppState {
    blobs: Blobs,
    sessions: Sessions,
    hub: Option<Arc<Hub>>,
    /// SHA-256 of the running binary, hashed once (off the request path).
    build: Arc<OnceLock<String>>,
}

impl AppState {
    /// State under `state_dir` (`blobs/`, `sessions/`) kept within `retention`;
    /// sessions may have channels when there is a `hub`, and URL devices when this is
    /// called on a tokio runtime (which fetches them).
    pub fn new(
        state_dir: &Path,
        opts: Options,
        hub: Option<Arc<Hub>>,
        retention: Retention,
    ) -> std::io::Result<AppState> {
        let dirs = StateDir::open(state_dir)?;
        let blobs = Blobs::with_limit(dirs.blobs(), retention.blob_store_limit, retention.blob_min_age)?;
        let fetcher = tokio::runtime::Handle::try_current().ok().map(|runtime| Fetcher::new(blobs.clone(), runtime));
        let mut sessions =
            Sessions::new(dirs.sessions(), blobs.clone(), fetcher, opts)?.with_ttl(retention.session_ttl);
        if let Some(hub) = &hub {
            sessions = sessions.with_hub(Arc::clone(hub));
        }
        let build = Arc::new(OnceLock::new());
        // Hash the binary in the background so the socket answers at once.
        let early = Arc::clone(&build);
        std::thread::spawn(move || early.get_or_init(binary_hash).len());
        Ok(AppState { blobs, sessions, hub, build })
    }

    /// Expires finished sessions past their TTL, then collects blobs if the store is
    /// over its limit (sessions first: an expired session may have held the last pin).
    pub fn sweep(&self) {
        self.sessions.expire(std::time::Instant::now());
        self.blobs.collect();
    }

    /// The store's and the sessions' figures for `GET /v1/health`.
    fn store_stats(&self) -> api::StoreStats {
        let usage = self.blobs.usage();
        let counts = self.sessions.counts();
        api::StoreStats {
            blobs: usage.blobs,
            blob_bytes: usage.bytes,
            blob_limit_bytes: usage.limit,
            blobs_collected: usage.collected,
            sessions_live: counts.live,
            sessions_finished: counts.finished,
            sessions_expired: counts.expired,
            session_ttl_secs: self.sessions.ttl().as_secs(),
        }
    }
}

/// SHA-256 of `/proc/self/exe`, or `unknown` if it cannot be read. Streamed: a
/// debug build is over 100 MB, which should not sit in the agent's memory.
fn binary_hash() -> String {
    std::fs::File::open("/proc/self/exe")
        .and_then(|mut f| Sha256::of_reader(&mut f))
        .map_or_else(|_| "unknown".into(), |sha| sha.to_string())
}

async fn health(State(s): Shared) -> Result<Json<api::Health>, ApiError> {
    let refused = s.hub.as_ref().map_or(0, |h| h.refused_connections());
    // The store's figures are counts kept in memory: no directory is listed here.
    Ok(Json(api::Health {
        status: "ok".into(),
        refused_channel_connections: refused,
        leases_expired: s.sessions.leases_expired(),
        store: Some(s.store_stats()),
    }))
}

async fn version(State(s): Shared) -> Result<Json<api::Version>, ApiError> {
    let build = Arc::clone(&s.build);
    let build = tokio::task::spawn_blocking(move || build.get_or_init(binary_hash).clone())
        .await
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, format!("cannot hash the agent binary: {e}")))?;
    Ok(Json(api::Version { version: env!("CARGO_PKG_VERSION").into(), build }))
}

/// An error response: status and one line.
#[derive(Debug)]
pub struct ApiError(pub StatusCode, pub String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(api::ErrorBody { error: self.1 })).into_response()
    }
}

impl From<ParseSha256Error> for ApiError {
    fn from(e: ParseSha256Error) -> Self {
        ApiError(StatusCode::BAD_REQUEST, format!("blob name {e}"))
    }
}

impl From<BlobError> for ApiError {
    fn from(e: BlobError) -> Self {
        let status = match e {
            BlobError::Mismatch { .. } => StatusCode::BAD_REQUEST,
            BlobError::Missing(_) => StatusCode::NOT_FOUND,
            BlobError::Write { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError(status, zerolab_sandbox::session::error_chain(&e))
    }
}

impl From<SessionsError> for ApiError {
    fn from(e: SessionsError) -> Self {
        let status = match &e {
            SessionsError::Blob(BlobError::Missing(_))
            | SessionsError::Devices(DevicesError::Blob(BlobError::Missing(_))) => StatusCode::UNPROCESSABLE_ENTITY,
            SessionsError::Blob(BlobError::Write { .. })
            | SessionsError::Devices(DevicesError::Blob(BlobError::Write { .. })) => StatusCode::INTERNAL_SERVER_ERROR,
            SessionsError::Blob(_) | SessionsError::BadRequest(_) | SessionsError::Devices(_) => {
                StatusCode::BAD_REQUEST
            }
            SessionsError::NoOutput { .. } => StatusCode::NOT_FOUND,
            SessionsError::Channels(ChannelsError::Invalid(_)) => StatusCode::BAD_REQUEST,
            SessionsError::Channels(ChannelsError::Conflict(_)) => StatusCode::CONFLICT,
            SessionsError::Channels(ChannelsError::NoListener(_) | ChannelsError::Pipe(_)) | SessionsError::NoHub => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            SessionsError::Unknown(_) => StatusCode::NOT_FOUND,
            SessionsError::Expired { .. } => StatusCode::GONE,
            SessionsError::Prepare { .. } => StatusCode::INTERNAL_SERVER_ERROR,
            SessionsError::Thread { .. } => StatusCode::SERVICE_UNAVAILABLE,
        };
        ApiError(status, zerolab_sandbox::session::error_chain(&e))
    }
}

type Shared = State<Arc<AppState>>;

/// The API v1 routes.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/v1/health", get(health))
        .route("/v1/version", get(version))
        .route("/v1/facts", get(|State(s): Shared| async move { Json(facts(s.hub.as_ref().and_then(|h| h.port()))) }))
        .route("/v1/blobs/{sha256}", put(put_blob).head(has_blob))
        .route("/v1/sessions", get(list_sessions).post(start_session))
        .route("/v1/sessions/{id}", get(session_status).delete(kill_session))
        .route("/v1/leases", post(renew_leases))
        .route(
            "/v1/sessions/{id}/stdout",
            get(|s: Shared, id: UrlPath<String>, q: RawQuery| output(s, id, q, Output::Stdout)),
        )
        .route(
            "/v1/sessions/{id}/stderr",
            get(|s: Shared, id: UrlPath<String>, q: RawQuery| output(s, id, q, Output::Stderr)),
        )
        .route(
            "/v1/sessions/{id}/output",
            get(|s: Shared, id: UrlPath<String>, q: RawQuery| output(s, id, q, Output::Output)),
        )
        .fallback(|| async {
            ApiError(StatusCode::NOT_FOUND, "no such endpoint; the API is under /v1 (see docs/agent.md)".into())
        })
        .with_state(state)
}

/// `PUT /v1/blobs/{sha256}`: the body is streamed to a [`BlobWriter`] on a blocking
/// thread (a few chunks in flight), so a blob of any size costs the agent no memory.
/// An upload cut short is dropped, never stored.
async fn put_blob(State(s): Shared, UrlPath(name): UrlPath<String>, mut body: Body) -> Result<Response, ApiError> {
    let writer = s.blobs.writer(Some(name.parse::<Sha256>()?))?;
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Bytes>(8);
    let write = tokio::task::spawn_blocking(move || -> Result<BlobWriter, BlobError> {
        let mut writer = writer;
        while let Some(chunk) = rx.blocking_recv() {
            writer.write(&chunk)?;
        }
        Ok(writer)
    });
    let mut cut = None;
    while let Some(frame) = body.frame().await {
        match frame {
            Ok(frame) => {
                if let Ok(chunk) = frame.into_data() {
                    if tx.send(chunk).await.is_err() {
                        break;
                    }
                }
            }
            Err(e) => {
                cut = Some(e);
                break;
            }
        }
    }
    drop(tx);
    let failed = |e: tokio::task::JoinError| {
        ApiError(StatusCode::INTERNAL_SERVER_ERROR, format!("blob upload failed: {e}; retry"))
    };
    let writer = write.await.map_err(failed)??;
    if let Some(e) = cut {
        return Err(ApiError(
            StatusCode::BAD_REQUEST,
            format!("upload cut short after {} bytes: {e}; retry", writer.size()),
        ));
    }
    let stored = tokio::task::spawn_blocking(move || writer.finish()).await.map_err(failed)??;
    Ok((StatusCode::CREATED, Json(stored)).into_response())
}

/// `HEAD /v1/blobs/{sha256}`: 200 when stored, 404 when not (so a client uploads only
/// what a node lacks).
async fn has_blob(State(s): Shared, UrlPath(name): UrlPath<String>) -> Result<StatusCode, ApiError> {
    s.blobs.path(&name.parse()?)?;
    Ok(StatusCode::OK)
}

async fn start_session(State(s): Shared, body: Bytes) -> Result<Response, ApiError> {
    let req: api::SessionRequest = serde_json::from_slice(&body).map_err(|e| {
        ApiError(
            StatusCode::BAD_REQUEST,
            format!("bad session request: {e}; send JSON like {{\"program\": \"<sha256>\"}}"),
        )
    })?;
    let id = s.sessions.start(&req)?;
    tracing::info!(session = %id, program = %req.program, channels = req.channels.len(), "session started");
    Ok((StatusCode::CREATED, Json(api::SessionCreated { id })).into_response())
}

/// `POST /v1/leases`: renews the leases of the sessions named (one lock, no I/O).
async fn renew_leases(State(s): Shared, body: Bytes) -> Result<Json<api::LeasesRenewed>, ApiError> {
    let renewal: api::LeaseRenewal = serde_json::from_slice(&body).map_err(|e| {
        ApiError(
            StatusCode::BAD_REQUEST,
            format!("bad lease renewal: {e}; send JSON like {{\"sessions\": [\"<id>\"]}}"),
        )
    })?;
    Ok(Json(s.sessions.renew_leases(&renewal)))
}

async fn list_sessions(State(s): Shared) -> Json<api::SessionList> {
    Json(s.sessions.list())
}

async fn session_status(State(s): Shared, UrlPath(id): UrlPath<String>) -> Result<Json<api::SessionStatus>, ApiError> {
    Ok(Json(s.sessions.status(&id)?))
}

async fn kill_session(State(s): Shared, UrlPath(id): UrlPath<String>) -> Result<Json<api::SessionStatus>, ApiError> {
    let status = s.sessions.kill(&id)?;
    tracing::info!(session = %id, "session kill requested");
    Ok(Json(status))
}

/// An output of a session, streamed from its file (a guest may write gigabytes): what
/// the guest wrote up to the moment it is read, from byte `?offset=N` on (0 without
/// it; past the end, nothing), so a follower reads each byte once. The header
/// [`api::SESSION_STATE_HEADER`] carries the session's state read before the file was
/// opened: when it says `done`, the body holds the rest of the output.
async fn output(
    State(s): Shared,
    UrlPath(id): UrlPath<String>,
    RawQuery(query): RawQuery,
    which: Output,
) -> Result<Response, ApiError> {
    use tokio::io::AsyncSeekExt;
    let offset = output_offset(query.as_deref())?;
    let state = s.sessions.status(&id)?.state;
    let path = s.sessions.output(&id, which)?;
    let unreadable = |e: std::io::Error| {
        ApiError(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot read {}: {e}; check the state directory", path.display()),
        )
    };
    let mut file = tokio::fs::File::open(&path).await.map_err(unreadable)?;
    file.seek(std::io::SeekFrom::Start(offset)).await.map_err(unreadable)?;
    let body = Body::from_stream(tokio_util::io::ReaderStream::with_capacity(file, 256 << 10));
    let state = match state {
        api::SessionState::Waiting => "waiting",
        api::SessionState::Running => "running",
        api::SessionState::Done => "done",
    };
    let headers = [(header::CONTENT_TYPE.as_str(), "application/octet-stream"), (api::SESSION_STATE_HEADER, state)];
    Ok((headers, body).into_response())
}

/// The `offset` of an output request's query (`offset=N`, bytes); 0 without one.
fn output_offset(query: Option<&str>) -> Result<u64, ApiError> {
    let Some(value) = query.unwrap_or_default().split('&').find_map(|pair| pair.strip_prefix("offset=")) else {
        return Ok(0);
    };
    value.parse().map_err(|_| {
        ApiError(StatusCode::BAD_REQUEST, format!("bad offset `{value}`; give a byte count, like ?offset=4096"))
    })
}

/// The node's facts, read from `/proc`, and the agent's channel port.
pub fn facts(channel_port: Option<u16>) -> api::Facts {
    let read = |p: &str| std::fs::read_to_string(p).map(|s| s.trim().to_string()).unwrap_or_default();
    api::Facts {
        hostname: read("/proc/sys/kernel/hostname"),
        cpus: std::thread::available_parallelism().map(|n| n.get() as u32).unwrap_or(1),
        memory_bytes: mem_total(&read("/proc/meminfo")).unwrap_or(0),
        kernel: read("/proc/sys/kernel/osrelease"),
        channel_port,
    }
}

/// `MemTotal` from `/proc/meminfo`, in bytes.
fn mem_total(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Binds `socket` privately: its parent directory is created 0700 if
/// missing, a stale socket there is replaced, and the socket is made 0600.
pub fn bind(socket: &Path) -> Result<tokio::net::UnixListener, ServeError> {
    let err = |source| ServeError::Bind { path: socket.to_path_buf(), source };
    if let Some(parent) = socket.parent().filter(|p| !p.as_os_str().is_empty()) {
        create_private_dir(parent).map_err(err)?;
    }
    match std::fs::symlink_metadata(socket) {
        Ok(m) if m.file_type().is_socket() => std::fs::remove_file(socket).map_err(err)?,
        Ok(_) => {
            return Err(err(std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                "a file that is not a socket is in the way; remove it or choose another --socket",
            )))
        }
        Err(_) => {}
    }
    let listener = tokio::net::UnixListener::bind(socket).map_err(err)?;
    std::fs::set_permissions(socket, std::fs::Permissions::from_mode(0o600)).map_err(err)?;
    Ok(listener)
}

/// Serves the API on `socket` with state under `state_dir`, and channels
/// from other agents on `channels`, until `shutdown`.
pub async fn serve(
    socket: &Path,
    state_dir: &Path,
    channels: SocketAddr,
    retention: Retention,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let hub = Arc::new(Hub::start(channels).await);
    let state = AppState::new(state_dir, Options::default(), Some(hub), retention)
        .map_err(|source| ServeError::State { path: state_dir.to_path_buf(), source })?;
    let state = Arc::new(state);
    let listener = bind(socket)?;
    tracing::info!(socket = %socket.display(), state = %state_dir.display(), "listening");
    let sweeper = tokio::spawn(sweep_every(retention.sweep_period(), Arc::clone(&state)));
    let leases = tokio::spawn(expire_leases_every(LEASE_CHECK_PERIOD, Arc::clone(&state)));
    let result = axum::serve(listener, router(state)).with_graceful_shutdown(shutdown).await;
    sweeper.abort();
    leases.abort();
    let _ = std::fs::remove_file(socket);
    result.map_err(|source| ServeError::Serve { path: socket.to_path_buf(), source })
}

/// Sweeps `state` every `period`, each sweep on a blocking thread (it lists and
/// removes files), until the task is aborted.
async fn sweep_every(period: std::time::Duration, state: Arc<AppState>) {
    let mut ticks = tokio::time::interval(period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let state = Arc::clone(&state);
        if let Err(e) = tokio::task::spawn_blocking(move || state.sweep()).await {
            tracing::error!("sweeping the state directory failed: {e}");
        }
    }
}

/// Kills the sessions whose lease ran out, every `period`, until the task is aborted.
/// Inline on the runtime: it takes a lock and signals guests, and does no I/O.
async fn expire_leases_every(period: std::time::Duration, state: Arc<AppState>) {
    let mut ticks = tokio::time::interval(period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        state.sessions.expire_leases(std::time::Instant::now());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_mem_total_in_bytes() {
        assert_eq!(mem_total("MemTotal:       16384 kB\nMemFree: 1 kB\n"), Some(16384 * 1024));
        assert_eq!(mem_total("nothing"), None);
    }

    #[test]
    fn an_output_offset_is_a_byte_count_or_nothing() {
        assert_eq!(output_offset(None).unwrap(), 0);
        assert_eq!(output_offset(Some("")).unwrap(), 0);
        assert_eq!(output_offset(Some("offset=4096")).unwrap(), 4096);
        assert_eq!(output_offset(Some("x=1&offset=7")).unwrap(), 7);
        let bad = output_offset(Some("offset=-1")).unwrap_err();
        assert_eq!(bad.0, StatusCode::BAD_REQUEST);
        assert_eq!(bad.1, "bad offset `-1`; give a byte count, like ?offset=4096");
    }

    #[test]
    fn facts_come_from_this_machine() {
        let f = facts(Some(7700));
        assert_eq!(f.channel_port, Some(7700));
        assert!(f.cpus >= 1);
        assert!(f.memory_bytes > 0);
        assert!(!f.kernel.is_empty());
    }

    #[test]
    fn binds_socket_0600_in_new_dir_0700() {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("run/agent.sock");
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let _l = rt.block_on(async { bind(&sock) }).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&sock), 0o600);
        assert_eq!(mode(sock.parent().unwrap()), 0o700);
    }

    #[test]
    fn refuses_to_replace_a_regular_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.sock");
        std::fs::write(&path, "keep me").unwrap();
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        assert!(matches!(rt.block_on(async { bind(&path) }), Err(ServeError::Bind { .. })));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "keep me");
    }
}
