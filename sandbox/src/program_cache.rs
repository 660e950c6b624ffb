//! Validated program images kept on disk across processes.
//!
//! Each entry is one file holding exactly the bytes a sealed memfd would hold
//! (relocated, executable page tails cleared), written only after those bytes
//! passed the validator, then made immutable (`FS_IMMUTABLE_FL`: no write,
//! truncation, rename or unlink, even by root, until someone with
//! `CAP_LINUX_IMMUTABLE` clears the flag). Its name is a hash of the source's
//! identity (device, inode, size, mtime, ctime, member range), the
//! validator's [`POLICY_VERSION`] and [`LOADING_VERSION`]; the image hash rides along in an extended attribute set
//! before the flag. A run whose source is unchanged opens the entry and hands
//! its descriptor to the loader instead of copying, hashing and freeing the
//! program (about 10 ms for CPython's 7.8 MB).
//!
//! A non-root zvsh cannot set the flag: its entries are kept by their mode
//! (0400, in a 0700 directory of its user) and trusted as far as that user's
//! own processes are, which could already change zvsh itself as it runs.
//!
//! An entry is used only if, after opening it without following links, it is a
//! regular file owned by us, mode 0400, one link, immutable (root), with a 32-byte
//! hash attribute and a parseable ELF header: anything else is a miss, and the
//! normal path then replaces it. The directory is used only if it is a real
//! directory owned by us, writable by no one else, on a mount that allows
//! executable mappings. See `docs/security.md` for why this is safe.

use std::num::NonZeroUsize;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use nix::fcntl::{openat, renameat, OFlag};
use nix::sys::stat::{fstat, Mode, SFlag};
use nix::unistd::{unlinkat, UnlinkatFlags};

use crate::elf::{self, ElfImage};
use crate::image::{FileKey, Image, LOADING_VERSION, MAX_IMAGE_BYTES};
use crate::validator::POLICY_VERSION;
use crate::verdict_cache::ImageHash;

/// `FS_IMMUTABLE_FL` from `linux/fs.h`.
const FS_IMMUTABLE_FL: libc::c_int = 0x10;
/// The extended attribute holding the image hash.
const HASH_ATTR: &std::ffi::CStr = c"user.zerolab.image-hash";
/// Programs smaller than this are not cached: copying and hashing them costs
/// less than the entry would cost in disk space nobody prunes.
const MIN_CACHED_BYTES: u64 = 1 << 20;

/// The on-disk layer of [`crate::image::ImageCache`].
#[derive(Debug)]
pub struct ProgramCache {
    dir: PathBuf,
    min_bytes: u64,
    /// Whether entries are made (and must be) immutable: for root, whom file
    /// modes do not stop. Another user's entries are kept by their mode (0400:
    /// not even their owner may open them to write without changing it first).
    immutable: bool,
}

impl ProgramCache {
    /// A cache in `dir` (created 0700 on the first store).
    pub fn new(dir: PathBuf) -> ProgramCache {
        let immutable = nix::unistd::geteuid().is_root();
        ProgramCache { dir, min_bytes: MIN_CACHED_BYTES, immutable }
    }

    /// The directory of `zvsh`'s cache: `$ZEROLAB_CACHE/programs`, else
    /// `$XDG_CACHE_HOME/zerolab/programs`, else `$HOME/.cache/zerolab/programs`.
    pub fn default_dir() -> Option<PathBuf> {
        let base = std::env::var_os("ZEROLAB_CACHE").map(PathBuf::from).or_else(|| {
            std::env::var_os("XDG_CACHE_HOME")
                .map(PathBuf::from)
                .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
                .map(|d| d.join("zerolab"))
        })?;
        Some(base.join("programs"))
    }

