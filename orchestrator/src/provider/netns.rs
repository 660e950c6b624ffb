//! `netns`: each node is a network namespace on this machine, joined to a lab bridge on
//! the lab subnet, with its own sshd. The default provider.
//!
//! Cluster file: everything from [`BASE`]: nodes get addresses from the lab subnet
//! (default [`DEFAULT_SUBNET`]), log in as `root` with the key pair the lab generates
//! (so `key` does not apply), and have no fields of their own yet.
//!
//! Acting on the machine (root only): [`create`] makes each node a network namespace on
//! a lab bridge with its own mount and UTS namespace, private directories and OpenSSH
//! sshd; [`destroy`] removes all of it. The details and the order are in `host.rs`;
//! kernel object names in [`names`].

mod host;
pub mod names;

use std::net::Ipv4Addr;

pub use self::host::{create, destroy, sshd_config, NetnsError, SSHD};
pub use self::names::Names;

use super::{ProviderSpec, BASE};
use crate::cluster::net::Subnet;
use crate::cluster::validate::{Checker, EntryView};

/// The lab subnet when `network.subnet` is not given.
pub const DEFAULT_SUBNET: Subnet = Subnet::new(Ipv4Addr::new(10, 77, 0, 0), 24);

/// What `netns` reads from the cluster file: the base, unchanged.
pub const SPEC: ProviderSpec = BASE;

/// A `netns` node's settings: none yet (the namespace is named after the lab and node).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Settings {}

pub(crate) fn node_settings(_entry: &EntryView<'_>, _check: &mut Checker<'_>) -> Option<Settings> {
    Some(Settings {})
}
