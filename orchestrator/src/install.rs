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
//! Each agent belongs to one lab ([`owner`]): both scripts first read the owner file in
//! the agent's state directory, and leave another lab's agent alone ([`InstallError::Owned`],
//! [`Removed::LeftAlone`]).
//!
//! Design: the scripts are templates, not Rust strings, so each reads as the shell it is;
//! the paths are passed in ([`Paths`]), so a test can run a script against a temporary
//! directory instead of the node's real paths.

pub mod owner;

use std::path::Path;
use std::time::Duration;

use minijinja::context;
use zerolab_agent_api::Sha256;

use crate::agent_client::{self, AgentError};
use crate::backoff::Backoff;
use crate::ssh::{self, Session, Upload};
use crate::templates::{self, TemplateError, AGENT_UNIT, REMOVE_AGENT, START_AGENT};

pub use self::owner::Owner;

/// Where the agent binary goes on every node.
pub const AGENT_PATH: &str = "/var/lib/zerolab/bin/zerolab-agent";
/// How long a started agent has to answer its health check: it answers within a
/// second on a namespace host, but a virtual machine under software emulation, busy
/// with its first boot, has been seen to need over 5 s for systemd to start it.
const HEALTH_WAIT: Duration = Duration::from_secs(30);
/// Limit for each command and the upload: seconds on a namespace host, but minutes on a
/// virtual machine under software emulation sharing two cores with others.
const STEP_TIMEOUT: Duration = Duration::from_secs(180);

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
            owner_path => format!("{}/{}", self.state_dir, owner::FILE),
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
    /// The node's agent belongs to another lab; nothing was changed there.
    #[error("node {node} is provisioned by {owner}; take that lab down first, or use it")]
    Owned {
        /// The node.
        node: String,
        /// The lab its agent belongs to.
        owner: Owner,
    },
    /// The node has an agent without an owner file (an older zerolab's), and this lab
    /// never logged in there before; nothing was changed there.
    #[error(
        "node {node} has a zerolab agent that no lab claims (installed by an older zerolab); take down the lab \
         that installed it, or remove it by hand ({}) and run `zerolab up` again",
        by_hand(&Paths::NODE)
    )]
    Unowned {
        /// The node.
        node: String,
    },
}

/// What [`remove`] did on a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Removed {
    /// Everything zerolab installed there is gone.
    Removed,
    /// The agent belongs to another lab and was left alone.
    LeftAlone(Owner),
}

/// What to run as root on a node to remove zerolab by hand, when `zerolab down` could not.
pub fn by_hand(paths: &Paths<'_>) -> String {
    let unit = paths.unit_path.rsplit('/').next().unwrap_or(paths.unit_path);
    format!(
        "as root on the node: `systemctl disable --now {unit}` (without systemd: `kill -TERM -$(cat {}/supervisor.pid)`), \
         then `rm -rf {} {} {}`",
        paths.run_dir, paths.state_dir, paths.run_dir, paths.unit_path
    )
}

/// Whose agent [`install`] may start on a node.
#[derive(Debug, Clone, Copy)]
pub struct Claim<'a> {
    /// The lab installing it.
    pub owner: &'a Owner,
    /// Whether an agent without an owner file is taken as the lab's own: true when the
    /// lab logged into the node before (an agent of an older zerolab, installed by it).
    pub adopt: bool,
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

/// The node-side script that starts the agent at `paths` for `claim` unless it runs
/// (`restart`: the binary was just replaced, so a running agent is restarted). It prints
/// `started`, `restarted` or `running`; with `expect_sum`, it first checks that the binary
/// has that sha256 and prints `upload` (starting nothing) when it does not. An agent of
/// another lab prints `owned` and its owner file, one without an owner file that `claim`
/// does not adopt `unowned`; both change nothing.
pub fn start_script(
    paths: &Paths<'_>,
    claim: &Claim<'_>,
    restart: bool,
    expect_sum: Option<&Sha256>,
) -> Result<String, TemplateError> {
    let unit = unit_file(paths)?;
    let context = context! {
        owner => claim.owner.to_file(),
        adopt => u8::from(claim.adopt),
        restart => u8::from(restart),
        expect_sum => expect_sum.map(Sha256::to_string),
        unit => unit,
        ..paths.context(START_AGENT)?
    };
    templates::render(START_AGENT, context)
}

