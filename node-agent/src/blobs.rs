//! The blob store: uploaded programs and inputs, content-addressed by SHA-256, and
//! collected when it grows past a limit.
//!
//! A blob lives at `DIR/<sha256>`. A [`BlobWriter`] writes a temporary file in
//! the same directory, hashing as it goes; [`BlobWriter::finish`] refuses a
//! mismatch and renames the file into place, so a reader never sees a partial
//! blob and a repeated upload is harmless (idempotent). Uploads and URL
//! fetches both stream through one, so the agent's memory stays flat whatever
//! the blob's size. Blobs are named by [`Sha256`], which is parsed before any
//! path is built, so a request cannot name a file outside the store.
//!
//! **Collection.** A session holds a [`BlobPin`] on every blob it uses (program,
//! inputs, its image's program) from the moment its request is checked until its
//! guest has ended. When the store passes its limit ([`Blobs::collect`], run after
//! every blob stored and by the server's sweep), unpinned blobs are removed, least
//! recently used first, until it is under the limit again; a blob used (stored,
//! looked up, pinned) within the minimum age is kept, so an upload is not collected
//! before the session that needs it arrives. Pinning and removing take the same
//! lock, so a blob is either pinned first (and kept) or removed first (and the
//! session is refused as for any missing blob); removing is one `unlink`, so a blob
//! is never half there. Last use is kept in memory; a blob not used since the agent
//! started counts from the time it was stored (its file's modification time).

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use crate::api::{self, Hasher, Sha256};

/// Why a blob could not be stored or found.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    /// The body does not hash to its name.
    #[error("body hashes to {actual}, not {expected}; upload the blob under its own SHA-256")]
    Mismatch {
        /// The name in the request.
        expected: Sha256,
        /// What the body hashes to.
        actual: Sha256,
    },
    /// No such blob.
    #[error("no blob {0}; upload it with PUT /v1/blobs/{0} first")]
    Missing(Sha256),
    /// The store could not be written.
    #[error("cannot store blob {name} in {}", dir.display())]
    Write {
        /// The blob, or `(unnamed)`.
        name: String,
        /// The store.
        dir: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
}

/// The store; clones share it.
#[derive(Debug, Clone)]
pub struct Blobs {
    dir: PathBuf,
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    limit: u64,
    min_age: Duration,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Sessions using each blob.
    pins: HashMap<Sha256, usize>,
    /// When each blob was last stored, looked up or pinned since the agent started.
    used: HashMap<Sha256, SystemTime>,
    /// Blobs removed since the agent started.
    collected: u64,
    /// Blobs in the store and their bytes: counted once when the store opens, then kept
    /// as blobs are stored and removed (the agent is the directory's only writer), so
    /// health and the check after each upload do not list the directory.
    blobs: u64,
    bytes: u64,
}

/// What the store holds now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreUsage {
    /// Blobs stored.
    pub blobs: u64,
    /// Their total size in bytes.
    pub bytes: u64,
    /// The limit past which blobs are collected.
    pub limit: u64,
    /// Blobs collected since the store was opened.
    pub collected: u64,
}

impl Blobs {
    /// A store in `dir`, created (mode 0700) if missing, that is never collected.
    pub fn open(dir: impl Into<PathBuf>) -> std::io::Result<Blobs> {
        Blobs::with_limit(dir, u64::MAX, Duration::ZERO)
    }

    /// A store in `dir` whose unpinned blobs not used for `min_age` are collected when
    /// it holds more than `limit` bytes.
    pub fn with_limit(dir: impl Into<PathBuf>, limit: u64, min_age: Duration) -> std::io::Result<Blobs> {
        let dir = dir.into();
        crate::state::create_private_dir(&dir)?;
        let shared = Arc::new(Shared { limit, min_age, state: Mutex::new(State::default()) });
        let blobs = Blobs { dir, shared };
        {
            let mut state = blobs.state();
            let listing = blobs.listing(&state);
            state.count(&listing);
        }
        Ok(blobs)
    }

