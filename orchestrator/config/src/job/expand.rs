//! From checked groups to instances and the channels between them, with the checks
//! that need the counts: instance names unique, size limits, one writer per output.
//!
//! Naming follows ZeroCloud's parser: a group of one instance keeps its bare name
//! (`reduce`), a group of N > 1 has `NAME-1` … `NAME-N`. `connect: [b]` on group `a`
//! makes one channel from every instance of `a` to every instance of `b`; the writer
//! sees it as `/dev/out/<reader>`, the reader as `/dev/in/<writer>`.
//!
//! The limits are checked by arithmetic before anything is allocated, so a job asking
//! for a million channels is refused without building them.

use std::collections::HashMap;
use std::path::PathBuf;

use crate::document::Checker;
use crate::document::YamlPath;

use super::group::{Device, FileRef, Group};
use super::problem::{Problem, MAX_CHANNELS, MAX_EDGES, MAX_INSTANCES};
use super::validate::Checked;
use super::{ChannelEnd, Direction, Edge, Instance};

/// The instances and channels of `groups`, or `None` when a count is unknown or a
/// limit is exceeded (reported).
pub(crate) fn expand(
    groups: &[Checked],
    groups_path: &YamlPath,
    check: &mut Checker<'_, Problem>,
) -> Option<(Vec<Instance>, Vec<Edge>)> {
    let counts: Vec<u64> = groups.iter().map(|group| group.count.map(u64::from)).collect::<Option<_>>()?;
    let targets = connections(groups);
    if !within_limits(groups, &counts, &targets, groups_path, check) {
        return None;
    }
    let mut instances = Vec::new();
    let mut first_instance = Vec::with_capacity(groups.len());
    for (index, checked) in groups.iter().enumerate() {
        first_instance.push(instances.len());
        for number in 1..=checked.group.count {
            let name = instance_name(&checked.group, number);
            let devices = instance_devices(checked, number, &name);
            instances.push(Instance { name, group: index, number, devices, channels: Vec::new() });
        }
    }
    check_instance_names(groups, &instances, check);
    check_output_clashes(groups, &instances, check);
    let mut edges = Vec::new();
    for (source, group) in groups.iter().enumerate() {
        for from in first_instance[source]..first_instance[source] + group.group.count as usize {
            for &target in &targets[source] {
                for to in first_instance[target]..first_instance[target] + groups[target].group.count as usize {
                    connect(&mut instances, &mut edges, from, to);
                }
            }
        }
    }
    Some((instances, edges))
}

/// The name of instance `number` (from 1) of `group`.
fn instance_name(group: &Group, number: u32) -> String {
    if group.count == 1 {
        group.name.clone()
    } else {
        format!("{}-{number}", group.name)
    }
}

/// For each group, the groups it connects to that exist and are not itself (the others
/// were reported by the graph checks).
fn connections(groups: &[Checked]) -> Vec<Vec<usize>> {
    let index: HashMap<&str, usize> =
        groups.iter().enumerate().rev().map(|(i, group)| (group.group.name.as_str(), i)).collect();
    groups
        .iter()
        .enumerate()
        .map(|(source, group)| {
            let mut targets: Vec<usize> = Vec::new();
            for name in &group.group.connect {
                match index.get(name.as_str()) {
                    Some(&target) if target != source && !targets.contains(&target) => targets.push(target),
                    _ => {}
                }
            }
            targets
        })
        .collect()
}

/// The total instances, the channels of each guest and the total channels, each within
/// its limit.
fn within_limits(
    groups: &[Checked],
    counts: &[u64],
    targets: &[Vec<usize>],
    groups_path: &YamlPath,
    check: &mut Checker<'_, Problem>,
) -> bool {
    let mut ok = true;
    let total: u64 = counts.iter().sum();
    if total > MAX_INSTANCES {
        check.report_key(groups_path, Problem::TooManyInstances { total });
        ok = false;
    }
    let mut incoming = vec![0u64; groups.len()];
    let mut edges = 0u64;
    for (source, targets) in targets.iter().enumerate() {
        for &target in targets {
            incoming[target] += counts[source];
            edges += counts[source] * counts[target];
        }
    }
    for (i, checked) in groups.iter().enumerate() {
        // stdin, stdout and stderr are always there; other devices add one each.
        let devices = checked.group.devices.iter().filter(|device| !is_standard(device)).count() as u64;
        let outgoing: u64 = targets[i].iter().map(|&target| counts[target]).sum();
        let channels = 3 + devices + outgoing + incoming[i];
        if channels > MAX_CHANNELS {
            let group = checked.group.name.clone();
            check.report(&checked.draft.path, Problem::TooManyChannels { group, channels });
            ok = false;
        }
    }
    if edges > MAX_EDGES {
        check.report_key(groups_path, Problem::TooManyEdges { total: edges });
        ok = false;
    }
    ok
}

