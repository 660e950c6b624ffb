//! The workshop's `serve` process: `zerolab workshop serve DIR`, started detached by
//! `workshop up`, one per workshop, holding the [`Workshop`] service and the portal's
//! HTTP listener until `workshop down` stops it (SIGTERM).
//!
//! Start-up, in order: take `DIR/serve.lock` (a second one exits at once), write
//! `DIR/serve.pid`, read the workshop file `up` recorded (`DIR/source.json`), open the
//! service on the state the last process left (so a `serve` killed with SIGKILL and
//! started again keeps every attendee's lab, token and link), bind `portal.listen`,
//! start the pool and timers, serve the portal ([`super::portal`]). The browser
//! terminal's files are loaded first: missing ones stop `serve` before it listens.

use std::fs::File;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};

use super::{Options, Workshop};
use crate::backoff::Backoff;

/// The lock `serve` holds while it runs.
pub const LOCK: &str = "serve.lock";
/// Its pid.
pub const PID: &str = "serve.pid";
/// Its log.
pub const LOG: &str = "serve.log";
/// What `up` recorded for it.
pub const SOURCE: &str = "source.json";
/// How long `up` waits for a new `serve` to listen.
const START_WAIT: Duration = Duration::from_secs(10);

/// What `serve` is started with, recorded by `up` in the workshop directory.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Source {
    /// The workshop file, absolute.
    pub file: PathBuf,
    /// The agent binary installed on the nodes.
    pub agent: PathBuf,
}

/// Why `serve` could not run, or could not be started or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// A file of the workshop directory.
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    /// `source.json` is not what `up` writes.
    #[error("{} is corrupt ({reason}); run `zerolab workshop up FILE` again", path.display())]
    Source { path: PathBuf, reason: String },
    /// The workshop file no longer reads.
    #[error(transparent)]
    File(#[from] super::LoadError),
    /// The service could not open.
    #[error(transparent)]
    Workshop(#[from] super::WorkshopError),
    /// The portal's address could not be bound.
    #[error("cannot listen on {address}: {source}; is another program using the port?")]
    Listen { address: std::net::SocketAddr, source: std::io::Error },
    /// The browser terminal's files are not fetched.
    #[error(transparent)]
    Assets(#[from] super::portal::AssetsError),
    /// A new `serve` did not listen in time.
    #[error("the workshop's portal did not start within {START_WAIT:?}; see {}", log.display())]
    Start { log: PathBuf },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ServeError + '_ {
    move |source| ServeError::Io { path: path.to_owned(), source }
}

/// Runs the workshop of `dir` until SIGTERM or SIGINT. Returns at once when another
/// `serve` holds the workshop.
pub async fn serve(dir: &Path, program: PathBuf) -> Result<(), ServeError> {
    let lock_path = dir.join(LOCK);
    let Some(_lock) = crate::lab::lock::try_exclusive(&lock_path).map_err(io(&lock_path))? else { return Ok(()) };
    let pid_path = dir.join(PID);
    crate::lab::write_private(&pid_path, format!("{}\n", std::process::id()).as_bytes())
        .map_err(|e| ServeError::Io { path: pid_path.clone(), source: std::io::Error::other(e.to_string()) })?;
    let source = read_source(dir)?;
    let file = super::from_path(&source.file)?;
    let listen = file.listen;
    let assets = super::portal::Assets::load()?;
    let ws = Workshop::open(file, dir.to_owned(), Options::new(source.agent, program))?;
    let listener =
        tokio::net::TcpListener::bind(listen).await.map_err(|source| ServeError::Listen { address: listen, source })?;
    ws.start();
    tracing::info!(workshop = %ws.file().name, %listen, "serving");
    let router = super::portal::router(ws.clone(), assets);
    let shutdown = async {
        use tokio::signal::unix::{signal, SignalKind};
        let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else {
            return std::future::pending().await;
        };
        tokio::select! { _ = term.recv() => {}, _ = int.recv() => {} }
    };
    let served = super::portal::serve(listener, router, shutdown).await;
    ws.close().await;
    let _ = std::fs::remove_file(&pid_path);
    served.map_err(|source| ServeError::Listen { address: listen, source })
}

/// Reads `DIR/source.json`.
pub fn read_source(dir: &Path) -> Result<Source, ServeError> {
    let path = dir.join(SOURCE);
    let bytes = std::fs::read(&path).map_err(io(&path))?;
    serde_json::from_slice(&bytes).map_err(|e| ServeError::Source { path, reason: e.to_string() })
}

/// Writes `DIR/source.json`.
pub fn write_source(dir: &Path, source: &Source) -> Result<(), ServeError> {
    let path = dir.join(SOURCE);
    let bytes = serde_json::to_vec_pretty(source).expect("the source serializes");
    crate::lab::write_private(&path, &bytes)
        .map_err(|e| ServeError::Io { path, source: std::io::Error::other(e.to_string()) })
}

/// The pid of the `serve` of `dir`, when one runs (it holds the lock).
pub fn running(dir: &Path) -> Option<i32> {
    let lock = File::open(dir.join(LOCK)).ok()?;
    if Flock::lock(lock, FlockArg::LockExclusiveNonblock).is_ok() {
        return None;
    }
    std::fs::read_to_string(dir.join(PID)).ok()?.trim().parse().ok()
}

/// Starts `program workshop serve DIR` detached (its own session, output in
/// `DIR/serve.log`) unless one runs, and waits until the portal accepts connections.
pub async fn start(dir: &Path, program: &Path, listen: std::net::SocketAddr) -> Result<bool, ServeError> {
    use std::os::unix::process::CommandExt;
    if running(dir).is_some() {
        return Ok(false);
    }
    let log_path = dir.join(LOG);
    let log = File::options().create(true).append(true).mode(0o600).open(&log_path).map_err(io(&log_path))?;
    let err = log.try_clone().map_err(io(&log_path))?;
    let mut command = Command::new(program);
    command.args(["workshop", "serve"]).arg(dir).stdin(Stdio::null()).stdout(log).stderr(err);
    // SAFETY: setsid is async-signal-safe and touches no memory of the parent.
    unsafe {
        command.pre_exec(|| nix::unistd::setsid().map(drop).map_err(std::io::Error::from));
    }
    let child = command.spawn().map_err(io(program))?;
    // Reaped by a thread so it never stays a zombie of a long-lived caller.
    std::thread::spawn(move || {
        let mut child = child;
        let _ = child.wait();
    });
    let address = match listen.ip() {
        ip if ip.is_unspecified() => std::net::SocketAddr::from(([127, 0, 0, 1], listen.port())),
        _ => listen,
    };
    let mut backoff = Backoff::steady(Duration::from_millis(20), START_WAIT);
    loop {
        if running(dir).is_some() && tokio::net::TcpStream::connect(address).await.is_ok() {
            return Ok(true);
        }
        if !backoff.wait().await {
            return Err(ServeError::Start { log: log_path });
        }
    }
}

/// Stops the `serve` of `dir` (SIGTERM, then SIGKILL after 10 s). Idempotent.
pub async fn stop(dir: &Path) {
    use nix::sys::signal::{kill, Signal};
    use nix::unistd::Pid;
    let Some(pid) = running(dir) else { return };
    let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
    let mut backoff = Backoff::steady(Duration::from_millis(50), Duration::from_secs(10));
    while running(dir).is_some() {
        if !backoff.wait().await {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            break;
        }
    }
    let mut backoff = Backoff::steady(Duration::from_millis(20), Duration::from_secs(2));
    while running(dir).is_some() && backoff.wait().await {}
}
