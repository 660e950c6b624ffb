//! Guest images: from a program file to sealed, inspected, validated bytes.
//!
//! [`load`] copies the program once, in the kernel, from its file (or from
//! its member's byte range in a tar image: zvsh's `--zvm-image TAR python`)
//! into a memfd that only this process holds, checks it is a static x86-64
//! executable ([`crate::elf`]), applies static-PIE relocations if needed,
//! validates the executable bytes (or reuses a cached verdict for the same
//! hash), and seals the memfd: the exact bytes it validated are the bytes the
//! loader maps. [`ImageCache`] keeps sealed images by file identity, so a
//! program run again and again (the node agent's case) costs one `open` and
//! `fstat` per session.

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::num::NonZeroUsize;
use std::os::fd::OwnedFd;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::{Arc, Mutex};

use crate::channel::{self, Access, Refusal, SourceError};
use crate::codes::ReturnCode;
use crate::elf::{self, ElfError, ElfImage};
use crate::jail::memfd::{seal, sealed_memfd_from};
use crate::program_cache::ProgramCache;
use crate::validator::{self, Violation};
use crate::verdict_cache::{hash_image, ImageHash, VerdictCache};

/// What to do about a forbidden instruction, by its reason: where it likely came from
/// and how to find it. zvm-gcc and zvm-cc builds contain no system-call instruction,
/// so the likelier author is inline assembly or a library linked in, and the advice
/// says that first; a program built with the host's libc is the other case.
fn advice(v: &Violation) -> String {
    let find = format!("`objdump -d --start-address={:#x} PROGRAM` shows it", v.addr);
    match v.reason.as_str() {
        validator::SYSTEM_CALL | validator::INTERRUPT => format!(
            "a guest reaches the world only through zvm.h's six calls, never the kernel itself: in a program built with \
             sandbox/guest/zvm-gcc it comes from inline assembly or a library linked in ({find}), which must go; a \
             program built with the host's libc (gcc -static) must be rebuilt with zvm-cc (POSIX programs) or zvm-gcc"
        ),
        validator::NON_DETERMINISTIC => format!(
            "a guest runs the same on every node, so it may not read the clock, the CPU's identity or random numbers \
             itself (give it them on a channel): it comes from inline assembly, a library linked in or a compiler \
             flag such as -march=native ({find})"
        ),
        validator::UNDECODABLE => {
            format!("the executable segment holds bytes that are no instruction (data placed among the code?): {find}")
        }
        _ => format!(
            "guests may not use it: it comes from inline assembly, a library linked in or a compiler flag such as \
             -march=native ({find}); remove it"
        ),
    }
}

impl From<Violation> for ImageError {
    fn from(v: Violation) -> Self {
        ImageError::Invalid(v)
    }
}

/// Largest program accepted (ZeroVM's "sane size").
pub const MAX_IMAGE_BYTES: u64 = 1 << 30;

/// A program ready to run.
#[derive(Debug)]
pub struct Image {
    /// The sealed bytes: a sealed memfd, or a root zvsh's immutable
    /// [`ProgramCache`] entry (read-only, mapped the same way).
    pub fd: OwnedFd,
    /// Its segments and entry point.
    pub elf: ElfImage,
    /// Hash of the sealed bytes.
    pub hash: ImageHash,
    /// Whether the validator verdict came from a cache (the verdict cache, or
    /// a [`ProgramCache`] entry, written only after validation).
    pub cached_verdict: bool,
}

