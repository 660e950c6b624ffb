//! Power through the user's own shell commands (`power: {command: {on, off, status}}`),
//! each run as `sh -c COMMAND` on this host.
//!
//! Environment: `ZEROLAB_NODE` (the node's name), `ZEROLAB_ACTION` (`on`, `off` or
//! `status`: the role of the command being run; a cycle runs off, then on) and, when the
//! node has one, `ZEROLAB_MAC` (aa:bb:cc:dd:ee:ff). A command succeeds by exiting 0; a
//! failure is reported with its last line on stderr. The status command prints `on` or
//! `off` (surrounding blanks and case ignored); anything else reads as unknown.
//!
//! Each command runs in a process group of its own and is bounded by a timeout
//! ([`SWITCH_TIMEOUT`], [`STATUS_TIMEOUT`]); past it the whole group is killed. Its
//! outputs go to in-memory files, not pipes, so a command that starts a machine in the
//! background (and leaves it holding its stdout) returns as soon as the command exits.

use std::io;
use std::process::Stdio;
use std::time::Duration;

use nix::sys::memfd::{memfd_create, MFdFlags};
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio::process::Command;
use zerolab_config::cluster::net::MacAddr;

use super::{PowerError, PowerState};

/// How long an on or off command may take.
const SWITCH_TIMEOUT: Duration = Duration::from_secs(120);

/// How long a status command may take.
const STATUS_TIMEOUT: Duration = Duration::from_secs(30);

/// The commands of one node.
pub(super) struct Commands<'a> {
    pub node: &'a str,
    pub mac: Option<MacAddr>,
}

impl Commands<'_> {
    /// Runs the on or off command (`role`).
    pub async fn switch(&self, role: &'static str, command: &str) -> Result<(), PowerError> {
        self.run(role, command, SWITCH_TIMEOUT).await.map(drop)
    }

    /// Runs the status command and reads its answer.
    pub async fn status(&self, command: &str) -> Result<PowerState, PowerError> {
        let stdout = self.run("status", command, STATUS_TIMEOUT).await?;
        Ok(parse_status(&stdout))
    }

    /// Runs `command` and returns its stdout, or says why it failed.
    async fn run(&self, role: &'static str, command: &str, timeout: Duration) -> Result<String, PowerError> {
        let spawn_error = |source| PowerError::Spawn { node: self.node.to_owned(), program: "sh", source };
        let (stdout, stderr) = (capture("stdout").map_err(spawn_error)?, capture("stderr").map_err(spawn_error)?);
        let mut sh = Command::new("sh");
        sh.arg("-c").arg(command).env("ZEROLAB_NODE", self.node).env("ZEROLAB_ACTION", role);
        if let Some(mac) = self.mac {
            sh.env("ZEROLAB_MAC", mac.to_string());
        }
        sh.stdin(Stdio::null());
        sh.stdout(stdout.try_clone().map_err(spawn_error)?).stderr(stderr.try_clone().map_err(spawn_error)?);
        sh.process_group(0).kill_on_drop(true);
        let mut child = sh.spawn().map_err(spawn_error)?;
        let group = child.id();
        let status = match tokio::time::timeout(timeout, child.wait()).await {
            Ok(status) => status.map_err(spawn_error)?,
            Err(_) => {
                if let Some(group) = group.and_then(|id| i32::try_from(id).ok()) {
                    // The group may be gone already; then there is nothing left to kill.
                    let _ = killpg(Pid::from_raw(group), Signal::SIGKILL);
                }
                return Err(PowerError::CommandTimeout {
                    node: self.node.to_owned(),
                    role,
                    seconds: timeout.as_secs(),
                });
            }
        };
        if !status.success() {
            let stderr = read_back(stderr).await.map_err(spawn_error)?;
            let detail = stderr.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("no message on stderr");
            return Err(PowerError::CommandFailed {
                node: self.node.to_owned(),
                role,
                status: status.to_string(),
                detail: detail.trim().to_owned(),
            });
        }
        read_back(stdout).await.map_err(spawn_error)
    }
}

/// An in-memory file for one of the command's outputs. Files, not pipes: a command that
/// starts a machine may leave a child holding its outputs open, and zerolab waits for
/// the command to exit, not for its outputs to close.
fn capture(name: &str) -> io::Result<std::fs::File> {
    Ok(memfd_create(format!("zerolab-power-{name}").as_str(), MFdFlags::MFD_CLOEXEC)?.into())
}

/// What was written to `file` so far.
async fn read_back(file: std::fs::File) -> io::Result<String> {
    let mut file = tokio::fs::File::from_std(file);
    file.seek(io::SeekFrom::Start(0)).await?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).await?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// `on` / `off` in any case with blanks around; anything else is unknown.
fn parse_status(stdout: &str) -> PowerState {
    match stdout.trim().to_ascii_lowercase().as_str() {
        "on" => PowerState::On,
        "off" => PowerState::Off,
        _ => PowerState::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_status_output() {
        assert_eq!(parse_status("on\n"), PowerState::On);
        assert_eq!(parse_status("  OFF \n"), PowerState::Off);
        assert_eq!(parse_status("Off"), PowerState::Off);
        assert_eq!(parse_status("powered on"), PowerState::Unknown);
        assert_eq!(parse_status(""), PowerState::Unknown);
    }

    #[tokio::test]
    async fn kills_a_command_and_its_children_past_the_timeout() {
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("child.pid");
        let command = format!("sleep 30 & echo $! > {}; wait", pidfile.display());
        let commands = Commands { node: "n4", mac: None };
        let err = commands.run("on", &command, Duration::from_millis(500)).await.unwrap_err();
        assert!(matches!(err, PowerError::CommandTimeout { role: "on", .. }), "{err}");
        assert!(err.to_string().starts_with("node n4: the power on command did not finish within 0 s"), "{err}");
        let child = std::fs::read_to_string(&pidfile).unwrap();
        let running = || {
            let stat = std::fs::read_to_string(format!("/proc/{}/stat", child.trim())).unwrap_or_default();
            stat.rsplit_once(") ").is_some_and(|(_, rest)| !rest.starts_with('Z'))
        };
        // SIGKILL lands within moments; a zombie (reaped late here) does not run.
        for _ in 0..100 {
            if !running() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("the command's child {} still runs", child.trim());
    }
}
