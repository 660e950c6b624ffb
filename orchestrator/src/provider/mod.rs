//! Providers: how a lab's nodes come to exist. One module per kind, registered in the
//! one list [`ProviderKind`] (which the cluster file's `provider:` deserializes into,
//! so an unknown kind is an error that lists the supported ones).
//!
//! A provider is two things. What the cluster file needs of it: a [`ProviderSpec`]
//! (which node fields it reads, which it requires, its default user, how nodes get
//! addresses) and a function that checks its own node fields and returns its per-node
//! [`NodeSettings`]; kinds are written containerlab-style, each spec [`BASE`] with only
//! what differs overridden. And its lifecycle, the [`Provider`] trait (check, create,
//! address of a node, destroy, power off/on; see [`lifecycle`]): `netns` makes namespace
//! hosts, `ssh` reaches machines that exist, `vagrant` and `pxe` are not implemented yet.

pub mod lifecycle;
pub mod netns;
pub mod progress;
pub mod pxe;
pub mod ssh;
pub mod vagrant;

use std::fmt;

use serde::Deserialize;

pub use self::lifecycle::{of, BoxFuture, Created, Provider, ProviderError};
pub use self::progress::{no_progress, CreateProgress, CreateStep};

use crate::cluster::net::Subnet;
use crate::cluster::schema::NodeField;
use crate::cluster::validate::{Checker, EntryView};

/// The supported providers: the one explicit list.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    /// Network namespaces on this machine, each with its own sshd (the default).
    #[default]
    Netns,
    /// Machines that already exist, reached by address, user and key.
    Ssh,
    /// Virtual machines made by Vagrant (libvirt).
    Vagrant,
    /// Machines that boot from the network, known by their MAC address.
    Pxe,
}

impl ProviderKind {
    /// Every provider, in the order they are documented.
    pub const ALL: [ProviderKind; 4] =
        [ProviderKind::Netns, ProviderKind::Ssh, ProviderKind::Vagrant, ProviderKind::Pxe];

    /// The name written in the cluster file.
    pub fn name(self) -> &'static str {
        match self {
            ProviderKind::Netns => "netns",
            ProviderKind::Ssh => "ssh",
            ProviderKind::Vagrant => "vagrant",
            ProviderKind::Pxe => "pxe",
        }
    }

    /// What this provider reads from the cluster file.
    pub fn spec(self) -> &'static ProviderSpec {
        match self {
            ProviderKind::Netns => &netns::SPEC,
            ProviderKind::Ssh => &ssh::SPEC,
            ProviderKind::Vagrant => &vagrant::SPEC,
            ProviderKind::Pxe => &pxe::SPEC,
        }
    }

    /// The providers that read `field`.
    pub fn reading(field: NodeField) -> Vec<ProviderKind> {
        ProviderKind::ALL.into_iter().filter(|kind| kind.spec().fields.contains(&field)).collect()
    }

    /// Checks the provider's own fields of one `nodes:` entry and returns its settings
    /// (`None` when a field is wrong; the problem is reported to `check`).
    pub(crate) fn node_settings(self, entry: &EntryView<'_>, check: &mut Checker<'_>) -> Option<NodeSettings> {
        match self {
            ProviderKind::Netns => netns::node_settings(entry, check).map(NodeSettings::Netns),
            ProviderKind::Ssh => ssh::node_settings(entry, check).map(NodeSettings::Ssh),
            ProviderKind::Vagrant => vagrant::node_settings(entry, check).map(NodeSettings::Vagrant),
            ProviderKind::Pxe => pxe::node_settings(entry, check).map(NodeSettings::Pxe),
        }
    }
}

impl fmt::Display for ProviderKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How a provider's nodes get their addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Addressing {
    /// From a lab subnet (`network.subnet`, else `default`): the host side is `.1`,
    /// nodes get `.2` on in order; a node's fixed `address` must be inside it.
    Subnet {
        /// The subnet when the file names none.
        default: Subnet,
    },
    /// Each node names its own (an IP address or host name); there is no lab network.
    PerNode,
}

/// What a provider reads from the cluster file.
#[derive(Clone, Copy, Debug)]
pub struct ProviderSpec {
    /// The provider-dependent node fields it reads (any other is an error).
    pub fields: &'static [NodeField],
    /// Fields every node must have, on the node or in `defaults`.
    pub required: &'static [NodeField],
    /// The login user when none is given (`None`: `user` is required).
    pub default_user: Option<&'static str>,
    /// How nodes get addresses.
    pub addressing: Addressing,
}

/// What providers share unless they say otherwise: nodes on a lab subnet the lab
/// creates, logged into as root with the key pair the lab generates.
pub const BASE: ProviderSpec = ProviderSpec {
    fields: &[NodeField::Address, NodeField::User],
    required: &[],
    default_user: Some("root"),
    addressing: Addressing::Subnet { default: netns::DEFAULT_SUBNET },
};

/// A node's provider-specific settings, defaults applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NodeSettings {
    /// A `netns` node.
    Netns(netns::Settings),
    /// An `ssh` node.
    Ssh(ssh::Settings),
    /// A `vagrant` node.
    Vagrant(vagrant::Settings),
    /// A `pxe` node.
    Pxe(pxe::Settings),
}

impl NodeSettings {
    /// The provider these settings belong to.
    pub fn kind(&self) -> ProviderKind {
        match self {
            NodeSettings::Netns(_) => ProviderKind::Netns,
            NodeSettings::Ssh(_) => ProviderKind::Ssh,
            NodeSettings::Vagrant(_) => ProviderKind::Vagrant,
            NodeSettings::Pxe(_) => ProviderKind::Pxe,
        }
    }

    /// The port the node's sshd listens on.
    pub fn ssh_port(&self) -> u16 {
        match self {
            NodeSettings::Ssh(settings) => settings.port,
            _ => ssh::DEFAULT_PORT,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_field_is_read_by_some_provider() {
        for field in NodeField::ALL {
            assert!(!ProviderKind::reading(field).is_empty(), "{field}");
        }
    }

    #[test]
    fn required_fields_are_fields_the_provider_reads() {
        for kind in ProviderKind::ALL {
            let spec = kind.spec();
            for field in spec.required {
                assert!(spec.fields.contains(field), "{kind}: {field}");
            }
            assert!(spec.default_user.is_some() || spec.required.contains(&NodeField::User), "{kind}");
        }
    }

    #[test]
    fn lab_subnets_differ_between_providers() {
        let subnets: Vec<Subnet> = ProviderKind::ALL
            .into_iter()
            .filter_map(|kind| match kind.spec().addressing {
                Addressing::Subnet { default } => Some(default),
                Addressing::PerNode => None,
            })
            .collect();
        for (i, subnet) in subnets.iter().enumerate() {
            assert!(subnet.is_private(), "{subnet}");
            assert!(!subnets[i + 1..].contains(subnet), "{subnet}");
        }
    }
}
