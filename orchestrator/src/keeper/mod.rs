//! The lab's keeper: one long-lived process per lab that holds an open SSH connection to
//! every node, so a command on a hundred nodes costs a hundred channel opens, not a
//! hundred handshakes (OpenSSH's ControlMaster/ControlPersist, for a lab), and runs the
//! lab's services ([`service`]: long-running programs such as a PXE provider's dnsmasq).
//!
//! ```text
//! zerolab exec ──┐                       ┌── ssh ── node-1 (sshd, agent)
//! zerolab status ┼─ LAB/keeper.sock ─ keeper ── ssh ── node-2
//! zerolab run ───┘   (0600, our uid)     └── ssh ── node-3
//! ```
//!
//! [`Keeper::open`] connects to the keeper of a lab, starting it (`zerolab keeper LAB_DIR`,
//! detached) when none runs ([`Keeper::running`] only connects). Through it,
//! [`Keeper::exec`] runs a command on a node, [`Keeper::stream`] opens a byte pipe to a
//! Unix socket on a node (the agent's), [`Keeper::start_service`] starts a service and
//! [`Keeper::services`] says what each is doing. `up` starts the keeper and warms it with
//! the ready nodes; `down` stops it, and its services with it ([`stop`]). A keeper that
//! runs services does not exit when idle.
//!
//! Security: the keeper can do nothing its clients could not do themselves, since
//! it logs in with the lab's key, which its clients can read too. Its socket lives in the
//! lab directory (0700), is itself 0600, and every client must be our own user
//! (`SO_PEERCRED`). The protocol is in [`protocol`], the process in [`server`].

pub mod protocol;
pub mod server;
pub mod service;

use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use nix::fcntl::{Flock, FlockArg};

use tokio::io::{AsyncReadExt, BufReader};
use tokio::net::UnixStream;

pub use self::protocol::FailureKind;
use self::protocol::{read_line, write_line, Reply, Request};
use crate::backoff::Backoff;
use crate::ssh::{Output, Target};

pub use self::server::serve;
pub use self::service::{Health, ServiceError, ServiceSpec, ServiceState, ServiceStatus};

/// The keeper's socket, in the lab directory.
pub const SOCKET: &str = "keeper.sock";
/// The lock a keeper holds while it runs (one keeper per lab).
pub const LOCK: &str = "keeper.lock";
/// The keeper's log, in the lab directory.
pub const LOG: &str = "keeper.log";
/// The services' logs, a directory in the lab directory.
pub const SERVICES: &str = "services";
/// How long a new keeper has to open its socket.
const START_WAIT: Duration = Duration::from_secs(5);
/// Unix socket paths are limited to 108 bytes, the terminating NUL included.
const MAX_SOCKET_PATH: usize = 107;

/// What can go wrong reaching the keeper itself (a node's failure is a [`Failure`]).
#[derive(Debug, thiserror::Error)]
pub enum KeeperError {
    /// A keeper file could not be used.
    #[error("{}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The lab directory's path is too long for a Unix socket.
    #[error(
        "the lab directory {} is too deep for the keeper's socket ({len} bytes, the limit is {MAX_SOCKET_PATH}); \
         use a shorter --lab-root",
        path.display()
    )]
    PathTooLong { path: PathBuf, len: usize },
    /// A new keeper did not open its socket in time.
    #[error("the lab's connection keeper did not start within {START_WAIT:?}; see {}", log.display())]
    Start { log: PathBuf },
    /// The keeper answered something that is not the protocol.
    #[error("the lab's connection keeper answered {request} with {answer}")]
    Protocol { request: &'static str, answer: String },
    /// A service could not be started.
    #[error("{cause}")]
    Service {
        /// Why, as one line.
        cause: String,
    },
}

/// A request that the keeper could not carry out on its node.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{cause}")]
pub struct Failure {
    /// What kind of failure.
    pub kind: FailureKind,
    /// Why, as one line naming the node.
    pub cause: String,
}

/// The keeper socket of the lab in `lab_dir`.
pub fn socket_path(lab_dir: &Path) -> Result<PathBuf, KeeperError> {
    let path = lab_dir.join(SOCKET);
    let len = path.as_os_str().len();
    if len > MAX_SOCKET_PATH {
        return Err(KeeperError::PathTooLong { path: lab_dir.to_path_buf(), len });
    }
    Ok(path)
}

/// A handle on a lab's keeper; cheap to clone, each request is its own connection.
#[derive(Debug, Clone)]
pub struct Keeper {
    socket: PathBuf,
}