    /// The validated image stored for `key`, if a trustworthy entry exists.
    pub(crate) fn lookup(&self, key: &FileKey) -> Option<Image> {
        let dir = open_dir(&self.dir)?;
        let fd = openat(
            &dir,
            entry_name(key).as_str(),
            OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .ok()?;
        let st = fstat(&fd).ok()?;
        let trusted = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFREG
            && st.st_uid == nix::unistd::geteuid().as_raw()
            && st.st_nlink == 1
            && st.st_mode & 0o7777 == 0o400
            && st.st_size > 0
            && (st.st_size as u64) <= MAX_IMAGE_BYTES
            && (!self.immutable || get_flags(fd.as_fd()).is_some_and(|f| f & FS_IMMUTABLE_FL != 0));
        if !trusted {
            return None;
        }
        let hash = read_hash(fd.as_fd())?;
        let elf = inspect(&fd, st.st_size as usize)?;
        Some(Image { fd, elf, hash, cached_verdict: true })
    }

    /// Stores `image` (already validated) for `key`, replacing whatever entry
    /// is there; any failure leaves no entry and no temporary file.
    pub(crate) fn store(&self, key: &FileKey, image: &Image) {
        let len = image_len(image);
        if len < self.min_bytes {
            return;
        }
        let _ = std::fs::DirBuilder::new().recursive(true).mode(0o700).create(&self.dir);
        let Some(dir) = open_dir(&self.dir) else { return };
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let name = entry_name(key);
        let temp = format!(".{name}.{}.{}.tmp", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed));
        if write_entry(&dir, &temp, &name, image, len, self.immutable).is_err() {
            let _ = unlinkat(&dir, temp.as_str(), UnlinkatFlags::NoRemoveDir);
        }
    }
}

/// The number of bytes in an image's memfd.
fn image_len(image: &Image) -> u64 {
    fstat(&image.fd).map_or(0, |st| st.st_size.max(0) as u64)
}

/// Writes the entry under `temp`, then renames it to `name` and makes it
/// immutable (if `immutable`), all through descriptors relative to the checked
/// directory.
fn write_entry(dir: &OwnedFd, temp: &str, name: &str, image: &Image, len: u64, immutable: bool) -> nix::Result<()> {
    let flags = OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    // Writable by its owner until its hash is set (setting a user extended
    // attribute takes write permission, not only a writable descriptor).
    let out = openat(dir, temp, flags, Mode::from_bits_truncate(0o600))?;
    let mut offset: libc::off_t = 0;
    while (offset as u64) < len {
        let count = (len - offset as u64) as usize;
        // SAFETY: two valid descriptors and a valid offset the kernel
        // advances; the memfd's own file offset is left alone.
        let sent = unsafe { libc::sendfile(out.as_raw_fd(), image.fd.as_raw_fd(), &mut offset, count) };
        if nix::errno::Errno::result(sent)? == 0 {
            return Err(nix::errno::Errno::EIO);
        }
    }
    // SAFETY: a valid descriptor, a 32-byte buffer and its length.
    let set = unsafe {
        libc::fsetxattr(out.as_raw_fd(), HASH_ATTR.as_ptr(), image.hash.as_ptr().cast(), image.hash.len(), 0)
    };
    nix::errno::Errno::result(set)?;
    nix::sys::stat::fchmod(&out, Mode::from_bits_truncate(0o400))?;
    nix::unistd::fsync(&out)?;
    // An old entry (stale, tampered or wrongly owned) may be immutable: the
    // rename over it is refused until its flag is cleared.
    if let Ok(old) =
        openat(dir, name, OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC, Mode::empty())
    {
        if let Some(f) = get_flags(old.as_fd()).filter(|f| f & FS_IMMUTABLE_FL != 0) {
            set_flags(old.as_fd(), f & !FS_IMMUTABLE_FL)?;
        }
    }
    renameat(dir, temp, dir, name)?;
    if !immutable {
        return Ok(());
    }
    // Under its final name only now, in a directory only we can write: the
    // flag is set through the descriptor we wrote it with.
    let sealed = get_flags(out.as_fd())
        .ok_or(nix::errno::Errno::ENOTTY)
        .and_then(|f| set_flags(out.as_fd(), f | FS_IMMUTABLE_FL));
    if sealed.is_err() {
        let _ = unlinkat(dir, name, UnlinkatFlags::NoRemoveDir);
    }
    sealed
}

