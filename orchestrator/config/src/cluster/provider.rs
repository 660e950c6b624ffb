//! What the cluster file needs of a provider, and the registry it finds them in.
//!
//! This crate does not know the providers: they live with their lifecycles (async code,
//! SSH) in the orchestrator, one module each, listed once in its registry. What a
//! provider gives the cluster file is a [`ProviderConfig`]: its name, its
//! [`ProviderSpec`] (which node fields it reads, which it requires, its default user,
//! how nodes get addresses) and a reader that checks its own node fields and returns
//! its typed settings, type-erased as [`NodeSettings`] (read back with
//! [`NodeSettings::get`]). Reading a cluster takes a [`Registry`]: the providers, the
//! first one the default, so an unknown `provider:` lists the registered names.
//!
//! Specs are written containerlab-style: [`BASE`] with only what differs overridden.

use std::any::Any;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::net::Ipv4Addr;
use std::sync::Arc;

use super::net::{MacAddr, Subnet};
use super::schema::{NodeField, Section};
use super::validate::{EntryView, LabView};
use super::Checker;

/// The SSH port of a node whose provider does not say otherwise.
pub const DEFAULT_SSH_PORT: u16 = 22;

/// The lab subnet of [`BASE`]: providers with a lab network of their own override it,
/// so that labs of different providers do not collide.
pub const BASE_SUBNET: Subnet = Subnet::new(Ipv4Addr::new(10, 77, 0, 0), 24);

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
    /// The file sections it reads (`pxe:`); any other provider's section is an error.
    pub sections: &'static [Section],
}

/// What providers share unless they say otherwise: nodes on a lab subnet the lab
/// creates, logged into as root with the key pair the lab generates.
pub const BASE: ProviderSpec = ProviderSpec {
    fields: &[NodeField::Address, NodeField::User],
    required: &[],
    default_user: Some("root"),
    addressing: Addressing::Subnet { default: BASE_SUBNET },
    sections: &[],
};

/// A provider as the cluster file sees it.
pub trait ProviderConfig: Send + Sync + 'static {
    /// The name written in `provider:`.
    fn name(&self) -> &'static str;

    /// What it reads from the file.
    fn spec(&self) -> &'static ProviderSpec;

    /// Checks its own fields of one `nodes:` entry and returns the node's settings;
    /// `None` when a field is wrong (the problem is reported to `check`).
    fn node_settings(&self, entry: &EntryView<'_>, check: &mut Checker<'_>) -> Option<NodeSettings>;

    /// Checks its own sections of the file ([`ProviderSpec::sections`]) and returns the
    /// lab's settings from them; `None` when it has none or a value is wrong (reported
    /// to `check`).
    fn lab_settings(&self, _lab: &LabView<'_>, _check: &mut Checker<'_>) -> Option<LabSettings> {
        None
    }
}

/// A provider, as a cluster and its problems hold it: a copyable handle on its
/// [`ProviderConfig`] that compares, hashes and prints as its name.
#[derive(Clone, Copy)]
pub struct ProviderKind(&'static dyn ProviderConfig);

impl ProviderKind {
    /// The handle of `config`.
    pub const fn new(config: &'static dyn ProviderConfig) -> ProviderKind {
        ProviderKind(config)
    }

    /// The name written in the cluster file.
    pub fn name(self) -> &'static str {
        self.0.name()
    }

    /// What this provider reads from the cluster file.
    pub fn spec(self) -> &'static ProviderSpec {
        self.0.spec()
    }

    /// Its lab-settings reader (see [`ProviderConfig::lab_settings`]).
    pub fn lab_settings(self, lab: &LabView<'_>, check: &mut Checker<'_>) -> Option<LabSettings> {
        self.0.lab_settings(lab, check)
    }

    /// Its node-settings reader (see [`ProviderConfig::node_settings`]).
    pub fn node_settings(self, entry: &EntryView<'_>, check: &mut Checker<'_>) -> Option<NodeSettings> {
        self.0.node_settings(entry, check)
    }
}

impl PartialEq for ProviderKind {
    fn eq(&self, other: &ProviderKind) -> bool {
        self.name() == other.name()
    }
}

impl Eq for ProviderKind {}

impl Hash for ProviderKind {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.name().hash(state);
    }
}

impl fmt::Debug for ProviderKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl fmt::Display for ProviderKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The providers a cluster file may name: the orchestrator's one list.
#[derive(Clone, Copy, Debug)]
pub struct Registry {
    providers: &'static [ProviderKind],
}

