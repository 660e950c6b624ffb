//! What can be wrong with a job file, and the limits it is checked against.
//!
//! Every finding is a [`Problem`] (one variant per check) placed at a location and
//! reported through the cluster file's [`Diagnostics`](crate::cluster::Diagnostics), so
//! a job file's errors print exactly like a cluster file's:
//! `FILE:LINE:COL: what is wrong; what is expected`. Reading problems (syntax, header,
//! schema) are the shared [`ReadProblem`]; the rest are the job's own.

use std::path::PathBuf;

use crate::cluster::names::{NameError, MAX_NODE_NAME};
use crate::cluster::SelectorError;
use crate::document::ReadProblem;
use crate::document::{did_you_mean, list};

use super::files::PathError;
use super::units::{SizeError, TimeError};

/// The most instances one group may have.
pub const MAX_COUNT: u32 = 4096;
/// The most instances a job may have.
pub const MAX_INSTANCES: u64 = 65_536;
/// The most channels one guest may have, its devices and channel ends together
/// (ZeroVM: fewer than 10915).
pub const MAX_CHANNELS: u64 = 10_914;
/// The most channels (instance to instance) a job may have.
pub const MAX_EDGES: u64 = 1 << 20;
/// The most times a failed instance may be placed again.
pub const MAX_RETRIES: u32 = 10;

const NAME_RULE: &str = "1 to 63 characters of a-z, 0-9 and `-`, not starting or ending with `-`";

