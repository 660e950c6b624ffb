//! Starting, finding and stopping a lab's boot server from another process (`up`,
//! `down`, the tests): [`start`] runs `zerolab pxe-serve PLAN` detached in its own
//! session with its output in `LAB/pxe/serve.log`, and returns once it serves (its pid
//! file is written) or fails with the log's last line; [`stop`] sends SIGTERM to the pid
//! of `serve.pid` after checking that this process really is a boot server of that
//! directory (a stale pid file may name another process), waits, and kills it when it
//! does not stop; [`running`] says whether one serves.

use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use super::server::PID_FILE;

/// The server's log, in `LAB/pxe/`.
pub const LOG_FILE: &str = "serve.log";
/// The hidden subcommand that runs the server.
pub const SUBCOMMAND: &str = "pxe-serve";
/// How long [`start`] waits for the server to serve.
const START_WAIT: Duration = Duration::from_secs(20);
/// How long [`stop`] waits after SIGTERM before SIGKILL.
const STOP_WAIT: Duration = Duration::from_secs(5);

/// A running boot server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServerHandle {
    /// Its process id.
    pub pid: u32,
}

/// The boot server could not be started.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The plan's directory is not where plans live.
    #[error("boot plan {plan} has no directory")]
    NoDirectory {
        /// The plan file.
        plan: PathBuf,
    },
    /// Spawning or logging failed.
    #[error("cannot start the boot server ({path})")]
    Io {
        /// The program or file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// It exited before serving.
    #[error("the boot server exited at start: {last_line} (log: {log})")]
    Exited {
        /// The last line of its log.
        last_line: String,
        /// Its log.
        log: PathBuf,
    },
    /// It did not serve in time.
    #[error("the boot server did not start within {seconds} s (log: {log})")]
    Timeout {
        /// The wait.
        seconds: u64,
        /// Its log.
        log: PathBuf,
    },
}

/// Starts this executable's `pxe-serve` (the `zerolab` binary calling) for the plan at
/// `plan_path`; see [`start_with`].
pub fn start(plan_path: &Path) -> Result<ServerHandle, ServeError> {
    let program = std::env::current_exe().map_err(|source| ServeError::Io { path: "zerolab".into(), source })?;
    start_with(plan_path, &program)
}

/// Starts `program pxe-serve PLAN` (`program`: the zerolab executable, or a wrapper that
/// runs it, as the tests run it in a network namespace) for the plan at `plan_path`,
/// whose directory is `LAB/pxe` (the plan file lives there, and its `dir` says so), and
/// waits until it serves. A server already running there is stopped first.
pub fn start_with(plan_path: &Path, program: &Path) -> Result<ServerHandle, ServeError> {
    let plan_path =
        &std::path::absolute(plan_path).map_err(|source| ServeError::Io { path: plan_path.to_owned(), source })?;
    let dir = plan_path.parent().ok_or_else(|| ServeError::NoDirectory { plan: plan_path.to_owned() })?;
    stop(dir);
    let log_path = dir.join(LOG_FILE);
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| ServeError::Io { path, source }
    };
    let log = std::fs::File::options().create(true).append(true).open(&log_path).map_err(io(&log_path))?;
    let err = log.try_clone().map_err(io(&log_path))?;
    let start_len = log.metadata().map(|m| m.len()).unwrap_or(0);
    let mut command = Command::new(program);
    command.arg(SUBCOMMAND).arg(plan_path).stdin(Stdio::null()).stdout(log).stderr(err);
    // SAFETY: setsid is async-signal-safe and touches no memory of the parent.
    unsafe {
        command.pre_exec(|| nix::unistd::setsid().map(drop).map_err(std::io::Error::from));
    }
    let mut child = command.spawn().map_err(io(program))?;
    let pid = child.id();
    let started = Instant::now();
    loop {
        if let Ok(Some(_)) = child.try_wait() {
            let last_line = last_line(&log_path, start_len);
            return Err(ServeError::Exited { last_line, log: log_path });
        }
        if read_pid(dir) == Some(pid) {
            break;
        }
        if started.elapsed() > START_WAIT {
            let _ = child.kill();
            let _ = child.wait();
            return Err(ServeError::Timeout { seconds: START_WAIT.as_secs(), log: log_path });
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    // It outlives the caller; a thread reaps it should it end while the caller lives.
    std::thread::spawn(move || {
        let _ = child.wait();
    });
    Ok(ServerHandle { pid })
}

/// Stops the boot server of `dir` (`LAB/pxe`) if one runs: SIGTERM, then SIGKILL after
/// 5 s. Idempotent; a pid file naming another process is only removed.
pub fn stop(dir: &Path) {
    if let Some(pid) = server_pid(dir) {
        let target = Pid::from_raw(pid as i32);
        let _ = kill(target, Signal::SIGTERM);
        let started = Instant::now();
        while alive(pid) && started.elapsed() < STOP_WAIT {
            std::thread::sleep(Duration::from_millis(20));
        }
        if alive(pid) {
            tracing::warn!(pid, "the boot server did not stop on SIGTERM; killing it");
            let _ = kill(target, Signal::SIGKILL);
            while alive(pid) && started.elapsed() < STOP_WAIT * 2 {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
    let _ = std::fs::remove_file(dir.join(PID_FILE));
}

/// Whether the boot server of `dir` (`LAB/pxe`) runs.
pub fn running(dir: &Path) -> bool {
    server_pid(dir).is_some()
}

/// The pid in `dir/serve.pid` when that process is alive and is `zerolab pxe-serve` of a
/// plan in `dir`.
fn server_pid(dir: &Path) -> Option<u32> {
    let pid = read_pid(dir)?;
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let args: Vec<&[u8]> = cmdline.split(|&b| b == 0).collect();
    let same = |a: &Path, b: &Path| a == b || matches!((a.canonicalize(), b.canonicalize()), (Ok(a), Ok(b)) if a == b);
    let ours = args.get(1) == Some(&SUBCOMMAND.as_bytes())
        && args
            .get(2)
            .and_then(|plan| Path::new(std::ffi::OsStr::from_bytes(plan)).parent())
            .is_some_and(|d| same(d, dir));
    (ours && alive(pid)).then_some(pid)
}

fn read_pid(dir: &Path) -> Option<u32> {
    std::fs::read_to_string(dir.join(PID_FILE)).ok()?.trim().parse().ok()
}

/// Alive and not a zombie waiting for its parent.
fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat.rsplit_once(") ").is_some_and(|(_, rest)| !rest.starts_with('Z') && !rest.starts_with('X')),
        Err(_) => false,
    }
}

/// The last non-empty line written to `log` after `from` bytes.
fn last_line(log: &Path, from: u64) -> String {
    let text = std::fs::read(log).unwrap_or_default();
    let text = String::from_utf8_lossy(text.get(from as usize..).unwrap_or_default()).into_owned();
    text.lines().rev().find(|line| !line.trim().is_empty()).unwrap_or("(no output)").trim().to_owned()
}
