//! Validator verdicts remembered by image hash, so a program run again (many
//! `zvsh` runs of the same guest) is not decoded again.
//!
//! [`VerdictCache::check`] looks a verdict up in memory, then in an optional
//! directory, and only on a miss runs the validation it is handed; both
//! "passed" and "failed with this [`Violation`]" are stored. Keys are
//! [`hash_image`] (blake3 of the exact sealed, relocated bytes that were
//! validated) together with [`POLICY_VERSION`], so a rule change never reuses
//! an old verdict.
//!
//! The decision that matters: the disk layer can only ever cost a
//! re-validation, never a wrong answer or a failed run. Each verdict is one
//! small file named by its key, written to a temporary file and renamed into
//! place, so concurrent processes see either no file or a whole one; a file
//! that is unreadable, malformed or names another key is a miss; any I/O error
//! just skips the disk layer (nothing is logged). The directory is created
//! 0700, and one that is group- or world-writable is not used, since whoever
//! can write it could plant "passed" verdicts.

use std::collections::HashMap;
use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use crate::validator::{Violation, POLICY_VERSION};

/// blake3 of the exact bytes validated (sealed and, for static-PIE, relocated).
pub type ImageHash = [u8; 32];

/// First line of every verdict file.
const MAGIC: &str = "zerolab-verdict 1";
/// Verdict files are tiny; anything larger is not ours.
const MAX_FILE: u64 = 4096;

/// Hash `bytes` for use as a cache key.
pub fn hash_image(bytes: &[u8]) -> ImageHash {
    *blake3::hash(bytes).as_bytes()
}

/// Verdicts by image, in memory and optionally in a directory shared by processes.
#[derive(Debug)]
pub struct VerdictCache {
    memory: Mutex<HashMap<String, Result<(), Violation>>>,
    dir: Option<PathBuf>,
}

impl VerdictCache {
    /// A cache that also persists verdicts in `dir` (created 0700 on the first store), if given.
    pub fn new(dir: Option<PathBuf>) -> Self {
        VerdictCache { memory: Mutex::new(HashMap::new()), dir }
    }

    /// The verdict for the image with `hash`: cached if there is one (second
    /// element `true`), else the result of `validate`, which is then stored.
    pub fn check(
        &self,
        hash: &ImageHash,
        validate: impl FnOnce() -> Result<(), Violation>,
    ) -> (Result<(), Violation>, bool) {
        let key = cache_key(POLICY_VERSION, hash);
        if let Some(verdict) = self.memory().get(&key) {
            return (verdict.clone(), true);
        }
        if let Some(verdict) = self.load(&key) {
            self.memory().insert(key, verdict.clone());
            return (verdict, true);
        }
        // validate without holding the lock: other images need not wait
        let verdict = validate();
        self.memory().insert(key.clone(), verdict.clone());
        self.store(&key, &verdict);
        (verdict, false)
    }

    fn memory(&self) -> MutexGuard<'_, HashMap<String, Result<(), Violation>>> {
        // a panic elsewhere cannot leave a HashMap of clones half-written
        self.memory.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The verdict stored on disk under `key`; any problem is a miss.
    fn load(&self, key: &str) -> Option<Result<(), Violation>> {
        let dir = self.dir.as_deref().filter(|dir| usable_dir(dir))?;
        let file = fs::File::open(dir.join(key)).ok()?;
        let mut text = String::new();
        file.take(MAX_FILE).read_to_string(&mut text).ok()?;
        decode(key, &text)
    }

    /// Persist `verdict` under `key`; `false` if the disk layer is off or failed.
    fn store(&self, key: &str, verdict: &Result<(), Violation>) -> bool {
        let Some(dir) = self.dir.as_deref() else {
            return false;
        };
        let Some(text) = encode(key, verdict) else {
            return false;
        };
        if fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).is_err() || !usable_dir(dir) {
            return false;
        }
        write_atomically(dir, key, text.as_bytes()).is_ok()
    }
}

/// The key (and file name) of a verdict: policy version and image hash.
fn cache_key(policy: u32, hash: &ImageHash) -> String {
    let mut key = format!("p{policy}-");
    for byte in hash {
        key.push_str(&format!("{byte:02x}"));
    }
    key
}

/// A directory we may trust: not writable by group or others.
fn usable_dir(dir: &Path) -> bool {
    fs::metadata(dir).is_ok_and(|meta| meta.is_dir() && meta.permissions().mode() & 0o022 == 0)
}

