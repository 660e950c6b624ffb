//! Semantic checks of a [`ClusterFile`] that reads: everything serde cannot know, all
//! reported together.
//!
//! The checks speak in YAML paths (`nodes[1].address`) and never in lines: the
//! [`Checker`] turns a path into a location when a problem is reported (through the
//! file's source map, or none for a cluster built in code), so a check cannot get a
//! location wrong, only pick the wrong path. The order is the file's: the provider
//! (from the [`Registry`]), lab name, network, defaults, then each `nodes:` entry
//! (common fields first, then its provider's own through
//! [`ProviderKind::node_settings`]), then the checks across entries and the expansion
//! into nodes ([`expand`]), then the `provision:` steps against those nodes
//! ([`provision`]; their files are read from the cluster file's directory).

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use super::expand::{self, Entry};
use super::names;
use super::net::{NodeAddress, Subnet, SubnetError};
use super::problem::{Problem, MAX_COUNT};
use super::provider::{Addressing, ProviderKind, ProviderSpec, Registry};
use super::provision;
use super::schema::{
    ClusterFile, Labels, LimitsSpec, NodeDefaults, NodeField, NodeSpec, PowerSpecFile, PxeSpec, Section,
};
use super::{Checker, Cluster};
use crate::document::{closest, ReadProblem, YamlPath};

/// One `nodes:` entry as its provider sees it: its own fields, else the defaults',
/// each with the path it was written at.
pub struct EntryView<'a> {
    node: &'a NodeSpec,
    defaults: &'a NodeDefaults,
    path: YamlPath,
}

impl<'a> EntryView<'a> {
    fn pick<T>(&self, field: NodeField, node: &'a Option<T>, default: &'a Option<T>) -> Option<(&'a T, YamlPath)> {
        match (node, default) {
            (Some(value), _) => Some((value, self.path.key(field.key()))),
            (None, Some(value)) => Some((value, YamlPath::root().key("defaults").key(field.key()))),
            (None, None) => None,
        }
    }

    /// `user`, from the node or the defaults.
    pub fn user(&self) -> Option<(&'a str, YamlPath)> {
        self.pick(NodeField::User, &self.node.user, &self.defaults.user).map(|(v, p)| (v.as_str(), p))
    }

    /// `key`, from the node or the defaults.
    pub fn key(&self) -> Option<(&'a str, YamlPath)> {
        self.pick(NodeField::Key, &self.node.key, &self.defaults.key).map(|(v, p)| (v.as_str(), p))
    }

    /// `port`, from the node or the defaults.
    pub fn port(&self) -> Option<(u16, YamlPath)> {
        self.pick(NodeField::Port, &self.node.port, &self.defaults.port).map(|(v, p)| (*v, p))
    }

    /// `mac`, from the node (there is no default MAC).
    pub fn mac(&self) -> Option<(&'a str, YamlPath)> {
        self.pick(NodeField::Mac, &self.node.mac, &None).map(|(v, p)| (v.as_str(), p))
    }

    /// `box`, from the node or the defaults.
    pub fn box_name(&self) -> Option<(&'a str, YamlPath)> {
        self.pick(NodeField::Box, &self.node.box_name, &self.defaults.box_name).map(|(v, p)| (v.as_str(), p))
    }

    /// `memory_mb`, from the node or the defaults.
    pub fn memory_mb(&self) -> Option<(u32, YamlPath)> {
        self.pick(NodeField::MemoryMb, &self.node.memory_mb, &self.defaults.memory_mb).map(|(v, p)| (*v, p))
    }

    /// `cpus`, from the node or the defaults.
    pub fn cpus(&self) -> Option<(u32, YamlPath)> {
        self.pick(NodeField::Cpus, &self.node.cpus, &self.defaults.cpus).map(|(v, p)| (*v, p))
    }

    /// `boot`, from the node or the defaults.
    pub fn boot(&self) -> Option<(&'a str, YamlPath)> {
        self.pick(NodeField::Boot, &self.node.boot, &self.defaults.boot).map(|(v, p)| (v.as_str(), p))
    }

