//! The blob store: uploaded programs and inputs, content-addressed by SHA-256.
//!
//! A blob lives at `DIR/<sha256>`. A [`BlobWriter`] writes a temporary file in
//! the same directory, hashing as it goes; [`BlobWriter::finish`] refuses a
//! mismatch and renames the file into place, so a reader never sees a partial
//! blob and a repeated upload is harmless (idempotent). Uploads and URL
//! fetches both stream through one, so the agent's memory stays flat whatever
//! the blob's size. Names are checked with
//! [`api::is_sha256`] before any path is built, so a
//! request cannot name a file outside the store.

use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::api;

/// Why a blob could not be stored or found.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    /// The name is not 64 lowercase hex digits.
    #[error("{0:?} is not a sha256; name blobs by the 64 lowercase hex digits of their SHA-256")]
    BadName(String),
    /// The body does not hash to its name.
    #[error("body hashes to {actual}, not {expected}; upload the blob under its own SHA-256")]
    Mismatch {
        /// The name in the request.
        expected: String,
        /// What the body hashes to.
        actual: String,
    },
    /// No such blob.
    #[error("no blob {0}; upload it with PUT /v1/blobs/{0} first")]
    Missing(String),
    /// The store could not be written.
    #[error("cannot store blob {name} in {}", dir.display())]
    Write {
        /// The blob.
        name: String,
        /// The store.
        dir: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
}

/// The store.
#[derive(Debug, Clone)]
pub struct Blobs {
    dir: PathBuf,
}

/// Hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(Sha256::digest(bytes))
}

/// Hex SHA-256 of everything `reader` yields, read in pieces (never held whole).
pub fn sha256_read(reader: &mut impl std::io::Read) -> std::io::Result<String> {
    let mut hash = Sha256::new();
    std::io::copy(reader, &mut hash)?;
    Ok(hex(hash.finalize()))
}

fn hex(digest: impl AsRef<[u8]>) -> String {
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

impl Blobs {
    /// A store in `dir`, created (mode 0700) if missing.
    pub fn open(dir: impl Into<PathBuf>) -> std::io::Result<Blobs> {
        let dir = dir.into();
        crate::server::create_private_dir(&dir)?;
        Ok(Blobs { dir })
    }

    /// The store's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Stores `bytes` as `name` after checking that they hash to it.
    pub fn put(&self, name: &str, bytes: &[u8]) -> Result<api::BlobStored, BlobError> {
        let mut writer = self.writer(Some(name))?;
        writer.write(bytes)?;
        writer.finish()
    }

    /// A writer for a new blob: `Some(name)` to check the bytes against it, `None`
    /// to name the blob by what they hash to.
    pub fn writer(&self, name: Option<&str>) -> Result<BlobWriter, BlobError> {
        if let Some(name) = name.filter(|n| !api::is_sha256(n)) {
            return Err(BlobError::BadName(name.to_string()));
        }
        let expected = name.map(str::to_owned);
        let label = expected.clone().unwrap_or_else(|| "(unnamed)".into());
        let tmp = tempfile::NamedTempFile::new_in(&self.dir).map_err(|source| BlobError::Write {
            name: label,
            dir: self.dir.clone(),
            source,
        })?;
        Ok(BlobWriter { dir: self.dir.clone(), expected, tmp, hash: Sha256::new(), size: 0 })
    }

    /// The path of blob `name`, if stored.
    pub fn path(&self, name: &str) -> Result<PathBuf, BlobError> {
        if !api::is_sha256(name) {
            return Err(BlobError::BadName(name.to_string()));
        }
        let path = self.dir.join(name);
        if path.is_file() {
            Ok(path)
        } else {
            Err(BlobError::Missing(name.to_string()))
        }
    }
}

/// A blob being written: bytes go to a temporary file in the store and into the
/// hash; nothing is visible under a blob's name until [`BlobWriter::finish`].
/// Dropped unfinished, it leaves nothing behind.
#[derive(Debug)]
pub struct BlobWriter {
    dir: PathBuf,
    expected: Option<String>,
    tmp: tempfile::NamedTempFile,
    hash: Sha256,
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
        let name = self.expected.clone().unwrap_or_else(|| "(unnamed)".into());
        BlobError::Write { name, dir: self.dir.clone(), source }
    }

    /// Checks the hash against the expected name, if any, and stores the blob.
    pub fn finish(self) -> Result<api::BlobStored, BlobError> {
        let actual = hex(self.hash.clone().finalize());
        if let Some(expected) = &self.expected {
            if *expected != actual {
                return Err(BlobError::Mismatch { expected: expected.clone(), actual });
            }
        }
        let path = self.dir.join(&actual);
        let stored = api::BlobStored { sha256: actual, size: self.size };
        if path.is_file() {
            return Ok(stored);
        }
        self.tmp.as_file().sync_all().map_err(|source| self.write_error(source))?;
        let BlobWriter { dir, tmp, .. } = self;
        tmp.persist(&path).map_err(|e| BlobError::Write { name: stored.sha256.clone(), dir, source: e.error })?;
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
        let name = sha256_hex(b"hello");
        assert_eq!(name, "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824");
        assert_eq!(blobs.put(&name, b"hello").unwrap().size, 5);
        assert_eq!(blobs.put(&name, b"hello").unwrap().size, 5);
        assert_eq!(std::fs::read(blobs.path(&name).unwrap()).unwrap(), b"hello");
    }

    #[test]
    fn rejects_body_that_does_not_match_its_name() {
        let (_d, blobs) = store();
        let name = sha256_hex(b"hello");
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
        assert_eq!(stored.sha256, sha256_hex(b"hello"));
        assert_eq!(std::fs::read(blobs.path(&stored.sha256).unwrap()).unwrap(), b"hello");
        let mut w = blobs.writer(None).unwrap();
        w.write(b"half").unwrap();
        drop(w);
        assert_eq!(std::fs::read_dir(blobs.dir()).unwrap().count(), 1, "only the finished blob");
    }

    #[test]
    fn rejects_names_that_are_not_hashes() {
        let (_d, blobs) = store();
        assert!(matches!(blobs.put("../x", b""), Err(BlobError::BadName(_))));
        assert!(matches!(blobs.path("../x"), Err(BlobError::BadName(_))));
    }
}
