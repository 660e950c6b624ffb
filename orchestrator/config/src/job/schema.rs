//! The job file as written: serde types for `apiVersion: zerolab/v1`, `kind: Job`,
//! before any semantic check, and their conversion into a `JobDraft`.
//!
//! As in the cluster file's schema, values serde would explain poorly stay strings
//! (`memory`, `timeout`, paths) until the checks parse them, and every struct denies
//! unknown fields, so a typo is an error with a location and a did-you-mean. Devices
//! are a mapping from device name to path, so an unknown device name is an unknown
//! field, and a device cannot be given twice.
//!
//! `args` is a list, one string per argument, passed as written. A single string is
//! refused rather than split: splitting on spaces (ZeroCloud's way, kept for its JSON)
//! cannot pass an argument holding a space, and shell-like quoting would be a second
//! language inside YAML's own.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use crate::document::YamlPath;

use super::draft::{DeviceDraft, GroupDraft, JobDraft, Written};
use super::group::{DeviceName, Strategy};

/// The `kind` of a job document.
pub const KIND: &str = "Job";

/// A `zerolab/v1` `Job` document.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a job file (a mapping with apiVersion, kind, name and groups)")]
pub struct JobFile {
    /// Checked by the header stage first.
    #[serde(rename = "apiVersion")]
    pub api_version: String,
    /// Checked by the header stage first.
    pub kind: String,
    /// The job's name.
    pub name: String,
    /// The groups, in the order their instances are numbered and placed.
    pub groups: Vec<GroupSpec>,
}

/// One entry of `groups:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a group (a mapping with at least a name and a program)")]
pub struct GroupSpec {
    /// The group's name; instances are `NAME-1` … `NAME-N`, or `NAME` alone for one.
    pub name: String,
    /// How many instances; 1 when omitted (or the number of wildcard matches).
    pub count: Option<u32>,
    /// The guest binary: a local path or `image:PATH`.
    pub program: String,
    /// The guest's arguments after `argv[0]`.
    #[serde(default)]
    pub args: Args,
    /// The guest's environment.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Guest memory (`64MiB`, `1GiB`, bytes).
    pub memory: Option<String>,
    /// Session timeout (`30s`, `2m`, seconds).
    pub timeout: Option<String>,
    /// The devices, by name.
    #[serde(default)]
    pub devices: DevicesSpec,
    /// Groups each instance writes to.
    #[serde(default)]
    pub connect: Vec<String>,
    /// Where instances go.
    pub placement: Option<PlacementSpec>,
    /// How many times a failed instance is placed again.
    pub retries: Option<u32>,
    /// Run the instances as copies of a warm daemon on each node (daemon mode).
    #[serde(default)]
    pub warm: bool,
}

/// `args:`: a list of strings (a single string is refused, with a hint).
#[derive(Debug, Default)]
pub struct Args(pub Vec<String>);

impl<'de> Deserialize<'de> for Args {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Args, D::Error> {
        struct ArgsVisitor;
        impl<'de> Visitor<'de> for ArgsVisitor {
            type Value = Args;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list of arguments such as [--chunk, \"512\"] (a single string is not split)")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Args, A::Error> {
                let mut args = Vec::new();
                while let Some(arg) = seq.next_element::<String>()? {
                    args.push(arg);
                }
                Ok(Args(args))
            }
        }
        deserializer.deserialize_seq(ArgsVisitor)
    }
}

/// `devices:`: each device at most once.
#[derive(Debug, Default, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "devices (a mapping from stdin, stdout, stderr, input, output, image to paths)"
)]
pub struct DevicesSpec {
    /// `/dev/stdin`.
    pub stdin: Option<DeviceSpec>,
    /// `/dev/stdout`.
    pub stdout: Option<DeviceSpec>,
    /// `/dev/stderr`.
    pub stderr: Option<DeviceSpec>,
    /// `/dev/input`.
    pub input: Option<DeviceSpec>,
    /// `/dev/output`.
    pub output: Option<DeviceSpec>,
    /// `/dev/image`.
    pub image: Option<DeviceSpec>,
}