/// The directory, opened without following a link, if it is ours alone and
/// allows executable mappings.
fn open_dir(dir: &Path) -> Option<OwnedFd> {
    let fd = nix::fcntl::open(
        dir,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .ok()?;
    let st = fstat(&fd).ok()?;
    let ours = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR
        && st.st_uid == nix::unistd::geteuid().as_raw()
        && st.st_mode & 0o022 == 0;
    let exec =
        nix::sys::statvfs::fstatvfs(&fd).is_ok_and(|v| !v.flags().contains(nix::sys::statvfs::FsFlags::ST_NOEXEC));
    (ours && exec).then_some(fd)
}

/// The file name of the entry for `key`: blake3 of everything the bytes depend on.
fn entry_name(key: &FileKey) -> String {
    let mut h = blake3::Hasher::new();
    h.update(b"zerolab-program-cache 1\0");
    for n in [POLICY_VERSION as u64, LOADING_VERSION as u64, key.dev, key.ino, key.size] {
        h.update(&n.to_le_bytes());
    }
    for (s, ns) in [key.mtime, key.ctime] {
        h.update(&s.to_le_bytes());
        h.update(&ns.to_le_bytes());
    }
    let (offset, len) = key.member.map_or((u64::MAX, u64::MAX), |m| (m.offset, m.len));
    h.update(&offset.to_le_bytes());
    h.update(&len.to_le_bytes());
    h.finalize().to_hex().to_string()
}

fn get_flags(fd: BorrowedFd<'_>) -> Option<libc::c_int> {
    let mut flags: libc::c_int = 0;
    // SAFETY: FS_IOC_GETFLAGS writes one int (the kernel's size, whatever
    // the ioctl number says) into `flags`.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), libc::FS_IOC_GETFLAGS, &mut flags) };
    (r == 0).then_some(flags)
}

fn set_flags(fd: BorrowedFd<'_>, flags: libc::c_int) -> nix::Result<()> {
    // SAFETY: FS_IOC_SETFLAGS reads one int from `flags`.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), libc::FS_IOC_SETFLAGS, &flags) };
    nix::errno::Errno::result(r).map(drop)
}

fn read_hash(fd: BorrowedFd<'_>) -> Option<ImageHash> {
    let mut hash: ImageHash = [0; 32];
    // SAFETY: a valid descriptor and a buffer of the length passed.
    let n = unsafe { libc::fgetxattr(fd.as_raw_fd(), HASH_ATTR.as_ptr(), hash.as_mut_ptr().cast(), hash.len()) };
    (n == hash.len() as isize).then_some(hash)
}

/// The ELF layout of the entry's bytes. A static-PIE entry is already
/// relocated (relocation writes absolute values, so the bytes are their own
/// relocation, as [`crate::image::from_bytes`] relies on too).
fn inspect(fd: &OwnedFd, len: usize) -> Option<ElfImage> {
    use nix::sys::mman::{mmap, munmap, MapFlags, ProtFlags};
    let len = NonZeroUsize::new(len)?;
    // SAFETY: a fresh read-only private mapping of an immutable file of `len`
    // bytes, unmapped below before anything else uses the address.
    let addr = unsafe { mmap(None, len, ProtFlags::PROT_READ, MapFlags::MAP_PRIVATE, fd, 0) }.ok()?;
    // SAFETY: the mapping is `len` readable bytes, alive until the munmap below.
    let bytes = unsafe { std::slice::from_raw_parts(addr.as_ptr().cast::<u8>(), len.get()) };
    let elf = elf::inspect(bytes).ok();
    // SAFETY: the mapping made above, no longer borrowed.
    let _ = unsafe { munmap(addr, len.get()) };
    elf
}

/// Where the entry for `key` lies (tests tamper with it).
#[cfg(test)]
fn entry_path(cache: &ProgramCache, key: &FileKey) -> PathBuf {
    cache.dir.join(entry_name(key))
}

#[cfg(test)]
#[path = "program_cache_tests.rs"]
mod tests;
