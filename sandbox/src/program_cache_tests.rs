//! Tests of the on-disk program cache: hits give the bytes and hash a miss
//! gives, and every entry or directory we cannot trust is a miss. They need
//! root (for `FS_IMMUTABLE_FL`) and a file system with the flag and user
//! extended attributes (the one holding `$HOME/.cache`); elsewhere they skip.

use std::fs;
use std::os::fd::AsFd;
use std::os::unix::fs::{FileExt, PermissionsExt};

use super::*;
use crate::elf::fixtures::{static_exec, static_pie};
use crate::image::{ImageCache, Member};
use crate::verdict_cache::VerdictCache;

/// A temporary cache directory next to the real one; its entries' flags are
/// cleared on drop so the directory can be removed.
struct Scratch {
    temp: tempfile::TempDir,
}

impl Scratch {
    /// `None` (after saying why) when the test cannot run here.
    fn new(test: &str) -> Option<Scratch> {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipping {test}: needs root (FS_IMMUTABLE_FL)");
            return None;
        }
        let base = std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")).unwrap_or_else(std::env::temp_dir);
        fs::create_dir_all(&base).ok()?;
        let scratch = Scratch { temp: tempfile::tempdir_in(&base).ok()? };
        let probe = scratch.temp.path().join("probe");
        let file = fs::File::create(&probe).ok()?;
        // SAFETY: a valid descriptor and a one-byte value.
        let attr = unsafe { libc::fsetxattr(file.as_raw_fd(), HASH_ATTR.as_ptr(), c"x".as_ptr().cast(), 1, 0) } == 0;
        let flag = get_flags(file.as_fd()).is_some_and(|f| set_flags(file.as_fd(), f | FS_IMMUTABLE_FL).is_ok());
        if flag {
            set_flags(file.as_fd(), 0).ok()?;
        }
        fs::remove_file(&probe).ok()?;
        if !(attr && flag) {
            eprintln!("skipping {test}: {} has no immutable flag or user extended attributes", base.display());
            return None;
        }
        Some(scratch)
    }

    fn cache(&self) -> ProgramCache {
        ProgramCache { dir: self.temp.path().join("programs"), min_bytes: 0, immutable: true }
    }

    /// A program file holding `bytes`.
    fn program(&self, bytes: &[u8]) -> PathBuf {
        let path = self.temp.path().join("program");
        fs::write(&path, bytes).unwrap();
        path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        for dir in [self.temp.path().join("programs"), self.temp.path().join("real")] {
            for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
                clear_flag(&entry.path());
            }
        }
    }
}

fn clear_flag(path: &Path) {
    if let Ok(f) = fs::File::open(path) {
        let _ = set_flags(f.as_fd(), get_flags(f.as_fd()).unwrap_or(0) & !FS_IMMUTABLE_FL);
    }
}

fn set_flag(path: &Path) {
    let f = fs::File::open(path).unwrap();
    set_flags(f.as_fd(), get_flags(f.as_fd()).unwrap() | FS_IMMUTABLE_FL).unwrap();
}

fn key_of(path: &Path) -> FileKey {
    FileKey::of(&fs::metadata(path).unwrap(), None)
}

/// Loads `path` as a new zvsh process would (empty memory layers): the image
/// and whether it came from the disk (a miss validates, so its verdict is fresh).
fn load(cache: ProgramCache, path: &Path) -> (Image, bool) {
    let image = ImageCache::with_disk(Some(cache)).load(path, None, &VerdictCache::new(None)).unwrap();
    let image = std::sync::Arc::into_inner(image).unwrap();
    let hit = image.cached_verdict;
    (image, hit)
}

fn contents(image: &Image) -> Vec<u8> {
    // by offset: the descriptor's file position is shared with its clones
    let file = fs::File::from(image.fd.try_clone().unwrap());
    let mut bytes = vec![0; file.metadata().unwrap().len() as usize];
    file.read_exact_at(&mut bytes, 0).unwrap();
    bytes
}