    /// `install`, from the node or the defaults.
    pub fn install(&self) -> Option<(&'a str, YamlPath)> {
        self.pick(NodeField::Install, &self.node.install, &self.defaults.install).map(|(v, p)| (v.as_str(), p))
    }

    /// `disk`, from the node or the defaults.
    pub fn disk(&self) -> Option<(&'a str, YamlPath)> {
        self.pick(NodeField::Disk, &self.node.disk, &self.defaults.disk).map(|(v, p)| (v.as_str(), p))
    }

    /// `power`, from the node or the defaults.
    pub fn power(&self) -> Option<(&'a PowerSpecFile, YamlPath)> {
        self.pick(NodeField::Power, &self.node.power, &self.defaults.power)
    }

    /// `rootfs`, from the node or the defaults.
    pub fn rootfs(&self) -> Option<(&'a str, YamlPath)> {
        self.pick(NodeField::Rootfs, &self.node.rootfs, &self.defaults.rootfs).map(|(v, p)| (v.as_str(), p))
    }

    /// `limits`, from the node or the defaults.
    pub fn limits(&self) -> Option<(&'a LimitsSpec, YamlPath)> {
        self.pick(NodeField::Limits, &self.node.limits, &self.defaults.limits)
    }

    /// The node's name as written (a pattern with `count`).
    pub fn name(&self) -> &'a str {
        &self.node.name
    }
}

/// The file's provider sections (`pxe:`) as a provider sees them.
pub struct LabView<'a> {
    file: &'a ClusterFile,
    subnet: Option<Subnet>,
}

impl<'a> LabView<'a> {
    /// `pxe:`, with its path.
    pub fn pxe(&self) -> Option<(&'a PxeSpec, YamlPath)> {
        self.file.pxe.as_ref().map(|spec| (spec, YamlPath::root().key(Section::Pxe.key())))
    }

    /// The lab subnet, when it is valid (`None` for a provider without one, or when
    /// `network.subnet` is wrong: that was reported).
    pub fn subnet(&self) -> Option<Subnet> {
        self.subnet
    }
}

/// Checks `file` and builds the cluster; `None` when a problem was reported to `check`.
pub(crate) fn validate(
    file: ClusterFile,
    registry: &Registry,
    base: &Path,
    check: &mut Checker<'_>,
) -> Option<Cluster> {
    let root = YamlPath::root();
    let provider = match file.provider.as_deref() {
        None => registry.default_provider(),
        Some(name) => match registry.find(name) {
            Some(provider) => provider,
            None => {
                // As if serde had refused it: one problem, reading stops here.
                let known = registry.names();
                let suggestion = closest(name, &known);
                let found = name.to_owned();
                let problem = ReadProblem::UnknownValue { what: "provider".to_owned(), found, suggestion, known };
                check.report(&root.key("provider"), Problem::Read(problem));
                return None;
            }
        },
    };

    if let Err(reason) = names::check_lab_name(&file.name) {
        check.report(&root.key("name"), Problem::LabName { name: file.name.clone(), reason });
    }
    let network = check_network(&file, provider, check);
    let subnet = network.as_ref().map(|network| network.subnet);
    check_sections(&file, provider, registry, check);
    let lab = provider.lab_settings(&LabView { file: &file, subnet }, check);
    let defaults = file.defaults.clone().unwrap_or_default();
    check_defaults(&defaults, provider, registry, check);

    let nodes_path = root.key("nodes");
    if file.nodes.is_empty() {
        check.report(&nodes_path, Problem::NoNodes);
    }
    let entries: Vec<Entry> = file
        .nodes
        .iter()
        .enumerate()
        .map(|(index, node)| {
            let view = EntryView { node, defaults: &defaults, path: nodes_path.index(index) };
            check_entry(&view, index, (provider, registry), subnet, check)
        })
        .collect();

    let nodes = expand::expand(&entries, network.as_ref(), check);
    let provision = provision::check(&file.provision, &nodes, base, check);
    check.is_clean().then_some(Cluster { name: file.name, provider, subnet, lab, nodes, provision })
}