    /// The store's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding this lock leaves plain data behind; keep going.
        self.shared.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Stores `bytes` as `name` after checking that they hash to it.
    pub fn put(&self, name: &Sha256, bytes: &[u8]) -> Result<api::BlobStored, BlobError> {
        let mut writer = self.writer(Some(*name))?;
        writer.write(bytes)?;
        writer.finish()
    }

    /// A writer for a new blob: `Some(name)` to check the bytes against it, `None`
    /// to name the blob by what they hash to.
    pub fn writer(&self, expected: Option<Sha256>) -> Result<BlobWriter, BlobError> {
        let label = expected.map_or_else(|| "(unnamed)".to_owned(), |s| s.to_string());
        let tmp = tempfile::NamedTempFile::new_in(&self.dir).map_err(|source| BlobError::Write {
            name: label,
            dir: self.dir.clone(),
            source,
        })?;
        Ok(BlobWriter { blobs: self.clone(), expected, tmp, hash: Hasher::default(), size: 0 })
    }

    /// The path of blob `name`, if stored; counts as a use (a client asking whether a
    /// node has a blob is about to use it).
    pub fn path(&self, name: &Sha256) -> Result<PathBuf, BlobError> {
        let path = self.dir.join(name.to_string());
        let mut state = self.state();
        if !path.is_file() {
            return Err(BlobError::Missing(*name));
        }
        state.used.insert(*name, SystemTime::now());
        Ok(path)
    }

    /// Keeps blob `name` from being collected until the pin is dropped.
    pub fn pin(&self, name: &Sha256) -> Result<BlobPin, BlobError> {
        let path = self.dir.join(name.to_string());
        let mut state = self.state();
        if !path.is_file() {
            return Err(BlobError::Missing(*name));
        }
        *state.pins.entry(*name).or_default() += 1;
        state.used.insert(*name, SystemTime::now());
        Ok(BlobPin { blobs: self.clone(), name: *name, path })
    }

    /// Every blob in the store with its size and last use; other files (uploads in
    /// progress) are not blobs.
    fn listing(&self, state: &State) -> Vec<(Sha256, u64, SystemTime)> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else { return Vec::new() };
        entries
            .filter_map(|entry| {
                let entry = entry.ok()?;
                let name: Sha256 = entry.file_name().to_str()?.parse().ok()?;
                let meta = entry.metadata().ok().filter(std::fs::Metadata::is_file)?;
                let used =
                    state.used.get(&name).copied().or_else(|| meta.modified().ok()).unwrap_or(SystemTime::UNIX_EPOCH);
                Some((name, meta.len(), used))
            })
            .collect()
    }

    /// What the store holds.
    pub fn usage(&self) -> StoreUsage {
        let state = self.state();
        StoreUsage { blobs: state.blobs, bytes: state.bytes, limit: self.shared.limit, collected: state.collected }
    }

    /// When the store holds more than its limit, removes unpinned blobs not used
    /// within the minimum age, least recently used first, until it is under the limit
    /// (or nothing more may go); returns how many were removed.
    pub fn collect(&self) -> u64 {
        let mut state = self.state();
        let limit = self.shared.limit;
        if state.bytes <= limit {
            return 0;
        }
        // Over the limit: list the directory (which also corrects the counts).
        let mut listing = self.listing(&state);
        state.count(&listing);
        let fresh = SystemTime::now().checked_sub(self.shared.min_age).unwrap_or(SystemTime::UNIX_EPOCH);
        listing.retain(|(name, _, used)| !state.pins.contains_key(name) && *used <= fresh);
        listing.sort_by_key(|(_, _, used)| *used);
        let (mut removed, mut freed) = (0, 0);
        for (name, size, _) in listing {
            if state.bytes <= limit {
                break;
            }
            match std::fs::remove_file(self.dir.join(name.to_string())) {
                Ok(()) => {
                    state.blobs -= 1;
                    state.bytes -= size;
                    freed += size;
                    removed += 1;
                    state.used.remove(&name);
                    tracing::debug!(sha256 = %name, size, "blob collected");
                }
                Err(e) => tracing::warn!(sha256 = %name, "cannot collect blob: {e}"),
            }
        }
        state.collected += removed;
        let left = state.bytes;
        if removed > 0 {
            tracing::info!(blobs = removed, bytes = freed, left, limit, "blobs collected");
        }
        if left > limit {
            tracing::debug!(bytes = left, limit, "blob store over its limit: the rest is in use or recent");
        }
        removed
    }
}

