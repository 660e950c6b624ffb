//! `zerolab ssh`: a login to one node, through the system's OpenSSH client.
//!
//! [`command`] checks what was asked (a node of the lab, a lab that is up, a node the
//! lab records as ready, an `ssh` client on `PATH`), writes the lab's OpenSSH config
//! (`LAB/ssh_config`, what `inventory --format ssh-config` prints: host keys checked
//! strictly against zerolab's pins in `LAB/ssh_known_hosts`), and returns the command
//! `ssh -F LAB/ssh_config -- NODE [CMD...]`. The `zerolab` binary then replaces itself
//! with it, as `vagrant ssh` does, so the terminal, signals and exit status are ssh's own.
//!
//! Design: OpenSSH rather than the russh sessions the other commands use, because a
//! login is what the OpenSSH client is for: a pseudo-terminal and its modes, window
//! size changes, escape sequences, agent and X11 forwarding when the user asks for them.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::cluster::{Cluster, SelectorError};
use crate::inventory::{self, InventoryError};
use crate::lab::Lab;
use crate::lab_handle::OpenError;

/// Why the login cannot start.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    /// No node of the lab has that name.
    #[error(transparent)]
    UnknownNode(#[from] SelectorError),
    /// The lab is not up, the node is not ready, or the lab's provider or files failed.
    #[error(transparent)]
    Open(#[from] OpenError),
    /// There is no OpenSSH client to run.
    #[error("the OpenSSH client `ssh` was not found on PATH; install it (apt-get install openssh-client)")]
    NoClient,
    /// The config or the pins could not be written.
    #[error(transparent)]
    Inventory(Box<InventoryError>),
}

impl From<InventoryError> for LoginError {
    fn from(error: InventoryError) -> LoginError {
        // Boxed: it holds every error of the inventory, most of them large and rare.
        LoginError::Inventory(Box::new(error))
    }
}

/// The OpenSSH command that logs in to `node` of `cluster` (lab under `root`) and runs
/// `remote` there (words joined with spaces by ssh, run by the node's login shell), or
/// an interactive shell when `remote` is empty.
pub fn command(root: &Path, cluster: &Cluster, node: &str, remote: &[String]) -> Result<Command, LoginError> {
    crate::provider::of(cluster).map_err(OpenError::from)?;
    let node = cluster.find_node(node)?;
    let lab = Lab::open(root, cluster)?;
    lab.ready(&node.name)?;
    let ssh = find_program("ssh", std::env::var_os("PATH")).ok_or(LoginError::NoClient)?;
    let config = inventory::write_ssh_config(lab.lab(), cluster, lab.provider())?;
    let mut command = Command::new(ssh);
    command.arg("-F").arg(config);
    // Multiplexed: the first login opens a connection the next ones reuse for a minute,
    // so a login costs milliseconds, not a handshake (about a second to a virtual
    // machine under emulation). `down` closes it ([`close_shared`]). Without a private
    // directory short enough for the socket's path, each login connects anew.
    if let Some(control) = control_path() {
        command.arg("-o").arg("ControlMaster=auto").arg("-o").arg(format!("ControlPath={}", control.display()));
        command.arg("-o").arg("ControlPersist=60");
    }
    // `--` ends ssh's options: the node and the remote command are never read as options.
    command.arg("--").arg(&node.name).args(remote);
    Ok(command)
}

/// The longest Unix socket path (`sun_path` less its terminating zero).
const MAX_SOCKET_PATH: usize = 107;
/// What ssh adds to the directory: `/`, `%C` (a SHA-1 in hex), and while it makes the
/// socket a `.` and 16 random characters.
const CONTROL_NAME_LEN: usize = 1 + 40 + 17;

/// The shared connections' socket path pattern (`DIR/%C`, ssh's `ControlPath`): `DIR` is
/// the user's own `zerolab-ssh-UID` under `$XDG_RUNTIME_DIR` or `/tmp`, made 0700 and
/// refused unless it is the user's and no one else's (another user's directory there
/// could hijack the logins). Short, so the path fits a Unix socket whatever the lab root.
fn control_path() -> Option<PathBuf> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt};
    let base = std::env::var_os("XDG_RUNTIME_DIR").map(PathBuf::from).filter(|dir| dir.is_dir());
    let uid = nix::unistd::geteuid().as_raw();
    let dir = base.unwrap_or_else(|| PathBuf::from("/tmp")).join(format!("zerolab-ssh-{uid}"));
    let _ = std::fs::DirBuilder::new().mode(0o700).create(&dir);
    let meta = std::fs::symlink_metadata(&dir).ok()?;
    let private = meta.is_dir() && meta.uid() == uid && meta.mode() & 0o077 == 0;
    (private && dir.as_os_str().len() + CONTROL_NAME_LEN <= MAX_SOCKET_PATH).then(|| dir.join("%C"))
}

/// Closes the shared connections `zerolab ssh` left open to `nodes` of the lab in
/// `lab_dir` (`ssh -O exit`, which finds each by the same `ControlPath`), so taking a lab
/// down leaves no ssh process behind.
pub fn close_shared(lab_dir: &Path, nodes: &[String]) {
    let config = lab_dir.join(inventory::SSH_CONFIG);
    let (Some(control), true) = (control_path(), config.exists()) else { return };
    for node in nodes {
        let _ = Command::new("ssh")
            .arg("-F")
            .arg(&config)
            .arg("-o")
            .arg(format!("ControlPath={}", control.display()))
            .args(["-O", "exit", "--", node])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
    }
}

/// The first executable file named `program` in the directories of `path` (`PATH`).
fn find_program(program: &str, path: Option<OsString>) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    std::env::split_paths(&path?)
        .map(|dir| dir.join(program))
        .find(|file| std::fs::metadata(file).is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_a_program_on_path_or_says_none() {
        let dir = tempfile::tempdir().unwrap();
        // The temp dir before this test's own PATH (where the system's `sh` is).
        let system = std::env::var_os("PATH").unwrap_or_default();
        let path =
            std::env::join_paths(std::iter::once(dir.path().to_owned()).chain(std::env::split_paths(&system))).unwrap();
        assert_eq!(find_program("sh", Some(path.clone())).unwrap().file_name().unwrap(), "sh");
        assert_eq!(find_program("zerolab-no-such-program", Some(path)), None);
        assert_eq!(find_program("sh", None), None);
        // A file that is not executable is not a program.
        std::fs::write(dir.path().join("ssh"), "").unwrap();
        assert_eq!(find_program("ssh", Some(dir.path().as_os_str().to_owned())), None);
    }

    #[test]
    fn an_unknown_node_gets_a_did_you_mean() {
        let text = "apiVersion: zerolab/v1\nkind: Cluster\nname: demo\nnodes:\n  - {name: node, count: 3}\n";
        let cluster = crate::cluster::from_str(text, "demo.yaml").unwrap();
        let root = tempfile::tempdir().unwrap();
        let err = command(root.path(), &cluster, "node-4", &[]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "no node named `node-4`; expected one of `node-1`, `node-2`, `node-3` (did you mean `node-1`?)"
        );
        let err = command(root.path(), &cluster, "node-2", &[]).unwrap_err();
        assert_eq!(err.to_string(), "lab demo is not up; run `zerolab up` first");
    }
}
