//! `pxe`: machines that boot from the network, known by the MAC address of their boot
//! interface; the lab serves DHCP (a fixed lease per MAC) and the boot image.
//!
//! Cluster file: [`BASE`] with its own lab subnet ([`DEFAULT_SUBNET`]) and a required
//! `mac` per node, so `count` cannot be used (each machine is listed with its MAC).
//!
//! Lifecycle: not implemented yet (a later issue); every step of [`Provider`](super::Provider)
//! answers "not implemented yet" through the same interface the others implement.

use std::net::Ipv4Addr;

use super::lifecycle::NotImplemented;
use super::{Addressing, ProviderKind, ProviderSpec, BASE};
use crate::cluster::diagnostic::Problem;
use crate::cluster::net::{MacAddr, Subnet};
use crate::cluster::schema::NodeField;
use crate::cluster::validate::{Checker, EntryView};

/// The lifecycle: not implemented yet; every step says so in one line.
pub(super) static LIFECYCLE: NotImplemented = NotImplemented(ProviderKind::Pxe);

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

pub(crate) fn node_settings(entry: &EntryView<'_>, check: &mut Checker<'_>) -> Option<Settings> {
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
