//! `pxe`: machines that boot from the network, known by the MAC address of their boot
//! interface. The lab serves the boot network itself (DHCP, TFTP for the first stage,
//! HTTP for everything else), brings every listed machine up into a system with sshd,
//! then provisions it over SSH like any other node.
//!
//! Cluster file: [`BASE`] with its own lab subnet ([`DEFAULT_SUBNET`], the boot network),
//! a required `mac` per node (so `count` cannot be used), and the node fields `boot`
//! (`live`, `install`, `local`), `install` (`image`, `preseed`), `disk` and `power`
//! ([`Settings`]); the lab's `pxe:` section says where and how the boot services run
//! ([`PxeLab`], `settings.rs`).
//!
//! The parts, one module each: `settings.rs` reads the file; `boot/` renders the boot
//! files and runs the boot server (dnsmasq and zerolab's HTTP server, a daemon per lab);
//! `power/` switches machines on and off (QMP, IPMI, wake-on-LAN, host commands);
//! `artifacts.rs` builds the live system and the disk image (cached); `lifecycle.rs`
//! (`up`, `down`, status) puts them together.

mod artifacts;
pub mod boot;
mod create;
mod error;
mod host;
mod keys;
mod lifecycle;
mod mirror;
mod plan;
pub mod power;
mod settings;
mod shelve;

pub use self::error::PxeError;
pub use self::settings::{Boot, DhcpMode, Loader, PowerConfig, PxeLab, Route, Settings};

use std::net::Ipv4Addr;

use zerolab_config::cluster::{Checker, EntryView, LabSettings, LabView};

use super::{Addressing, Definition, NodeSettings, ProviderConfig, ProviderKind, ProviderSpec, BASE};
use zerolab_config::cluster::net::Subnet;
use zerolab_config::cluster::schema::{NodeField, Section};

/// The `pxe` provider, for the registry.
pub const DEFINITION: Definition = Definition { kind: KIND, lifecycle: &Pxe };

/// Its handle.
pub const KIND: ProviderKind = ProviderKind::new(&Pxe);

/// The `pxe` provider.
pub struct Pxe;

impl ProviderConfig for Pxe {
    fn name(&self) -> &'static str {
        "pxe"
    }

    fn spec(&self) -> &'static ProviderSpec {
        &SPEC
    }

    fn node_settings(&self, entry: &EntryView<'_>, check: &mut Checker<'_>) -> Option<NodeSettings> {
        settings::node_settings(entry, check).map(|settings| NodeSettings::new(KIND, settings))
    }

    fn lab_settings(&self, lab: &LabView<'_>, check: &mut Checker<'_>) -> Option<LabSettings> {
        settings::lab_settings(lab, check).map(LabSettings::new)
    }
}

/// The lab subnet when `network.subnet` is not given.
pub const DEFAULT_SUBNET: Subnet = Subnet::new(Ipv4Addr::new(10, 79, 0, 0), 24);

/// What `pxe` reads from the cluster file.
pub const SPEC: ProviderSpec = ProviderSpec {
    fields: &[
        NodeField::Address,
        NodeField::User,
        NodeField::Mac,
        NodeField::Boot,
        NodeField::Install,
        NodeField::Disk,
        NodeField::Power,
    ],
    required: &[NodeField::Mac],
    addressing: Addressing::Subnet { default: DEFAULT_SUBNET },
    sections: &[Section::Pxe],
    ..BASE
};
