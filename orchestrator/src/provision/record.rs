//! What provisioning remembers per node, in the lab directory: `LAB/provision/<node>/
//! <step>.json` (the step's content hash and whether it succeeded) and `<step>.log` (its
//! output, the last run's). A step runs again on a node only when its record is missing,
//! failed, or of other content ([`content_hash`]: script text, each file's destination,
//! mode and sha256, the step's node list and readiness check).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use zerolab_agent_api::Sha256;

use crate::cluster::provision::Action;
use crate::cluster::{Cluster, Step};

/// One step's last run on one node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepRecord {
    /// The step's content hash when it ran ([`content_hash`]).
    pub hash: String,
    /// Whether it succeeded (its readiness check included).
    pub ok: bool,
}

/// How many nodes a step is done, failed or pending on (pending: never run, or its
/// content changed since).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StepCounts {
    /// The step's name.
    pub step: String,
    /// Nodes where this content succeeded.
    pub done: usize,
    /// Nodes where this content failed.
    pub failed: usize,
    /// Nodes where this content has not run.
    pub pending: usize,
}

/// The content of `step`, hashed: what decides whether it runs again.
pub fn content_hash(step: &Step) -> String {
    let mut text = String::new();
    match &step.action {
        Action::Script(script) => text.push_str(&format!("script\n{script}\n")),
        Action::Files(files) => {
            for file in files {
                let sum = Sha256::of_bytes(&file.contents);
                text.push_str(&format!("file {} {:o} {sum}\n", file.dest, file.mode));
            }
        }
    }
    text.push_str(&format!("nodes {}\n", step.nodes.join(",")));
    if let Some(ready) = &step.ready {
        text.push_str(&format!("ready {} {}\n", ready.timeout.as_secs(), ready.command));
    }
    Sha256::of_bytes(text.as_bytes()).to_string()
}

/// `LAB/provision/<node>/<step>.json`.
pub fn record_path(lab_dir: &Path, node: &str, step: &str) -> PathBuf {
    lab_dir.join("provision").join(node).join(format!("{step}.json"))
}

/// `LAB/provision/<node>/<step>.log`.
pub fn log_path(lab_dir: &Path, node: &str, step: &str) -> PathBuf {
    lab_dir.join("provision").join(node).join(format!("{step}.log"))
}

/// Forgets every step done on `node` (a machine made anew has none of them): its
/// records and logs go, so the next `up` runs its steps again.
pub fn forget(lab_dir: &Path, node: &str) -> std::io::Result<()> {
    match std::fs::remove_dir_all(lab_dir.join("provision").join(node)) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// The record of `step` on `node`, if one reads.
pub fn load(lab_dir: &Path, node: &str, step: &str) -> Option<StepRecord> {
    let text = std::fs::read(record_path(lab_dir, node, step)).ok()?;
    serde_json::from_slice(&text).ok()
}

/// Writes `record` and `log` for `step` on `node`.
pub fn save(lab_dir: &Path, node: &str, step: &str, record: &StepRecord, log: &[u8]) -> std::io::Result<()> {
    let path = record_path(lab_dir, node, step);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(log_path(lab_dir, node, step), log)?;
    let json = serde_json::to_vec_pretty(record).map_err(std::io::Error::other)?;
    let partial = path.with_extension("json.partial");
    std::fs::write(&partial, json)?;
    std::fs::rename(partial, path)
}

/// Each step of `cluster` with its done, failed and pending node counts, from the records
/// in `lab_dir`.
pub fn counts(lab_dir: &Path, cluster: &Cluster) -> Vec<StepCounts> {
    cluster
        .provision()
        .iter()
        .map(|step| {
            let hash = content_hash(step);
            let mut counts = StepCounts { step: step.name.clone(), ..StepCounts::default() };
            for node in &step.nodes {
                match load(lab_dir, node, &step.name) {
                    Some(record) if record.hash == hash && record.ok => counts.done += 1,
                    Some(record) if record.hash == hash => counts.failed += 1,
                    _ => counts.pending += 1,
                }
            }
            counts
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(script: &str, nodes: &[&str]) -> Step {
        Step {
            name: "s".into(),
            action: Action::Script(script.into()),
            nodes: nodes.iter().map(|n| (*n).to_owned()).collect(),
            after: Vec::new(),
            ready: None,
            always: false,
        }
    }

    #[test]
    fn the_hash_follows_the_script_and_the_node_list_only() {
        let base = content_hash(&step("echo a", &["n1", "n2"]));
        assert_eq!(base, content_hash(&Step { after: vec!["x".into()], ..step("echo a", &["n1", "n2"]) }));
        assert_ne!(base, content_hash(&step("echo b", &["n1", "n2"])));
        assert_ne!(base, content_hash(&step("echo a", &["n1"])));
    }

    #[test]
    fn a_record_and_its_log_are_saved_and_read_back() {
        let dir = std::env::temp_dir().join(format!("zerolab-record-{}", std::process::id()));
        let hash = content_hash(&step("echo a", &["n1"]));
        save(&dir, "n1", "s", &StepRecord { hash: hash.clone(), ok: false }, b"a\n").unwrap();
        let (record, log) = (load(&dir, "n1", "s"), std::fs::read(log_path(&dir, "n1", "s")).unwrap());
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!((record, log.as_slice()), (Some(StepRecord { hash, ok: false }), &b"a\n"[..]));
    }
}
