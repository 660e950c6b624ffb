//! Lab services: long-running programs the keeper runs for a lab beside its SSH
//! connections (coming: dnsmasq and an HTTP boot server for PXE, a web portal for the
//! workshop).
//!
//! A service is a [`ServiceSpec`]: a name, a command, a [`Health`] check. The keeper
//! starts it ([`Keeper::start_service`](super::Keeper::start_service) answers once it is
//! healthy, or with why it is not), checks its health every [`HEALTH_EVERY`], restarts
//! it when it exits (waits doubling from [`RESTART_FIRST`] up to [`RESTART_MAX`]; after
//! [`RESTARTS`] restarts in a row without [`STABLE`] of running between them it is
//! `failed` and left alone), and stops it when the lab goes down or the keeper stops.
//! Its output, and the keeper's lines about it (started, exited, restarting), go to
//! `LAB/services/NAME.log`.
//!
//! Decision: a service is a command, not an in-process task. dnsmasq is a program of its
//! own anyway; a process can be killed whole (its own process group), its output is a
//! file, and a crash in it does not take the lab's connections down with it. A portal
//! written in Rust is a `zerolab` subcommand run as a service.
//!
//! No orphans: each service runs in its own process group, which the keeper signals
//! (TERM, then KILL after [`STOP_WAIT`]) when it stops the service; and each is started
//! with `PR_SET_PDEATHSIG` = KILL, so if the keeper dies (killed, crashed) its services
//! die with it. The parent-death signal follows the thread that forked: services are
//! spawned from the runtime's worker threads, which live as long as the keeper.

use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::process::{Child, Command};
use tokio::sync::{oneshot, watch};

use crate::backoff::Backoff;

/// How often a running service's health is checked.
pub const HEALTH_EVERY: Duration = Duration::from_secs(1);
/// How long a new service has to become healthy before its start is an error.
pub const START_WAIT: Duration = Duration::from_secs(10);
/// The first wait before a restart; doubled after each restart in a row.
pub const RESTART_FIRST: Duration = Duration::from_millis(100);
/// The longest wait before a restart.
pub const RESTART_MAX: Duration = Duration::from_secs(5);
/// Restarts in a row after which a service is left failed.
pub const RESTARTS: u32 = 5;
/// A service that ran this long before exiting starts a new row of restarts.
pub const STABLE: Duration = Duration::from_secs(10);
/// How long a stopped service has between TERM and KILL.
pub const STOP_WAIT: Duration = Duration::from_secs(2);

/// A service to run: what the keeper is asked to start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceSpec {
    /// Its name (a lab name's characters: lowercase letters, digits, hyphens); its log is
    /// `services/NAME.log`.
    pub name: String,
    /// The program and its arguments.
    pub command: Vec<String>,
    /// How the keeper tells that it works.
    #[serde(default)]
    pub health: Health,
}

/// How a service's health is checked.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Health {
    /// Healthy while its process runs.
    #[default]
    Running,
    /// Healthy while a TCP connect to `address` (`HOST:PORT`) succeeds.
    Tcp {
        /// Where it listens.
        address: String,
    },
    /// Healthy while this command exits 0 (run with no shell, output discarded).
    Command {
        /// The program and its arguments.
        command: Vec<String>,
    },
}

/// Where a service is in its life.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum ServiceState {
    /// Started, not yet found healthy.
    Starting,
    /// Running and healthy.
    Running,
    /// Running, but its last health check failed.
    Unhealthy,
    /// It exited; it is started again after a wait.
    Restarting,
    /// It exited too often in a row (or cannot be started); left alone.
    Failed {
        /// Why, as one line.
        cause: String,
    },
    /// Stopped by the keeper.
    Stopped,
}

