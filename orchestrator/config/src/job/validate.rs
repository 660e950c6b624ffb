//! Semantic checks of a [`JobDraft`], all reported together: the job's name, then each
//! group on its own (name, count, program, arguments, environment, limits, devices,
//! placement), then the checks across groups ([`graph`](super::graph)) and the
//! expansion into instances ([`expand`](super::expand)).
//!
//! Like the cluster file's checks, these speak in YAML paths and the [`Checker`] turns
//! them into locations. They also look at the file system, relative to the job file's
//! directory: programs and local inputs must exist, and wildcard inputs are listed.

use std::path::{Path, PathBuf};

use zerolab_agent_api::{Sha256, DEFAULT_MEMORY, DEFAULT_TIMEOUT_SECS};

use crate::cluster::names::{self, MAX_NODE_NAME};
use crate::document::Checker;

use crate::cluster::NodeSelector;
use crate::document::Location;

use super::draft::{DeviceDraft, GroupDraft, JobDraft};
use super::files::{self, ProgramRef, WildcardError};
use super::group::{Device, DeviceName, FileRef, Group, PlacementRule, Program};
use super::problem::{Problem, MAX_COUNT, MAX_RETRIES};
use super::units;
use super::{expand, graph, Edge, Instance};

/// A group after its own checks, with what the expansion needs.
pub(crate) struct Checked {
    /// The group as written, for the paths of later checks.
    pub draft: GroupDraft,
    /// The group, defaults applied (its `count` is 1 when `count` is `None`).
    pub group: Group,
    /// The number of instances, when it could be worked out.
    pub count: Option<u32>,
    /// The wildcard input, if any.
    pub wildcard: Option<Wildcard>,
}

/// A group's wildcard input and the files it matched.
pub(crate) struct Wildcard {
    /// Its index in the group's devices.
    pub device: usize,
    /// Its index in the draft's devices.
    pub draft: usize,
    /// The files, sorted: instance N reads the Nth.
    pub matches: Vec<PathBuf>,
}

/// What a valid job is made of.
pub(crate) struct Parts {
    pub name: String,
    pub groups: Vec<Group>,
    pub instances: Vec<Instance>,
    pub edges: Vec<Edge>,
}

/// Checks `draft`, resolving local paths against `base` (the job file's directory),
/// after what `check` already holds from reading; returns the job's parts, or every
/// problem found (at least one).
pub(crate) fn validate(
    draft: JobDraft,
    base: &Path,
    mut check: Checker<'_, Problem>,
) -> Result<Parts, Vec<(Location, Problem)>> {
    if let Err(reason) = names::check_node_name(&draft.name.value) {
        check.report(&draft.name.path, Problem::JobName { name: draft.name.value.clone(), reason });
    }
    if draft.groups.is_empty() {
        check.report(&draft.groups_path, Problem::NoGroups);
    }
    let checked: Vec<Checked> = draft.groups.into_iter().map(|group| check_group(group, base, &mut check)).collect();
    check_unique_names(&checked, &mut check);
    graph::check(&checked, &mut check);
    // Expansion stops only at a problem that it or an earlier check reported.
    match expand::expand(&checked, &draft.groups_path, &mut check) {
        Some((instances, edges)) if check.is_clean() => {
            let groups = checked.into_iter().map(|checked| checked.group).collect();
            Ok(Parts { name: draft.name.value, groups, instances, edges })
        }
        _ => Err(check.into_problems()),
    }
}

fn check_unique_names(checked: &[Checked], check: &mut Checker<'_, Problem>) {
    for (i, group) in checked.iter().enumerate() {
        let name = &group.draft.name;
        if let Some(first) = checked[..i].iter().find(|other| other.draft.name.value == name.value) {
            let first_line = check.line(&first.draft.name.path);
            check.report(&name.path, Problem::DuplicateGroup { name: name.value.clone(), first_line });
        }
    }
}

