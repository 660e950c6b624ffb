//! Expiry: a finished session is removed once it has been kept for the TTL.
//!
//! [`Sessions::expire`] (called by the server's sweep) takes the sessions that
//! ended at least the TTL ago out of the table, remembers their ids (the most
//! recent [`REMEMBERED_EXPIRED`], so a request for one is told it expired), and
//! removes their directories, outputs included; an output being streamed when that
//! happens is read to its end from the open file. Directories an earlier run of the
//! agent left behind ([`orphans`]) expire the same way, counted from when they
//! were last written.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use super::{Entry, Sessions};

/// The most expired ids remembered; older ones are forgotten (and then unknown).
const REMEMBERED_EXPIRED: usize = 100_000;

/// Sessions removed, and directories still to remove.
#[derive(Debug, Default)]
pub(super) struct Expired {
    /// Ids of expired sessions (they sort by age, so the oldest go first).
    pub(super) ids: BTreeSet<String>,
    /// Sessions expired since the agent started.
    pub(super) count: u64,
    /// Directories of an earlier run of the agent, with when they were last written.
    pub(super) orphans: Vec<(PathBuf, SystemTime)>,
}

/// How many sessions an agent holds, by state (part of `GET /v1/health`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionCounts {
    /// Preparing, waiting or running.
    pub live: u64,
    /// Finished and kept.
    pub finished: u64,
    /// Expired since the agent started.
    pub expired: u64,
}

/// The session directories in `dir` now (left by an earlier run of the agent), with
/// when each was last written.
pub(super) fn orphans(dir: &Path) -> std::io::Result<Vec<(PathBuf, SystemTime)>> {
    Ok(std::fs::read_dir(dir)?
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let meta = entry.metadata().ok().filter(std::fs::Metadata::is_dir)?;
            Some((entry.path(), meta.modified().unwrap_or(SystemTime::UNIX_EPOCH)))
        })
        .collect())
}

impl Sessions {
    /// The same sessions, each kept `ttl` after it finished.
    pub fn with_ttl(self, ttl: Duration) -> Sessions {
        Sessions { ttl, ..self }
    }

    /// Removes the sessions that finished at least the TTL before `now`, with their
    /// directories, and the directories of an earlier run written that long ago;
    /// returns how many sessions expired.
    pub fn expire(&self, now: Instant) -> usize {
        let gone: Vec<Arc<Entry>> = {
            let mut table = self.table();
            let due: Vec<String> = table
                .values()
                .filter(|e| e.lock().ended.is_some_and(|ended| now.saturating_duration_since(ended) >= self.ttl))
                .map(|e| e.id.clone())
                .collect();
            due.iter().filter_map(|id| table.remove(id)).collect()
        };
        let orphans = {
            let mut expired = self.expired();
            for entry in &gone {
                expired.ids.insert(entry.id.clone());
            }
            while expired.ids.len() > REMEMBERED_EXPIRED {
                expired.ids.pop_first();
            }
            expired.count += gone.len() as u64;
            let before = SystemTime::now().checked_sub(self.ttl).unwrap_or(SystemTime::UNIX_EPOCH);
            let (due, kept) = std::mem::take(&mut expired.orphans).into_iter().partition(|(_, at)| *at <= before);
            expired.orphans = kept;
            due
        };
        for dir in gone.iter().map(|e| &e.dir).chain(orphans.iter().map(|(dir, _)| dir)) {
            if let Err(e) = std::fs::remove_dir_all(dir) {
                tracing::warn!(dir = %dir.display(), "cannot remove an expired session's directory: {e}");
            }
        }
        for entry in &gone {
            tracing::info!(session = %entry.id, "session expired");
        }
        gone.len()
    }

    /// How many sessions there are, by state.
    pub fn counts(&self) -> SessionCounts {
        let entries: Vec<Arc<Entry>> = self.table().values().cloned().collect();
        let finished = entries.iter().filter(|e| e.lock().ended.is_some()).count() as u64;
        let expired = self.expired().count;
        SessionCounts { live: entries.len() as u64 - finished, finished, expired }
    }

    /// How long a finished session is kept.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }
}

#[cfg(test)]
mod tests {
    use zerolab_sandbox::session::Options;

    use super::*;
    use crate::api::{SessionRequest, Sha256};
    use crate::blobs::Blobs;
    use crate::sessions::SessionsError;

    #[test]
    fn a_finished_session_expires_after_the_ttl_and_is_then_gone_not_unknown() {
        let dir = tempfile::tempdir().unwrap();
        let left_over = dir.path().join("sessions/00000001-000001");
        std::fs::create_dir_all(&left_over).unwrap();
        let blobs = Blobs::open(dir.path().join("blobs")).unwrap();
        let sessions = Sessions::new(dir.path().join("sessions"), blobs.clone(), None, Options::default())
            .unwrap()
            .with_ttl(Duration::from_secs(60));
        let program = Sha256::of_bytes(b"not an elf");
        blobs.put(&program, b"not an elf").unwrap();
        let id = sessions.start(&SessionRequest::new(program)).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while sessions.status(&id).unwrap().report.is_none() {
            assert!(Instant::now() < deadline, "session never ended");
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(sessions.counts(), SessionCounts { live: 0, finished: 1, expired: 0 });
        assert_eq!(sessions.expire(Instant::now()), 0, "kept for its TTL");
        assert!(left_over.is_dir(), "a directory of an earlier run is kept for the TTL too");
        assert_eq!(sessions.expire(Instant::now() + Duration::from_secs(61)), 1);
        assert!(!dir.path().join("sessions").join(&id).exists());
        assert!(matches!(sessions.status(&id), Err(SessionsError::Expired { ttl_secs: 60, .. })));
        assert!(matches!(sessions.status("0000000000-000099"), Err(SessionsError::Unknown(_))));
        assert_eq!(sessions.counts(), SessionCounts { live: 0, finished: 0, expired: 1 });
        assert!(sessions.list().sessions.is_empty());
    }
}
