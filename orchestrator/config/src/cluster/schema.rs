//! The cluster file as written: serde types for `apiVersion: zerolab/v1`, before any
//! semantic check.
//!
//! Everything here is deliberately loose where serde would give a poor message (numbers
//! and addresses stay strings until `validate` parses them and can
//! say what was expected) and strict where serde gives a good one: every struct denies
//! unknown fields, so a typo is an error with a location and a did-you-mean.
//!
//! Versioning follows Kubernetes' (and so kind's) `TypeMeta`: [`TypeMeta`](crate::document::TypeMeta) is read first,
//! ignoring everything else, and only a supported `apiVersion` and `kind` select the
//! schema the rest of the file is read with. A future `zerolab/v2` adds its own
//! `ClusterFile` and converts it into the same validated [`Cluster`](super::Cluster).
//!
//! Node fields are one flat set shared by every provider (as containerlab's node
//! definition is); which of them a provider reads is declared by the provider
//! ([`ProviderSpec::fields`](super::ProviderSpec)), and a field its provider does not
//! read is an error, not silently ignored. `provider:` is a name, looked up in the
//! registry the cluster is read with.
//!
//! Every type is `Clone` and `Default` and its fields public, so a cluster can be
//! written in code ([`ClusterBuilder`](super::ClusterBuilder)) and checked as a file is.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;

pub use crate::document::API_VERSION;
/// The `kind` of a cluster document.
pub const KIND: &str = "Cluster";

/// Labels: key to value. YAML scalars of any type are read as their text (`rack: 2`).
pub type Labels = BTreeMap<String, String>;

/// A `zerolab/v1` `Cluster` document.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a cluster file (a mapping with apiVersion, kind, name, provider and nodes)")]
pub struct ClusterFile {
    /// Checked by [`TypeMeta`](crate::document::TypeMeta) first.
    #[serde(rename = "apiVersion")]
    pub api_version: String,
    /// Checked by [`TypeMeta`](crate::document::TypeMeta) first.
    pub kind: String,
    /// The lab's name.
    pub name: String,
    /// How nodes are created: a registered provider's name; the registry's default
    /// when omitted.
    pub provider: Option<String>,
    /// Network settings; each provider that uses a lab subnet has a default.
    pub network: Option<NetworkSpec>,
    /// Fields every node gets unless it sets its own.
    pub defaults: Option<NodeDefaults>,
    /// The nodes, each a name or a name pattern with `count`.
    pub nodes: Vec<NodeSpec>,
    /// Provisioning steps, run by `up` in order once every node is ready.
    #[serde(default)]
    pub provision: Vec<StepSpec>,
    /// The `pxe` provider's boot services.
    pub pxe: Option<PxeSpec>,
}

/// The `pxe:` section: the boot services a `pxe` lab runs on this host. Values stay
/// text here; the provider checks them and says what it expected.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "pxe boot services (a mapping with at least interface)")]
pub struct PxeSpec {
    /// The host interface on the boot network.
    pub interface: Option<String>,
    /// This host's address on the boot network (default: the subnet's `.1`).
    pub server: Option<String>,
    /// `server` (fixed leases) or `proxy` (beside another DHCP server).
    pub dhcp: Option<String>,
    /// The port of zerolab's boot HTTP server.
    pub http_port: Option<u16>,
    /// The BIOS first stage: `ipxe` or `pxelinux`.
    pub loader: Option<String>,
    /// An uplink interface the boot network is masqueraded to.
    pub nat: Option<String>,
    /// Seconds a machine may stay at one boot step before status flags it.
    pub deadline: Option<u64>,
    /// The Debian mirror the preseed installer uses (default: the host's apt source).
    pub mirror: Option<String>,
    /// An HTTP proxy for the preseed installer (e.g. apt-cacher-ng on this host).
    pub proxy: Option<String>,
}

/// A node's `power:`: exactly one way of switching the machine on and off.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, expecting = "power control (a mapping with one of qmp, ipmi, wol or command)")]
pub struct PowerSpecFile {
    /// A QEMU QMP socket.
    pub qmp: Option<String>,
    /// A BMC reached with ipmitool.
    pub ipmi: Option<IpmiSpec>,
    /// Wake-on-LAN (on only).
    pub wol: Option<WolSpec>,
    /// Host commands.
    pub command: Option<PowerCommandSpec>,
}

/// `power.ipmi`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, expecting = "an IPMI BMC (a mapping with host, user and password_file)")]
pub struct IpmiSpec {
    /// The BMC's address.
    pub host: String,
    /// Its RMCP+ port (623 when omitted).
    pub port: Option<u16>,
    /// The BMC user.
    pub user: String,
    /// A file holding the password (never the password itself in the cluster file).
    pub password_file: String,
    /// The RMCP+ cipher suite (`ipmitool -C`; ipmitool asks the BMC when omitted).
    pub cipher_suite: Option<u8>,
}

/// `power.wol`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, expecting = "wake-on-LAN settings (a mapping, may be empty)")]
pub struct WolSpec {
    /// The interface the packet is sent from (default: `pxe.interface`).
    pub interface: Option<String>,
}

