//! The lab's connection keeper: one long-lived process per lab that holds an open SSH
//! connection to every node, so a command on a hundred nodes costs a hundred channel
//! opens, not a hundred handshakes (OpenSSH's ControlMaster/ControlPersist, for a lab).
//!
//! ```text
//! zerolab exec ──┐                       ┌── ssh ── node-1 (sshd, agent)
//! zerolab status ┼─ LAB/keeper.sock ─ keeper ── ssh ── node-2
//! zerolab run ───┘   (0600, our uid)     └── ssh ── node-3
//! ```
//!
//! [`Mux::open`] connects to the keeper of a lab, starting it (`zerolab keeper LAB_DIR`,
//! detached) when none runs. Through it, [`Mux::exec`] runs a command on a node and
//! [`Mux::stream`] opens a byte pipe to a Unix socket on a node (the agent's). `up`
//! starts the keeper and warms it with the ready nodes; `down` stops it ([`stop`]).
//!
//! Security: the keeper can do nothing its clients could not do themselves, since
//! it logs in with the lab's key, which its clients can read too. Its socket lives in the
//! lab directory (0700), is itself 0600, and every client must be our own user
//! (`SO_PEERCRED`). The protocol is in [`protocol`], the process in [`server`].

pub mod protocol;
pub mod server;

use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, BufReader};
use tokio::net::UnixStream;

pub use self::protocol::FailureKind;
use self::protocol::{read_line, write_line, Reply, Request};
use crate::ssh::{Output, Target};

pub use self::server::serve;

/// The keeper's socket, in the lab directory.
pub const SOCKET: &str = "keeper.sock";
/// The lock a keeper holds while it runs (one keeper per lab).
pub const LOCK: &str = "keeper.lock";
/// The keeper's log, in the lab directory.
pub const LOG: &str = "keeper.log";
/// How long a new keeper has to open its socket.
const START_WAIT: Duration = Duration::from_secs(5);
/// Unix socket paths are limited to 108 bytes, the terminating NUL included.
const MAX_SOCKET_PATH: usize = 107;

