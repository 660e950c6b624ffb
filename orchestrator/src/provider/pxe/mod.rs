//! `pxe`: machines that boot from the network, known by the MAC address of their boot
//! interface; the lab serves DHCP (a fixed lease per MAC) and the boot image.
//!
//! Cluster file: [`BASE`] with its own lab subnet ([`DEFAULT_SUBNET`]) and a required
//! `mac` per node, so `count` cannot be used (each machine is listed with its MAC).
//!
//! Lifecycle: not implemented yet (a later issue); every step of [`Provider`](super::Provider)
//! answers "not implemented yet" through the same interface the others implement.

use std::net::Ipv4Addr;

use zerolab_config::cluster::{Checker, EntryView, Problem};

use super::lifecycle::NotImplemented;
use super::{Addressing, Definition, NodeSettings, ProviderConfig, ProviderKind, ProviderSettings, ProviderSpec, BASE};
use zerolab_config::cluster::net::{MacAddr, Subnet};
use zerolab_config::cluster::schema::NodeField;

pub mod boot;

/// The `pxe` provider, for the registry.
pub const DEFINITION: Definition = Definition { kind: KIND, lifecycle: &NotImplemented(KIND) };

/// Its handle.
pub const KIND: ProviderKind = ProviderKind::new(&Pxe);

/// The `pxe` provider's cluster-file half (its lifecycle is not implemented yet:
/// every step says so in one line).
pub struct Pxe;

impl ProviderConfig for Pxe {
    fn name(&self) -> &'static str {
        "pxe"
    }

    fn spec(&self) -> &'static ProviderSpec {
        &SPEC
    }

    fn node_settings(&self, entry: &EntryView<'_>, check: &mut Checker<'_>) -> Option<NodeSettings> {
        node_settings(entry, check).map(|settings| NodeSettings::new(KIND, settings))
    }
}

/// The lab subnet when `network.subnet` is not given.
pub const DEFAULT_SUBNET: Subnet = Subnet::new(Ipv4Addr::new(10, 79, 0, 0), 24);

/// What `pxe` reads from the cluster file.
pub const SPEC: ProviderSpec = ProviderSpec {
    fields: &[NodeField::Address, NodeField::User, NodeField::Mac],
    required: &[NodeField::Mac],
    addressing: Addressing::Subnet { default: DEFAULT_SUBNET },
    ..BASE
};

/// A `pxe` node's settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    /// The MAC address of the interface it boots from.
    pub mac: MacAddr,
}

/// Nodes are known by their MAC: no two nodes of a lab may share one.
impl ProviderSettings for Settings {
    fn mac(&self) -> Option<MacAddr> {
        Some(self.mac)
    }
}

fn node_settings(entry: &EntryView<'_>, check: &mut Checker<'_>) -> Option<Settings> {
    // A missing mac is reported by the common `required` check.
    let (text, path) = entry.mac()?;
    match text.parse() {
        Ok(mac) => Some(Settings { mac }),
        Err(reason) => {
            check.report(&path, Problem::Mac { value: text.to_owned(), reason });
            None
        }
    }
}