/// One device: a path, or `{path, sha256}`.
#[derive(Debug)]
pub struct DeviceSpec {
    /// A local path, `node:/ABS/PATH` or an http(s) URL.
    pub path: String,
    /// The input's expected SHA-256.
    pub sha256: Option<String>,
}

/// The long form of [`DeviceSpec`].
#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a device (a mapping with path and optionally sha256)")]
struct DeviceFields {
    path: String,
    sha256: Option<String>,
}

impl<'de> Deserialize<'de> for DeviceSpec {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<DeviceSpec, D::Error> {
        struct DeviceVisitor;
        impl<'de> Visitor<'de> for DeviceVisitor {
            type Value = DeviceSpec;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a device: a path or URL, or a mapping with path and sha256")
            }
            fn visit_str<E: de::Error>(self, path: &str) -> Result<DeviceSpec, E> {
                Ok(DeviceSpec { path: path.to_owned(), sha256: None })
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<DeviceSpec, A::Error> {
                let fields = DeviceFields::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(DeviceSpec { path: fields.path, sha256: fields.sha256 })
            }
        }
        deserializer.deserialize_any(DeviceVisitor)
    }
}

/// `placement:`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a placement (a mapping with nodes and strategy)")]
pub struct PlacementSpec {
    /// A node selector: names, globs, `label=value`, comma-separated.
    pub nodes: Option<String>,
    /// `spread` (default) or `pack`.
    #[serde(default)]
    pub strategy: Strategy,
}

impl JobFile {
    /// The draft every check reads.
    pub(crate) fn into_draft(self) -> JobDraft {
        let root = YamlPath::root();
        let groups_path = root.key("groups");
        let groups =
            self.groups.into_iter().enumerate().map(|(i, group)| group.into_draft(groups_path.index(i))).collect();
        JobDraft { name: Written::new(self.name, root.key("name")), groups_path, groups }
    }
}

impl GroupSpec {
    fn into_draft(self, path: YamlPath) -> GroupDraft {
        let at = |key: &str| path.key(key);
        let devices_path = at("devices");
        let written = [
            (DeviceName::Stdin, self.devices.stdin),
            (DeviceName::Stdout, self.devices.stdout),
            (DeviceName::Stderr, self.devices.stderr),
            (DeviceName::Input, self.devices.input),
            (DeviceName::Output, self.devices.output),
            (DeviceName::Image, self.devices.image),
        ];
        let devices = written
            .into_iter()
            .filter_map(|(name, spec)| {
                let spec = spec?;
                let device = devices_path.key(name.name());
                // In the short form `device.path` is not in the file, and its location
                // falls back to the device's value, which is the path.
                let sha256 = spec.sha256.map(|sha256| Written::new(sha256, device.key("sha256")));
                Some(DeviceDraft { name, path: Written::new(spec.path, device.key("path")), sha256 })
            })
            .collect();
        let placement = self.placement.unwrap_or_default();
        GroupDraft {
            name: Written::new(self.name, at("name")),
            count: self.count.map(|count| Written::new(count, at("count"))),
            program: Written::new(self.program, at("program")),
            missing_image: None,
            args: (self.args.0.into_iter().enumerate())
                .map(|(i, arg)| Written::new(arg, at("args").index(i)))
                .collect(),
            env_path: at("env"),
            env: self.env,
            memory: self.memory.map(|memory| Written::new(memory, at("memory"))),
            timeout: self.timeout.map(|timeout| Written::new(timeout, at("timeout"))),
            devices,
            connect: (self.connect.into_iter().enumerate())
                .map(|(i, name)| Written::new(name, at("connect").index(i)))
                .collect(),
            nodes: placement.nodes.map(|nodes| Written::new(nodes, at("placement").key("nodes"))),
            strategy: placement.strategy,
            retries: self.retries.map(|retries| Written::new(retries, at("retries"))),
            warm: self.warm,
            path,
        }
    }
}