/// The node-side script that removes everything at `paths` unless its owner file names
/// another lab than `owner`; it prints `removed`, or `owned` and the owner file.
pub fn remove_script(paths: &Paths<'_>, owner: &Owner) -> Result<String, TemplateError> {
    let context = context! { owner => owner.to_file(), ..paths.context(REMOVE_AGENT)? };
    templates::render(REMOVE_AGENT, context)
}

/// What a script printed: its first line, and the owner file after an `owned`.
fn answer(stdout: &[u8]) -> (String, Option<Owner>) {
    let text = String::from_utf8_lossy(stdout);
    let mut lines = text.trim().splitn(2, '\n');
    let first = lines.next().unwrap_or_default().trim().to_owned();
    let owner = (first == "owned").then(|| Owner::parse(lines.next().unwrap_or_default()));
    (first, owner)
}

/// Installs the local agent binary `agent` (whose sha256 is `sum`) on the session's
/// node for `claim`, starts it unless it runs, and waits until it is healthy. A node
/// whose agent belongs to another lab is left as it is ([`InstallError::Owned`]).
pub async fn install(
    session: &Session,
    agent: &Path,
    sum: &Sha256,
    claim: &Claim<'_>,
) -> Result<Installed, InstallError> {
    session.check_sudo(STEP_TIMEOUT).await?;
    let mut upload = Upload::Skipped;
    let mut output = session.exec_as_root(&start_script(&Paths::NODE, claim, false, Some(sum))?, STEP_TIMEOUT).await?;
    if output.success() && answer(&output.stdout).0 == "upload" {
        // The script just found the node ours (or free): what the upload brings is ours.
        let start = start_script(&Paths::NODE, &Claim { adopt: true, ..*claim }, true, None)?;
        output = session.copy_as_root_then(agent, sum, AGENT_PATH, 0o755, &start, STEP_TIMEOUT).await?;
        upload = Upload::Copied;
    }
    if !output.success() {
        return Err(InstallError::Start(ssh::last_line(&String::from_utf8_lossy(&output.stderr), output.status)));
    }
    let node = session.node().to_owned();
    let start = match answer(&output.stdout) {
        (_, Some(owner)) => return Err(InstallError::Owned { node, owner }),
        (first, None) if first == "unowned" => return Err(InstallError::Unowned { node }),
        (first, None) if first == "running" => Start::Running,
        (first, None) if first == "restarted" => Start::Restarted,
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

/// Stops the agent on the session's node and removes everything zerolab installed
/// there, unless the agent belongs to another lab than `owner`.
pub async fn remove(session: &Session, owner: &Owner) -> Result<Removed, InstallError> {
    session.check_sudo(STEP_TIMEOUT).await?;
    let output = session.exec_as_root(&remove_script(&Paths::NODE, owner)?, STEP_TIMEOUT).await?;
    if !output.success() {
        return Err(InstallError::Remove(ssh::last_line(&String::from_utf8_lossy(&output.stderr), output.status)));
    }
    Ok(match answer(&output.stdout) {
        (_, Some(other)) => Removed::LeftAlone(other),
        _ => Removed::Removed,
    })
}

/// The owner file of the session's node (`None`: there is none, or the login user cannot
/// read it): whose agent answers there.
pub async fn agent_owner(session: &Session) -> Option<Owner> {
    let command = format!("cat {}/{}", Paths::NODE.state_dir, owner::FILE);
    let output = session.exec(&command, None, STEP_TIMEOUT).await.ok()?;
    output.success().then(|| Owner::parse(&String::from_utf8_lossy(&output.stdout)))
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