impl State {
    /// Sets the counts from a listing of the directory.
    fn count(&mut self, listing: &[(Sha256, u64, SystemTime)]) {
        self.blobs = listing.len() as u64;
        self.bytes = listing.iter().map(|(_, size, _)| size).sum();
    }
}

/// A session's hold on a blob: the blob is not collected while a pin on it exists.
#[derive(Debug)]
pub struct BlobPin {
    blobs: Blobs,
    name: Sha256,
    path: PathBuf,
}

impl BlobPin {
    /// The blob.
    pub fn name(&self) -> &Sha256 {
        &self.name
    }

    /// Its file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for BlobPin {
    fn drop(&mut self) {
        let mut state = self.blobs.state();
        if let Some(count) = state.pins.get_mut(&self.name) {
            *count -= 1;
            if *count == 0 {
                state.pins.remove(&self.name);
            }
        }
        state.used.insert(self.name, SystemTime::now());
    }
}

/// A blob being written: bytes go to a temporary file in the store and into the
/// hash; nothing is visible under a blob's name until [`BlobWriter::finish`].
/// Dropped unfinished, it leaves nothing behind.
#[derive(Debug)]
pub struct BlobWriter {
    blobs: Blobs,
    expected: Option<Sha256>,
    tmp: tempfile::NamedTempFile,
    hash: Hasher,
    size: u64,
}

impl BlobWriter {
    /// Appends `bytes`.
    pub fn write(&mut self, bytes: &[u8]) -> Result<(), BlobError> {
        self.hash.update(bytes);
        self.size += bytes.len() as u64;
        self.tmp.write_all(bytes).map_err(|source| self.write_error(source))
    }

    /// Bytes written so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    fn write_error(&self, source: std::io::Error) -> BlobError {
        let name = self.expected.map_or_else(|| "(unnamed)".to_owned(), |s| s.to_string());
        BlobError::Write { name, dir: self.blobs.dir.clone(), source }
    }

    /// Checks the hash against the expected name, if any, and stores the blob; then
    /// collects the store if this took it past its limit.
    pub fn finish(self) -> Result<api::BlobStored, BlobError> {
        let actual = self.hash.clone().finish();
        if let Some(expected) = self.expected {
            if expected != actual {
                return Err(BlobError::Mismatch { expected, actual });
            }
        }
        let path = self.blobs.dir.join(actual.to_string());
        let stored = api::BlobStored { sha256: actual, size: self.size };
        self.tmp.as_file().sync_all().map_err(|source| self.write_error(source))?;
        let BlobWriter { blobs, tmp, .. } = self;
        {
            // Under the store's lock: a collection never sees the blob without its use.
            let mut state = blobs.state();
            if !path.is_file() {
                tmp.persist(&path).map_err(|e| BlobError::Write {
                    name: actual.to_string(),
                    dir: blobs.dir.clone(),
                    source: e.error,
                })?;
                state.blobs += 1;
                state.bytes += stored.size;
            }
            state.used.insert(actual, SystemTime::now());
        }
        blobs.collect();
        Ok(stored)
    }
}