fn trusted_entry(cache: &ProgramCache, key: &FileKey) -> bool {
    cache.lookup(key).is_some()
}

#[test]
fn a_hit_gives_the_bytes_and_hash_of_a_miss() {
    let Some(s) = Scratch::new("a_hit_gives_the_bytes_and_hash_of_a_miss") else { return };
    for program in [static_exec(), static_pie()] {
        let path = s.program(program);
        let (miss, hit) = load(s.cache(), &path);
        assert!(!hit, "the first run validates");
        let entry = entry_path(&s.cache(), &key_of(&path));
        let meta = fs::metadata(&entry).unwrap();
        assert_eq!(meta.permissions().mode() & 0o7777, 0o400);
        let (again, hit) = load(s.cache(), &path);
        assert!(hit, "the second run uses the entry");
        assert_eq!((again.hash, &again.elf), (miss.hash, &miss.elf));
        assert_eq!(contents(&again), contents(&miss), "the entry holds the sealed bytes");
        let entry_file = fs::File::from(again.fd);
        assert!(entry_file.write_at(b"x", 0).is_err(), "the entry cannot be written");
        assert!(fs::OpenOptions::new().write(true).open(&entry).is_err(), "not even by root");
    }
}

#[test]
fn a_changed_source_is_a_miss() {
    let Some(s) = Scratch::new("a_changed_source_is_a_miss") else { return };
    let path = s.program(static_exec());
    load(s.cache(), &path);
    let file = fs::File::options().write(true).open(&path).unwrap();
    file.set_modified(std::time::SystemTime::now() + std::time::Duration::from_secs(5)).unwrap();
    assert!(!load(s.cache(), &path).1, "touched");
    assert!(load(s.cache(), &path).1);
    let mut other = static_exec().to_vec();
    other.extend_from_slice(b"trailing bytes");
    fs::write(&path, &other).unwrap();
    let (image, hit) = load(s.cache(), &path);
    assert!(!hit, "rewritten");
    assert_eq!(contents(&image).len(), other.len());
}

#[test]
fn an_untrusted_entry_is_a_miss_and_is_replaced() {
    let Some(s) = Scratch::new("an_untrusted_entry_is_a_miss_and_is_replaced") else { return };
    let path = s.program(static_exec());
    let (good, _) = load(s.cache(), &path);
    let entry = entry_path(&s.cache(), &key_of(&path));
    let extra_link = s.temp.path().join("programs").join("link");
    let spoil: [(&str, &dyn Fn()); 4] = [
        ("flag cleared", &|| clear_flag(&entry)),
        ("mode 0644", &|| fs::set_permissions(&entry, fs::Permissions::from_mode(0o644)).unwrap()),
        ("owned by nobody", &|| std::os::unix::fs::chown(&entry, Some(65534), None).unwrap()),
        ("two links", &|| fs::hard_link(&entry, &extra_link).unwrap()),
    ];
    for (name, spoil) in spoil {
        clear_flag(&entry);
        spoil();
        if name != "flag cleared" {
            set_flag(&entry);
        }
        assert!(!trusted_entry(&s.cache(), &key_of(&path)), "{name}");
        let (image, hit) = load(s.cache(), &path);
        assert!(!hit, "{name}: a miss");
        assert_eq!(image.hash, good.hash, "{name}");
        assert!(trusted_entry(&s.cache(), &key_of(&path)), "{name}: replaced by a trusted entry");
        let _ = fs::remove_file(&extra_link);
    }
}

