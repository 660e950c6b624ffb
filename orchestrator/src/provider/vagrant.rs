//! `vagrant`: virtual machines made by Vagrant (libvirt provider), on a network of the
//! lab's own with the lab subnet.
//!
//! Cluster file: [`BASE`] with its own lab subnet ([`DEFAULT_SUBNET`]), logging in as
//! `root` (with the lab's key, like every provider that makes its nodes: the agent's
//! socket is root's), and the machine's `box`, `memory_mb` and `cpus` (defaults [`DEFAULT_BOX`],
//! [`DEFAULT_MEMORY_MB`], [`DEFAULT_CPUS`]). The box is built locally (no box can be
//! downloaded on the lab machines: `vagrant/build-box`), hence a zerolab box name by default.
//!
//! Lifecycle ([`Vagrant`]), `up` in this order (`create.rs`): the lab's Vagrantfile and
//! network are rendered from templates into `LAB/vagrant/` (`render.rs`); the network is
//! defined by zerolab itself, isolated, with a DHCP reservation per machine's fixed MAC
//! ([`names`]), so each machine's address is the cluster file's, known before it boots;
//! `vagrant up` makes the machines that are missing or stopped, all at once, its output
//! turned into per-node progress (`machines.rs`); each machine's ed25519 host key is read
//! from its serial console log and pinned before any SSH contact (`console.rs`);
//! `vagrant ssh-config` is read once and checked against the cluster file. From then on
//! zerolab reaches the machines with its own SSH and keeper, like any other provider, and
//! asks libvirt (never Vagrant) what it needs to know (`virsh.rs`): a second `up` on a
//! ready lab runs no `vagrant` at all, `status` shows each domain's state, `down`
//! removes the lab's domains, volumes and network by the lab's prefix (`teardown.rs`).
//! A machine undefined behind Vagrant's back is made again by the next `up`, which says so.
//! Shelving suspends or halts a machine through Vagrant (`shelve.rs`).

use std::net::Ipv4Addr;

use zerolab_config::cluster::{Checker, EntryView, Problem};

mod console;
mod create;
mod lifecycle;
mod machines;
pub mod names;
mod render;
mod shelve;
mod teardown;
mod virsh;

pub use self::lifecycle::VagrantError;
pub use self::names::Names;

use super::{Addressing, Definition, NodeSettings, ProviderConfig, ProviderKind, ProviderSettings, ProviderSpec, BASE};
use zerolab_config::cluster::net::Subnet;
use zerolab_config::cluster::schema::NodeField;

/// The `vagrant` provider, for the registry.
pub const DEFINITION: Definition = Definition { kind: KIND, lifecycle: &Vagrant };

/// Its handle.
pub const KIND: ProviderKind = ProviderKind::new(&Vagrant);

/// The `vagrant` provider: machines Vagrant makes, reached with zerolab's own SSH.
pub struct Vagrant;

impl ProviderConfig for Vagrant {
    fn name(&self) -> &'static str {
        "vagrant"
    }

    fn spec(&self) -> &'static ProviderSpec {
        &SPEC
    }

    fn node_settings(&self, entry: &EntryView<'_>, check: &mut Checker<'_>) -> Option<NodeSettings> {
        node_settings(entry, check).map(|settings| NodeSettings::new(KIND, settings))
    }
}

/// The lab subnet when `network.subnet` is not given.
pub const DEFAULT_SUBNET: Subnet = Subnet::new(Ipv4Addr::new(10, 78, 0, 0), 24);
/// The box when `box` is not given: the Debian box zerolab builds.
pub const DEFAULT_BOX: &str = "zerolab/debian12";
/// Memory in MiB when `memory_mb` is not given.
pub const DEFAULT_MEMORY_MB: u32 = 1024;
/// The least memory a Debian guest with sshd boots in.
pub const MIN_MEMORY_MB: u32 = 256;
/// Virtual CPUs when `cpus` is not given.
pub const DEFAULT_CPUS: u32 = 1;
/// The most virtual CPUs a libvirt guest is given here.
pub const MAX_CPUS: u32 = 64;

/// What `vagrant` reads from the cluster file.
pub const SPEC: ProviderSpec = ProviderSpec {
    fields: &[NodeField::Address, NodeField::User, NodeField::Box, NodeField::MemoryMb, NodeField::Cpus],
    default_user: Some("root"),
    addressing: Addressing::Subnet { default: DEFAULT_SUBNET },
    ..BASE
};

/// A `vagrant` node's settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    /// The box the machine is made from.
    pub box_name: String,
    /// Memory in MiB.
    pub memory_mb: u32,
    /// Virtual CPUs.
    pub cpus: u32,
}

impl ProviderSettings for Settings {}

fn node_settings(entry: &EntryView<'_>, check: &mut Checker<'_>) -> Option<Settings> {
    let mut ok = true;
    let box_name = match entry.box_name() {
        None => DEFAULT_BOX.to_owned(),
        Some((name, path)) => {
            if name.is_empty() {
                check.report(&path, Problem::Empty { field: NodeField::Box });
                ok = false;
            } else if name.chars().any(|c| c.is_whitespace() || c.is_control()) {
                check.report(&path, Problem::BoxName { value: name.to_owned() });
                ok = false;
            }
            name.to_owned()
        }
    };
    let memory_mb = match entry.memory_mb() {
        None => DEFAULT_MEMORY_MB,
        Some((value, path)) if value < MIN_MEMORY_MB => {
            check.report(&path, Problem::TooSmall { field: NodeField::MemoryMb, value, min: MIN_MEMORY_MB });
            ok = false;
            value
        }
        Some((value, _)) => value,
    };
    let cpus = match entry.cpus() {
        None => DEFAULT_CPUS,
        Some((0, path)) => {
            check.report(&path, Problem::TooSmall { field: NodeField::Cpus, value: 0, min: 1 });
            ok = false;
            0
        }
        Some((value, path)) if value > MAX_CPUS => {
            check.report(&path, Problem::TooLarge { field: NodeField::Cpus, value, max: MAX_CPUS });
            ok = false;
            value
        }
        Some((value, _)) => value,
    };
    ok.then_some(Settings { box_name, memory_mb, cpus })
}
