//! What can be wrong with a cluster file: one [`Problem`] variant per check, so code
//! and tests can match on the kind. Every variant's message has a `; expected` half,
//! written where the check knows what would be accepted.

use std::path::PathBuf;

use super::names::{NameError, MAX_LABEL, MAX_LAB_NAME, MAX_NODE_NAME};
use super::net::{MacAddr, MacError, NodeAddress, Subnet};
use super::provider::ProviderKind;
use super::schema::{NodeField, Section};
use super::selector::SelectorError;
use crate::document::ReadProblem;

/// The most nodes one `nodes:` entry may stand for.
pub const MAX_COUNT: u32 = 4096;

/// One thing wrong with a cluster file.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    /// Reading the text stopped: syntax, the version header, or the schema.
    #[error(transparent)]
    Read(#[from] ReadProblem),
    /// The lab name breaks the naming rules.
    #[error(
        "invalid lab name `{name}`: {reason}; expected 1 to {MAX_LAB_NAME} characters of a-z, 0-9 and `-`, \
         not starting or ending with `-`"
    )]
    LabName { name: String, reason: NameError },
    /// A node name (or the longest name of a pattern) breaks the naming rules.
    #[error(
        "invalid node name `{name}`: {reason}; expected 1 to {MAX_NODE_NAME} characters of a-z, 0-9 and `-`, \
         not starting or ending with `-` (with count: optionally one `{{n}}` where the number goes)"
    )]
    NodeName { name: String, reason: NameError },
    /// `nodes:` is empty.
    #[error("no nodes; expected at least one entry under `nodes`")]
    NoNodes,
    /// `count: 0`.
    #[error("count is 0; expected at least 1 (omit count for a single node)")]
    ZeroCount,
    /// A count over [`MAX_COUNT`].
    #[error("count {count} is too large; expected at most {MAX_COUNT}")]
    CountTooLarge { count: u32 },
    /// `count` with a fixed `address`.
    #[error("count cannot be combined with a fixed address; expected one entry per fixed address, or count alone")]
    CountWithAddress,
    /// `count` with a `mac`.
    #[error("count cannot be combined with mac; expected one entry per MAC address")]
    CountWithMac,
    /// A node name produced twice.
    #[error("duplicate node name `{name}` (first at line {first_line}); expected unique node names")]
    DuplicateName { name: String, first_line: usize },
    /// A node field the provider does not read.
    #[error("field `{field}` does not apply to provider {provider}; expected it only with {}", providers(used_by))]
    FieldNotForProvider { field: NodeField, provider: ProviderKind, used_by: Vec<ProviderKind> },
    /// A provider section (`pxe:`) the provider does not read.
    #[error("section `{section}` does not apply to provider {provider}; expected it only with {}", providers(used_by))]
    SectionNotForProvider { section: Section, provider: ProviderKind, used_by: Vec<ProviderKind> },
    /// A section the provider needs is missing.
    #[error("provider {provider} needs a `{section}` section; expected {expected}")]
    MissingSection { section: Section, provider: ProviderKind, expected: &'static str },
    /// A field of a provider section or node that is missing.
    #[error("missing `{field}`; expected {expected}")]
    MissingField { field: &'static str, expected: &'static str },
    /// A value that is not one the field takes.
    #[error("invalid {field} `{value}`; expected {expected}")]
    Invalid { field: &'static str, value: String, expected: String },
    /// `network:` with a provider that has no lab network.
    #[error("provider {provider} has no lab network; expected an `address` on each node instead of `network`")]
    NetworkNotForProvider { provider: ProviderKind },
    /// A field the provider needs is set neither on the node nor in `defaults`.
    #[error("missing `{field}` for provider {provider}; expected {} {}", field.hint(), where_to_set(*field))]
    MissingNodeField { field: NodeField, provider: ProviderKind },
    /// The subnet is not `A.B.C.D/N`.
    #[error("invalid subnet `{value}`; expected an IPv4 network in CIDR form such as 10.77.0.0/24")]
    SubnetSyntax { value: String },
    /// The subnet's prefix leaves no room for nodes.
    #[error("subnet `{value}` has prefix /{prefix}; expected a prefix of /{} or shorter", Subnet::MAX_PREFIX)]
    SubnetPrefix { value: String, prefix: u8 },
    /// The subnet is written with a host address.
    #[error("subnet `{value}` has host bits set; expected its network address, {network}")]
    SubnetHostBits { value: String, network: Subnet },
    /// The subnet is outside the private ranges.
    #[error(
        "subnet {subnet} is not a private range; expected a subnet inside 10.0.0.0/8, 172.16.0.0/12 or 192.168.0.0/16"
    )]
    SubnetNotPrivate { subnet: Subnet },
    /// More nodes than the subnet has addresses for.
    #[error(
        "{nodes} nodes do not fit in subnet {subnet}, which has {capacity} node addresses; expected a larger subnet"
    )]
    SubnetTooSmall { nodes: u64, subnet: Subnet, capacity: u64 },
    /// An address that does not parse.
    #[error("invalid address `{value}`; expected {expected}")]
    Address { value: String, expected: String },
    /// A fixed address outside the lab subnet.
    #[error("address {address} is outside subnet {subnet}; expected an address from {} to {}", first(*subnet), last(*subnet))]
    AddressOutsideSubnet { address: String, subnet: Subnet },
    /// A fixed address the lab keeps for itself.
    #[error("address {address} is the {role} of subnet {subnet}; expected an address from {} to {}", first(*subnet), last(*subnet))]
    AddressReserved { address: String, role: &'static str, subnet: Subnet },
    /// Two nodes with one address.
    #[error("address {address} is already used by the node at line {first_line}; expected unique node addresses")]
    DuplicateAddress { address: NodeAddress, first_line: usize },
    /// A MAC address that does not parse or cannot be an interface's.
    #[error("invalid MAC address `{value}`: {}; expected six hex bytes such as 52:54:00:12:34:56", mac_reason(*reason))]
    Mac { value: String, reason: MacError },
    /// Two nodes with one MAC address.
    #[error("MAC address {mac} is already used by the node at line {first_line}; expected unique MAC addresses")]
    DuplicateMac { mac: MacAddr, first_line: usize },
    /// A label key breaking the rules.
    #[error(
        "invalid label key `{key}`: {reason}; expected 1 to {MAX_LABEL} characters of letters, digits, `.`, `_`, `-` \
         and `/`, starting and ending with a letter or digit"
    )]
    LabelKey { key: String, reason: NameError },
    /// A label value breaking the rules.
    #[error(
        "invalid value `{value}` for label `{key}`: {reason}; expected up to {MAX_LABEL} characters of letters, \
         digits, `.`, `_` and `-`, starting and ending with a letter or digit"
    )]
    LabelValue { key: String, value: String, reason: NameError },
    /// A user name breaking the rules.
    #[error("invalid user `{value}`: {reason}; expected a login name of letters, digits, `.`, `_` and `-`")]
    User { value: String, reason: NameError },
    /// An empty string where a value is needed.
    #[error("`{field}` is empty; expected {}", field.hint())]
    Empty { field: NodeField },
    /// `port: 0`.
    #[error("port 0 cannot be connected to; expected a port from 1 to 65535")]
    PortZero,
    /// A value below a provider's minimum.
    #[error("`{field}` is {value}; expected at least {min}")]
    TooSmall { field: NodeField, value: u32, min: u32 },
    /// A value above a provider's maximum.
    #[error("`{field}` is {value}; expected at most {max}")]
    TooLarge { field: NodeField, value: u32, max: u32 },
    /// A `rootfs:` zerolab cannot build.
    #[error("unknown rootfs `{value}`; expected debian (the root file system zerolab builds from Debian's packages)")]
    Rootfs { value: String },
    /// `limits:` on a node that shares this machine's file system.
    #[error("limits need a root file system of the node's own; add `rootfs: debian` (on the node or in `defaults`)")]
    LimitsWithoutRootfs,
    /// A limit that is not a usable value.
    #[error("invalid limit `{field}: {value}`; expected {expected}")]
    Limit { field: &'static str, value: String, expected: &'static str },
    /// A Vagrant box name with characters Vagrant does not take.
    #[error("invalid box `{value}`; expected a box name such as debian/bookworm64, without spaces")]
    BoxName { value: String },
    /// A provisioning step without a name.
    #[error(
        "invalid step name `{name}`: {reason}; expected 1 to {MAX_LABEL} characters of letters, digits, `.`, `_` \
         and `-`, starting and ending with a letter or digit"
    )]
    StepName { name: String, reason: NameError },
    /// Two steps with one name.
    #[error("duplicate step name `{name}`; expected unique step names")]
    DuplicateStep { name: String },
    /// `after:` names no step.
    #[error(
        "unknown step `{name}`{}; expected the name of an earlier step",
        suggestion.as_ref().map_or_else(String::new, |s| format!(" (did you mean `{s}`?)"))
    )]
    UnknownStep { name: String, suggestion: Option<String> },
    /// `after:` names this step or a later one: a cycle, as steps run in file order.
    #[error(
        "step `{name}` does not come before this step (that would be a cycle); expected the name of an earlier step"
    )]
    StepNotEarlier { name: String },
    /// A step with nothing to do.
    #[error("step `{name}` has nothing to do; expected one of `script`, `script_file` or `files`")]
    StepNoAction { name: String },
    /// A step with two actions.
    #[error("step `{name}` has more than one of `script`, `script_file` and `files`; expected exactly one")]
    StepManyActions { name: String },
    /// `files: []`.
    #[error("no files; expected at least one {{src, dest, mode}} entry")]
    NoFiles,
    /// A script file or upload that cannot be read.
    #[error("cannot read {} ({reason}); expected a readable file, relative to the cluster file's directory", path.display())]
    Unreadable { path: PathBuf, reason: String },
    /// An upload's `dest` that is not absolute.
    #[error("dest `{dest}` is not absolute; expected an absolute path on the node such as /etc/app.conf")]
    DestNotAbsolute { dest: String },
    /// An upload's `mode` that is not octal permissions.
    #[error("invalid mode `{value}`; expected octal permissions such as 0644 or 0755")]
    FileMode { value: String },
    /// A step's `nodes:` selector that does not parse or selects nothing.
    #[error("{0}")]
    StepSelector(SelectorError),
    /// `timeout: 0`.
    #[error("timeout is 0; expected the seconds `ready` is retried, at least 1")]
    StepTimeoutZero,
    /// `timeout` without `ready`.
    #[error("timeout without ready; expected a `ready` command for the timeout to bound")]
    TimeoutWithoutReady,
}

fn providers(kinds: &[ProviderKind]) -> String {
    let names: Vec<&str> = kinds.iter().map(|kind| kind.name()).collect();
    match names.split_last() {
        None => "no provider".to_owned(),
        Some((last, [])) => format!("provider {last}"),
        Some((last, rest)) => format!("provider {} or {last}", rest.join(", ")),
    }
}

fn where_to_set(field: NodeField) -> &'static str {
    match field {
        NodeField::Address | NodeField::Mac => "on the node",
        _ => "on the node or in `defaults`",
    }
}

fn first(subnet: Subnet) -> String {
    subnet.node_addresses().next().map(|a| a.to_string()).unwrap_or_default()
}

fn last(subnet: Subnet) -> String {
    subnet.node_addresses().next_back().map(|a| a.to_string()).unwrap_or_default()
}

fn mac_reason(reason: MacError) -> &'static str {
    match reason {
        MacError::Syntax => "not six hex bytes separated by `:`",
        MacError::Multicast => "it is a multicast address",
        MacError::Zero => "it is all zeros",
    }
}
