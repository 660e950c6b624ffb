//! What zerolab installs on a node, and how: the agent binary, the service that keeps it
//! running, and the two node-side scripts that start and remove them.
//!
//! Everything lives in [`Paths::NODE`]: the binary at [`AGENT_PATH`] under the agent's
//! state directory `/var/lib/zerolab`, its socket under `/run/zerolab`, and (where
//! systemd runs) the unit `/etc/systemd/system/zerolab-agent.service`. Nothing else on
//! a node is touched, which is what lets [`remove`] take it all away again.
//!
//! [`install`] runs over one node's session: run `templates/start-agent.sh.j2`, which
//! first compares the node's agent binary with ours by sha256 and, when they match,
//! starts the agent unless it runs; otherwise it asks for the upload, and the script
//! runs again in the same command as the upload. Then wait until the agent answers its health check through its Unix
//! socket. A node with nothing to change thus costs one command and one health check. The script decides on the node: where PID 1
//! is systemd (`/run/systemd/system` exists) the agent is a systemd service, its unit
//! rendered from `templates/zerolab-agent.service.j2` and rewritten (with a
//! `daemon-reload`) only when it changed; elsewhere a supervisor shell restarts it a
//! second after it exits. A new upload restarts the agent either way, so the new build
//! serves. Steps run as root: directly when logging in as `root`, else through `sudo -n`.
//!
//! Design: the scripts are templates, not Rust strings, so each reads as the shell it is;
//! the paths are passed in ([`Paths`]), so a test can run a script against a temporary
//! directory instead of the node's real paths.

use std::path::Path;
use std::time::Duration;

use minijinja::context;
use zerolab_agent_api::Sha256;

use crate::agent_client::{self, AgentError};
use crate::backoff::Backoff;
use crate::ssh::{self, Session, Upload};
use crate::templates::{self, TemplateError, AGENT_UNIT, REMOVE_AGENT, START_AGENT};

/// Where the agent binary goes on every node.
pub const AGENT_PATH: &str = "/var/lib/zerolab/bin/zerolab-agent";
/// How long a started agent has to answer its health check.
const HEALTH_WAIT: Duration = Duration::from_secs(5);
/// Limit for each command and the upload.
const STEP_TIMEOUT: Duration = Duration::from_secs(60);

/// Where things go on a node. Every path is absolute and made of `A-Z a-z 0-9 / . _ -`
/// only, so the scripts use them without quoting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Paths<'a> {
    /// The agent binary.
    pub agent: &'a str,
    /// The agent's Unix socket.
    pub socket: &'a str,
    /// The agent's state directory (blobs, sessions, its log, the binary).
    pub state_dir: &'a str,
    /// The directory holding the socket and the supervisor's pid files.
    pub run_dir: &'a str,
    /// The systemd unit file.
    pub unit_path: &'a str,
    /// The directory that exists exactly when PID 1 is systemd.
    pub systemd_marker: &'a str,
}

impl Paths<'static> {
    /// The paths on every node.
    pub const NODE: Paths<'static> = Paths {
        agent: AGENT_PATH,
        socket: agent_client::SOCKET,
        state_dir: "/var/lib/zerolab",
        run_dir: "/run/zerolab",
        unit_path: "/etc/systemd/system/zerolab-agent.service",
        systemd_marker: "/run/systemd/system",
    };
}

impl Paths<'_> {
    /// The variables of `template`: every path, and the unit's name and directories
    /// (`RuntimeDirectory=` and `StateDirectory=` are relative to /run and /var/lib).
    /// A path the scripts could not use unquoted is refused.
    fn context(&self, template: &str) -> Result<minijinja::Value, TemplateError> {
        let all = [self.agent, self.socket, self.state_dir, self.run_dir, self.unit_path, self.systemd_marker];
        if let Some(path) = all.iter().find(|path| !plain_path(path)) {
            let detail = format!("path `{path}` is not absolute or holds characters other than A-Z a-z 0-9 / . _ -");
            let source = minijinja::Error::new(minijinja::ErrorKind::InvalidOperation, detail);
            return Err(TemplateError { name: template.to_owned(), source });
        }
        let unit_name = self.unit_path.rsplit('/').next().unwrap_or(self.unit_path);
        Ok(context! {
            agent => self.agent,
            socket => self.socket,
            state_dir => self.state_dir,
            run_dir => self.run_dir,
            unit_path => self.unit_path,
            unit_name => unit_name,
            systemd_marker => self.systemd_marker,
            runtime_directory => self.run_dir.strip_prefix("/run/").unwrap_or(self.run_dir),
            state_directory => self.state_dir.strip_prefix("/var/lib/").unwrap_or(self.state_dir),
        })
    }
}

fn plain_path(path: &str) -> bool {
    path.starts_with('/') && path.bytes().all(|b| b.is_ascii_alphanumeric() || b"/._-".contains(&b))
}

