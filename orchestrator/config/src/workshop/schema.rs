//! The workshop file as written: serde types for `kind: Workshop`, before any semantic
//! check. As the cluster file's schema, loose where serde would word a poor message
//! (durations, addresses and ranges stay text until `validate` reads them) and strict
//! where it words a good one (every struct denies unknown fields).
//!
//! `lab:` is either a cluster file's path (text) or the cluster file's fields inline (a
//! mapping without `apiVersion`, `kind` and `name`): [`LabSpec`] reads both, the inline
//! one through the same reader, so its problems are placed in the workshop file.

use std::fmt;

use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

use crate::cluster::schema::{NetworkSpec, NodeDefaults, NodeSpec, StepSpec};
pub use crate::document::API_VERSION;

/// The `kind` of a workshop document.
pub const KIND: &str = "Workshop";

/// A `zerolab/v1` `Workshop` document.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a workshop file (a mapping with apiVersion, kind, name, lab and steps)")]
pub struct WorkshopFile {
    /// Checked by [`TypeMeta`](crate::document::TypeMeta) first.
    #[serde(rename = "apiVersion")]
    pub api_version: String,
    /// Checked by [`TypeMeta`](crate::document::TypeMeta) first.
    pub kind: String,
    /// The workshop's name; its labs are `<name>-NNN`.
    pub name: String,
    /// The lab template.
    pub lab: LabSpec,
    /// The block labs get consecutive /24s from.
    pub network: Option<String>,
    /// Labs at most.
    pub capacity: Option<u32>,
    /// Labs made before anyone arrives, and kept free while people join.
    pub pool: Option<PoolSpec>,
    /// The access code attendees type.
    pub access_code: Option<String>,
    /// A file holding the access code (relative to the workshop file).
    pub access_code_file: Option<String>,
    /// A lab's time from its claim.
    pub duration: Option<String>,
    /// What the instructor's extend adds.
    pub extend: Option<String>,
    /// A lab idle this long is shelved.
    pub idle: Option<String>,
    /// Where the portal listens and the attendees' SSH ports.
    pub portal: Option<PortalSpec>,
    /// The instructor's credentials.
    pub instructor: Option<InstructorSpec>,
    /// The steps attendees follow.
    pub steps: Vec<StepFile>,
}

/// `pool:`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a warm pool (a mapping with warm and reserve)")]
pub struct PoolSpec {
    /// Labs made before anyone arrives.
    pub warm: Option<u32>,
    /// Free labs kept while attendees claim.
    pub reserve: Option<u32>,
}

/// `portal:`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "the portal (a mapping with listen, ssh_ports and public_host)")]
pub struct PortalSpec {
    /// `ADDRESS:PORT` the portal's HTTP server listens on.
    pub listen: Option<String>,
    /// `FIRST-LAST`: this machine's ports forwarded to attendees' nodes.
    pub ssh_ports: Option<String>,
    /// The host name or address attendees reach this machine at.
    pub public_host: Option<String>,
}

/// `instructor:`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "the instructor's credentials (a mapping with password_file)")]
pub struct InstructorSpec {
    /// A file holding the instructor's password (generated when absent).
    pub password_file: Option<String>,
}

/// One entry of `steps:`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a step (a mapping with title, text and optionally check and node)")]
pub struct StepFile {
    /// The step's title.
    pub title: String,
    /// Its instructions, in Markdown.
    #[serde(default)]
    pub text: String,
    /// A shell command run on the attendee's node: exit 0 = the step is done.
    pub check: Option<String>,
    /// The node `check` runs on (default: the lab's first).
    pub node: Option<String>,
}

/// `lab:`: a cluster file's path, or its fields inline.
#[derive(Clone, Debug)]
pub enum LabSpec {
    /// A cluster file, relative to the workshop file.
    File(String),
    /// The cluster file's fields.
    Inline(Box<InlineLab>),
}

/// A cluster file's fields written inside the workshop file (no header, no name).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a lab (a mapping with provider and nodes)")]
pub struct InlineLab {
    /// As a cluster file's `provider`.
    pub provider: Option<String>,
    /// As a cluster file's `network` (its subnet is replaced per lab).
    pub network: Option<NetworkSpec>,
    /// As a cluster file's `defaults`.
    pub defaults: Option<NodeDefaults>,
    /// As a cluster file's `nodes`.
    pub nodes: Vec<NodeSpec>,
    /// As a cluster file's `provision`.
    #[serde(default)]
    pub provision: Vec<StepSpec>,
}

impl<'de> Deserialize<'de> for LabSpec {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<LabSpec, D::Error> {
        struct LabVisitor;
        impl<'de> Visitor<'de> for LabVisitor {
            type Value = LabSpec;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a lab template (a cluster file's path, or a mapping with provider and nodes)")
            }

            fn visit_str<E: de::Error>(self, path: &str) -> Result<LabSpec, E> {
                Ok(LabSpec::File(path.to_owned()))
            }

            fn visit_map<M: MapAccess<'de>>(self, map: M) -> Result<LabSpec, M::Error> {
                let lab = InlineLab::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(LabSpec::Inline(Box::new(lab)))
            }
        }
        deserializer.deserialize_any(LabVisitor)
    }
}