/// `power.command`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, expecting = "power commands (a mapping with on, off and optionally status)")]
pub struct PowerCommandSpec {
    /// Switches the machine on.
    pub on: String,
    /// Switches it off.
    pub off: String,
    /// Prints `on` or `off`.
    pub status: Option<String>,
}

/// One entry of `provision:`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a provisioning step (a mapping with a name and one of script, script_file or files)"
)]
pub struct StepSpec {
    /// The step's unique name.
    pub name: String,
    /// An inline shell script.
    pub script: Option<String>,
    /// A shell script file, relative to the cluster file's directory.
    pub script_file: Option<String>,
    /// Files to upload.
    pub files: Option<Vec<FileSpec>>,
    /// A node selector as `exec --nodes` takes (all nodes when omitted).
    pub nodes: Option<String>,
    /// Earlier steps that must have finished on all their nodes first.
    #[serde(default)]
    pub after: Vec<String>,
    /// A command retried on each node after the step until it exits 0.
    pub ready: Option<String>,
    /// Seconds `ready` is retried (60 when omitted).
    pub timeout: Option<u64>,
    /// Run on every `up`, changed or not.
    #[serde(default)]
    pub always: bool,
}

/// One upload of a step's `files:`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a file to upload (a mapping with src, dest and optionally mode)")]
pub struct FileSpec {
    /// The local file, relative to the cluster file's directory.
    pub src: String,
    /// The absolute path on the node.
    pub dest: String,
    /// Octal permissions (`0644` when omitted).
    pub mode: Option<String>,
}

/// The `network:` section.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "network settings (a mapping with subnet)")]
pub struct NetworkSpec {
    /// The lab subnet in CIDR form (`10.77.0.0/24`).
    pub subnet: Option<String>,
}

/// The `defaults:` section: node fields that a node may override.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "node defaults (a mapping of node fields)")]
pub struct NodeDefaults {
    /// Login user.
    pub user: Option<String>,
    /// Private key path.
    pub key: Option<String>,
    /// SSH port (ssh provider).
    pub port: Option<u16>,
    /// Labels merged under each node's own (a node's value wins).
    #[serde(default)]
    pub labels: Labels,
    /// Vagrant box.
    #[serde(rename = "box")]
    pub box_name: Option<String>,
    /// Vagrant memory in MiB.
    pub memory_mb: Option<u32>,
    /// Vagrant virtual CPUs.
    pub cpus: Option<u32>,
    /// PXE: how the machine boots.
    pub boot: Option<String>,
    /// PXE: how an installing machine is installed.
    pub install: Option<String>,
    /// PXE: the disk an installing machine is installed to.
    pub disk: Option<String>,
    /// PXE: how the machine is switched on and off.
    pub power: Option<PowerSpecFile>,
    /// netns: the node's own root file system (`debian`).
    pub rootfs: Option<String>,
    /// netns: cgroup limits of a node with its own root file system.
    pub limits: Option<LimitsSpec>,
}

/// `limits:` of a netns node, as written (checked by the provider).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "limits (a mapping with memory, pids and cpu)")]
pub struct LimitsSpec {
    /// Memory, `256M` or `1G` (binary units).
    pub memory: Option<String>,
    /// Processes and threads at most.
    pub pids: Option<u32>,
    /// CPUs' worth of time, `0.5` = half of one.
    pub cpu: Option<f64>,
}

/// One entry of `nodes:`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a node (a mapping with at least a name)")]
pub struct NodeSpec {
    /// The node's name, or with `count` the pattern its names are made from.
    pub name: String,
    /// How many nodes this entry stands for.
    pub count: Option<u32>,
    /// A fixed address (inside the subnet), or for ssh the host to reach.
    pub address: Option<String>,
    /// Login user.
    pub user: Option<String>,
    /// Private key path.
    pub key: Option<String>,
    /// SSH port (ssh provider).
    pub port: Option<u16>,
    /// Labels, for selecting nodes.
    #[serde(default)]
    pub labels: Labels,
    /// MAC address of the boot interface (pxe provider).
    pub mac: Option<String>,
    /// Vagrant box.
    #[serde(rename = "box")]
    pub box_name: Option<String>,
    /// Vagrant memory in MiB.
    pub memory_mb: Option<u32>,
    /// Vagrant virtual CPUs.
    pub cpus: Option<u32>,
    /// PXE: how the machine boots (`live`, `install` or `local`).
    pub boot: Option<String>,
    /// PXE: how an installing machine is installed (`image` or `preseed`).
    pub install: Option<String>,
    /// PXE: the disk an installing machine is installed to.
    pub disk: Option<String>,
    /// PXE: how the machine is switched on and off.
    pub power: Option<PowerSpecFile>,
    /// netns: the node's own root file system (`debian`).
    pub rootfs: Option<String>,
    /// netns: cgroup limits of a node with its own root file system.
    pub limits: Option<LimitsSpec>,
}