#[test]
fn a_tampered_entry_is_never_run() {
    let Some(s) = Scratch::new("a_tampered_entry_is_never_run") else { return };
    let path = s.program(static_exec());
    let (good, _) = load(s.cache(), &path);
    let entry = entry_path(&s.cache(), &key_of(&path));
    clear_flag(&entry);
    let code = good.elf.segments.iter().find(|seg| seg.exec).unwrap().offset;
    fs::File::options().write(true).open(&entry).unwrap().write_at(b"\x0f\x05\x0f\x05", code + 16).unwrap();
    let (image, hit) = load(s.cache(), &path);
    assert!(!hit, "validated again from the source");
    assert_eq!(
        (image.hash, contents(&image)),
        (good.hash, contents(&good)),
        "the source's bytes, not the tampered ones"
    );
    assert_eq!(fs::read(&entry).unwrap(), contents(&good), "the entry was rewritten");
}

#[test]
fn a_linked_or_shared_directory_turns_the_cache_off() {
    let Some(s) = Scratch::new("a_linked_or_shared_directory_turns_the_cache_off") else { return };
    let path = s.program(static_exec());
    let real = ProgramCache { dir: s.temp.path().join("real"), min_bytes: 0, immutable: true };
    load(real, &path);
    let key = key_of(&path);
    assert!(trusted_entry(&ProgramCache { dir: s.temp.path().join("real"), min_bytes: 0, immutable: true }, &key));

    std::os::unix::fs::symlink(s.temp.path().join("real"), s.temp.path().join("programs")).unwrap();
    assert!(!trusted_entry(&s.cache(), &key), "through a symbolic link");
    assert!(!load(s.cache(), &path).1);
    fs::remove_file(s.temp.path().join("programs")).unwrap();

    let real = s.temp.path().join("real");
    fs::set_permissions(&real, fs::Permissions::from_mode(0o770)).unwrap();
    let shared = ProgramCache { dir: real.clone(), min_bytes: 0, immutable: true };
    assert!(!trusted_entry(&shared, &key), "group-writable");
    clear_flag(&entry_path(&shared, &key));
    fs::remove_file(entry_path(&shared, &key)).unwrap();
    assert!(!load(shared, &path).1);
    assert_eq!(fs::read_dir(&real).unwrap().count(), 0, "nothing written into it");
}

#[test]
fn small_programs_and_members_are_keyed_apart() {
    let Some(s) = Scratch::new("small_programs_and_members_are_keyed_apart") else { return };
    let path = s.program(static_exec());
    let whole = key_of(&path);
    let member = FileKey { member: Some(Member { offset: 0, len: whole.size }), ..whole };
    assert_ne!(entry_name(&whole), entry_name(&member));
    let default = ProgramCache { dir: s.temp.path().join("programs"), min_bytes: MIN_CACHED_BYTES, immutable: true };
    load(default, &path);
    assert!(!s.temp.path().join("programs").exists(), "a small program is not stored");
}

/// A non-root zvsh's cache: entries without the flag, kept by their mode. One
/// whose mode changed (made writable to change it) is a miss and is replaced.
#[test]
fn a_cache_without_the_flag_keeps_entries_by_their_mode() {
    let Some(s) = Scratch::new("a_cache_without_the_flag_keeps_entries_by_their_mode") else { return };
    let path = s.program(static_exec());
    let cache = || ProgramCache { dir: s.temp.path().join("plain"), min_bytes: 0, immutable: false };
    let (good, hit) = load(cache(), &path);
    assert!(!hit);
    let entry = cache().dir.join(entry_name(&key_of(&path)));
    let flags = get_flags(fs::File::open(&entry).unwrap().as_fd()).unwrap();
    assert_eq!(flags & FS_IMMUTABLE_FL, 0, "no flag without root's powers");
    let (image, hit) = load(cache(), &path);
    assert!(hit, "a hit without the flag");
    assert_eq!((image.hash, contents(&image)), (good.hash, contents(&good)));
    fs::set_permissions(&entry, PermissionsExt::from_mode(0o600)).unwrap();
    let (image, hit) = load(cache(), &path);
    assert!(!hit, "a writable entry is not trusted");
    assert_eq!(contents(&image), contents(&good));
    let mode = fs::metadata(&entry).unwrap().permissions().mode();
    assert_eq!(mode & 0o7777, 0o400, "replaced by a fresh entry");
}
