//! The blob store: uploaded programs and inputs, content-addressed by SHA-256.
//!
//! A blob lives at `DIR/<sha256>`. [`Blobs::put`] hashes the bytes first and
//! refuses a mismatch, then writes a temporary file in the same directory and
//! renames it into place, so a reader never sees a partial blob and a repeated
//! upload is harmless (idempotent). Names are checked with
//! [`api::is_sha256`](crate::api::is_sha256) before any path is built, so a
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
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
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
        if !api::is_sha256(name) {
            return Err(BlobError::BadName(name.to_string()));
        }
        let actual = sha256_hex(bytes);
        if actual != name {
            return Err(BlobError::Mismatch { expected: name.to_string(), actual });
        }
        let stored = api::BlobStored { sha256: actual, size: bytes.len() as u64 };
        let path = self.dir.join(name);
        if path.is_file() {
            return Ok(stored);
        }
        let write_err = |source| BlobError::Write { name: name.to_string(), dir: self.dir.clone(), source };
        let mut tmp = tempfile::NamedTempFile::new_in(&self.dir).map_err(write_err)?;
        tmp.write_all(bytes).map_err(write_err)?;
        tmp.as_file().sync_all().map_err(write_err)?;
        tmp.persist(&path).map_err(|e| write_err(e.error))?;
        Ok(stored)
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
    fn rejects_names_that_are_not_hashes() {
        let (_d, blobs) = store();
        assert!(matches!(blobs.put("../x", b""), Err(BlobError::BadName(_))));
        assert!(matches!(blobs.path("../x"), Err(BlobError::BadName(_))));
    }
}
