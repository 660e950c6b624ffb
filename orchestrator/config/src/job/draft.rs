//! A group as written, in either format, before any semantic check: what the YAML job
//! file ([`schema`](super::schema)) and ZeroCloud's JSON ([`zerocloud`](super::zerocloud))
//! both become, so that one set of checks serves both.
//!
//! Every value keeps the [`YamlPath`] it was written at (`groups[0].program` in YAML,
//! `[0].exec.path` in JSON): the checks report paths, never lines.

use std::collections::BTreeMap;

use crate::document::YamlPath;

use super::group::{DeviceName, Strategy};

/// A value and where it was written.
#[derive(Clone, Debug)]
pub(crate) struct Written<T> {
    pub value: T,
    pub path: YamlPath,
}

impl<T> Written<T> {
    pub(crate) fn new(value: T, path: YamlPath) -> Written<T> {
        Written { value, path }
    }
}

/// A job as written.
#[derive(Debug)]
pub(crate) struct JobDraft {
    /// The job's name.
    pub name: Written<String>,
    /// Where the list of groups is (`groups`, or the JSON list itself).
    pub groups_path: YamlPath,
    pub groups: Vec<GroupDraft>,
}

/// One group as written.
#[derive(Debug)]
pub(crate) struct GroupDraft {
    /// The group itself (`groups[1]`).
    pub path: YamlPath,
    pub name: Written<String>,
    pub count: Option<Written<u32>>,
    pub program: Written<String>,
    /// ZeroCloud's `file://IMAGE:PATH` naming an `IMAGE` that is not a device of the
    /// group: reported instead of checking the program.
    pub missing_image: Option<String>,
    /// Each argument and its place.
    pub args: Vec<Written<String>>,
    /// Where `env` is; each variable is at its key under it.
    pub env_path: YamlPath,
    pub env: BTreeMap<String, String>,
    pub memory: Option<Written<String>>,
    pub timeout: Option<Written<String>>,
    pub devices: Vec<DeviceDraft>,
    pub connect: Vec<Written<String>>,
    pub nodes: Option<Written<String>>,
    pub strategy: Strategy,
    pub retries: Option<Written<u32>>,
    pub warm: bool,
}

/// One device as written.
#[derive(Debug)]
pub(crate) struct DeviceDraft {
    pub name: DeviceName,
    pub path: Written<String>,
    pub sha256: Option<Written<String>>,
}