/// What can go wrong installing or removing zerolab on one node.
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    /// Reaching the node or running a step on it.
    #[error(transparent)]
    Ssh(#[from] ssh::Error),
    /// A node-side script could not be rendered.
    #[error(transparent)]
    Template(#[from] TemplateError),
    /// The start script failed; its last line of stderr.
    #[error("starting the agent failed: {0}")]
    Start(String),
    /// The agent did not answer its health check in time.
    #[error("agent not healthy after {0:?}")]
    Health(Duration, #[source] AgentError),
    /// The agent runs, but its socket is root's and the login user is not root.
    #[error(
        "the agent was started, but user {user} cannot open its socket {} (root only); \
         zerolab reaches the agent as root for now: log in as root (`user: root`)",
        agent_client::SOCKET
    )]
    SocketNotRoot {
        /// The login user.
        user: String,
    },
    /// The remove script failed; its last line of stderr.
    #[error("removing zerolab failed: {0}")]
    Remove(String),
}

/// What the start script found or did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// The agent was not running and was started.
    Started,
    /// It ran, and was restarted to serve a new build (or a changed unit).
    Restarted,
    /// It ran already and was left alone.
    Running,
}

/// What [`install`] did on a node that ended healthy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Installed {
    /// Whether the binary was uploaded.
    pub upload: Upload,
    /// What became of the agent.
    pub start: Start,
}

/// The systemd unit of the agent at `paths`.
pub fn unit_file(paths: &Paths<'_>) -> Result<String, TemplateError> {
    templates::render(AGENT_UNIT, paths.context(AGENT_UNIT)?)
}

/// The node-side script that starts the agent at `paths` unless it runs (`restart`:
/// the binary was just replaced, so a running agent is restarted). It prints `started`,
/// `restarted` or `running`; with `expect_sum`, it first checks that the binary has that
/// sha256 and prints `upload` (starting nothing) when it does not.
pub fn start_script(paths: &Paths<'_>, restart: bool, expect_sum: Option<&Sha256>) -> Result<String, TemplateError> {
    let unit = unit_file(paths)?;
    let context = context! {
        restart => u8::from(restart),
        expect_sum => expect_sum.map(Sha256::to_string),
        unit => unit,
        ..paths.context(START_AGENT)?
    };
    templates::render(START_AGENT, context)
}

/// The node-side script that removes everything at `paths`; it prints `removed`.
pub fn remove_script(paths: &Paths<'_>) -> Result<String, TemplateError> {
    templates::render(REMOVE_AGENT, paths.context(REMOVE_AGENT)?)
}

/// Installs the local agent binary `agent` (whose sha256 is `sum`) on the session's
/// node, starts it unless it runs, and waits until it is healthy.
pub async fn install(session: &Session, agent: &Path, sum: &Sha256) -> Result<Installed, InstallError> {
    session.check_sudo(STEP_TIMEOUT).await?;
    let mut upload = Upload::Skipped;
    let mut output = session.exec_as_root(&start_script(&Paths::NODE, false, Some(sum))?, STEP_TIMEOUT).await?;
    if output.success() && String::from_utf8_lossy(&output.stdout).trim() == "upload" {
        let start = start_script(&Paths::NODE, true, None)?;
        output = session.copy_as_root_then(agent, sum, AGENT_PATH, 0o755, &start, STEP_TIMEOUT).await?;
        upload = Upload::Copied;
    }
    if !output.success() {
        return Err(InstallError::Start(ssh::last_line(&String::from_utf8_lossy(&output.stderr), output.status)));
    }
    let start = match String::from_utf8_lossy(&output.stdout).trim() {
        "running" => Start::Running,
        "restarted" => Start::Restarted,
        _ => Start::Started,
    };
    match wait_healthy(session).await {
        // sshd opens the socket as the login user, and the agent makes it root's only.
        Err(InstallError::Health(_, AgentError::Connect(_))) if session.needs_sudo() => {
            Err(InstallError::SocketNotRoot { user: session.user().to_owned() })
        }
        Err(e) => Err(e),
        Ok(()) => Ok(Installed { upload, start }),
    }
}

/// Stops the agent on the session's node and removes everything zerolab installed there.
pub async fn remove(session: &Session) -> Result<(), InstallError> {
    session.check_sudo(STEP_TIMEOUT).await?;
    let output = session.exec_as_root(&remove_script(&Paths::NODE)?, STEP_TIMEOUT).await?;
    if output.success() {
        Ok(())
    } else {
        Err(InstallError::Remove(ssh::last_line(&String::from_utf8_lossy(&output.stderr), output.status)))
    }
}

/// Asks for health until the agent answers or [`HEALTH_WAIT`] has passed (a fresh agent
/// needs a moment to bind its socket; a killed one is restarted a second later).
async fn wait_healthy(session: &Session) -> Result<(), InstallError> {
    let mut backoff = Backoff::steady(Duration::from_millis(50), HEALTH_WAIT);
    loop {
        match agent_client::health(session, Duration::from_secs(2)).await {
            Ok(()) => return Ok(()),
            Err(e) if !backoff.wait().await => return Err(InstallError::Health(HEALTH_WAIT, e)),
            Err(_) => {}
        }
    }
}

#[cfg(test)]
mod tests;