impl ServiceState {
    /// The state as one word.
    pub fn name(&self) -> &'static str {
        match self {
            ServiceState::Starting => "starting",
            ServiceState::Running => "running",
            ServiceState::Unhealthy => "unhealthy",
            ServiceState::Restarting => "restarting",
            ServiceState::Failed { .. } => "failed",
            ServiceState::Stopped => "stopped",
        }
    }
}

/// What the keeper says of one service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceStatus {
    /// Its name.
    pub name: String,
    /// Its state.
    #[serde(flatten)]
    pub state: ServiceState,
    /// Its process, while one runs.
    pub pid: Option<u32>,
    /// How many times it was restarted.
    pub restarts: u32,
    /// Its log.
    pub log: PathBuf,
}

/// Why a service cannot be started.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The spec is not one the keeper can run.
    #[error("service `{name}`: {reason}")]
    Invalid {
        /// The service.
        name: String,
        /// What is wrong and what to write instead.
        reason: String,
    },
    /// Its program could not be started.
    #[error("service {name}: cannot start {program}: {source}; check the command (see {})", log.display())]
    Spawn {
        /// The service.
        name: String,
        /// The program.
        program: String,
        /// Its log.
        log: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// It did not become healthy in time, or exited before.
    #[error("service {name} did not become healthy within {START_WAIT:?}: {why}; see {}", log.display())]
    Unhealthy {
        /// The service.
        name: String,
        /// What was seen last.
        why: String,
        /// Its log.
        log: PathBuf,
    },
    /// Its log could not be opened.
    #[error("service {name}: log {}", log.display())]
    Log {
        /// The service.
        name: String,
        /// Its log.
        log: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// A service the keeper runs: its spec, its status, and how to stop it.
pub(super) struct Service {
    pub spec: ServiceSpec,
    status: Arc<Mutex<ServiceStatus>>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Service {
    /// Starts `spec` with its log in `dir`; returns once it is healthy (or why it is not).
    pub async fn start(spec: ServiceSpec, dir: &Path) -> Result<Service, ServiceError> {
        check(&spec)?;
        let log = dir.join(format!("{}.log", spec.name));
        crate::lab::private_dir(dir).map_err(|e| ServiceError::Log {
            name: spec.name.clone(),
            log: log.clone(),
            source: std::io::Error::other(e.to_string()),
        })?;
        let status = Arc::new(Mutex::new(ServiceStatus {
            name: spec.name.clone(),
            state: ServiceState::Starting,
            pid: None,
            restarts: 0,
            log: log.clone(),
        }));
        let child = spawn(&spec, &log)?;
        let (stop, stopped) = watch::channel(false);
        let (healthy_tx, healthy_rx) = oneshot::channel();
        let task = tokio::spawn(supervise(spec.clone(), log.clone(), child, status.clone(), stopped, healthy_tx));
        let service = Service { spec: spec.clone(), status, stop, task };
        match tokio::time::timeout(START_WAIT, healthy_rx).await {
            Ok(Ok(Ok(()))) => Ok(service),
            outcome => {
                let why = match outcome {
                    Ok(Ok(Err(why))) => why,
                    _ => service.status().state.name().to_owned(),
                };
                service.stop().await;
                Err(ServiceError::Unhealthy { name: spec.name, why, log })
            }
        }
    }

    /// What it is doing now.
    pub fn status(&self) -> ServiceStatus {
        self.status.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Whether it still runs or will be restarted (it is neither failed nor stopped).
    pub fn is_live(&self) -> bool {
        !matches!(self.status().state, ServiceState::Failed { .. } | ServiceState::Stopped)
    }

    /// Stops it (TERM to its process group, KILL after [`STOP_WAIT`]) and waits until
    /// it is gone.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

fn check(spec: &ServiceSpec) -> Result<(), ServiceError> {
    let invalid = |reason: String| ServiceError::Invalid { name: spec.name.clone(), reason };
    crate::cluster::names::check_lab_name(&spec.name).map_err(|e| invalid(format!("invalid name: {e}")))?;
    if spec.command.is_empty() {
        return Err(invalid("the command is empty; give the program and its arguments".into()));
    }
    if matches!(&spec.health, Health::Command { command } if command.is_empty()) {
        return Err(invalid("the health command is empty; give the program and its arguments".into()));
    }
    Ok(())
}

/// Appends one line of the keeper's own to the service's log.
fn note(log: &Path, line: &str) {
    use std::io::Write;
    if let Ok(mut file) = open_log(log) {
        let _ = writeln!(file, "zerolab keeper: {line}");
    }
}

fn open_log(log: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::File::options().create(true).append(true).mode(0o600).open(log)
}

/// Starts the service's process: its own process group, killed with the keeper, its
/// output appended to its log.
fn spawn(spec: &ServiceSpec, log: &Path) -> Result<Child, ServiceError> {
    let log_error = |source| ServiceError::Log { name: spec.name.clone(), log: log.to_owned(), source };
    let out = open_log(log).map_err(log_error)?;
    let err = out.try_clone().map_err(log_error)?;
    let mut command = Command::new(&spec.command[0]);
    command.args(&spec.command[1..]).stdin(Stdio::null()).stdout(out).stderr(err).process_group(0);
    let keeper = nix::unistd::getpid();
    // SAFETY: prctl and getppid are async-signal-safe and touch no memory of the parent.
    unsafe {
        command.pre_exec(move || {
            nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)?;
            // The keeper may have died before the line above: then nothing would kill us.
            if nix::unistd::getppid() != keeper {
                return Err(std::io::Error::other("the keeper exited"));
            }
            Ok(())
        });
    }
    let child = command.spawn().map_err(|source| ServiceError::Spawn {
        name: spec.name.clone(),
        program: spec.command[0].clone(),
        log: log.to_owned(),
        source,
    })?;
    note(log, &format!("started {} (pid {})", spec.command.join(" "), child.id().unwrap_or_default()));
    Ok(child)
}

/// Keeps the service running until told to stop: health checks, restarts, the status.
async fn supervise(
    spec: ServiceSpec,
    log: PathBuf,
    mut child: Child,
    status: Arc<Mutex<ServiceStatus>>,
    mut stop: watch::Receiver<bool>,
    healthy: oneshot::Sender<Result<(), String>>,
) {
    let set = |state: ServiceState, pid: Option<u32>, restarted: bool| {
        let mut status = status.lock().unwrap_or_else(|p| p.into_inner());
        status.state = state;
        status.pid = pid;
        status.restarts += u32::from(restarted);
    };
    let mut healthy = Some(healthy);
    let mut backoff = Backoff::doubling(RESTART_FIRST, RESTART_MAX, RESTARTS);
    loop {
        let pid = child.id();
        set(ServiceState::Starting, pid, false);
        let started = Instant::now();
        let exited = loop {
            let ok = check_health(&spec.health).await;
            set(if ok { ServiceState::Running } else { ServiceState::Unhealthy }, pid, false);
            if ok {
                if let Some(healthy) = healthy.take() {
                    let _ = healthy.send(Ok(()));
                }
            }
            // Not healthy yet at start: look again soon rather than in a second.
            let pace = if healthy.is_some() { Duration::from_millis(20) } else { HEALTH_EVERY };
            tokio::select! {
                status = child.wait() => break status,
                _ = stop.changed() => {
                    terminate(&mut child, &log).await;
                    set(ServiceState::Stopped, None, false);
                    return;
                }
                () = tokio::time::sleep(pace) => {}
            }
        };
        let how = describe(exited);
        if let Some(healthy) = healthy.take() {
            // It never got healthy: the start fails, and is not retried.
            note(&log, &format!("{how} before it was healthy"));
            set(ServiceState::Failed { cause: format!("{how} at start") }, None, false);
            let _ = healthy.send(Err(how));
            return;
        }
        if started.elapsed() >= STABLE {
            backoff = Backoff::doubling(RESTART_FIRST, RESTART_MAX, RESTARTS);
        }
        let Some(wait) = backoff.next_wait() else {
            let cause = format!("{how}, after {RESTARTS} restarts in a row; see {}", log.display());
            note(&log, &format!("{how}; not restarted again ({RESTARTS} restarts in a row)"));
            set(ServiceState::Failed { cause }, None, false);
            return;
        };
        note(&log, &format!("{how}; restarting in {wait:?}"));
        set(ServiceState::Restarting, None, false);
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            _ = stop.changed() => {
                set(ServiceState::Stopped, None, false);
                return;
            }
        }
        child = match spawn(&spec, &log) {
            Ok(child) => child,
            Err(e) => {
                let cause = zerolab_sandbox::session::error_chain(&e);
                note(&log, &cause);
                set(ServiceState::Failed { cause }, None, false);
                return;
            }
        };
        set(ServiceState::Starting, child.id(), true);
    }
}

fn describe(exited: std::io::Result<ExitStatus>) -> String {
    use std::os::unix::process::ExitStatusExt;
    match exited {
        Ok(status) => match (status.code(), status.signal()) {
            (Some(code), _) => format!("exited with status {code}"),
            (None, Some(signal)) => format!("killed by signal {signal}"),
            (None, None) => "exited".to_owned(),
        },
        Err(e) => format!("could not be waited for: {e}"),
    }
}

/// TERM to the service's process group, KILL after [`STOP_WAIT`]; reaps it.
async fn terminate(child: &mut Child, log: &Path) {
    use nix::sys::signal::{killpg, Signal};
    let Some(pid) = child.id() else { return };
    let group = nix::unistd::Pid::from_raw(pid as i32);
    let _ = killpg(group, Signal::SIGTERM);
    if tokio::time::timeout(STOP_WAIT, child.wait()).await.is_err() {
        let _ = killpg(group, Signal::SIGKILL);
        let _ = child.wait().await;
    }
    // What it left behind in its group goes too.
    let _ = killpg(group, Signal::SIGKILL);
    note(log, "stopped");
}

async fn check_health(health: &Health) -> bool {
    match health {
        Health::Running => true,
        Health::Tcp { address } => {
            matches!(
                tokio::time::timeout(Duration::from_secs(1), tokio::net::TcpStream::connect(address)).await,
                Ok(Ok(_))
            )
        }
        Health::Command { command } => {
            let mut check = Command::new(&command[0]);
            check.args(&command[1..]).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
            check.kill_on_drop(true);
            matches!(tokio::time::timeout(Duration::from_secs(5), check.status()).await, Ok(Ok(status)) if status.success())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_are_checked_before_anything_starts() {
        let spec = |name: &str, command: &[&str]| ServiceSpec {
            name: name.into(),
            command: command.iter().map(|s| s.to_string()).collect(),
            health: Health::Running,
        };
        assert!(check(&spec("dnsmasq", &["dnsmasq", "-k"])).is_ok());
        let err = check(&spec("Bad Name", &["x"])).unwrap_err().to_string();
        assert!(err.starts_with("service `Bad Name`: invalid name"), "{err}");
        let err = check(&spec("empty", &[])).unwrap_err().to_string();
        assert_eq!(err, "service `empty`: the command is empty; give the program and its arguments");
    }

    #[test]
    fn status_is_one_json_object_with_the_state_inline() {
        let status = ServiceStatus {
            name: "web".into(),
            state: ServiceState::Failed { cause: "x".into() },
            pid: None,
            restarts: 5,
            log: "/l/services/web.log".into(),
        };
        let json = serde_json::to_string(&status).unwrap();
        assert_eq!(
            json,
            r#"{"name":"web","state":"failed","cause":"x","pid":null,"restarts":5,"log":"/l/services/web.log"}"#
        );
        assert_eq!(serde_json::from_str::<ServiceStatus>(&json).unwrap(), status);
    }
}
