//! Node states, kept in the lab's `state.json`.
//!
//! A node goes declared → provisioning → ready, or ends failed (with its cause) or
//! unreachable. A ready node can be shelved (`zerolab shelve`: `shelved`, its memory kept,
//! or `shelved_offloaded`, its processes gone) and unshelved back to ready. The file is replaced atomically (written to a temporary file in the same
//! directory, synced, renamed over), so a crash never leaves half a state behind.
//!
//! What a provider keeps of a node (netns: its sshd's pid) is the provider's own record
//! type, stored under the node's `provider` key ([`NodeRecord::provider_record`],
//! [`NodeRecord::set_provider_record`]): the shared record knows no provider's fields.

use std::collections::BTreeMap;
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::{io_error, LabError};
use crate::provider::ShelveMode;

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
    /// Shelved with its memory kept, its processes stopped (Nova's SHELVED).
    Shelved,
    /// Shelved with its processes gone, its files, keys and address kept (Nova's
    /// SHELVED_OFFLOADED).
    #[serde(rename = "shelved_offloaded")]
    ShelvedOffloaded,
}

impl NodeState {
    /// The state as one word, as `state.json` and `status` write it.
    pub fn name(&self) -> &'static str {
        match self {
            NodeState::Declared => "declared",
            NodeState::Provisioning => "provisioning",
            NodeState::Ready => "ready",
            NodeState::Failed { .. } => "failed",
            NodeState::Unreachable => "unreachable",
            NodeState::Shelved => "shelved",
            NodeState::ShelvedOffloaded => "shelved_offloaded",
        }
    }

    /// The state of a node shelved in `mode`.
    pub fn shelved(mode: ShelveMode) -> NodeState {
        match mode {
            ShelveMode::Frozen => NodeState::Shelved,
            ShelveMode::Offloaded => NodeState::ShelvedOffloaded,
        }
    }

    /// How the node is shelved, when it is.
    pub fn shelve_mode(&self) -> Option<ShelveMode> {
        match self {
            NodeState::Shelved => Some(ShelveMode::Frozen),
            NodeState::ShelvedOffloaded => Some(ShelveMode::Offloaded),
            _ => None,
        }
    }
}

/// What the lab knows of one node.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeRecord {
    /// Where it is reached.
    pub address: String,
    /// Its state.
    #[serde(flatten)]
    pub state: NodeState,
    /// The provider's own record of the node, as JSON (empty when it keeps none).
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    provider: serde_json::Map<String, serde_json::Value>,
}

impl NodeRecord {
    /// A node at `address` in `state`, with no provider record.
    pub fn new(address: impl Into<String>, state: NodeState) -> NodeRecord {
        NodeRecord { address: address.into(), state, provider: serde_json::Map::new() }
    }

    /// The provider's record of the node, read as its type `R` (`None` when there is
    /// none, or it is not an `R`).
    pub fn provider_record<R: DeserializeOwned>(&self) -> Option<R> {
        if self.provider.is_empty() {
            return None;
        }
        serde_json::from_value(serde_json::Value::Object(self.provider.clone())).ok()
    }

    /// Replaces the provider's record of the node; `record` must serialize to a JSON
    /// object (a struct).
    pub fn set_provider_record<R: Serialize>(&mut self, record: &R) {
        self.provider = match serde_json::to_value(record) {
            Ok(serde_json::Value::Object(fields)) => fields,
            _ => panic!("a provider record serializes to a JSON object"),
        };
    }
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

    /// A provider's record, as netns keeps one.
    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Sshd {
        pid: u32,
    }

    fn sample() -> LabState {
        let mut state = LabState::default();
        for (i, node_state) in [
            NodeState::Declared,
            NodeState::Provisioning,
            NodeState::Ready,
            NodeState::Failed { cause: "sshd exited: bad config".into() },
            NodeState::Unreachable,
            NodeState::Shelved,
            NodeState::ShelvedOffloaded,
        ]
        .into_iter()
        .enumerate()
        {
            let mut record = NodeRecord::new(format!("10.77.0.{}", i + 2), node_state);
            if i % 2 == 0 {
                record.set_provider_record(&Sshd { pid: 100 + i as u32 });
            }
            state.nodes.insert(format!("node-{}", i + 1), record);
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
        let record = NodeRecord::new("10.77.0.2", NodeState::Failed { cause: "x".into() });
        let json = serde_json::to_string(&record).unwrap();
        assert_eq!(json, r#"{"address":"10.77.0.2","state":"failed","cause":"x"}"#);
    }

    #[test]
    fn shelved_states_are_written_as_novas() {
        for (mode, state, json) in [
            (ShelveMode::Frozen, NodeState::Shelved, r#"{"address":"a","state":"shelved"}"#),
            (ShelveMode::Offloaded, NodeState::ShelvedOffloaded, r#"{"address":"a","state":"shelved_offloaded"}"#),
        ] {
            assert_eq!(NodeState::shelved(mode), state);
            assert_eq!(state.shelve_mode(), Some(mode));
            assert_eq!(format!(r#"{{"address":"a","state":"{}"}}"#, state.name()), json);
            let record = NodeRecord::new("a", state);
            assert_eq!(serde_json::to_string(&record).unwrap(), json);
            assert_eq!(serde_json::from_str::<NodeRecord>(json).unwrap(), record);
        }
        assert_eq!(NodeState::Ready.shelve_mode(), None);
        assert_eq!(serde_json::to_string(&ShelveMode::Offloaded).unwrap(), r#""offloaded""#);
    }

    #[test]
    fn the_provider_record_is_the_providers_own_type() {
        let mut record = NodeRecord::new("10.77.0.2", NodeState::Provisioning);
        assert_eq!(record.provider_record::<Sshd>(), None);
        record.set_provider_record(&Sshd { pid: 7 });
        let json = serde_json::to_string(&record).unwrap();
        assert_eq!(json, r#"{"address":"10.77.0.2","state":"provisioning","provider":{"pid":7}}"#);
        let read: NodeRecord = serde_json::from_str(&json).unwrap();
        assert_eq!(read.provider_record::<Sshd>(), Some(Sshd { pid: 7 }));
        // A state file from before provider records (`pid` beside the state) still reads.
        let old: NodeRecord = serde_json::from_str(r#"{"address":"a","state":"ready","pid":7}"#).unwrap();
        assert_eq!(old, NodeRecord::new("a", NodeState::Ready));
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
