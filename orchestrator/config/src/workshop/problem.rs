//! Everything a workshop file can get wrong, as one typed [`Problem`] each, worded
//! `what is wrong; what is expected`.

use crate::cluster::names::NameError;
use crate::cluster::{Problem as ClusterProblem, Subnet};
use crate::document::ReadProblem;

/// One problem of a workshop file.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    /// Syntax, header or schema.
    #[error(transparent)]
    Read(ReadProblem),
    /// The workshop's name, or a lab name made from it, is not a lab name.
    #[error("invalid workshop name `{name}`: {reason}; its labs are named `{name}-NNN`")]
    Name { name: String, reason: NameError },
    /// A duration that does not read.
    #[error("invalid duration `{value}`: {reason}; expected e.g. `90m`, `1h30m` or `45s`")]
    Duration { value: String, reason: String },
    /// `network` is not a private IPv4 block.
    #[error("invalid network `{value}`: {reason}; expected a private IPv4 block such as 10.200.0.0/16")]
    Network { value: String, reason: String },
    /// `network` holds fewer /24s than `capacity` needs.
    #[error("network {network} holds {labs} lab subnets (/24), fewer than capacity {capacity}; use a larger block")]
    NetworkTooSmall { network: Subnet, labs: u32, capacity: u32 },
    /// `capacity: 0`.
    #[error("capacity is 0; expected at least 1 lab")]
    ZeroCapacity,
    /// A pool number above `capacity`.
    #[error("pool.{field} is {value}, above capacity {capacity}; expected at most {capacity}")]
    PoolOverCapacity { field: &'static str, value: u32, capacity: u32 },
    /// Neither or both of `access_code` and `access_code_file`.
    #[error("{}", if *both { "both access_code and access_code_file are set; expected one of them" } else { "no access code; expected `access_code: CODE` or `access_code_file: FILE`" })]
    AccessCode { both: bool },
    /// The access code is empty or has spaces or control characters.
    #[error("the access code is empty or has spaces or control characters; expected a word attendees can type")]
    AccessCodeText,
    /// A file named by the workshop file cannot be read.
    #[error("cannot read {path}: {reason}; expected a readable file (relative to the workshop file)")]
    File { path: String, reason: String },
    /// `portal.listen` is not `ADDRESS:PORT`.
    #[error("invalid listen address `{value}`; expected ADDRESS:PORT such as 0.0.0.0:8080")]
    Listen { value: String },
    /// `portal.ssh_ports` is not `FIRST-LAST`.
    #[error("invalid port range `{value}`; expected FIRST-LAST such as 22000-22999 (1024 or above)")]
    Ports { value: String },
    /// `portal.ssh_ports` holds fewer ports than `capacity`.
    #[error("ssh_ports holds {ports} ports, fewer than capacity {capacity}; expected a range of at least {capacity}")]
    TooFewPorts { ports: u32, capacity: u32 },
    /// `steps: []`.
    #[error("no steps; expected at least one step with a title")]
    NoSteps,
    /// A step's title is empty.
    #[error("the step's title is empty; expected a title")]
    EmptyTitle,
    /// A step's `node` names no node of the lab.
    #[error("no node `{node}` in the lab template; expected one of {}", crate::document::list(known))]
    UnknownNode { node: String, known: Vec<String> },
    /// A step's `check` is empty.
    #[error("the check is empty; expected a shell command (exit 0 = the step is done), or no `check:`")]
    EmptyCheck,
    /// A problem of the inline lab template, as a cluster file's.
    #[error(transparent)]
    Lab(ClusterProblem),
}
