//! ZeroCloud job descriptions, accepted as they are: a JSON list of groups, each with
//! `name`, `exec: {path, args, env}`, `count`, `connect`, and its devices as `devices:
//! [{name, path}]` or the legacy `file_list: [{device, path}]`.
//!
//! They become the same `JobDraft` as a YAML job file and get the same checks. What
//! differs, and why:
//! - `exec.args` is one string split on whitespace, as ZeroCloud split it;
//! - a device may have no path: for stdout and stderr that was ZeroCloud's "send it in
//!   the response", which here means the runner collects it like any undeclared
//!   output; an input without a path is an error;
//! - object-store paths: `file://PATH` and plain paths are local files (relative to the
//!   job file), `swift://` gets an error saying so;
//! - ZeroCloud's image programs: `exec.path` `file://IMAGE:PATH` runs `PATH` inside the
//!   group's device named `IMAGE` (a tar), which becomes the job's `image` device
//!   (`program: image:PATH` in YAML). An `IMAGE` that is not a device of the group is an
//!   error: ZeroCloud's system images (`python`, ...) do not exist here;
//! - the job has no name in the file: it is the file's name without extension, or for a
//!   file named `job.json` its directory's (`wordcount/job.json` is job `wordcount`),
//!   made into a valid name.
//!
//! JSON is read by the YAML reader (YAML is a superset of JSON), so fields are located
//! and typos get a did-you-mean exactly as in YAML; syntax errors come from serde_json,
//! whose messages are JSON's own.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use crate::cluster::names::{self, MAX_NODE_NAME};
use crate::document::closest;
use crate::document::Checker;

use crate::document::YamlPath;

use super::draft::{DeviceDraft, GroupDraft, JobDraft, Written};
use super::group::{DeviceName, Strategy};
use super::problem::Problem;

/// One group of a ZeroCloud job description.
#[derive(Debug, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a ZeroCloud group (a mapping with name, exec and optionally count, devices, connect)"
)]
pub struct ZeroCloudGroup {
    /// The group's name.
    pub name: String,
    /// The program and how it is called.
    pub exec: Exec,
    /// How many instances.
    pub count: Option<u32>,
    /// Devices, `{name, path}` each.
    pub devices: Option<Vec<NamedDevice>>,
    /// Devices in the legacy spelling, `{device, path}` each.
    pub file_list: Option<Vec<LegacyDevice>>,
    /// Groups each instance writes to.
    #[serde(default)]
    pub connect: Vec<String>,
}

/// `exec`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "exec (a mapping with path, and optionally args and env)")]
pub struct Exec {
    /// The program: `file://PATH` or a local path.
    pub path: String,
    /// Arguments, one string split on whitespace.
    pub args: Option<String>,
    /// Environment.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
}

/// An entry of `devices`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a device (a mapping with name and path)")]
pub struct NamedDevice {
    /// `stdin`, `stdout`, `stderr`, `input`, `output` or `image`.
    pub name: String,
    /// Where it reads from or writes to.
    pub path: Option<String>,
}

/// An entry of the legacy `file_list`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a device (a mapping with device and path)")]
pub struct LegacyDevice {
    /// The device name.
    pub device: String,
    /// Where it reads from or writes to.
    pub path: Option<String>,
}

/// Whether `text` is a ZeroCloud job description rather than YAML: it starts with `[`.
pub(crate) fn is_zerocloud(text: &str) -> bool {
    text.trim_start().starts_with('[')
}

/// The job's name, made from `file_name`: see the module doc.
pub(crate) fn job_name(file_name: &str) -> String {
    let path = Path::new(file_name);
    let stem = path.file_stem().map(|stem| stem.to_string_lossy().into_owned()).unwrap_or_default();
    let dir = || std::path::absolute(path).ok()?.parent()?.file_name().map(|d| d.to_string_lossy().into_owned());
    let raw = if stem == "job" { dir().unwrap_or(stem) } else { stem };
    let mut name: String =
        raw.to_ascii_lowercase().chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }).collect();
    name.truncate(MAX_NODE_NAME);
    let name = name.trim_matches('-');
    match names::check_node_name(name) {
        Ok(()) => name.to_owned(),
        Err(_) => "job".to_owned(),
    }
}

/// Converts `groups` into a draft, reporting what only ZeroCloud's form can get wrong
/// (device names and lists).
pub(crate) fn into_draft(groups: Vec<ZeroCloudGroup>, name: String, check: &mut Checker<'_, Problem>) -> JobDraft {
    let root = YamlPath::root();
    let groups = groups.into_iter().enumerate().map(|(i, group)| group_draft(group, root.index(i), check)).collect();
    JobDraft { name: Written::new(name, root.clone()), groups_path: root, groups }
}

/// `file://IMAGE:PATH`, ZeroCloud's program inside an image: `(IMAGE, PATH)`. `IMAGE` is
/// a device name (letters, digits, `_`, `-`, `.`), so a local path is never taken for it.
fn image_program(text: &str) -> Option<(&str, &str)> {
    let (image, inside) = text.strip_prefix("file://")?.split_once(':')?;
    let plain = !image.is_empty() && image.chars().all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c));
    (plain && !inside.is_empty()).then_some((image, inside))
}

