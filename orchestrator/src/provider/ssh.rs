//! `ssh`: machines that already exist, reached by address, user and key.
//!
//! Cluster file: differs from [`BASE`](super::BASE) in everything about reaching a node: each node
//! names its own `address` (IP or host name; there is no lab network, so `count` cannot
//! be used), and `user` and `key` are required (on the node or in `defaults`): zerolab
//! did not make these machines and does not guess how to log in. `port` defaults to 22.

use super::{Addressing, ProviderSpec};
use crate::cluster::diagnostic::Problem;
use crate::cluster::schema::NodeField;
use crate::cluster::validate::{Checker, EntryView};

/// The SSH port when `port` is not given.
pub const DEFAULT_PORT: u16 = 22;

/// What `ssh` reads from the cluster file.
pub const SPEC: ProviderSpec = ProviderSpec {
    fields: &[NodeField::Address, NodeField::User, NodeField::Key, NodeField::Port],
    required: &[NodeField::Address, NodeField::User, NodeField::Key],
    default_user: None,
    addressing: Addressing::PerNode,
};

/// An `ssh` node's settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    /// The port its sshd listens on.
    pub port: u16,
}

pub(crate) fn node_settings(entry: &EntryView<'_>, check: &mut Checker<'_>) -> Option<Settings> {
    match entry.port() {
        None => Some(Settings { port: DEFAULT_PORT }),
        Some((0, path)) => {
            check.report(&path, Problem::PortZero);
            None
        }
        Some((port, _)) => Some(Settings { port }),
    }
}