fn is_standard(device: &Device) -> bool {
    use super::group::DeviceName::{Stderr, Stdin, Stdout};
    matches!(device.name, Stdin | Stdout | Stderr)
}

/// The devices of instance `number`: the wildcard input's own file, and each `*` in an
/// output path replaced by the instance's name.
fn instance_devices(checked: &Checked, number: u32, name: &str) -> Vec<Device> {
    let mut devices = checked.group.devices.clone();
    if let Some(wildcard) = &checked.wildcard {
        if let Some(file) = wildcard.matches.get(number as usize - 1) {
            devices[wildcard.device].file = FileRef::Local(file.clone());
        }
    }
    for device in devices.iter_mut().filter(|device| !device.name.is_input()) {
        let replace = |path: &PathBuf| PathBuf::from(path.to_string_lossy().replace('*', name));
        device.file = match &device.file {
            FileRef::Local(path) => FileRef::Local(replace(path)),
            FileRef::Node(path) => FileRef::Node(replace(path)),
            FileRef::Url(url) => FileRef::Url(url.clone()),
        };
    }
    devices
}

/// Each instance name is made by one group only.
fn check_instance_names(groups: &[Checked], instances: &[Instance], check: &mut Checker<'_, Problem>) {
    let mut made_by: HashMap<&str, usize> = HashMap::new();
    for instance in instances {
        match made_by.get(instance.name.as_str()) {
            // Two groups of one name were reported as duplicate groups.
            Some(&other) if groups[other].group.name != groups[instance.group].group.name => {
                let (group, other) = (&groups[instance.group].group, &groups[other].group);
                let problem = Problem::DuplicateInstance {
                    name: instance.name.clone(),
                    group: group.name.clone(),
                    other: other.name.clone(),
                };
                check.report(&groups[instance.group].draft.name.path, problem);
            }
            Some(_) => {}
            None => {
                made_by.insert(&instance.name, instance.group);
            }
        }
    }
}

/// A local output file is written by instances of one group only (several instances
/// of one group sharing a path were reported with the group).
fn check_output_clashes(groups: &[Checked], instances: &[Instance], check: &mut Checker<'_, Problem>) {
    let mut writer: HashMap<&PathBuf, &Instance> = HashMap::new();
    for instance in instances {
        for device in instance.devices.iter().filter(|device| !device.name.is_input()) {
            let FileRef::Local(path) = &device.file else { continue };
            match writer.get(path) {
                Some(other) if other.group != instance.group => {
                    let draft = &groups[instance.group].draft;
                    let at = draft.devices.iter().find(|d| d.name == device.name).map_or(&draft.path, |d| &d.path.path);
                    check.report(at, Problem::OutputClash { path: path.clone(), other: other.name.clone() });
                }
                Some(_) => {}
                None => {
                    writer.insert(path, instance);
                }
            }
        }
    }
}

/// Adds the channel from instance `from` to instance `to`.
fn connect(instances: &mut [Instance], edges: &mut Vec<Edge>, from: usize, to: usize) {
    let edge = edges.len();
    edges.push(Edge { from, to });
    let (writer, reader) = (instances[from].name.clone(), instances[to].name.clone());
    instances[from].channels.push(ChannelEnd {
        alias: format!("/dev/out/{reader}"),
        direction: Direction::Out,
        peer: to,
        edge,
    });
    instances[to].channels.push(ChannelEnd {
        alias: format!("/dev/in/{writer}"),
        direction: Direction::In,
        peer: from,
        edge,
    });
}