/// Why a program cannot run.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// The file does not exist.
    #[error("program {0} does not exist")]
    Missing(String),
    /// Not a regular file, or of no sane size.
    #[error("program {path} is not a regular file of sane size ({what})")]
    NotRegular {
        /// Path.
        path: String,
        /// What it is instead.
        what: String,
    },
    /// Its path leads somewhere a supervisor must not read a program from:
    /// another user's symbolic link out of a sticky world-writable directory,
    /// a kernel file system (the same rules as channel sources).
    #[error("program {path} {what}")]
    Refused {
        /// Path.
        path: String,
        /// Why.
        what: Refusal,
    },
    /// Reading it failed.
    #[error("cannot read program {path}")]
    Read {
        /// Path.
        path: String,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// Not a valid static executable.
    #[error(transparent)]
    Elf(#[from] ElfError),
    /// The validator rejected it (the violation is part of the message, not
    /// a source, so the hint can follow it).
    #[error("validation failed: {0}; {advice}", advice = advice(.0))]
    Invalid(Violation),
}

impl ImageError {
    /// The ZeroVM return code.
    pub fn code(&self) -> ReturnCode {
        match self {
            ImageError::Missing(_) => ReturnCode::ProgramMissing,
            ImageError::NotRegular { .. } | ImageError::Refused { .. } | ImageError::Read { .. } => {
                ReturnCode::ProgramNotRegular
            }
            ImageError::Elf(e) => e.code(),
            ImageError::Invalid(_) => ReturnCode::BadExecutable,
        }
    }
}

/// Zeroes the file bytes that share an executable segment's last page but
/// belong to no loaded segment (linkers put section data such as `.comment`
/// there). Mapping by pages would make them executable, so they are either
/// validated as code or, here, cleared in the copy that gets sealed; bytes of
/// another loaded segment are left alone (the validator then checks them).
fn clear_exec_page_tails(bytes: &mut [u8], image: &ElfImage) {
    let page = crate::abi::PAGE_SIZE;
    for s in image.segments.iter().filter(|s| s.exec) {
        let Some(end) = s.offset.checked_add(s.filesz) else { continue };
        let tail_end = end.div_ceil(page).saturating_mul(page).min(bytes.len() as u64);
        let claimed = |at: u64| image.segments.iter().any(|o| o.offset <= at && at < o.offset + o.filesz);
        for at in end..tail_end {
            if !claimed(at) {
                bytes[at as usize] = 0;
            }
        }
    }
}

/// Where a program lies inside its file when it is not the whole file: the
/// byte range of one member of a tar image (zvsh's `--zvm-image TAR python`
/// runs `bin/python` from there, without copying it out first).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Member {
    /// Offset of the first byte in the file.
    pub offset: u64,
    /// Length in bytes.
    pub len: u64,
}

/// The version of the steps between a program file and its sealed bytes
/// (relocation, clearing of executable page tails): bumped when they change,
/// so [`ProgramCache`] entries made by an older zvsh are not used.
pub const LOADING_VERSION: u32 = 1;

/// Which file (and which part of it) an image was read from: any write
/// changes `ctime`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct FileKey {
    pub(crate) dev: u64,
    pub(crate) ino: u64,
    pub(crate) size: u64,
    pub(crate) mtime: (i64, i64),
    pub(crate) ctime: (i64, i64),
    pub(crate) member: Option<Member>,
}

impl FileKey {
    /// The identity of the file `meta` describes (no byte of it is read).
    pub(crate) fn of(meta: &std::fs::Metadata, member: Option<Member>) -> FileKey {
        FileKey {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.size(),
            mtime: (meta.mtime(), meta.mtime_nsec()),
            ctime: (meta.ctime(), meta.ctime_nsec()),
            member,
        }
    }
}

/// Sealed images by file identity (device, inode, size, mtime, ctime), in
/// memory and, for a root zvsh, validated images on disk ([`ProgramCache`]).
#[derive(Debug, Default)]
pub struct ImageCache {
    images: Mutex<HashMap<FileKey, Arc<Image>>>,
    disk: Option<ProgramCache>,
}

/// How many images [`ImageCache`] keeps before starting over.
const CACHED_IMAGES: usize = 256;

impl ImageCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty cache that also keeps validated images in `disk`.
    pub fn with_disk(disk: Option<ProgramCache>) -> Self {
        ImageCache { images: Mutex::default(), disk }
    }

    /// Like [`load`], reusing the sealed image when the file is unchanged.
    pub fn load(&self, path: &Path, member: Option<Member>, verdicts: &VerdictCache) -> Result<Arc<Image>, ImageError> {
        let (file, meta) = open_program(path)?;
        let key = FileKey::of(&meta, member);
        if let Some(hit) = self.images.lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
            return Ok(Arc::clone(hit));
        }
        let image = match self.disk.as_ref().and_then(|d| d.lookup(&key)) {
            Some(hit) => Arc::new(hit),
            None => {
                let image = read_program(path, file, &meta, member, verdicts)?;
                if let Some(disk) = &self.disk {
                    disk.store(&key, &image);
                }
                Arc::new(image)
            }
        };
        let mut images = self.images.lock().unwrap_or_else(|e| e.into_inner());
        if images.len() >= CACHED_IMAGES {
            images.clear();
        }
        images.insert(key, Arc::clone(&image));
        Ok(image)
    }
}