/// For `std::io::copy` from a reader (a tar entry, say) into a blob.
impl Write for BlobWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        BlobWriter::write(self, bytes).map_err(std::io::Error::other)?;
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, Blobs) {
        let dir = tempfile::tempdir().unwrap();
        let blobs = Blobs::open(dir.path().join("blobs")).unwrap();
        (dir, blobs)
    }

    #[test]
    fn stores_by_hash_and_is_idempotent() {
        let (_d, blobs) = store();
        let name = Sha256::of_bytes(b"hello");
        assert_eq!(blobs.put(&name, b"hello").unwrap().size, 5);
        assert_eq!(blobs.put(&name, b"hello").unwrap().size, 5);
        assert_eq!(std::fs::read(blobs.path(&name).unwrap()).unwrap(), b"hello");
    }

    #[test]
    fn rejects_body_that_does_not_match_its_name() {
        let (_d, blobs) = store();
        let name = Sha256::of_bytes(b"hello");
        assert!(matches!(blobs.put(&name, b"hellO"), Err(BlobError::Mismatch { .. })));
        assert!(matches!(blobs.path(&name), Err(BlobError::Missing(_))));
    }

    #[test]
    fn a_writer_names_the_blob_by_its_hash_and_an_unfinished_one_leaves_nothing() {
        let (_d, blobs) = store();
        let mut w = blobs.writer(None).unwrap();
        w.write(b"hel").unwrap();
        w.write(b"lo").unwrap();
        assert_eq!(w.size(), 5);
        let stored = w.finish().unwrap();
        assert_eq!(stored.sha256, Sha256::of_bytes(b"hello"));
        assert_eq!(std::fs::read(blobs.path(&stored.sha256).unwrap()).unwrap(), b"hello");
        let mut w = blobs.writer(None).unwrap();
        w.write(b"half").unwrap();
        drop(w);
        assert_eq!(std::fs::read_dir(blobs.dir()).unwrap().count(), 1, "only the finished blob");
    }

    #[test]
    fn collects_least_recently_used_unpinned_blobs_past_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = Blobs::with_limit(dir.path().join("blobs"), 25, Duration::ZERO).unwrap();
        let put = |text: &[u8]| {
            let name = Sha256::of_bytes(text);
            blobs.put(&name, text).unwrap();
            std::thread::sleep(Duration::from_millis(5));
            name
        };
        let (oldest, pinned, middle) = (put(b"oldest 10b"), put(b"pinned 10b"), put(b"middle 10b"));
        // Storing the third took the store to 30 bytes: the oldest went.
        assert!(matches!(blobs.path(&oldest), Err(BlobError::Missing(_))));
        let pin = blobs.pin(&pinned).unwrap();
        std::thread::sleep(Duration::from_millis(5));
        blobs.path(&middle).unwrap();
        let newest = put(b"newest 10b");
        // The pinned blob is now the least recently used, but in use: the middle one went.
        assert!(blobs.path(&pinned).is_ok());
        assert!(matches!(blobs.path(&middle), Err(BlobError::Missing(_))));
        assert_eq!(blobs.usage(), StoreUsage { blobs: 2, bytes: 20, limit: 25, collected: 2 });
        // Unpinning counts as a use (the session used it until then); then the newest
        // is used again, so the formerly pinned blob is the least recently used.
        drop(pin);
        std::thread::sleep(Duration::from_millis(5));
        blobs.path(&newest).unwrap();
        let last = put(b"last one 10");
        assert!(matches!(blobs.path(&pinned), Err(BlobError::Missing(_))), "unpinned, it is collected");
        assert!(blobs.path(&newest).is_ok() && blobs.path(&last).is_ok());
    }

    #[test]
    fn recently_used_blobs_are_kept_even_past_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = Blobs::with_limit(dir.path().join("blobs"), 5, Duration::from_secs(3600)).unwrap();
        let name = Sha256::of_bytes(b"just uploaded");
        blobs.put(&name, b"just uploaded").unwrap();
        assert_eq!(blobs.collect(), 0);
        assert!(blobs.pin(&name).is_ok());
    }
}
