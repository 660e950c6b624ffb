//! Provisioning steps: the cluster file's `provision:` list, checked into [`Step`]s.
//!
//! A step is a shell script (inline or a file next to the cluster file) or files to
//! upload, on the nodes a selector picks (all by default). Steps run in file order;
//! `after:` names earlier steps that must have finished on all their nodes first (node-1
//! bootstraps, the others join). Since `after:` may only name earlier steps, the order is
//! a straight line and a cycle cannot be written: a later or unknown name is an error.
//! Script files and uploaded files are read here, so a missing one is a located error
//! before any node is touched.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::names::{self, NameError};
use super::schema::StepSpec;
use super::selector::NodeSelector;
use super::{Checker, Node, Problem};
use crate::document::{closest, YamlPath};

/// How long a `ready:` check is retried by default.
pub const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// One provisioning step, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    /// Its unique name.
    pub name: String,
    /// What it does.
    pub action: Action,
    /// The nodes it runs on, in file order.
    pub nodes: Vec<String>,
    /// Earlier steps that must have finished on all their nodes first.
    pub after: Vec<String>,
    /// A command retried on each node after the step until it exits 0.
    pub ready: Option<Ready>,
    /// Run on every `up`, changed or not.
    pub always: bool,
}

/// What a step does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// A shell script (from `script:` or the text of `script_file:`).
    Script(String),
    /// Files to upload.
    Files(Vec<StepFile>),
}

/// One file a step uploads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StepFile {
    /// The file on this machine (relative paths are from the cluster file's directory).
    pub src: PathBuf,
    /// Its contents, read when the cluster file was checked.
    pub contents: Vec<u8>,
    /// The absolute path on the node.
    pub dest: String,
    /// Its permission bits.
    pub mode: u32,
}

/// A readiness check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ready {
    /// The command.
    pub command: String,
    /// How long it is retried.
    pub timeout: Duration,
}

/// Checks `specs` against the expanded `nodes`; relative files are read from `base`.
pub(crate) fn check(specs: &[StepSpec], nodes: &[Node], base: &Path, check: &mut Checker<'_>) -> Vec<Step> {
    let root = YamlPath::root().key("provision");
    let mut earlier: Vec<String> = Vec::new();
    let all: Vec<String> = specs.iter().map(|s| s.name.clone()).collect();
    let mut steps = Vec::new();
    for (index, spec) in specs.iter().enumerate() {
        let path = root.index(index);
        // The name is a file name in the lab directory (`LAB/provision/<node>/<step>.json`).
        let name_check = match spec.name.is_empty() {
            true => Err(NameError::Empty),
            false => names::check_label_value(&spec.name),
        };
        if let Err(reason) = name_check {
            check.report(&path.key("name"), Problem::StepName { name: spec.name.clone(), reason });
        } else if earlier.contains(&spec.name) {
            check.report(&path.key("name"), Problem::DuplicateStep { name: spec.name.clone() });
        }
        for (i, after) in spec.after.iter().enumerate() {
            let at = path.key("after").index(i);
            if earlier.contains(after) {
                continue;
            }
            let problem = match all.contains(after) {
                true => Problem::StepNotEarlier { name: after.clone() },
                false => Problem::UnknownStep { name: after.clone(), suggestion: closest(after, &earlier) },
            };
            check.report(&at, problem);
        }
        let action = action(spec, &path, base, check);
        let selected = selected(spec, &path, nodes, check);
        if spec.timeout == Some(0) {
            check.report(&path.key("timeout"), Problem::StepTimeoutZero);
        }
        if spec.timeout.is_some() && spec.ready.is_none() {
            check.report_key(&path.key("timeout"), Problem::TimeoutWithoutReady);
        }
        let ready = spec.ready.as_ref().map(|command| Ready {
            command: command.clone(),
            timeout: spec.timeout.map_or(READY_TIMEOUT, Duration::from_secs),
        });
        earlier.push(spec.name.clone());
        if let (Some(action), Some(nodes)) = (action, selected) {
            let after = spec.after.clone();
            steps.push(Step { name: spec.name.clone(), action, nodes, after, ready, always: spec.always });
        }
    }
    steps
}

fn action(spec: &StepSpec, path: &YamlPath, base: &Path, check: &mut Checker<'_>) -> Option<Action> {
    let given = [spec.script.is_some(), spec.script_file.is_some(), spec.files.is_some()];
    match given.iter().filter(|g| **g).count() {
        0 => {
            check.report(&path.key("name"), Problem::StepNoAction { name: spec.name.clone() });
            return None;
        }
        1 => {}
        _ => {
            check.report(path, Problem::StepManyActions { name: spec.name.clone() });
            return None;
        }
    }
    if let Some(script) = &spec.script {
        return Some(Action::Script(script.clone()));
    }
    if let Some(file) = &spec.script_file {
        let file_path = base.join(file);
        return match std::fs::read_to_string(&file_path) {
            Ok(text) => Some(Action::Script(text)),
            Err(e) => {
                check.report(&path.key("script_file"), Problem::Unreadable { path: file_path, reason: e.to_string() });
                None
            }
        };
    }
    let mut files = Vec::new();
    let mut clean = true;
    for (i, file) in spec.files.iter().flatten().enumerate() {
        let at = path.key("files").index(i);
        let src = base.join(&file.src);
        let contents = std::fs::read(&src).map_err(|e| {
            check.report(&at.key("src"), Problem::Unreadable { path: src.clone(), reason: e.to_string() })
        });
        if !file.dest.starts_with('/') {
            check.report(&at.key("dest"), Problem::DestNotAbsolute { dest: file.dest.clone() });
            clean = false;
        }
        let mode = match file.mode.as_deref() {
            None => Some(0o644),
            Some(text) => u32::from_str_radix(text, 8).ok().filter(|m| *m <= 0o7777 && !text.is_empty()),
        };
        if mode.is_none() {
            check.report(&at.key("mode"), Problem::FileMode { value: file.mode.clone().unwrap_or_default() });
        }
        match (contents, mode, clean) {
            (Ok(contents), Some(mode), true) => files.push(StepFile { src, contents, dest: file.dest.clone(), mode }),
            _ => clean = false,
        }
    }
    if files.is_empty() && clean {
        check.report(&path.key("files"), Problem::NoFiles);
        return None;
    }
    clean.then_some(Action::Files(files))
}

fn selected(spec: &StepSpec, path: &YamlPath, nodes: &[Node], check: &mut Checker<'_>) -> Option<Vec<String>> {
    let Some(text) = &spec.nodes else { return Some(nodes.iter().map(|n| n.name.clone()).collect()) };
    let at = path.key("nodes");
    let selector = match text.parse::<NodeSelector>() {
        Ok(selector) => selector,
        Err(e) => {
            check.report(&at, Problem::StepSelector(e));
            return None;
        }
    };
    if nodes.is_empty() {
        return None;
    }
    match selector.select(nodes) {
        Ok(selected) => {
            let chosen: HashSet<&str> = selected.iter().map(|n| n.name.as_str()).collect();
            Some(nodes.iter().filter(|n| chosen.contains(n.name.as_str())).map(|n| n.name.clone()).collect())
        }
        Err(e) => {
            check.report(&at, Problem::StepSelector(e));
            None
        }
    }
}

#[cfg(test)]
mod tests;