fn open_program(path: &Path) -> Result<(std::fs::File, std::fs::Metadata), ImageError> {
    let shown = path.display().to_string();
    let read_err = |source| ImageError::Read { path: shown.clone(), source };
    // Opened like a channel source (see `channel::open_path`): a root
    // supervisor never reads a program through a link another user planted.
    let file = match channel::open_path(path, Access::READ, std::time::Instant::now()) {
        Ok((f, _)) => f,
        Err(SourceError::Missing { .. }) => return Err(ImageError::Missing(shown)),
        Err(SourceError::Refused { what, .. }) => return Err(ImageError::Refused { path: shown, what }),
        Err(SourceError::Open { source, .. }) => return Err(read_err(source)),
        Err(e @ SourceError::NoReader { .. }) => return Err(read_err(std::io::Error::other(e.to_string()))),
    };
    let meta = file.metadata().map_err(read_err)?;
    Ok((file, meta))
}

/// Loads, checks and seals the program at `path` (or its `member`).
pub fn load(path: &Path, member: Option<Member>, cache: &VerdictCache) -> Result<Image, ImageError> {
    let (file, meta) = open_program(path)?;
    read_program(path, file, &meta, member, cache)
}

fn read_program(
    path: &Path,
    file: File,
    meta: &std::fs::Metadata,
    member: Option<Member>,
    cache: &VerdictCache,
) -> Result<Image, ImageError> {
    let shown = path.display().to_string();
    if !meta.is_file() {
        let what = if meta.is_dir() { "a directory" } else { "a special file" };
        return Err(ImageError::NotRegular { path: shown, what: what.into() });
    }
    let Member { offset, len } = member.unwrap_or(Member { offset: 0, len: meta.len() });
    if offset.checked_add(len).is_none_or(|end| end > meta.len()) {
        let what = format!("bytes {offset}..{} of a {}-byte file", offset.saturating_add(len), meta.len());
        return Err(ImageError::NotRegular { path: shown, what });
    }
    if len == 0 || len > MAX_IMAGE_BYTES {
        return Err(ImageError::NotRegular { path: shown, what: format!("{len} bytes") });
    }
    from_file(file, offset, len, cache).map_err(|e| match e {
        ImageError::Read { source, .. } => ImageError::Read { path: shown, source },
        other => other,
    })
}

/// Copies `len` bytes of `file` from `offset` into a new memfd (in the
/// kernel: `copy_file_range` or `sendfile`), then checks, hashes and
/// validates them in place through a mapping and seals the memfd. Until it
/// is sealed the memfd is this process's alone (close-on-exec, never passed
/// on), so the bytes validated are the bytes sealed.
fn from_file(mut file: File, offset: u64, len: u64, cache: &VerdictCache) -> Result<Image, ImageError> {
    let read_err = |source| ImageError::Read { path: String::new(), source };
    let size = NonZeroUsize::new(len as usize).ok_or_else(|| read_err(std::io::ErrorKind::InvalidInput.into()))?;
    let memfd = nix::sys::memfd::memfd_create(
        c"zerolab-image",
        nix::sys::memfd::MFdFlags::MFD_CLOEXEC | nix::sys::memfd::MFdFlags::MFD_ALLOW_SEALING,
    )
    .map_err(|e| read_err(e.into()))?;
    let mut out = File::from(memfd);
    file.seek(SeekFrom::Start(offset)).map_err(read_err)?;
    let copied = std::io::copy(&mut (&mut file).take(len), &mut out).map_err(read_err)?;
    if copied != len {
        return Err(read_err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            format!("the file ended {} bytes early (changed while read?)", len - copied),
        )));
    }
    let fd = OwnedFd::from(out);
    let (elf, hash, verdict) = {
        let mut mapping = Mapping::new(&fd, size).map_err(read_err)?;
        let bytes = mapping.bytes();
        let elf = elf::inspect(bytes)?;
        if elf.static_pie {
            let relocated = elf::relocate_static_pie(bytes, &elf)?;
            return from_bytes(relocated, cache);
        }
        clear_exec_page_tails(bytes, &elf);
        let hash = hash_image(bytes);
        let (verdict, cached) = cache.check(&hash, || validator::validate_image(bytes, &elf));
        (elf, hash, verdict.map(|()| cached))
    };
    let cached_verdict = verdict?;
    seal(&fd).map_err(read_err)?;
    Ok(Image { fd, elf, hash, cached_verdict })
}