impl Keeper {
    /// Connects to the keeper of the lab in `lab_dir`, starting it with `program` (the
    /// `zerolab` executable) when none answers.
    pub async fn open(lab_dir: &Path, program: &Path) -> Result<Keeper, KeeperError> {
        let lab_dir =
            std::path::absolute(lab_dir).map_err(|source| KeeperError::Io { path: lab_dir.into(), source })?;
        let socket = socket_path(&lab_dir)?;
        if UnixStream::connect(&socket).await.is_ok() {
            return Ok(Keeper { socket });
        }
        spawn(&lab_dir, program)?;
        let mut backoff = Backoff::steady(Duration::from_millis(5), START_WAIT);
        loop {
            if UnixStream::connect(&socket).await.is_ok() {
                return Ok(Keeper { socket });
            }
            if !backoff.wait().await {
                return Err(KeeperError::Start { log: lab_dir.join(LOG) });
            }
        }
    }

    /// Connects to the keeper of the lab in `lab_dir` if one runs (never starts one).
    pub async fn running(lab_dir: &Path) -> Option<Keeper> {
        let socket = socket_path(&std::path::absolute(lab_dir).ok()?).ok()?;
        UnixStream::connect(&socket).await.ok()?;
        Some(Keeper { socket })
    }

    /// Starts `service` (see [`service`]) and answers once it is healthy; a service of
    /// that name that runs with the same spec is kept, one with another spec replaced.
    pub async fn start_service(&self, service: &ServiceSpec) -> Result<ServiceStatus, KeeperError> {
        let mut stream = self.request(&Request::StartService { service: service.clone() }).await?;
        match self.reply(&mut stream, "start_service").await? {
            Reply::Services { mut services } if services.len() == 1 => Ok(services.remove(0)),
            Reply::Failed { cause, .. } => Err(KeeperError::Service { cause }),
            other => Err(KeeperError::Protocol { request: "start_service", answer: format!("{other:?}") }),
        }
    }

    /// What every service of the lab is doing, by name.
    pub async fn services(&self) -> Result<Vec<ServiceStatus>, KeeperError> {
        let mut stream = self.request(&Request::Services).await?;
        match self.reply(&mut stream, "services").await? {
            Reply::Services { services } => Ok(services),
            other => Err(KeeperError::Protocol { request: "services", answer: format!("{other:?}") }),
        }
    }

    async fn request(&self, request: &Request) -> Result<BufReader<UnixStream>, KeeperError> {
        let io_error = |source| KeeperError::Io { path: self.socket.clone(), source };
        let mut stream = BufReader::new(UnixStream::connect(&self.socket).await.map_err(io_error)?);
        write_line(stream.get_mut(), request).await.map_err(io_error)?;
        Ok(stream)
    }

    async fn reply(&self, stream: &mut BufReader<UnixStream>, request: &'static str) -> Result<Reply, KeeperError> {
        let answer = read_line::<Reply>(stream).await;
        match answer {
            Ok(Some(reply)) => Ok(reply),
            Ok(None) => Err(KeeperError::Protocol { request, answer: "nothing (it closed the connection)".into() }),
            Err(e) => Err(KeeperError::Protocol { request, answer: e.to_string() }),
        }
    }

    /// Runs `command` on `target` over its kept connection.
    pub async fn exec(
        &self,
        target: &Target,
        command: &str,
        timeout: Duration,
    ) -> Result<Result<Output, Failure>, KeeperError> {
        let timeout_ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
        let request = Request::Exec { target: target.clone(), command: command.to_owned(), timeout_ms };
        let mut stream = self.request(&request).await?;
        match self.reply(&mut stream, "exec").await? {
            Reply::Output { status, signal, stdout_len, stderr_len } => {
                let mut stdout = vec![0; stdout_len];
                let mut stderr = vec![0; stderr_len];
                let io_error = |source| KeeperError::Io { path: self.socket.clone(), source };
                stream.read_exact(&mut stdout).await.map_err(io_error)?;
                stream.read_exact(&mut stderr).await.map_err(io_error)?;
                Ok(Ok(Output { status, signal, stdout, stderr }))
            }
            Reply::Failed { kind, cause } => Ok(Err(Failure { kind, cause })),
            other => Err(KeeperError::Protocol { request: "exec", answer: format!("{other:?}") }),
        }
    }