fn group_draft(group: ZeroCloudGroup, path: YamlPath, check: &mut Checker<'_, Problem>) -> GroupDraft {
    let exec = path.key("exec");
    let args_path = exec.key("args");
    let args = group.exec.args.as_deref().unwrap_or_default().split_whitespace();
    let mut program = group.exec.path.clone();
    let (mut image, mut missing_image) = (None, None);
    if let Some((name, inside)) = image_program(&group.exec.path) {
        let named = |d: &NamedDevice| d.name == name;
        let legacy = |d: &LegacyDevice| d.device == name;
        let is_device = group.devices.as_ref().is_some_and(|ds| ds.iter().any(named))
            || group.file_list.as_ref().is_some_and(|ds| ds.iter().any(legacy));
        if is_device {
            program = format!("image:{inside}");
            image = Some(name.to_owned());
        } else {
            missing_image = Some(name.to_owned());
        }
    }
    GroupDraft {
        name: Written::new(group.name, path.key("name")),
        count: group.count.map(|count| Written::new(count, path.key("count"))),
        program: Written::new(program, exec.key("path")),
        missing_image,
        args: args.map(|arg| Written::new(arg.to_owned(), args_path.clone())).collect(),
        env_path: exec.key("env"),
        env: group.exec.env,
        memory: None,
        timeout: None,
        devices: devices(group.devices, group.file_list, image.as_deref(), &path, check),
        connect: (group.connect.into_iter().enumerate())
            .map(|(i, name)| Written::new(name, path.key("connect").index(i)))
            .collect(),
        nodes: None,
        strategy: Strategy::default(),
        retries: None,
        warm: false,
        path,
    }
}

/// The devices of either list, each checked for its name, repeats and a path; the
/// device named `image` (the program's ZeroCloud image) is the `image` device.
fn devices(
    devices: Option<Vec<NamedDevice>>,
    file_list: Option<Vec<LegacyDevice>>,
    image: Option<&str>,
    group: &YamlPath,
    check: &mut Checker<'_, Problem>,
) -> Vec<DeviceDraft> {
    let (list, name_key, entries): (&str, &str, Vec<(String, Option<String>)>) = match (devices, file_list) {
        (Some(devices), file_list) => {
            if file_list.is_some() {
                check.report_key(&group.key("file_list"), Problem::BothDeviceLists);
            }
            ("devices", "name", devices.into_iter().map(|d| (d.name, d.path)).collect())
        }
        (None, Some(file_list)) => ("file_list", "device", file_list.into_iter().map(|d| (d.device, d.path)).collect()),
        (None, None) => return Vec::new(),
    };
    let known: Vec<String> = DeviceName::ALL.iter().map(|device| device.name().to_owned()).collect();
    let mut seen: Vec<(DeviceName, YamlPath)> = Vec::new();
    let mut drafts = Vec::new();
    for (i, (found, path)) in entries.into_iter().enumerate() {
        let entry = group.key(list).index(i);
        let by_name = DeviceName::from_name(&found);
        let Some(name) = by_name.or((image == Some(found.as_str())).then_some(DeviceName::Image)) else {
            let suggestion = closest(&found, &known);
            check.report(&entry.key(name_key), Problem::UnknownDevice { found, suggestion });
            continue;
        };
        if let Some((_, first)) = seen.iter().find(|(seen, _)| *seen == name) {
            let first_line = check.line(first);
            check.report(&entry.key(name_key), Problem::DuplicateDevice { name: name.name(), first_line });
            continue;
        }
        seen.push((name, entry.key(name_key)));
        match path {
            Some(path) => drafts.push(DeviceDraft { name, path: Written::new(path, entry.key("path")), sha256: None }),
            None if matches!(name, DeviceName::Stdout | DeviceName::Stderr) => {}
            None => check.report(&entry, Problem::MissingDevicePath { device: name.name() }),
        }
    }
    drafts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_job_after_its_file() {
        assert_eq!(job_name("wordcount.json"), "wordcount");
        assert_eq!(job_name("examples/wordcount/job.json"), "wordcount");
        assert_eq!(job_name("My Job_2.json"), "my-job-2");
        assert_eq!(job_name("___.json"), "job");
    }

    #[test]
    fn reads_zerocloud_image_programs() {
        assert_eq!(image_program("file://python:bin/python"), Some(("python", "bin/python")));
        assert_eq!(image_program("file://wordcount:map"), Some(("wordcount", "map")));
        assert_eq!(image_program("file://map"), None);
        assert_eq!(image_program("file://dir/a:b"), None, "a path with a directory is a local file");
        assert_eq!(image_program("file://python:"), None);
        assert_eq!(image_program("python:bin/python"), None);
    }

    #[test]
    fn tells_json_from_yaml() {
        assert!(is_zerocloud("\n  [{\"name\": \"a\"}]"));
        assert!(!is_zerocloud("apiVersion: zerolab/v1\n"));
        assert!(!is_zerocloud("{\"apiVersion\": \"zerolab/v1\"}"));
    }
}
