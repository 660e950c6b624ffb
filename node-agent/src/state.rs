//! The agent's state directory, and how long and how much of it the agent keeps.
//!
//! Everything the agent writes lives under one root (`--state-dir`, default
//! `/var/lib/zerolab`): `blobs/` (the [`Blobs`](crate::blobs::Blobs) store) and
//! `sessions/` (one directory per session, its kept outputs). Each is made private
//! (0700) by [`create_private_dir`], as is the socket's directory.
//!
//! [`Retention`] bounds it, so an agent that runs for weeks does not fill its node:
//! a finished session is removed [`Retention::session_ttl`] after it ended, and when
//! the store passes [`Retention::blob_store_limit`] bytes, blobs no live session uses
//! and none used in the last [`Retention::blob_min_age`] are removed, least recently
//! used first. The server applies both every [`Retention::sweep_period`] and the
//! store checks its size after every blob it stores.

use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Default [`Retention::session_ttl`]: one hour.
pub const DEFAULT_SESSION_TTL: Duration = Duration::from_secs(3600);
/// Default [`Retention::blob_store_limit`]: 4 GiB.
pub const DEFAULT_BLOB_STORE_LIMIT: u64 = 4 << 30;
/// Default [`Retention::blob_min_age`]: ten minutes.
pub const DEFAULT_BLOB_MIN_AGE: Duration = Duration::from_secs(600);

/// How long finished sessions and how many bytes of blobs the agent keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// How long a finished session (report, outputs, directory) is kept after it ended.
    pub session_ttl: Duration,
    /// The store's size past which unreferenced blobs are collected.
    pub blob_store_limit: u64,
    /// A blob stored, looked up or used more recently than this is never collected:
    /// it covers the time between a client's upload and the session that uses it.
    pub blob_min_age: Duration,
}

impl Default for Retention {
    fn default() -> Retention {
        Retention {
            session_ttl: DEFAULT_SESSION_TTL,
            blob_store_limit: DEFAULT_BLOB_STORE_LIMIT,
            blob_min_age: DEFAULT_BLOB_MIN_AGE,
        }
    }
}

impl Retention {
    /// How often expiry and collection run: half the session TTL, between 100 ms
    /// and a minute.
    pub fn sweep_period(&self) -> Duration {
        (self.session_ttl / 2).clamp(Duration::from_millis(100), Duration::from_secs(60))
    }
}

/// The directories under the state root.
#[derive(Debug, Clone)]
pub struct StateDir {
    root: PathBuf,
}

impl StateDir {
    /// The state directory at `root`, created (0700) if missing.
    pub fn open(root: &Path) -> std::io::Result<StateDir> {
        create_private_dir(root)?;
        Ok(StateDir { root: root.to_path_buf() })
    }

    /// The blob store's directory.
    pub fn blobs(&self) -> PathBuf {
        self.root.join("blobs")
    }

    /// The sessions' directories.
    pub fn sessions(&self) -> PathBuf {
        self.root.join("sessions")
    }
}

/// Creates `dir` (and parents) with mode 0700 where it creates them.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)
}

/// A size in bytes as a flag gives it: a number, optionally followed by `K`, `M`, `G`
/// or `T` (powers of 1024).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let trimmed = text.trim();
    let (digits, shift) = match trimmed.char_indices().last() {
        Some((at, unit @ ('K' | 'M' | 'G' | 'T'))) => (&trimmed[..at], 10 * (1 + "KMGT".find(unit).unwrap_or(0))),
        _ => (trimmed, 0),
    };
    let refused = || format!("{text:?} is not a size; give bytes, or a number with K, M, G or T (4G)");
    let number: u64 = digits.parse().map_err(|_| refused())?;
    number.checked_mul(1 << shift).ok_or_else(refused)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn sizes_take_binary_suffixes() {
        assert_eq!(parse_size("1000"), Ok(1000));
        assert_eq!(parse_size("4G"), Ok(4 << 30));
        assert_eq!(parse_size("3K"), Ok(3072));
        assert_eq!(parse_size("2T"), Ok(2 << 40));
        for bad in ["", "G", "1.5G", "-1", "1g", "99999999T"] {
            assert!(parse_size(bad).unwrap_err().contains("is not a size"), "{bad}");
        }
    }

    #[test]
    fn sweeps_at_half_the_ttl_within_bounds() {
        let every = |secs| Retention { session_ttl: Duration::from_secs(secs), ..Retention::default() }.sweep_period();
        assert_eq!(every(0), Duration::from_millis(100));
        assert_eq!(every(10), Duration::from_secs(5));
        assert_eq!(every(3600), Duration::from_secs(60));
    }

    #[test]
    fn the_state_dir_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::open(&dir.path().join("a/state")).unwrap();
        create_private_dir(&state.blobs()).unwrap();
        for path in [dir.path().join("a/state"), state.blobs()] {
            assert_eq!(std::fs::metadata(path).unwrap().permissions().mode() & 0o777, 0o700);
        }
    }
}