/// Checks one group on its own.
fn check_group(draft: GroupDraft, base: &Path, check: &mut Checker<'_, Problem>) -> Checked {
    let name = &draft.name;
    let valid_name = match names::check_node_name(&name.value) {
        Ok(()) => true,
        Err(reason) => {
            check.report(&name.path, Problem::GroupName { name: name.value.clone(), reason });
            false
        }
    };
    let (devices, wildcard) = check_devices(&draft.devices, base, check);
    let matched = wildcard.as_ref().map(|wildcard| (&draft.devices[wildcard.draft], wildcard.matches.len()));
    let count = check_count(&draft, matched, check);
    if let (true, Some(count)) = (valid_name, count) {
        let longest = if count > 1 { format!("{}-{count}", name.value) } else { name.value.clone() };
        if longest.chars().count() > MAX_NODE_NAME {
            check.report(&name.path, Problem::InstanceNameTooLong { name: longest });
        }
    }
    if let Some(count) = count.filter(|&count| count > 1) {
        check_shared_outputs(&draft, count, check);
    }
    let program = check_program(&draft, base, check);
    check_args_and_env(&draft, check);
    // A wrong value is reported and the default stands in (the job is not built).
    let memory = match &draft.memory {
        None => DEFAULT_MEMORY,
        Some(memory) => units::parse_memory(&memory.value).unwrap_or_else(|reason| {
            check.report(&memory.path, Problem::Memory { value: memory.value.clone(), reason });
            DEFAULT_MEMORY
        }),
    };
    let timeout = match &draft.timeout {
        None => DEFAULT_TIMEOUT_SECS,
        Some(timeout) => units::parse_timeout(&timeout.value).unwrap_or_else(|reason| {
            check.report(&timeout.path, Problem::Timeout { value: timeout.value.clone(), reason });
            DEFAULT_TIMEOUT_SECS
        }),
    };
    let retries = match &draft.retries {
        Some(retries) if retries.value > MAX_RETRIES => {
            check.report(&retries.path, Problem::RetriesTooLarge { retries: retries.value });
            0
        }
        Some(retries) => retries.value,
        None => 0,
    };
    let nodes = draft.nodes.as_ref().and_then(|nodes| match nodes.value.parse::<NodeSelector>() {
        Ok(selector) => Some(selector),
        Err(error) => {
            check.report(&nodes.path, Problem::Selector { error });
            None
        }
    });
    let group = Group {
        name: name.value.clone(),
        count: count.unwrap_or(1),
        program,
        args: draft.args.iter().map(|arg| arg.value.clone()).collect(),
        env: draft.env.clone(),
        memory,
        timeout,
        devices,
        connect: draft.connect.iter().map(|target| target.value.clone()).collect(),
        placement: PlacementRule { nodes, strategy: draft.strategy },
        retries,
        warm: draft.warm,
        at: check.location(&draft.path),
        nodes_at: check.location(draft.nodes.as_ref().map_or(&draft.path, |nodes| &nodes.path)),
    };
    Checked { draft, group, count, wildcard }
}

/// The number of instances: `count` (1 when omitted), or the wildcard's matches, which
/// `count` must then equal. `None` when either is wrong.
fn check_count(
    draft: &GroupDraft,
    wildcard: Option<(&DeviceDraft, usize)>,
    check: &mut Checker<'_, Problem>,
) -> Option<u32> {
    let written = match &draft.count {
        Some(count) if count.value == 0 => {
            check.report(&count.path, Problem::ZeroCount);
            return None;
        }
        Some(count) if count.value > MAX_COUNT => {
            check.report(&count.path, Problem::CountTooLarge { count: count.value });
            return None;
        }
        written => written,
    };
    let Some((device, matches)) = wildcard else {
        return Some(written.as_ref().map_or(1, |count| count.value));
    };
    let matches = match u32::try_from(matches) {
        Ok(matches) if matches <= MAX_COUNT => matches,
        _ => {
            let count = u32::try_from(matches).unwrap_or(u32::MAX);
            check.report(&device.path.path, Problem::CountTooLarge { count });
            return None;
        }
    };
    match written {
        Some(count) if count.value != matches => {
            let problem = Problem::WildcardCount { count: count.value, matches, value: device.path.value.clone() };
            check.report(&count.path, problem);
            None
        }
        _ => Some(matches),
    }
}

fn check_program(draft: &GroupDraft, base: &Path, check: &mut Checker<'_, Problem>) -> Program {
    let program = &draft.program;
    let value = program.value.clone();
    if let Some(image) = &draft.missing_image {
        check.report(&program.path, Problem::ZeroCloudImageMissing { value, image: image.clone() });
        return Program::Local(PathBuf::new());
    }
    match files::parse_program(&program.value) {
        Err(reason) => check.report(&program.path, Problem::Path { what: "program".to_owned(), value, reason }),
        Ok(ProgramRef::Remote) => check.report(&program.path, Problem::ProgramNotLocal { value }),
        Ok(ProgramRef::Image(inside)) => {
            if !draft.devices.iter().any(|device| device.name == DeviceName::Image) {
                check.report(&program.path, Problem::ImageWithoutDevice { value });
            }
            return Program::Image(inside);
        }
        Ok(ProgramRef::Local(path)) => {
            let resolved = files::resolve(base, &path);
            match std::fs::metadata(&resolved) {
                Ok(meta) if meta.is_file() => {}
                Ok(_) => check.report(&program.path, Problem::ProgramNotFile { value, resolved: resolved.clone() }),
                Err(_) => check.report(&program.path, Problem::ProgramNotFound { value, resolved: resolved.clone() }),
            }
            return Program::Local(resolved);
        }
    }
    // Only a valid job is built, so what stands in for a wrong program is never used.
    Program::Local(PathBuf::new())
}