/// One thing wrong with a job file.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    /// Reading the text stopped: syntax, the version header, or the schema.
    #[error(transparent)]
    Read(#[from] ReadProblem),
    /// A ZeroCloud job description that is not well-formed JSON.
    #[error("malformed JSON: {message}; expected a ZeroCloud job description (a JSON list of groups)")]
    JsonSyntax { message: String },
    /// The job name breaks the naming rules.
    #[error("invalid job name `{name}`: {reason}; expected {NAME_RULE}")]
    JobName { name: String, reason: NameError },
    /// No groups at all.
    #[error("no groups; expected at least one group")]
    NoGroups,
    /// A group name breaks the naming rules (they are node names' rules).
    #[error("invalid group name `{name}`: {reason}; expected {NAME_RULE}")]
    GroupName { name: String, reason: NameError },
    /// A group's instance names (`name-N`) would be too long.
    #[error(
        "instance name `{name}` is {} characters long; expected at most {MAX_NODE_NAME} (shorten the group name)",
        name.chars().count()
    )]
    InstanceNameTooLong { name: String },
    /// Two groups with one name.
    #[error("duplicate group name `{name}` (first at line {first_line}); expected unique group names")]
    DuplicateGroup { name: String, first_line: usize },
    /// One instance name made by two groups (`map` count 2 and a group `map-1`).
    #[error(
        "instance name `{name}` of group `{group}` is also made by group `{other}`; expected unique instance \
         names (rename one of the groups)"
    )]
    DuplicateInstance { name: String, group: String, other: String },
    /// `count: 0`.
    #[error("count is 0; expected at least 1 (omit count for a single instance)")]
    ZeroCount,
    /// A count over [`MAX_COUNT`].
    #[error("count {count} is too large; expected at most {MAX_COUNT}")]
    CountTooLarge { count: u32 },
    /// More than [`MAX_INSTANCES`] in all.
    #[error("the job has {total} instances; expected at most {MAX_INSTANCES}")]
    TooManyInstances { total: u64 },
    /// A program, device path or URL that does not parse.
    #[error("invalid {what} `{value}`: {reason}")]
    Path { what: String, value: String, reason: PathError },
    /// A program on the node or at a URL.
    #[error(
        "program `{value}` is not a local file; expected a local path (relative to the job file's directory) \
         or image:PATH (a path inside the group's image device)"
    )]
    ProgramNotLocal { value: String },
    /// A local program that does not exist.
    #[error("program `{value}` not found at {}; expected the guest binary there (paths are relative to the job file's directory)", resolved.display())]
    ProgramNotFound { value: String, resolved: PathBuf },
    /// A local program that is a directory or a device.
    #[error("program `{value}` at {} is not a regular file; expected the guest binary", resolved.display())]
    ProgramNotFile { value: String, resolved: PathBuf },
    /// `image:PATH` without an image.
    #[error(
        "program `{value}` is inside an image, but the group has no `image` device; expected an `image` device \
         (the tar image) or a local program path"
    )]
    ImageWithoutDevice { value: String },
    /// A local input that does not exist.
    #[error(
        "{device} input `{value}` not found at {}; expected an existing file (paths are relative to the job \
         file's directory)",
        resolved.display()
    )]
    InputNotFound { device: &'static str, value: String, resolved: PathBuf },
    /// A local output whose directory does not exist.
    #[error(
        "{device} output `{value}`: directory {} does not exist; expected an existing directory (make it, or fix \
         the path; paths are relative to the job file's directory)",
        dir.display()
    )]
    OutputDirMissing { device: &'static str, value: String, dir: PathBuf },
    /// An output at a URL.
    #[error(
        "{device} is an output and cannot go to a URL (`{value}`); expected a local path or node:/ABS/PATH \
         (zerolab writes outputs, it does not upload them)"
    )]
    OutputToUrl { device: &'static str, value: String },
    /// A checksum on an output.
    #[error("sha256 on output {device}; expected a checksum only on inputs (stdin, input, image)")]
    ChecksumOnOutput { device: &'static str },
    /// A checksum that is not 64 hex digits.
    #[error("invalid sha256 `{value}`; expected 64 hex digits (sha256sum's output)")]
    Checksum { value: String },
    /// A wildcard in a node path or URL.
    #[error(
        "wildcard in {device} `{value}`, which is not a local path; expected wildcards only in local input \
         paths (zerolab lists the matches on this machine)"
    )]
    WildcardNotLocal { device: &'static str, value: String },
    /// A wildcard in a directory name.
    #[error("wildcard in a directory of `{value}`; expected wildcards only in the file name (data/part-*)")]
    WildcardInDirectory { value: String },
    /// A wildcard that matches nothing.
    #[error("`{value}` matches no file in {}; expected at least one file to make an instance of", dir.display())]
    WildcardNoMatch { value: String, dir: PathBuf },
    /// `count` that disagrees with a wildcard's matches.
    #[error(
        "count {count} does not match the {matches} file{} `{value}` matches; expected count: {matches} or no \
         count (a wildcard input makes one instance per file)",
        plural(u64::from(*matches))
    )]
    WildcardCount { count: u32, matches: u32, value: String },
    /// More than one wildcard input in a group.
    #[error(
        "a second wildcard input in one group (the first is {first}); expected at most one wildcard input per group"
    )]
    SeveralWildcards { first: &'static str },
    /// One output path for several instances.
    #[error(
        "{device} `{value}` would be written by all {instances} instances; expected a `*` where each instance's \
         name goes (out/{group}-*.txt)"
    )]
    SharedOutput { device: &'static str, value: String, instances: u32, group: String },
    /// One local output file written by instances of two groups.
    #[error("output {} is also written by instance `{other}`; expected each output file written by one instance", path.display())]
    OutputClash { path: PathBuf, other: String },
    /// A device name ZeroCloud JSON spells that is not one of the six.
    #[error(
        "unknown device `{found}`; expected one of `stdin`, `stdout`, `stderr`, `input`, `output`, `image`{}",
        did_you_mean(suggestion.as_deref())
    )]
    UnknownDevice { found: String, suggestion: Option<String> },
    /// ZeroCloud's `file://IMAGE:PATH` naming an image that is not a device of the group.
    #[error(
        "program `{value}` is PATH inside ZeroCloud image `{image}`, which is not a device of this group; \
         expected a device {{\"name\": \"{image}\", \"path\": \"file://{image}.tar\"}} (ZeroCloud's system \
         images do not exist here)"
    )]
    ZeroCloudImageMissing { value: String, image: String },
    /// A device given twice (ZeroCloud's list form).
    #[error("duplicate device `{name}` (first at line {first_line}); expected each device once")]
    DuplicateDevice { name: &'static str, first_line: usize },
    /// Both `devices` and `file_list`.
    #[error("both `devices` and `file_list` are given; expected one of them (`file_list` is the legacy spelling)")]
    BothDeviceLists,
    /// An input without a path (ZeroCloud lets stdout and stderr omit it).
    #[error(
        "device {device} has no path; expected a path (only stdout and stderr may omit it: zerolab then collects them)"
    )]
    MissingDevicePath { device: &'static str },
    /// `memory` that does not parse or is out of range.
    #[error("invalid memory `{value}`: {reason}; expected a size from 1 byte to 4GiB, such as 64MiB, 1GiB or 1048576 (bytes)")]
    Memory { value: String, reason: SizeError },
    /// `timeout` that does not parse or is out of range.
    #[error("invalid timeout `{value}`: {reason}; expected whole seconds, at least 1, such as 30s, 2m, 1h or 30")]
    Timeout { value: String, reason: TimeError },
    /// An environment variable name the guest cannot get.
    #[error("invalid environment variable name `{name}`; expected a non-empty name without `=` or NUL")]
    EnvName { name: String },
    /// A NUL byte in an argument or environment value (guests get C strings).
    #[error("{what} contains a NUL byte; expected text without one (the guest gets C strings)")]
    Nul { what: String },
    /// `connect` names no group of the job.
    #[error("connect names unknown group `{name}`; expected one of {}{}", list(known), did_you_mean(suggestion.as_deref()))]
    UnknownGroup { name: String, suggestion: Option<String>, known: Vec<String> },
    /// A group in its own `connect`.
    #[error("group `{group}` connects to itself; expected connections to other groups (a cycle can only deadlock)")]
    SelfConnect { group: String },
    /// One group twice in a `connect`.
    #[error("`{group}` is connected to twice (first at line {first_line}); expected each group once in connect")]
    DuplicateConnect { group: String, first_line: usize },
    /// Groups connected in a cycle.
    #[error(
        "connect cycle {}: one-way blocking channels in a cycle can only deadlock; expected connections that \
         flow one way (a pipeline or a tree)",
        cycle.join(" -> ")
    )]
    Cycle { cycle: Vec<String> },
    /// `retries` on a group with channels.
    #[error(
        "retries need a group without channels, and {}; expected retries: 0 or no channels (a re-placed \
         instance cannot replay a channel's data)",
        if *outgoing { format!("`{group}` connects to `{peer}`") } else { format!("`{peer}` connects to `{group}`") }
    )]
    RetriesWithChannels { group: String, peer: String, outgoing: bool },
    /// `retries` over [`MAX_RETRIES`].
    #[error("retries {retries} is too many; expected at most {MAX_RETRIES}")]
    RetriesTooLarge { retries: u32 },
    /// Instances with more channels than a guest may have.
    #[error(
        "each instance of group `{group}` would have {channels} channels; expected at most {MAX_CHANNELS} \
         (ZeroVM's limit per guest: lower the counts of the groups it connects with)"
    )]
    TooManyChannels { group: String, channels: u64 },
    /// More channels than a job may have.
    #[error("the job would have {total} channels; expected at most {MAX_EDGES}")]
    TooManyEdges { total: u64 },
    /// `placement.nodes` that does not parse.
    #[error("{error}")]
    Selector { error: SelectorError },
    /// `placement.nodes` that selects no node of the lab.
    #[error("group `{group}`: {error}")]
    NoNodes { group: String, error: SelectorError },
    /// Instances that do not fit on the nodes selected.
    #[error(
        "group `{group}` has {needed} instance{} to place, but its node{} ({}) {} room for {room} more; expected \
         at most {capacity} guests per node (select more nodes or lower the count)",
        plural(u64::from(*needed)),
        plural(nodes.len() as u64),
        nodes.join(", "),
        if nodes.len() == 1 { "has" } else { "have" }
    )]
    DoesNotFit { group: String, needed: u32, room: u64, nodes: Vec<String>, capacity: usize },
}

/// `s` unless `n` is 1.
pub(crate) fn plural(n: u64) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}