/// Provider sections (`pxe:`) in a file whose provider does not read them.
fn check_sections(file: &ClusterFile, provider: ProviderKind, registry: &Registry, check: &mut Checker<'_>) {
    for section in Section::ALL {
        if section.is_in(file) && !provider.spec().sections.contains(&section) {
            let used_by =
                registry.providers().iter().copied().filter(|k| k.spec().sections.contains(&section)).collect();
            let path = YamlPath::root().key(section.key());
            check.report_key(&path, Problem::SectionNotForProvider { section, provider, used_by });
        }
    }
}

/// The lab subnet, or `None` for a provider without one or when `network.subnet` is
/// wrong.
fn check_network(file: &ClusterFile, provider: ProviderKind, check: &mut Checker<'_>) -> Option<LabNetwork> {
    let path = YamlPath::root().key("network");
    let subnet = file.network.as_ref().and_then(|network| network.subnet.as_deref());
    let default = match provider.spec().addressing {
        Addressing::PerNode => {
            if file.network.is_some() {
                check.report_key(&path, Problem::NetworkNotForProvider { provider });
            }
            return None;
        }
        Addressing::Subnet { default } => default,
    };
    let Some(text) = subnet else {
        return Some(LabNetwork { subnet: default, written: None });
    };
    let path = path.key("subnet");
    let subnet = match text.parse::<Subnet>() {
        Ok(subnet) => subnet,
        Err(SubnetError::Syntax) => {
            check.report(&path, Problem::SubnetSyntax { value: text.to_owned() });
            return None;
        }
        Err(SubnetError::Prefix(prefix)) => {
            check.report(&path, Problem::SubnetPrefix { value: text.to_owned(), prefix });
            return None;
        }
        Err(SubnetError::HostBits(network)) => {
            check.report(&path, Problem::SubnetHostBits { value: text.to_owned(), network });
            return None;
        }
    };
    if !subnet.is_private() {
        check.report(&path, Problem::SubnetNotPrivate { subnet });
        return None;
    }
    Some(LabNetwork { subnet, written: Some(path) })
}

/// The lab subnet and where it was written (`None`: the provider's default).
pub(crate) struct LabNetwork {
    pub subnet: Subnet,
    pub written: Option<YamlPath>,
}

/// Fields in `defaults` the provider does not read, and the default labels.
fn check_defaults(defaults: &NodeDefaults, provider: ProviderKind, registry: &Registry, check: &mut Checker<'_>) {
    let path = YamlPath::root().key("defaults");
    for field in NodeField::ALL {
        if defaults.has(field) && !provider.spec().fields.contains(&field) {
            let problem = Problem::FieldNotForProvider { field, provider, used_by: registry.reading(field) };
            check.report_key(&path.key(field.key()), problem);
        }
    }
    check_labels(&defaults.labels, &path.key("labels"), check);
}

fn check_labels(labels: &Labels, path: &YamlPath, check: &mut Checker<'_>) {
    for (key, value) in labels {
        let label = path.key(key);
        if let Err(reason) = names::check_label_key(key) {
            check.report_key(&label, Problem::LabelKey { key: key.clone(), reason });
        }
        if let Err(reason) = names::check_label_value(value) {
            check.report(&label, Problem::LabelValue { key: key.clone(), value: value.clone(), reason });
        }
    }
}