/// A shared, writable mapping of a whole (not yet sealed) memfd, unmapped
/// when dropped: sealing against writes needs no writable mapping left.
struct Mapping {
    addr: std::ptr::NonNull<std::ffi::c_void>,
    len: NonZeroUsize,
}

impl Mapping {
    fn new(fd: &OwnedFd, len: NonZeroUsize) -> std::io::Result<Mapping> {
        use nix::sys::mman::{mmap, MapFlags, ProtFlags};
        // SAFETY: a fresh mapping chosen by the kernel (no address hint), of a
        // memfd `len` bytes long that nothing else maps or resizes; it is
        // unmapped exactly once, in `drop`.
        let addr = unsafe {
            mmap(
                None,
                len,
                ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
                MapFlags::MAP_SHARED | MapFlags::MAP_POPULATE,
                fd,
                0,
            )
        }?;
        Ok(Mapping { addr, len })
    }

    fn bytes(&mut self) -> &mut [u8] {
        // SAFETY: the mapping is `len` bytes, readable and writable, alive
        // until `self` drops, and borrowed mutably only through `self`.
        unsafe { std::slice::from_raw_parts_mut(self.addr.as_ptr().cast(), self.len.get()) }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: `addr` and `len` are the mapping made in `new`, unmapped only here.
        let _ = unsafe { nix::sys::mman::munmap(self.addr, self.len.get()) };
    }
}

/// Checks and seals a program given as bytes.
pub fn from_bytes(bytes: Vec<u8>, cache: &VerdictCache) -> Result<Image, ImageError> {
    let elf = elf::inspect(&bytes)?;
    let mut bytes = if elf.static_pie { elf::relocate_static_pie(&bytes, &elf)? } else { bytes };
    clear_exec_page_tails(&mut bytes, &elf);
    let hash = hash_image(&bytes);
    let (verdict, cached) = cache.check(&hash, || validator::validate_image(&bytes, &elf));
    verdict?;
    let fd = sealed_memfd_from(c"zerolab-image", |f| f.write_all(&bytes))
        .map_err(|source| ImageError::Read { path: String::new(), source })?;
    Ok(Image { fd, elf, hash, cached_verdict: cached })
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;
    use std::os::unix::fs::FileExt;

    use super::*;
    use crate::elf::fixtures::{static_exec, static_pie};

    /// `program` between other bytes in a file, and its range there.
    fn embedded(program: &[u8]) -> (tempfile::NamedTempFile, Member) {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(&[0x0f; 1000]).unwrap();
        file.write_all(program).unwrap();
        file.write_all(b"\x0f\x05 a syscall after the member").unwrap();
        (file, Member { offset: 1000, len: program.len() as u64 })
    }

    #[test]
    fn a_member_is_sealed_and_validated_as_exactly_its_bytes() {
        for program in [static_exec(), static_pie()] {
            let (file, member) = embedded(program);
            let verdicts = VerdictCache::new(None);
            let alone = from_bytes(program.to_vec(), &verdicts).unwrap();
            let image = load(file.path(), Some(member), &verdicts).unwrap();
            assert_eq!(image.hash, alone.hash, "the same bytes as the program given alone");
            assert_eq!(image.elf, alone.elf);
            let sealed = File::from(image.fd.try_clone().unwrap());
            assert_eq!(sealed.metadata().unwrap().len(), program.len() as u64, "the member and nothing more");
            assert!(sealed.write_at(b"x", 0).is_err(), "the memfd is sealed against writes");
        }
    }

    #[test]
    fn a_member_range_outside_the_file_is_refused() {
        let (file, member) = embedded(static_exec());
        let verdicts = VerdictCache::new(None);
        for bad in [
            Member { offset: member.offset, len: member.len + 40 },
            Member { offset: u64::MAX, len: 2 },
            Member { offset: 0, len: 0 },
        ] {
            let err = load(file.path(), Some(bad), &verdicts).unwrap_err();
            assert!(matches!(err, ImageError::NotRegular { .. }), "{bad:?}: {err}");
        }
    }
}