/// The node fields whose use depends on the provider (`name`, `count` and `labels`
/// apply to every provider).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeField {
    /// `address`
    Address,
    /// `user`
    User,
    /// `key`
    Key,
    /// `port`
    Port,
    /// `mac`
    Mac,
    /// `box`
    Box,
    /// `memory_mb`
    MemoryMb,
    /// `cpus`
    Cpus,
    /// `boot`
    Boot,
    /// `install`
    Install,
    /// `disk`
    Disk,
    /// `power`
    Power,
    /// `rootfs`
    Rootfs,
    /// `limits`
    Limits,
}

impl NodeField {
    /// Every provider-dependent field, in the order they are documented.
    pub const ALL: [NodeField; 14] = [
        NodeField::Address,
        NodeField::User,
        NodeField::Key,
        NodeField::Port,
        NodeField::Mac,
        NodeField::Box,
        NodeField::MemoryMb,
        NodeField::Cpus,
        NodeField::Boot,
        NodeField::Install,
        NodeField::Disk,
        NodeField::Power,
        NodeField::Rootfs,
        NodeField::Limits,
    ];

    /// The field's key in the file.
    pub fn key(self) -> &'static str {
        match self {
            NodeField::Address => "address",
            NodeField::User => "user",
            NodeField::Key => "key",
            NodeField::Port => "port",
            NodeField::Mac => "mac",
            NodeField::Box => "box",
            NodeField::MemoryMb => "memory_mb",
            NodeField::Cpus => "cpus",
            NodeField::Boot => "boot",
            NodeField::Install => "install",
            NodeField::Disk => "disk",
            NodeField::Power => "power",
            NodeField::Rootfs => "rootfs",
            NodeField::Limits => "limits",
        }
    }

    /// What a value of this field looks like, for "expected" messages.
    pub fn hint(self) -> &'static str {
        match self {
            NodeField::Address => "an IP address or host name",
            NodeField::User => "a login user name",
            NodeField::Key => "a private key path such as ~/.ssh/id_ed25519",
            NodeField::Port => "a port number",
            NodeField::Mac => "a MAC address such as 52:54:00:12:34:56",
            NodeField::Box => "a Vagrant box name",
            NodeField::MemoryMb => "a memory size in MiB",
            NodeField::Cpus => "a number of virtual CPUs",
            NodeField::Boot => "live, install or local",
            NodeField::Install => "image or preseed",
            NodeField::Disk => "a disk device such as /dev/sda",
            NodeField::Power => "one of qmp, ipmi, wol or command",
            NodeField::Rootfs => "debian",
            NodeField::Limits => "{memory: 256M, pids: 256, cpu: 0.5}",
        }
    }
}

/// The sections of a cluster file that belong to one provider.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Section {
    /// `pxe:`
    Pxe,
}

impl Section {
    /// Every provider section.
    pub const ALL: [Section; 1] = [Section::Pxe];

    /// The section's key in the file.
    pub fn key(self) -> &'static str {
        match self {
            Section::Pxe => "pxe",
        }
    }

    /// Whether `file` has this section.
    pub fn is_in(self, file: &ClusterFile) -> bool {
        match self {
            Section::Pxe => file.pxe.is_some(),
        }
    }
}

impl fmt::Display for Section {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.key())
    }
}

impl fmt::Display for NodeField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.key())
    }
}

impl NodeSpec {
    /// Whether this entry sets `field` itself.
    pub fn has(&self, field: NodeField) -> bool {
        match field {
            NodeField::Address => self.address.is_some(),
            NodeField::User => self.user.is_some(),
            NodeField::Key => self.key.is_some(),
            NodeField::Port => self.port.is_some(),
            NodeField::Mac => self.mac.is_some(),
            NodeField::Box => self.box_name.is_some(),
            NodeField::MemoryMb => self.memory_mb.is_some(),
            NodeField::Cpus => self.cpus.is_some(),
            NodeField::Boot => self.boot.is_some(),
            NodeField::Install => self.install.is_some(),
            NodeField::Disk => self.disk.is_some(),
            NodeField::Power => self.power.is_some(),
            NodeField::Rootfs => self.rootfs.is_some(),
            NodeField::Limits => self.limits.is_some(),
        }
    }
}

impl NodeDefaults {
    /// Whether the defaults set `field` (`address` and `mac` are per node only).
    pub fn has(&self, field: NodeField) -> bool {
        match field {
            NodeField::Address | NodeField::Mac => false,
            NodeField::User => self.user.is_some(),
            NodeField::Key => self.key.is_some(),
            NodeField::Port => self.port.is_some(),
            NodeField::Box => self.box_name.is_some(),
            NodeField::MemoryMb => self.memory_mb.is_some(),
            NodeField::Cpus => self.cpus.is_some(),
            NodeField::Boot => self.boot.is_some(),
            NodeField::Install => self.install.is_some(),
            NodeField::Disk => self.disk.is_some(),
            NodeField::Power => self.power.is_some(),
            NodeField::Rootfs => self.rootfs.is_some(),
            NodeField::Limits => self.limits.is_some(),
        }
    }
}