/// Checks one `nodes:` entry on its own and returns what the expansion needs.
fn check_entry(
    view: &EntryView<'_>,
    index: usize,
    (provider, registry): (ProviderKind, &Registry),
    subnet: Option<Subnet>,
    check: &mut Checker<'_>,
) -> Entry {
    let spec = provider.spec();
    let node = view.node;
    let path = &view.path;

    let mut expandable = true;
    if let Err(reason) = names::check_node_pattern(&node.name, node.count) {
        check.report(&path.key("name"), Problem::NodeName { name: node.name.clone(), reason });
        expandable = false;
    }
    match node.count {
        Some(0) => {
            check.report(&path.key("count"), Problem::ZeroCount);
            expandable = false;
        }
        Some(count) if count > MAX_COUNT => {
            check.report(&path.key("count"), Problem::CountTooLarge { count });
            expandable = false;
        }
        Some(_) if node.address.is_some() => check.report_key(&path.key("count"), Problem::CountWithAddress),
        Some(_) if node.mac.is_some() => check.report_key(&path.key("count"), Problem::CountWithMac),
        _ => {}
    }

    for field in NodeField::ALL {
        if node.has(field) && !spec.fields.contains(&field) {
            let problem = Problem::FieldNotForProvider { field, provider, used_by: registry.reading(field) };
            check.report_key(&path.key(field.key()), problem);
        }
    }
    for &field in spec.required {
        if !node.has(field) && !view.defaults.has(field) {
            check.report(path, Problem::MissingNodeField { field, provider });
        }
    }
    check_labels(&node.labels, &path.key("labels"), check);
    let mut labels = view.defaults.labels.clone();
    labels.extend(node.labels.iter().map(|(k, v)| (k.clone(), v.clone())));

    let user = check_user(view, spec, check);
    let key = check_key(view, spec, check);
    let address = check_address(view, spec, subnet, check);
    let settings = provider.node_settings(view, check);

    Entry {
        path: path.clone(),
        index,
        name: node.name.clone(),
        count: node.count,
        expandable,
        address,
        user,
        key,
        labels,
        settings,
    }
}

fn check_user(view: &EntryView<'_>, spec: &ProviderSpec, check: &mut Checker<'_>) -> String {
    match view.user() {
        Some((user, path)) => {
            if let Err(reason) = names::check_user(user) {
                check.report(&path, Problem::User { value: user.to_owned(), reason });
            }
            user.to_owned()
        }
        // A required user that is missing was reported with the required fields.
        None => spec.default_user.unwrap_or_default().to_owned(),
    }
}

fn check_key(view: &EntryView<'_>, spec: &ProviderSpec, check: &mut Checker<'_>) -> Option<PathBuf> {
    if !spec.fields.contains(&NodeField::Key) {
        return None;
    }
    let (key, path) = view.key()?;
    if key.trim().is_empty() {
        check.report(&path, Problem::Empty { field: NodeField::Key });
        return None;
    }
    Some(PathBuf::from(key))
}

/// The entry's fixed address: for a subnet provider an IPv4 address inside the subnet
/// and not one the lab keeps, otherwise any IP address or host name.
fn check_address(
    view: &EntryView<'_>,
    spec: &ProviderSpec,
    subnet: Option<Subnet>,
    check: &mut Checker<'_>,
) -> Option<NodeAddress> {
    let text = view.node.address.as_deref()?;
    let path = view.path.key("address");
    let Addressing::Subnet { .. } = spec.addressing else {
        let address = NodeAddress::parse(text);
        if address.is_none() {
            let problem = Problem::Address { value: text.to_owned(), expected: NodeField::Address.hint().to_owned() };
            check.report(&path, problem);
        }
        return address;
    };
    let Some(subnet) = subnet else {
        // The subnet itself is wrong (reported); nothing to check the address against.
        return text.parse::<Ipv4Addr>().ok().map(|ip| NodeAddress::Ip(IpAddr::V4(ip)));
    };
    let Ok(ip) = text.parse::<Ipv4Addr>() else {
        let expected = format!("an IPv4 address inside subnet {subnet}");
        check.report(&path, Problem::Address { value: text.to_owned(), expected });
        return None;
    };
    let address = ip.to_string();
    let role = if !subnet.contains(ip) {
        check.report(&path, Problem::AddressOutsideSubnet { address, subnet });
        return None;
    } else if ip == subnet.network() {
        "network address"
    } else if ip == subnet.broadcast() {
        "broadcast address"
    } else if ip == subnet.host_address() {
        "host side (the lab's own address)"
    } else {
        return Some(NodeAddress::Ip(IpAddr::V4(ip)));
    };
    check.report(&path, Problem::AddressReserved { address, role, subnet });
    None
}