impl Registry {
    /// A registry of `providers`, the first the default (used when `provider:` is
    /// omitted). At least one, each name once.
    pub const fn new(providers: &'static [ProviderKind]) -> Registry {
        assert!(!providers.is_empty(), "a registry needs at least one provider");
        Registry { providers }
    }

    /// Every provider, in the order they are documented; the default first.
    pub fn providers(&self) -> &'static [ProviderKind] {
        self.providers
    }

    /// The provider used when the file names none.
    pub fn default_provider(&self) -> ProviderKind {
        self.providers[0]
    }

    /// The provider named `name`.
    pub fn find(&self, name: &str) -> Option<ProviderKind> {
        self.providers.iter().copied().find(|kind| kind.name() == name)
    }

    /// Every provider's name, in order.
    pub fn names(&self) -> Vec<String> {
        self.providers.iter().map(|kind| kind.name().to_owned()).collect()
    }

    /// The providers that read `field`.
    pub fn reading(&self, field: NodeField) -> Vec<ProviderKind> {
        self.providers.iter().copied().filter(|kind| kind.spec().fields.contains(&field)).collect()
    }
}

/// A provider's typed settings for one node. Implement it for the settings type (the
/// defaults are right for most): [`NodeSettings`] holds it type-erased.
pub trait ProviderSettings: SettingsValue + fmt::Debug + Send + Sync {
    /// The port the node's sshd listens on.
    fn ssh_port(&self) -> u16 {
        DEFAULT_SSH_PORT
    }

    /// The MAC address that identifies the node, if its provider knows nodes by one
    /// (no two nodes of a lab may share it).
    fn mac(&self) -> Option<MacAddr> {
        None
    }
}

/// Comparison and downcasting for any settings type; implemented for every
/// `'static + PartialEq` type, so a provider never writes it.
pub trait SettingsValue: Any {
    /// Whether `other` is a value of the same type, equal to this one.
    fn equals(&self, other: &dyn Any) -> bool;
    /// This value, for downcasting.
    fn as_any(&self) -> &dyn Any;
}

impl<T: Any + PartialEq> SettingsValue for T {
    fn equals(&self, other: &dyn Any) -> bool {
        other.downcast_ref::<T>() == Some(self)
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// A node's provider settings, defaults applied: the provider's own type, behind a
/// typed accessor.
#[derive(Clone)]
pub struct NodeSettings {
    kind: ProviderKind,
    value: Arc<dyn ProviderSettings>,
}

impl NodeSettings {
    /// `value`, the settings of a `kind` node.
    pub fn new<S: ProviderSettings>(kind: ProviderKind, value: S) -> NodeSettings {
        NodeSettings { kind, value: Arc::new(value) }
    }

    /// The provider these settings belong to.
    pub fn kind(&self) -> ProviderKind {
        self.kind
    }

    /// The settings as their provider's type `S`; `None` for another provider's.
    pub fn get<S: ProviderSettings>(&self) -> Option<&S> {
        self.value.as_any().downcast_ref()
    }

    /// The port the node's sshd listens on.
    pub fn ssh_port(&self) -> u16 {
        self.value.ssh_port()
    }

    /// The MAC address that identifies the node, for providers that know nodes by one.
    pub fn mac(&self) -> Option<MacAddr> {
        self.value.mac()
    }
}

impl PartialEq for NodeSettings {
    fn eq(&self, other: &NodeSettings) -> bool {
        self.kind == other.kind && self.value.equals(other.value.as_any())
    }
}

impl Eq for NodeSettings {}

impl fmt::Debug for NodeSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.value.fmt(f)
    }
}

/// A lab's provider settings from the provider's own file sections: its own type,
/// behind a typed accessor (as [`NodeSettings`] holds a node's).
#[derive(Clone)]
pub struct LabSettings {
    value: Arc<dyn LabSettingsValue>,
}

/// What a lab-settings type is: comparable, printable, shareable (implemented for every
/// such type, so a provider never writes it).
pub trait LabSettingsValue: SettingsValue + fmt::Debug + Send + Sync {}

impl<T: SettingsValue + fmt::Debug + Send + Sync> LabSettingsValue for T {}

impl LabSettings {
    /// `value`, a lab's settings.
    pub fn new<S: LabSettingsValue>(value: S) -> LabSettings {
        LabSettings { value: Arc::new(value) }
    }

    /// The settings as type `S`; `None` for another type.
    pub fn get<S: LabSettingsValue>(&self) -> Option<&S> {
        self.value.as_any().downcast_ref()
    }
}

impl PartialEq for LabSettings {
    fn eq(&self, other: &LabSettings) -> bool {
        self.value.equals(other.value.as_any())
    }
}

impl Eq for LabSettings {}

impl fmt::Debug for LabSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.value.fmt(f)
    }
}