fn check_args_and_env(draft: &GroupDraft, check: &mut Checker<'_, Problem>) {
    for (i, arg) in draft.args.iter().enumerate() {
        if arg.value.contains('\0') {
            check.report(&arg.path, Problem::Nul { what: format!("argument {}", i + 1) });
        }
    }
    for (name, value) in &draft.env {
        let path = draft.env_path.key(name);
        if name.is_empty() || name.contains(['=', '\0']) {
            check.report_key(&path, Problem::EnvName { name: name.clone() });
        } else if value.contains('\0') {
            check.report(&path, Problem::Nul { what: format!("environment variable `{name}`") });
        }
    }
}

/// Checks each device and returns them resolved, with the wildcard input's matches.
fn check_devices(
    drafts: &[DeviceDraft],
    base: &Path,
    check: &mut Checker<'_, Problem>,
) -> (Vec<Device>, Option<Wildcard>) {
    let mut devices = Vec::new();
    let mut wildcard: Option<Wildcard> = None;
    let mut wildcard_device: Option<DeviceName> = None;
    for (index, draft) in drafts.iter().enumerate() {
        let (name, path) = (draft.name, &draft.path);
        let file = match files::parse_file(&path.value) {
            Ok(file) => file,
            Err(reason) => {
                let what = format!("{name} path");
                check.report(&path.path, Problem::Path { what, value: path.value.clone(), reason });
                continue;
            }
        };
        let file = match file {
            FileRef::Local(local) => FileRef::Local(files::resolve(base, &local)),
            other => other,
        };
        let sha256 = check_sha256(draft, check);
        if !name.is_input() {
            match &file {
                FileRef::Url(_) => {
                    check.report(&path.path, Problem::OutputToUrl { device: name.name(), value: path.value.clone() })
                }
                FileRef::Local(resolved) => {
                    // A `*` (the instance's name) in the directory is checked per instance, at run time.
                    let dir = resolved.parent().filter(|dir| !dir.as_os_str().is_empty());
                    if let Some(dir) = dir.filter(|dir| !dir.to_string_lossy().contains('*') && !dir.is_dir()) {
                        let problem = Problem::OutputDirMissing {
                            device: name.name(),
                            value: path.value.clone(),
                            dir: dir.into(),
                        };
                        check.report(&path.path, problem);
                    }
                }
                FileRef::Node(_) => {}
            }
            devices.push(Device { name, file, sha256: None });
            continue;
        }
        match (&file, files::has_wildcard(&path.value)) {
            (FileRef::Local(resolved), true) => match wildcard_device {
                Some(first) => check.report(&path.path, Problem::SeveralWildcards { first: first.name() }),
                None => {
                    wildcard_device = Some(name);
                    match files::expand_wildcard(resolved) {
                        Ok(matches) => wildcard = Some(Wildcard { device: devices.len(), draft: index, matches }),
                        Err(err) => report_wildcard(err, draft, check),
                    }
                }
            },
            (_, true) => {
                check.report(&path.path, Problem::WildcardNotLocal { device: name.name(), value: path.value.clone() })
            }
            (FileRef::Local(resolved), false) if !resolved.is_file() => {
                let resolved = resolved.clone();
                let problem = Problem::InputNotFound { device: name.name(), value: path.value.clone(), resolved };
                check.report(&path.path, problem);
            }
            _ => {}
        }
        devices.push(Device { name, file, sha256 });
    }
    (devices, wildcard)
}

fn report_wildcard(err: WildcardError, draft: &DeviceDraft, check: &mut Checker<'_, Problem>) {
    let value = draft.path.value.clone();
    let problem = match err {
        WildcardError::InDirectory => Problem::WildcardInDirectory { value },
        WildcardError::NoMatch(dir) => Problem::WildcardNoMatch { value, dir },
    };
    check.report(&draft.path.path, problem);
}

/// The device's checksum (either case as written); an error on an output or when malformed.
fn check_sha256(draft: &DeviceDraft, check: &mut Checker<'_, Problem>) -> Option<Sha256> {
    let sha256 = draft.sha256.as_ref()?;
    if !draft.name.is_input() {
        check.report_key(&sha256.path, Problem::ChecksumOnOutput { device: draft.name.name() });
        return None;
    }
    match sha256.value.to_ascii_lowercase().parse() {
        Ok(sha256) => Some(sha256),
        Err(_) => {
            check.report(&sha256.path, Problem::Checksum { value: sha256.value.clone() });
            None
        }
    }
}

/// Outputs of a group of several instances need a `*` for the instance's name.
fn check_shared_outputs(draft: &GroupDraft, count: u32, check: &mut Checker<'_, Problem>) {
    for device in draft.devices.iter().filter(|device| !device.name.is_input()) {
        if !device.path.value.contains('*') {
            let problem = Problem::SharedOutput {
                device: device.name.name(),
                value: device.path.value.clone(),
                instances: count,
                group: draft.name.value.clone(),
            };
            check.report(&device.path.path, problem);
        }
    }
}
