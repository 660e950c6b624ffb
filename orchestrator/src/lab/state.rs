//! Node states, kept in the lab's `state.json`.
//!
//! A node goes declared → provisioning → ready, or ends failed (with its cause) or
//! unreachable. The file is replaced atomically (written to a temporary file in the same
//! directory, synced, renamed over), so a crash never leaves half a state behind.

use std::collections::BTreeMap;
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{io_error, LabError};

/// Where a node is in its life.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "lowercase")]
pub enum NodeState {
    /// In the cluster file; nothing made yet.
    #[default]
    Declared,
    /// Being made or provisioned.
    Provisioning,
    /// Up, reachable and provisioned.
    Ready,
    /// Making or provisioning it failed.
    Failed {
        /// Why, as one line.
        cause: String,
    },
    /// Made, but not answering.
    Unreachable,
}

/// What the lab knows of one node.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeRecord {
    /// Where it is reached.
    pub address: String,
    /// Its state.
    #[serde(flatten)]
    pub state: NodeState,
    /// The process the provider started for it (netns: its sshd), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
}

/// Every node's record, by node name.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabState {
    /// The records, by node name.
    pub nodes: BTreeMap<String, NodeRecord>,
}

impl LabState {
    /// Reads the state at `path`; a missing file is an empty state.
    pub fn load(path: &Path) -> Result<LabState, LabError> {
        match fs::read(path) {
            Ok(bytes) => {
                serde_json::from_slice(&bytes).map_err(|source| LabError::State { path: path.to_owned(), source })
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(LabState::default()),
            Err(e) => Err(io_error(path)(e)),
        }
    }

    /// Writes the state to `path` atomically, readable by its owner only.
    pub fn save(&self, path: &Path) -> Result<(), LabError> {
        let mut json = serde_json::to_vec_pretty(self).expect("a lab state serializes");
        json.push(b'\n');
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let temp = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
        let write = || -> io::Result<()> {
            let mut file = OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&temp)?;
            file.write_all(&json)?;
            file.sync_all()?;
            fs::rename(&temp, path)
        };
        write().map_err(|e| {
            let _ = fs::remove_file(&temp);
            io_error(path)(e)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> LabState {
        let mut state = LabState::default();
        for (i, node_state) in [
            NodeState::Declared,
            NodeState::Provisioning,
            NodeState::Ready,
            NodeState::Failed { cause: "sshd exited: bad config".into() },
            NodeState::Unreachable,
        ]
        .into_iter()
        .enumerate()
        {
            let pid = (i % 2 == 0).then_some(100 + i as u32);
            state.nodes.insert(
                format!("node-{}", i + 1),
                NodeRecord { address: format!("10.77.0.{}", i + 2), state: node_state, pid },
            );
        }
        state
    }

    #[test]
    fn state_round_trips_through_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        assert_eq!(LabState::load(&path).unwrap(), LabState::default());
        let state = sample();
        state.save(&path).unwrap();
        assert_eq!(LabState::load(&path).unwrap(), state);
        // Saving again replaces the file and leaves no temporary file behind.
        LabState::default().save(&path).unwrap();
        assert_eq!(LabState::load(&path).unwrap(), LabState::default());
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn failed_state_is_written_with_its_cause() {
        let record =
            NodeRecord { address: "10.77.0.2".into(), state: NodeState::Failed { cause: "x".into() }, pid: None };
        let json = serde_json::to_string(&record).unwrap();
        assert_eq!(json, r#"{"address":"10.77.0.2","state":"failed","cause":"x"}"#);
    }

    #[test]
    fn corrupt_state_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        fs::write(&path, "{").unwrap();
        let err = LabState::load(&path).unwrap_err();
        assert!(err.to_string().contains("state.json is corrupt"), "{err}");
    }
}
