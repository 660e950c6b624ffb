//! The SSH module's errors: each names the node and what failed, in one line.

use std::path::PathBuf;
use std::time::Duration;

/// What went wrong reaching or using a node over SSH.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No TCP connection could be made, even after retrying.
    #[error(
        "node {node}: unreachable at {address} after {attempts} {} ({source}); check that the node is up and its sshd \
         listens there",
        if *attempts == 1 { "attempt" } else { "attempts" }
    )]
    Unreachable {
        node: String,
        address: String,
        attempts: u32,
        #[source]
        source: std::io::Error,
    },
    /// The node presented a host key other than the pinned one (keys as fingerprints,
    /// `SHA256:...`, the form `ssh-keygen -l` prints).
    #[error(
        "node {node}: host key changed: {address} now presents {presented}, but {file} pins {pinned}; \
         if {node} was rebuilt, remove its line from {file} and run `zerolab up` again (or `zerolab down`, \
         then `zerolab up`, to start the lab over)",
        file = file.display()
    )]
    HostKeyChanged { node: String, address: String, file: PathBuf, pinned: String, presented: String },
    /// The pinned host keys file could not be read or written.
    #[error("host keys file {}", path.display())]
    HostKeysFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A line of the host keys file is not `node address key-type base64`.
    #[error("host keys file {}: line {line}: expected `node address key-type base64`", path.display())]
    HostKeysLine { path: PathBuf, line: usize },
    /// The private key could not be read.
    #[error("node {node}: cannot load key {}", path.display())]
    Key {
        node: String,
        path: PathBuf,
        #[source]
        source: Box<russh::keys::Error>,
    },
    /// The node refused the key.
    #[error(
        "node {node}: authentication as {user} with key {key} rejected; add its public key ({key}.pub) to the \
         node's authorized_keys for {user}",
        key = key.display()
    )]
    AuthRejected { node: String, user: String, key: PathBuf },
    /// The SSH handshake did not finish in time.
    #[error("node {node}: ssh handshake with {address} timed out after {timeout:?}")]
    HandshakeTimeout { node: String, address: String, timeout: Duration },
    /// The SSH protocol failed (connection lost, channel refused, ...).
    #[error("node {node}: ssh {operation} failed")]
    Ssh {
        node: String,
        operation: &'static str,
        #[source]
        source: Box<russh::Error>,
    },
    /// The node did not answer a channel open in time: the connection looks open but
    /// carries nothing (say the node's link went down); it is not reused.
    #[error("node {node}: ssh {operation} got no answer within {timeout:?}; the connection is dead")]
    ChannelTimeout { node: String, operation: &'static str, timeout: Duration },
    /// A command did not finish within its step timeout.
    #[error("node {node}: `{}` timed out after {timeout:?}", brief(command))]
    Timeout { node: String, command: String, timeout: Duration },
    /// The channel closed without an exit status or signal.
    #[error("node {node}: `{}` ended without an exit status", brief(command))]
    NoExitStatus { node: String, command: String },
    /// A local file for an upload could not be read.
    #[error("node {node}: cannot read {}", path.display())]
    LocalFile {
        node: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The remote side of an upload failed (disk full, checksum mismatch, ...).
    #[error("node {node}: upload to {remote} failed: {cause}")]
    Upload { node: String, remote: String, cause: String },
    /// A step needs root, the login user is not root, and sudo is not installed.
    #[error(
        "user {user} on node {node} is not root and the node has no sudo; install sudo \
         (with a NOPASSWD rule for {user}) or log in as root"
    )]
    SudoMissing { node: String, user: String },
    /// A step needs root and `sudo -n` asks for a password.
    #[error(
        "user {user} on node {node} cannot run sudo without a password; allow it \
         (sudoers: `{user} ALL=(ALL) NOPASSWD: ALL`) or log in as root"
    )]
    SudoPassword { node: String, user: String },
    /// `sudo -n true` failed for another reason.
    #[error("user {user} on node {node}: `sudo -n true` failed: {cause}")]
    Sudo { node: String, user: String, cause: String },
    /// A task of [`run_parallel`](super::run_parallel) panicked.
    #[error("node {node}: task panicked")]
    Panicked { node: String },
}

impl Error {
    /// The node the error is about, when it is about one.
    pub fn node(&self) -> Option<&str> {
        match self {
            Error::HostKeysFile { .. } | Error::HostKeysLine { .. } => None,
            Error::Unreachable { node, .. }
            | Error::HostKeyChanged { node, .. }
            | Error::Key { node, .. }
            | Error::AuthRejected { node, .. }
            | Error::HandshakeTimeout { node, .. }
            | Error::Ssh { node, .. }
            | Error::ChannelTimeout { node, .. }
            | Error::Timeout { node, .. }
            | Error::NoExitStatus { node, .. }
            | Error::LocalFile { node, .. }
            | Error::Upload { node, .. }
            | Error::SudoMissing { node, .. }
            | Error::SudoPassword { node, .. }
            | Error::Sudo { node, .. }
            | Error::Panicked { node } => Some(node),
        }
    }
}

/// A command as an error shows it: its first line, at most 60 characters (zerolab's own
/// steps are whole scripts; the line should name the step, not print it).
fn brief(command: &str) -> String {
    let first = command.lines().next().unwrap_or_default();
    let mut short: String = first.chars().take(60).collect();
    if short.len() < command.len() {
        short.push_str("...");
    }
    short
}