    /// Opens a byte pipe to the Unix socket `socket` on `target`.
    pub async fn stream(&self, target: &Target, socket: &str) -> Result<Result<UnixStream, Failure>, KeeperError> {
        let io_error = |source| KeeperError::Io { path: self.socket.clone(), source };
        let mut stream = UnixStream::connect(&self.socket).await.map_err(io_error)?;
        write_line(&mut stream, &Request::Stream { target: target.clone(), socket: socket.to_owned() })
            .await
            .map_err(io_error)?;
        // Read byte by byte: whatever follows the reply line belongs to the pipe, and a
        // buffered reader could swallow it.
        let mut line = Vec::new();
        let mut byte = [0u8];
        while line.last() != Some(&b'\n') && line.len() < protocol::MAX_LINE {
            if stream.read(&mut byte).await.map_err(io_error)? == 0 {
                break;
            }
            line.push(byte[0]);
        }
        match serde_json::from_slice::<Reply>(&line) {
            Ok(Reply::Streaming) => Ok(Ok(stream)),
            Ok(Reply::Failed { kind, cause }) => Ok(Err(Failure { kind, cause })),
            Ok(other) => Err(KeeperError::Protocol { request: "stream", answer: format!("{other:?}") }),
            Err(_) => {
                Err(KeeperError::Protocol { request: "stream", answer: String::from_utf8_lossy(&line).into_owned() })
            }
        }
    }

    /// Has the keeper connect to `targets` in the background.
    pub async fn warm(&self, targets: &[Target]) -> Result<(), KeeperError> {
        let mut stream = self.request(&Request::Warm { targets: targets.to_vec() }).await?;
        match self.reply(&mut stream, "warm").await? {
            Reply::Done => Ok(()),
            other => Err(KeeperError::Protocol { request: "warm", answer: format!("{other:?}") }),
        }
    }
}

/// Starts a keeper for `lab_dir`: `program keeper LAB_DIR`, in its own session, with its
/// output in the lab's keeper log. It is not waited for: it outlives this command.
fn spawn(lab_dir: &Path, program: &Path) -> Result<(), KeeperError> {
    use std::os::unix::fs::OpenOptionsExt;
    use std::os::unix::process::CommandExt;
    let log_path = lab_dir.join(LOG);
    let log = std::fs::File::options()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(&log_path)
        .map_err(|source| KeeperError::Io { path: log_path.clone(), source })?;
    let err = log.try_clone().map_err(|source| KeeperError::Io { path: log_path.clone(), source })?;
    let mut command = Command::new(program);
    command.arg("keeper").arg(lab_dir).stdin(Stdio::null()).stdout(log).stderr(err);
    // SAFETY: setsid is async-signal-safe and touches no memory of the parent.
    unsafe {
        command.pre_exec(|| nix::unistd::setsid().map(drop).map_err(io::Error::from));
    }
    let child = command.spawn().map_err(|source| KeeperError::Io { path: program.to_path_buf(), source })?;
    // The child is not ours to reap for long: it is reaped by a thread so it never stays
    // a zombie of a long-lived caller (tests); a CLI exits long before.
    std::thread::spawn(move || {
        let mut child = child;
        let _ = child.wait();
    });
    Ok(())
}

/// Stops the keeper of the lab in `lab_dir`, if one runs, and waits (briefly) until it has
/// stopped its services and let go of its connections. Idempotent.
pub async fn stop(lab_dir: &Path) {
    let Ok(socket) = socket_path(lab_dir) else { return };
    let Ok(mut stream) = UnixStream::connect(&socket).await else { return };
    if write_line(&mut stream, &Request::Stop).await.is_err() {
        return;
    }
    // The answer comes once the services are stopped (each within its stop wait).
    let mut stream = BufReader::new(stream);
    let _ = tokio::time::timeout(STOP_WAIT, read_line::<Reply>(&mut stream)).await;
    // The keeper releases its lock when it exits: wait for that, briefly.
    let lock = lab_dir.join(LOCK);
    let mut backoff = Backoff::steady(Duration::from_millis(5), Duration::from_secs(2));
    loop {
        let held = std::fs::File::open(&lock).is_ok_and(lock_held);
        if !held || !backoff.wait().await {
            return;
        }
    }
}

/// How long `stop` waits for the keeper's answer: every service's stop wait, and then some.
const STOP_WAIT: Duration = Duration::from_secs(10);

/// True while a keeper holds the lock on `file` (trying it, and letting go at once).
fn lock_held(file: std::fs::File) -> bool {
    Flock::lock(file, FlockArg::LockExclusiveNonblock).is_err()
}
