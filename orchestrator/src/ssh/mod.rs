//! Provisioning over SSH: one russh connection per node, reused for every step.
//!
//! [`Session::connect`] reaches a [`Target`] (retrying while the node boots), pins its
//! host key in [`HostKeys`] on first contact and refuses a changed one, and authenticates
//! with the lab's key. On the session, [`Session::exec`] runs a command and reads until
//! the channel closes (the exit status may arrive before the last output),
//! [`Session::upload`] streams a file through `cat` and verifies its sha256 on the node,
//! [`Session::open_streamlocal`] reaches a Unix socket on the node (the agent's), and
//! [`Session::open_shell`] opens a login shell on a pseudo-terminal (the portal's terminal).
//! [`run_parallel`] fans a step out over many nodes with bounded concurrency and keeps
//! one result per node, so one node's failure never stops the others.
//!
//! Design: everything runs over the single authenticated connection (channels are
//! cheap, handshakes are not: a curve25519 handshake costs more than a dozen execs), and
//! nothing needs SFTP or scp on the node, only a POSIX shell, `cat` and `sha256sum`.

mod error;
mod hostkeys;
mod parallel;
mod session;
mod tcp;

pub use error::Error;
pub use hostkeys::HostKeys;
pub use parallel::{run_parallel, PARALLEL};
pub use session::{last_line, sha256_file, ConnectOptions, Output, Session, Shell, Stream, Upload};

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// A node to reach over SSH.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    /// The node's name, used in host-key pins and in every error.
    pub node: String,
    /// Host name or IP address.
    pub address: String,
    /// TCP port of the node's sshd.
    pub port: u16,
    /// User to log in as.
    pub user: String,
    /// Private key file (OpenSSH format, unencrypted).
    pub key: PathBuf,
}