/// What can go wrong reaching the keeper itself (a node's failure is a [`Failure`]).
#[derive(Debug, thiserror::Error)]
pub enum MuxError {
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
pub fn socket_path(lab_dir: &Path) -> Result<PathBuf, MuxError> {
    let path = lab_dir.join(SOCKET);
    let len = path.as_os_str().len();
    if len > MAX_SOCKET_PATH {
        return Err(MuxError::PathTooLong { path: lab_dir.to_path_buf(), len });
    }
    Ok(path)
}

/// A handle on a lab's keeper; cheap to clone, each request is its own connection.
#[derive(Debug, Clone)]
pub struct Mux {
    socket: PathBuf,
}

impl Mux {
    /// Connects to the keeper of the lab in `lab_dir`, starting it with `program` (the
    /// `zerolab` executable) when none answers.
    pub async fn open(lab_dir: &Path, program: &Path) -> Result<Mux, MuxError> {
        let lab_dir = std::path::absolute(lab_dir).map_err(|source| MuxError::Io { path: lab_dir.into(), source })?;
        let socket = socket_path(&lab_dir)?;
        if UnixStream::connect(&socket).await.is_ok() {
            return Ok(Mux { socket });
        }
        spawn(&lab_dir, program)?;
        let deadline = Instant::now() + START_WAIT;
        loop {
            if UnixStream::connect(&socket).await.is_ok() {
                return Ok(Mux { socket });
            }
            if Instant::now() >= deadline {
                return Err(MuxError::Start { log: lab_dir.join(LOG) });
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    async fn request(&self, request: &Request) -> Result<BufReader<UnixStream>, MuxError> {
        let io_error = |source| MuxError::Io { path: self.socket.clone(), source };
        let mut stream = BufReader::new(UnixStream::connect(&self.socket).await.map_err(io_error)?);
        write_line(stream.get_mut(), request).await.map_err(io_error)?;
        Ok(stream)
    }

    async fn reply(&self, stream: &mut BufReader<UnixStream>, request: &'static str) -> Result<Reply, MuxError> {
        let answer = read_line::<Reply>(stream).await;
        match answer {
            Ok(Some(reply)) => Ok(reply),
            Ok(None) => Err(MuxError::Protocol { request, answer: "nothing (it closed the connection)".into() }),
            Err(e) => Err(MuxError::Protocol { request, answer: e.to_string() }),
        }
    }

    /// Runs `command` on `target` over its kept connection.
    pub async fn exec(
        &self,
        target: &Target,
        command: &str,
        timeout: Duration,
    ) -> Result<Result<Output, Failure>, MuxError> {
        let timeout_ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
        let request = Request::Exec { target: target.clone(), command: command.to_owned(), timeout_ms };
        let mut stream = self.request(&request).await?;
        match self.reply(&mut stream, "exec").await? {
            Reply::Output { status, signal, stdout_len, stderr_len } => {
                let mut stdout = vec![0; stdout_len];
                let mut stderr = vec![0; stderr_len];
                let io_error = |source| MuxError::Io { path: self.socket.clone(), source };
                stream.read_exact(&mut stdout).await.map_err(io_error)?;
                stream.read_exact(&mut stderr).await.map_err(io_error)?;
                Ok(Ok(Output { status, signal, stdout, stderr }))
            }
            Reply::Failed { kind, cause } => Ok(Err(Failure { kind, cause })),
            other => Err(MuxError::Protocol { request: "exec", answer: format!("{other:?}") }),
        }
    }

    /// Opens a byte pipe to the Unix socket `socket` on `target`.
    pub async fn stream(&self, target: &Target, socket: &str) -> Result<Result<UnixStream, Failure>, MuxError> {
        let io_error = |source| MuxError::Io { path: self.socket.clone(), source };
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
            Ok(other) => Err(MuxError::Protocol { request: "stream", answer: format!("{other:?}") }),
            Err(_) => {
                Err(MuxError::Protocol { request: "stream", answer: String::from_utf8_lossy(&line).into_owned() })
            }
        }
    }

    /// Has the keeper connect to `targets` in the background.
    pub async fn warm(&self, targets: &[Target]) -> Result<(), MuxError> {
        let mut stream = self.request(&Request::Warm { targets: targets.to_vec() }).await?;
        match self.reply(&mut stream, "warm").await? {
            Reply::Done => Ok(()),
            other => Err(MuxError::Protocol { request: "warm", answer: format!("{other:?}") }),
        }
    }
}

/// Starts a keeper for `lab_dir`: `program keeper LAB_DIR`, in its own session, with its
/// output in the lab's keeper log. It is not waited for: it outlives this command.
fn spawn(lab_dir: &Path, program: &Path) -> Result<(), MuxError> {
    use std::os::unix::fs::OpenOptionsExt;
    use std::os::unix::process::CommandExt;
    let log_path = lab_dir.join(LOG);
    let log = std::fs::File::options()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(&log_path)
        .map_err(|source| MuxError::Io { path: log_path.clone(), source })?;
    let err = log.try_clone().map_err(|source| MuxError::Io { path: log_path.clone(), source })?;
    let mut command = Command::new(program);
    command.arg("keeper").arg(lab_dir).stdin(Stdio::null()).stdout(log).stderr(err);
    // SAFETY: setsid is async-signal-safe and touches no memory of the parent.
    unsafe {
        command.pre_exec(|| nix::unistd::setsid().map(drop).map_err(io::Error::from));
    }
    let child = command.spawn().map_err(|source| MuxError::Io { path: program.to_path_buf(), source })?;
    // The child is not ours to reap for long: it is reaped by a thread so it never stays
    // a zombie of a long-lived caller (tests); a CLI exits long before.
    std::thread::spawn(move || {
        let mut child = child;
        let _ = child.wait();
    });
    Ok(())
}

/// Stops the keeper of the lab in `lab_dir`, if one runs, and waits (briefly) until it has
/// let go of its connections. Idempotent.
pub fn stop(lab_dir: &Path) {
    use std::io::{BufRead, Write};
    let Ok(socket) = socket_path(lab_dir) else { return };
    let Ok(mut stream) = std::os::unix::net::UnixStream::connect(&socket) else { return };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let _ = stream.write_all(b"\"stop\"\n");
    let mut line = String::new();
    let _ = std::io::BufReader::new(&stream).read_line(&mut line);
    // The keeper releases its lock when it exits: wait for that, briefly.
    let lock = lab_dir.join(LOCK);
    let deadline = Instant::now() + Duration::from_secs(2);
    while Instant::now() < deadline {
        match std::fs::File::open(&lock) {
            Ok(file) if !server_lock_held(&file) => return,
            Err(_) => return,
            Ok(_) => std::thread::sleep(Duration::from_millis(5)),
        }
    }
}

/// True while a keeper holds the lock on `file`.
fn server_lock_held(file: &std::fs::File) -> bool {
    use std::os::fd::AsRawFd;
    // SAFETY: the fd is open for the duration of the calls; flock only reads its arguments.
    unsafe {
        if libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) == 0 {
            libc::flock(file.as_raw_fd(), libc::LOCK_UN);
            false
        } else {
            true
        }
    }
}