/// Write `data` to `dir/name` via a unique temporary file and a rename.
fn write_atomically(dir: &Path, name: &str, data: &[u8]) -> std::io::Result<()> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let unique = COUNTER.fetch_add(1, Ordering::Relaxed);
    let temp = dir.join(format!(".{name}.{}.{unique}.tmp", std::process::id()));
    let result = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&temp)
        .and_then(|mut file| file.write_all(data))
        .and_then(|()| fs::rename(&temp, dir.join(name)));
    if result.is_err() {
        let _ = fs::remove_file(&temp);
    }
    result
}

/// The file format: magic line, key line, then `pass` or `fail` and the violation.
fn encode(key: &str, verdict: &Result<(), Violation>) -> Option<String> {
    match verdict {
        Ok(()) => Some(format!("{MAGIC}\nkey {key}\npass\n")),
        Err(v) => {
            // one field per line: a newline inside one would not read back the same
            if v.instruction.contains('\n') || v.reason.contains('\n') {
                return None;
            }
            Some(format!(
                "{MAGIC}\nkey {key}\nfail\naddr {:#x}\ninstruction {}\nreason {}\n",
                v.addr, v.instruction, v.reason
            ))
        }
    }
}

/// Parse what [`encode`] wrote for `key`; anything else is `None`.
fn decode(key: &str, text: &str) -> Option<Result<(), Violation>> {
    let body = text.strip_suffix('\n')?;
    let mut lines = body.split('\n');
    if lines.next()? != MAGIC || lines.next()?.strip_prefix("key ")? != key {
        return None;
    }
    let verdict = match lines.next()? {
        "pass" => Ok(()),
        "fail" => {
            let addr = lines.next()?.strip_prefix("addr 0x")?;
            let addr = u64::from_str_radix(addr, 16).ok()?;
            let instruction = lines.next()?.strip_prefix("instruction ")?.to_owned();
            let reason = lines.next()?.strip_prefix("reason ")?.to_owned();
            Err(Violation { addr, instruction, reason })
        }
        _ => return None,
    };
    lines.next().is_none().then_some(verdict)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;
    use std::sync::Arc;

    fn violation() -> Violation {
        Violation { addr: 0x40_1234, instruction: "syscall".into(), reason: "system call".into() }
    }

    /// A validation closure that counts its calls.
    fn counting(calls: &Cell<u32>, verdict: Result<(), Violation>) -> impl FnOnce() -> Result<(), Violation> + '_ {
        move || {
            calls.set(calls.get() + 1);
            verdict
        }
    }

    fn entries(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> =
            fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        names.sort();
        names
    }

    #[test]
    fn hashes_with_blake3() {
        assert_eq!(hash_image(b"abc"), *blake3::hash(b"abc").as_bytes());
        assert_ne!(hash_image(b"abc"), hash_image(b"abd"));
    }

    #[test]
    fn misses_then_hits_in_memory_for_both_verdicts() {
        let cache = VerdictCache::new(None);
        let calls = Cell::new(0);
        for (bytes, verdict) in [(&b"good"[..], Ok(())), (&b"bad"[..], Err(violation()))] {
            let hash = hash_image(bytes);
            assert_eq!(cache.check(&hash, counting(&calls, verdict.clone())), (verdict.clone(), false));
            assert_eq!(cache.check(&hash, counting(&calls, Ok(()))), (verdict, true));
        }
        assert_eq!(calls.get(), 2, "each image validated once");
    }

    #[test]
    fn persists_verdicts_across_instances() {
        let temp = tempfile::tempdir().unwrap();
        let dir = temp.path().join("verdicts");
        let (good, bad) = (hash_image(b"good"), hash_image(b"bad"));
        let first = VerdictCache::new(Some(dir.clone()));
        assert_eq!(first.check(&good, || Ok(())), (Ok(()), false));
        assert_eq!(first.check(&bad, || Err(violation())), (Err(violation()), false));

        let second = VerdictCache::new(Some(dir.clone()));
        let calls = Cell::new(0);
        assert_eq!(second.check(&good, counting(&calls, Err(violation()))), (Ok(()), true));
        assert_eq!(second.check(&bad, counting(&calls, Ok(()))), (Err(violation()), true));
        assert_eq!(calls.get(), 0);
        // one file per verdict, no temporary files left behind, directory private
        assert_eq!(entries(&dir), {
            let mut names = vec![cache_key(POLICY_VERSION, &good), cache_key(POLICY_VERSION, &bad)];
            names.sort();
            names
        });
        assert_eq!(fs::metadata(&dir).unwrap().permissions().mode() & 0o777, 0o700);
    }

    #[test]
    fn treats_corrupt_or_foreign_files_as_misses() {
        let temp = tempfile::tempdir().unwrap();
        let hash = hash_image(b"image");
        let key = cache_key(POLICY_VERSION, &hash);
        let other = cache_key(POLICY_VERSION, &hash_image(b"other"));
        let cases = [
            ("garbage", b"\xff\xfe not a verdict".to_vec()),
            ("empty", Vec::new()),
            ("cut short", encode(&key, &Err(violation())).unwrap().as_bytes()[..40].to_vec()),
            ("another image's verdict", encode(&other, &Ok(())).unwrap().into_bytes()),
            ("trailing line", format!("{}extra\n", encode(&key, &Ok(())).unwrap()).into_bytes()),
            ("bad address", encode(&key, &Err(violation())).unwrap().replace("0x401234", "0xzz").into_bytes()),
        ];
        for (name, content) in cases {
            let dir = temp.path().join(name);
            fs::create_dir(&dir).unwrap();
            fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).unwrap();
            fs::write(dir.join(&key), content).unwrap();
            let cache = VerdictCache::new(Some(dir.clone()));
            assert_eq!(cache.check(&hash, || Err(violation())), (Err(violation()), false), "{name}");
            // the fresh verdict replaced the bad file
            let again = VerdictCache::new(Some(dir));
            assert_eq!(again.check(&hash, || Ok(())), (Err(violation()), true), "{name}");
        }
    }

    #[test]
    fn keys_include_the_policy_version() {
        let hash = hash_image(b"image");
        assert!(cache_key(POLICY_VERSION, &hash).starts_with(&format!("p{POLICY_VERSION}-")));
        assert_ne!(cache_key(POLICY_VERSION, &hash), cache_key(POLICY_VERSION + 1, &hash));
        // a verdict stored under another policy is not used
        let temp = tempfile::tempdir().unwrap();
        let stale = VerdictCache::new(Some(temp.path().to_path_buf()));
        let old_key = cache_key(POLICY_VERSION + 1, &hash);
        assert!(stale.store(&old_key, &Ok(())));
        let cache = VerdictCache::new(Some(temp.path().to_path_buf()));
        assert_eq!(cache.check(&hash, || Err(violation())), (Err(violation()), false));
    }

    #[test]
    fn io_errors_only_skip_the_disk_layer() {
        let temp = tempfile::tempdir().unwrap();
        let not_a_dir = temp.path().join("file");
        fs::write(&not_a_dir, b"").unwrap();
        let cache = VerdictCache::new(Some(not_a_dir.join("verdicts")));
        let hash = hash_image(b"image");
        assert!(!cache.store(&cache_key(POLICY_VERSION, &hash), &Ok(())));
        assert_eq!(cache.check(&hash, || Ok(())), (Ok(()), false));
        assert_eq!(cache.check(&hash, || Err(violation())), (Ok(()), true), "memory layer still works");
    }

    #[test]
    fn ignores_a_directory_others_can_write() {
        let temp = tempfile::tempdir().unwrap();
        let dir = temp.path().join("open");
        fs::create_dir(&dir).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o777)).unwrap();
        let hash = hash_image(b"image");
        let key = cache_key(POLICY_VERSION, &hash);
        // a planted "passed" verdict is not believed, and nothing is written there
        fs::write(dir.join(&key), encode(&key, &Ok(())).unwrap()).unwrap();
        let cache = VerdictCache::new(Some(dir.clone()));
        assert_eq!(cache.check(&hash, || Err(violation())), (Err(violation()), false));
        assert!(!cache.store(&key, &Err(violation())));
        assert_eq!(entries(&dir), [key]);
    }

    #[test]
    fn does_not_store_a_violation_that_would_not_read_back() {
        let temp = tempfile::tempdir().unwrap();
        let cache = VerdictCache::new(Some(temp.path().to_path_buf()));
        let odd = Violation { instruction: "two\nlines".into(), ..violation() };
        assert!(!cache.store(&cache_key(POLICY_VERSION, &hash_image(b"x")), &Err(odd)));
    }

    #[test]
    fn concurrent_writers_never_expose_a_partial_file() {
        let temp = tempfile::tempdir().unwrap();
        let dir = temp.path().to_path_buf();
        let key = cache_key(POLICY_VERSION, &hash_image(b"image"));
        let writer_cache = Arc::new(VerdictCache::new(Some(dir.clone())));
        assert!(writer_cache.store(&key, &Err(violation())));
        let writers: Vec<_> = (0..4)
            .map(|_| {
                let (cache, key) = (Arc::clone(&writer_cache), key.clone());
                std::thread::spawn(move || (0..200).all(|_| cache.store(&key, &Err(violation()))))
            })
            .collect();
        let reader = VerdictCache::new(Some(dir.clone()));
        for _ in 0..2000 {
            assert_eq!(reader.load(&key), Some(Err(violation())));
        }
        assert!(writers.into_iter().all(|w| w.join().unwrap()));
        assert_eq!(entries(&dir), [key]);
    }
}
