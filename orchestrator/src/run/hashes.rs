//! SHA-256 of a run's local files, hashed in parallel and remembered between runs.
//!
//! A blob is named by its SHA-256, so every run needs the hash of every program and
//! local input; hashing 1 GiB takes about a second. [`hash_all`] hashes the files a
//! run needs on all cores at once, and keeps what it learnt in the lab's
//! `hashes.json`: a file whose path, size, inode, modification and change times (to the
//! nanosecond) are all as recorded is not read again. That is the check `git status`
//! and `make` trust; a write that changes none of them (the same size, within the
//! same nanosecond, with the times set back) is the one case it cannot see. The cache is
//! an optimisation only: a missing or unreadable one is rebuilt, and saving it is best
//! effort.

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tokio::task::JoinSet;
use zerolab_agent_api::Sha256;

use super::plan::{Blob, PlanError};
use crate::ssh;

/// The cache's file name in the lab directory.
pub const FILE: &str = "hashes.json";

/// What identifies a file's contents without reading them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Stamp {
    size: u64,
    inode: u64,
    modified_ns: i128,
    changed_ns: i128,
}

impl Stamp {
    fn of(meta: &std::fs::Metadata) -> Stamp {
        let ns = |secs: i64, nanos: i64| i128::from(secs) * 1_000_000_000 + i128::from(nanos);
        Stamp {
            size: meta.len(),
            inode: meta.ino(),
            modified_ns: ns(meta.mtime(), meta.mtime_nsec()),
            changed_ns: ns(meta.ctime(), meta.ctime_nsec()),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Known {
    stamp: Stamp,
    sha256: Sha256,
}

/// Every file of `paths` as a blob: from `lab_dir`'s cache when unchanged, else read
/// and hashed, as many at once as there are cores. The cache is updated.
pub async fn hash_all(paths: &BTreeSet<PathBuf>, lab_dir: &Path) -> Result<BTreeMap<PathBuf, Blob>, PlanError> {
    let cache_file = lab_dir.join(FILE);
    let mut cache: BTreeMap<PathBuf, Known> =
        std::fs::read(&cache_file).ok().and_then(|bytes| serde_json::from_slice(&bytes).ok()).unwrap_or_default();
    let mut hashed = BTreeMap::new();
    let mut to_read = Vec::new();
    for path in paths {
        let read = |source| PlanError::Read { path: path.clone(), source };
        let stamp = Stamp::of(&tokio::fs::metadata(path).await.map_err(read)?);
        match cache.get(path).filter(|known| known.stamp == stamp) {
            Some(known) => {
                hashed.insert(path.clone(), Blob { sha256: known.sha256, path: path.clone(), size: stamp.size });
            }
            None => to_read.push((path.clone(), stamp)),
        }
    }
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let mut reading = JoinSet::new();
    let mut pending = to_read.into_iter();
    loop {
        while reading.len() < cores {
            let Some((path, stamp)) = pending.next() else { break };
            reading.spawn(async move {
                let sha256 = ssh::sha256_file(&path).await;
                (path, stamp, sha256)
            });
        }
        let Some(done) = reading.join_next().await else { break };
        let Ok((path, stamp, sha256)) = done else { continue };
        let sha256 = sha256.map_err(|source| PlanError::Read { path: path.clone(), source })?;
        hashed.insert(path.clone(), Blob { sha256, path: path.clone(), size: stamp.size });
        cache.insert(path, Known { stamp, sha256 });
    }
    if let Some(missing) = paths.iter().find(|p| !hashed.contains_key(*p)) {
        let source = std::io::Error::other("hashing it stopped unexpectedly");
        return Err(PlanError::Read { path: missing.clone(), source });
    }
    // Forget files that are gone, so the cache does not grow without end.
    cache.retain(|path, _| path.exists());
    if let Ok(bytes) = serde_json::to_vec(&cache) {
        let tmp = cache_file.with_extension("json.tmp");
        if std::fs::write(&tmp, bytes).is_ok() {
            let _ = std::fs::rename(&tmp, &cache_file);
        }
    }
    Ok(hashed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sha(bytes: &[u8]) -> Sha256 {
        Sha256::of_bytes(bytes)
    }

    #[tokio::test]
    async fn hashes_in_parallel_remembers_and_notices_changes() {
        let dir = tempfile::tempdir().unwrap();
        let files: BTreeSet<PathBuf> = (0..5).map(|i| dir.path().join(format!("f{i}"))).collect();
        for (i, path) in files.iter().enumerate() {
            std::fs::write(path, format!("file {i}")).unwrap();
        }
        let first = hash_all(&files, dir.path()).await.unwrap();
        assert_eq!(first[&dir.path().join("f3")].sha256, sha(b"file 3"));
        assert!(dir.path().join(FILE).is_file());

        // A cached entry is used as long as the file's stamp holds: a forged cache
        // entry with the right stamp shows it was not read again.
        let mut cache: BTreeMap<PathBuf, Known> =
            serde_json::from_slice(&std::fs::read(dir.path().join(FILE)).unwrap()).unwrap();
        cache.get_mut(&dir.path().join("f1")).unwrap().sha256 = sha(b"cached");
        std::fs::write(dir.path().join(FILE), serde_json::to_vec(&cache).unwrap()).unwrap();
        let again = hash_all(&files, dir.path()).await.unwrap();
        assert_eq!(again[&dir.path().join("f1")].sha256, sha(b"cached"));

        // A change of contents (same size) changes the stamp, so the file is read again.
        std::fs::write(dir.path().join("f1"), "FILE 1").unwrap();
        let changed = hash_all(&files, dir.path()).await.unwrap();
        assert_eq!(changed[&dir.path().join("f1")].sha256, sha(b"FILE 1"));

        // A garbled cache is ignored, and a missing file is an error naming it.
        std::fs::write(dir.path().join(FILE), "not json").unwrap();
        assert_eq!(hash_all(&files, dir.path()).await.unwrap()[&dir.path().join("f4")].sha256, sha(b"file 4"));
        let gone: BTreeSet<PathBuf> = [dir.path().join("gone")].into();
        assert!(
            matches!(hash_all(&gone, dir.path()).await, Err(PlanError::Read { path, .. }) if path.ends_with("gone"))
        );
    }
}
