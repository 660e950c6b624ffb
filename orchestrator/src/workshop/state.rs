//! `workshop.json`: everything the workshop keeps across restarts of its `serve`
//! process: attendees (their tokens only as SHA-256 hashes), labs and who holds each,
//! timers, steps done, SSH grants, and the pool's measured lab-making times. Replaced
//! atomically (a temporary file renamed over it), mode 0600, so a `serve` killed at any
//! point leaves the previous or the next state, never half of one.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// An attendee's number, from 1 in join order.
pub type AttendeeId = u32;

/// The whole state.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct State {
    /// Attendees, in join order.
    pub attendees: Vec<Attendee>,
    /// Labs by index (lab `N` is `<workshop>-NNN`).
    pub labs: BTreeMap<u32, LabRecord>,
    /// The last lab-making times, in milliseconds (newest last), for the queue's estimate.
    #[serde(default)]
    pub make_ms: Vec<u64>,
}

/// One attendee.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Attendee {
    /// Their number.
    pub id: AttendeeId,
    /// The name they gave.
    pub name: String,
    /// SHA-256 of their token, hex.
    pub token_sha256: String,
    /// When they joined (Unix seconds).
    pub joined: u64,
    /// Their lab's index, once they have one.
    pub lab: Option<u32>,
    /// When their lab's time ends (Unix seconds).
    pub expires: Option<u64>,
    /// Their last activity (Unix seconds).
    pub last_active: u64,
    /// Each step: done (by its check) or not.
    #[serde(default)]
    pub done: Vec<bool>,
    /// What they are told about their lab (replaced, expired).
    pub notice: Option<String>,
    /// The port forwarded to their first node and the key they gave.
    pub ssh: Option<SshGrant>,
}

/// An attendee's SSH access through this machine.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SshGrant {
    /// This machine's port.
    pub port: u16,
    /// Their public key line.
    pub key: String,
    /// The node it reaches (address), for the rules.
    pub address: String,
}

/// One lab of the workshop.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabRecord {
    /// What it is doing.
    pub phase: Phase,
    /// Who holds it.
    pub attendee: Option<AttendeeId>,
}

/// A lab's phase.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Being made.
    Warming,
    /// Up; free or claimed.
    Ready,
    /// Frozen (idle).
    Shelved,
    /// Processes stopped (idle for long, or expired).
    ShelvedOffloaded,
    /// Its time is up: shelved offloaded, kept for the instructor's extend.
    Expired,
    /// Its node stopped answering: being replaced.
    Broken,
    /// Being taken down.
    Destroying,
}

/// Unix seconds now.
pub fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

impl State {
    /// The attendee `id`.
    pub fn attendee(&self, id: AttendeeId) -> Option<&Attendee> {
        self.attendees.iter().find(|a| a.id == id)
    }

    /// The attendee `id`, to change.
    pub fn attendee_mut(&mut self, id: AttendeeId) -> Option<&mut Attendee> {
        self.attendees.iter_mut().find(|a| a.id == id)
    }

    /// Attendees waiting for a lab, in join order.
    pub fn queue(&self) -> Vec<AttendeeId> {
        self.attendees.iter().filter(|a| a.lab.is_none()).map(|a| a.id).collect()
    }

    /// A free, ready lab (the lowest index).
    pub fn free_lab(&self) -> Option<u32> {
        self.labs.iter().find(|(_, l)| l.phase == Phase::Ready && l.attendee.is_none()).map(|(i, _)| *i)
    }

    /// Labs that count against capacity: all but those being taken down.
    pub fn live_labs(&self) -> usize {
        self.labs.values().filter(|l| l.phase != Phase::Destroying).count()
    }

    /// Free labs, made or being made.
    pub fn spare_labs(&self) -> usize {
        self.labs.values().filter(|l| l.attendee.is_none() && matches!(l.phase, Phase::Warming | Phase::Ready)).count()
    }

    /// The mean of the measured lab-making times (ms), if any.
    pub fn make_ms(&self) -> Option<u64> {
        (!self.make_ms.is_empty()).then(|| self.make_ms.iter().sum::<u64>() / self.make_ms.len() as u64)
    }

    /// Records one lab-making time, keeping the last 20.
    pub fn record_make(&mut self, ms: u64) {
        self.make_ms.push(ms);
        if self.make_ms.len() > 20 {
            self.make_ms.remove(0);
        }
    }

    /// Reads `path` (a missing file is a new workshop's empty state).
    pub fn load(path: &Path) -> Result<State, StateError> {
        match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| StateError::Corrupt { path: path.to_owned(), reason: e.to_string() }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(State::default()),
            Err(source) => Err(StateError::Io { path: path.to_owned(), source }),
        }
    }

    /// Replaces `path` atomically with this state (0600).
    pub fn save(&self, path: &Path) -> Result<(), StateError> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let temp = path.with_extension("json.tmp");
        let io = |source| StateError::Io { path: temp.clone(), source };
        let bytes = serde_json::to_vec_pretty(self).expect("the state serializes");
        let mut file =
            std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&temp).map_err(io)?;
        file.write_all(&bytes).and_then(|()| file.sync_all()).map_err(io)?;
        std::fs::rename(&temp, path).map_err(|source| StateError::Io { path: path.to_owned(), source })
    }
}

/// Why the state could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// The file could not be read or written.
    #[error("workshop state {}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file is not a workshop state.
    #[error("workshop state {} is corrupt ({reason}); move it away to start the workshop afresh", path.display())]
    Corrupt { path: PathBuf, reason: String },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saves_and_loads_atomically_and_privately() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("workshop.json");
        assert!(State::load(&path).unwrap().attendees.is_empty());
        let mut state = State::default();
        state.labs.insert(3, LabRecord { phase: Phase::Ready, attendee: None });
        state.record_make(1200);
        state.save(&path).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o777, 0o600);
        let back = State::load(&path).unwrap();
        assert_eq!((back.free_lab(), back.make_ms()), (Some(3), Some(1200)));
        std::fs::write(&path, "{").unwrap();
        assert!(State::load(&path).unwrap_err().to_string().contains("is corrupt"));
    }
}
