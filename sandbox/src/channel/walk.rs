//! The path walk behind [`open_path`](super::open_path): a host path opened one
//! component at a time with the supervisor's credentials, so that what is
//! followed and what is opened are checked on descriptors, not on names a
//! racing user can change.
//!
//! The kernel's own defence against planted links (`fs.protected_symlinks`) is
//! a sysctl that is off on some machines. The walk applies the same rule
//! itself, whatever the sysctl says, the `protected_regular` and
//! `protected_fifos` rules (at their stricter level 2) to every writable open,
//! and refuses hard-linked files in sticky directories (`protected_hardlinks`).
//!
//! For each component, in order:
//! 1. `openat(dir, name, O_PATH|O_NOFOLLOW)`: the name looked up in a directory
//!    we hold open and have checked, without following it and without opening
//!    the object (opening some devices has side effects); renaming anything
//!    above the held directory cannot move the walk.
//! 2. `fstat` that descriptor. A directory must be on an ordinary file system
//!    (`source.rs`) before the walk enters it, so nothing under procfs, sysfs and
//!    the like is reached, the magic links in `/proc/*/fd` included, whatever
//!    path or link leads there (`/dev/fd/N`, `/dev/stdin`).
//! 3. A symbolic link is followed only if the kernel's `protected_symlinks`
//!    rule allows it: the link is not in a sticky world-writable directory, or
//!    it belongs to the supervisor's euid or to the directory's owner. Its target
//!    is read from the same descriptor (`readlinkat(fd, "")`), so the link
//!    checked is the link followed. At most 40 links, as the kernel.
//! 4. The last component, not a link, is checked as a source (`source.rs`) on
//!    its O_PATH descriptor. In a sticky directory others can write, a regular
//!    file must have one link (a planted hard link reaches a file elsewhere when
//!    `fs.protected_hardlinks` is off), and if it is to be written, a regular
//!    file or FIFO must not belong to another user (unless that user owns the
//!    directory). Only then is it opened, by reopening that
//!    very descriptor through `/proc/thread-self/fd`, so the object opened is the
//!    object checked; an output is truncated only after that, on the descriptor.
//! 5. A missing output is created with `O_CREAT|O_EXCL` in the held directory:
//!    it is new and the supervisor's, or the name was taken meanwhile and the
//!    component is looked up again (a few times at most).
//!
//! Where the directories before the last component are plain ones on one
//! mount, steps 1-3 for them are taken in one `openat2` call
//! (`skip_plain_directories`, which says why that is the same walk).
//!
//! The walk runs with the supervisor's credentials, not those of the user who
//! asked (`SUDO_UID` under `sudo zvsh`): that user can already run anything as
//! root through sudo, the node agent's callers can already run anything as the
//! agent's user, and the attack is a third user's plant, which the rules above
//! stop whoever asked. Borrowing the asker's uid would need a per-thread fsuid
//! switch around every open and would guard no boundary that exists.

use std::collections::VecDeque;
use std::ffi::{OsStr, OsString};
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{fcntl, openat, openat2, readlinkat, FcntlArg, OFlag, OpenHow, ResolveFlag, AT_FDCWD};
use nix::sys::stat::{fstat, FileStat, Mode, SFlag};

use super::source::{classify, on_ordinary_fs, Access, Fail, Kind, Refusal};

/// Symbolic links followed in one walk at most (the kernel's limit).
const MAX_LINKS: u32 = 40;
/// Times a missing output's name may be taken between lookup and creation.
const MAX_RACES: u32 = 8;

/// A directory held open, and how to name it in messages.
struct Dir {
    fd: OwnedFd,
    shown: PathBuf,
}

/// Opens `path` for `access` as the module doc says.
pub(crate) fn open(path: &Path, access: Access, deadline: Instant) -> Result<(OwnedFd, Kind), Fail> {
    let me = nix::unistd::geteuid().as_raw();
    if path.as_os_str().is_empty() {
        return Err(if access.read { Fail::Missing } else { Errno::ENOENT.into() });
    }
    let mut dir = if path.is_absolute() { root()? } else { enter(AT_FDCWD, ".", PathBuf::new())? };
    let mut pending = components(path.as_os_str());
    skip_plain_directories(&mut dir, &mut pending);
    let (mut links, mut races) = (0, 0);
    while let Some(name) = pending.pop_front() {
        let last = pending.is_empty();
        if name == ".." {
            let mut shown = dir.shown.clone();
            shown.pop();
            dir = enter(&dir.fd, "..", shown)?;
            if last {
                return Err(Refusal::Directory.into());
            }
            continue;
        }
        let flags = OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let found = match openat(&dir.fd, name.as_os_str(), flags, Mode::empty()) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) if last && access.output() => match create(&dir, &name)? {
                Some(fd) => return Ok((fd, Kind::Regular)),
                None if races < MAX_RACES => {
                    races += 1;
                    pending.push_front(name);
                    continue;
                }
                None => return Err(Errno::EEXIST.into()),
            },
            Err(Errno::ENOENT) if access.read => return Err(Fail::Missing),
            Err(e) => return Err(e.into()),
        };
        let st = fstat(&found)?;
        let shown = dir.shown.join(&name);
        match SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits()) {
            SFlag::S_IFLNK => {
                check_link(&dir, &st, &shown, me)?;
                links += 1;
                if links > MAX_LINKS {
                    return Err(Errno::ELOOP.into());
                }
                let target = readlinkat(&found, "")?;
                if target.is_empty() {
                    return Err(Errno::ENOENT.into());
                }
                if target.as_bytes().starts_with(b"/") {
                    dir = root()?;
                }
                let mut next = components(&target);
                next.extend(pending);
                pending = next;
            }
            SFlag::S_IFDIR if !last => {
                on_ordinary_fs(found.as_fd(), &|| shown.display().to_string())?;
                dir = Dir { fd: found, shown };
            }
            _ if !last => return Err(Errno::ENOTDIR.into()),
            _ => return finish(&dir, &found, &st, &shown, access, deadline, me),
        }
    }
    // The path (or the last link's target) ends in a directory: `/`, `/tmp/..`.
    Err(Refusal::Directory.into())
}

/// Steps 1-3 for every component but the last in one call, where that is
/// the same walk: `openat2` with `RESOLVE_NO_SYMLINKS` (magic links
/// included) and `RESOLVE_NO_XDEV` reaches the last component's directory
/// only through directories, with no link followed, all on the mount of
/// `dir` (already checked to be on an ordinary file system), so each would
/// have passed steps 2 and 3. Paths with `..` are left to the walk. On any
/// failure (a link or a mount on the way, a missing directory, a kernel
/// without `openat2`) nothing changes and the walk goes component by
/// component, saying what it finds. A deep path costs three system calls
/// instead of four per component.
fn skip_plain_directories(dir: &mut Dir, pending: &mut VecDeque<OsString>) {
    if pending.len() < 2 || pending.iter().any(|c| c == "..") {
        return;
    }
    let last = pending.len() - 1;
    let mut between = PathBuf::new();
    between.extend(pending.range(..last));
    let how = OpenHow::new()
        .flags(OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_NO_SYMLINKS | ResolveFlag::RESOLVE_NO_XDEV);
    if let Ok(fd) = openat2(&dir.fd, &between, how) {
        *dir = Dir { fd, shown: dir.shown.join(&between) };
        pending.drain(..last);
    }
}

/// The path's components, without empty ones and `.`.
fn components(path: &OsStr) -> VecDeque<OsString> {
    path.as_bytes()
        .split(|b| *b == b'/')
        .filter(|c| !c.is_empty() && *c != b".")
        .map(|c| OsStr::from_bytes(c).to_owned())
        .collect()
}

fn root() -> Result<Dir, Fail> {
    enter(AT_FDCWD, "/", PathBuf::from("/"))
}

/// Opens the directory `name` in `at` to walk on from, if it is on an ordinary
/// file system.
fn enter(at: impl AsFd, name: &str, shown: PathBuf) -> Result<Dir, Fail> {
    let flags = OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
    let fd = openat(at, name, flags, Mode::empty())?;
    let named = if shown.as_os_str().is_empty() { PathBuf::from(".") } else { shown.clone() };
    on_ordinary_fs(fd.as_fd(), &|| named.display().to_string())?;
    Ok(Dir { fd, shown })
}

/// The `protected_symlinks` rule for the link with status `st` in `dir`.
fn check_link(dir: &Dir, st: &FileStat, shown: &Path, me: u32) -> Result<(), Fail> {
    let d = fstat(&dir.fd)?;
    let guarded = libc::S_ISVTX | libc::S_IWOTH;
    if d.st_mode & guarded == guarded && st.st_uid != me && st.st_uid != d.st_uid {
        return Err(Refusal::PlantedSymlink {
            link: shown.display().to_string(),
            owner: st.st_uid,
            dir: dir.shown.display().to_string(),
            dir_owner: d.st_uid,
            me,
        }
        .into());
    }
    Ok(())
}

/// The rules for an object with status `st` in `dir` when `dir` is sticky and
/// others can write it: a regular file with more than one link is refused
/// (a hard link planted there reaches a file elsewhere, whoever owns it, when
/// `fs.protected_hardlinks` is off), and so is writing a regular file or FIFO
/// that another user owns unless they own the directory (the kernel's
/// `protected_regular`/`protected_fifos` rules at level 2).
fn check_sticky(dir: &Dir, st: &FileStat, kind: Kind, access: Access, me: u32) -> Result<(), Fail> {
    let d = fstat(&dir.fd)?;
    let others_write = libc::S_IWGRP | libc::S_IWOTH;
    if d.st_mode & libc::S_ISVTX == 0 || d.st_mode & others_write == 0 {
        return Ok(());
    }
    let shown = dir.shown.display().to_string();
    if kind == Kind::Regular && st.st_nlink > 1 {
        return Err(Refusal::HardLinked { links: st.st_nlink, dir: shown }.into());
    }
    let planted = matches!(kind, Kind::Regular | Kind::Fifo) && st.st_uid != me && st.st_uid != d.st_uid;
    if access.write && planted {
        return Err(Refusal::PlantedFile {
            kind: if kind == Kind::Fifo { "FIFO" } else { "regular file" },
            owner: st.st_uid,
            dir: shown,
            dir_owner: d.st_uid,
            me,
        }
        .into());
    }
    Ok(())
}

/// Creates the missing output `name` in `dir`; `None` if the name was taken
/// meanwhile.
fn create(dir: &Dir, name: &OsStr) -> Result<Option<OwnedFd>, Fail> {
    let flags =
        OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_NOCTTY | OFlag::O_CLOEXEC;
    match openat(&dir.fd, name, flags, Mode::from_bits_truncate(0o644)) {
        Ok(fd) => Ok(Some(fd)),
        Err(Errno::EEXIST) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Checks the last component (O_PATH descriptor `found`, status `st`) and opens it.
fn finish(
    dir: &Dir,
    found: &OwnedFd,
    st: &FileStat,
    shown: &Path,
    access: Access,
    deadline: Instant,
    me: u32,
) -> Result<(OwnedFd, Kind), Fail> {
    let kind = classify(found.as_fd(), st, false, &shown.display().to_string())?;
    check_sticky(dir, st, kind, access, me)?;
    let fd = reopen(found, access, kind, deadline)?;
    let now = fstat(&fd)?;
    if (now.st_dev, now.st_ino) != (st.st_dev, st.st_ino) {
        return Err(io::Error::other("it changed while it was being opened; try again").into());
    }
    if kind != Kind::Regular {
        set_blocking(&fd)?;
    }
    if access.output() && kind == Kind::Regular {
        nix::unistd::ftruncate(&fd, 0)?;
    }
    Ok((fd, kind))
}

/// Opens the object behind the O_PATH descriptor `found` for `access`, waiting
/// until `deadline` for a write-only FIFO's reader.
fn reopen(found: &OwnedFd, access: Access, kind: Kind, deadline: Instant) -> Result<OwnedFd, Fail> {
    let proc = format!("/proc/thread-self/fd/{}", found.as_raw_fd());
    // Not blocking, so that opening a FIFO or a device never waits; a
    // regular file's open never does.
    let nonblock = if kind == Kind::Regular { OFlag::empty() } else { OFlag::O_NONBLOCK };
    let flags = OFlag::from_bits_retain(access.mode()) | nonblock | OFlag::O_NOCTTY | OFlag::O_CLOEXEC;
    loop {
        match nix::fcntl::open(proc.as_str(), flags, Mode::empty()) {
            Ok(fd) => return Ok(fd),
            Err(Errno::ENXIO) if kind == Kind::Fifo && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(2));
            }
            Err(Errno::ENXIO) if kind == Kind::Fifo => return Err(Fail::NoReader),
            Err(Errno::ENOENT) => {
                let e = io::Error::new(io::ErrorKind::NotFound, "cannot reopen it through /proc; is /proc mounted?");
                return Err(e.into());
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Clears `O_NONBLOCK` (set so that opening a FIFO or a device never blocks).
fn set_blocking(fd: &OwnedFd) -> Result<(), Fail> {
    let flags = OFlag::from_bits_retain(fcntl(fd, FcntlArg::F_GETFL)?);
    fcntl(fd, FcntlArg::F_SETFL(flags & !OFlag::O_NONBLOCK))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::os::unix::fs::symlink;

    use super::super::source::{open_path, SourceError};
    use super::*;

    fn later() -> Instant {
        Instant::now() + Duration::from_secs(1)
    }

    fn read(path: &Path) -> Result<String, SourceError> {
        let (mut file, kind) = open_path(path, Access::READ, later())?;
        assert_eq!(kind, Kind::Regular);
        let mut s = String::new();
        file.read_to_string(&mut s).unwrap();
        Ok(s)
    }

    #[test]
    fn dot_dot_and_relative_links_resolve_as_the_kernel_resolves_them() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("a/b")).unwrap();
        std::fs::write(dir.path().join("a/file"), "in a\n").unwrap();
        symlink("b/../file", dir.path().join("a/rel")).unwrap();
        symlink("../../a/./rel", dir.path().join("a/b/up")).unwrap();
        assert_eq!(read(&dir.path().join("a/b/up")).unwrap(), "in a\n");
        assert_eq!(read(&dir.path().join("a/b/../b/../file")).unwrap(), "in a\n");
        assert!(matches!(read(&dir.path().join("a/b/..")), Err(SourceError::Refused { what: Refusal::Directory, .. })));
        assert!(matches!(read(&dir.path().join("a/none")), Err(SourceError::Missing { .. })));
    }

    #[test]
    fn a_link_loop_is_an_error_not_a_hang() {
        let dir = tempfile::tempdir().unwrap();
        symlink("b", dir.path().join("a")).unwrap();
        symlink("a", dir.path().join("b")).unwrap();
        match read(&dir.path().join("a")) {
            Err(SourceError::Open { source, .. }) => assert_eq!(source.raw_os_error(), Some(libc::ELOOP)),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_output_is_created_through_a_dangling_link_and_truncated_when_it_exists() {
        let dir = tempfile::tempdir().unwrap();
        symlink(dir.path().join("target"), dir.path().join("out")).unwrap();
        let (mut file, kind) = open_path(&dir.path().join("out"), Access::WRITE, later()).unwrap();
        assert_eq!(kind, Kind::Regular);
        file.write_all(b"first, longer\n").unwrap();
        let (mut file, _) = open_path(&dir.path().join("out"), Access::WRITE, later()).unwrap();
        file.write_all(b"second\n").unwrap();
        assert_eq!(std::fs::read_to_string(dir.path().join("target")).unwrap(), "second\n");
        let missing = open_path(&dir.path().join("no/such/dir"), Access::WRITE, later()).unwrap_err();
        assert!(matches!(&missing, SourceError::Open { source, .. } if source.raw_os_error() == Some(libc::ENOENT)));
    }

    #[test]
    fn links_and_planted_links_between_directories_are_walked_not_skipped() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("real/deeper")).unwrap();
        std::fs::write(dir.path().join("real/deeper/file"), "deep\n").unwrap();
        symlink("real", dir.path().join("link")).unwrap();
        assert_eq!(read(&dir.path().join("real/deeper/file")).unwrap(), "deep\n");
        assert_eq!(read(&dir.path().join("link/deeper/file")).unwrap(), "deep\n");
        if !nix::unistd::geteuid().is_root() {
            return eprintln!("skipped the planted link: needs root to give the link another owner");
        }
        // A link in a sticky, world-writable directory that neither we nor the
        // directory's owner own is refused even in the middle of a path.
        let sticky = dir.path().join("sticky");
        std::fs::create_dir(&sticky).unwrap();
        std::fs::set_permissions(&sticky, std::os::unix::fs::PermissionsExt::from_mode(0o1777)).unwrap();
        symlink(dir.path().join("real"), sticky.join("planted")).unwrap();
        std::os::unix::fs::lchown(sticky.join("planted"), Some(54321), Some(54321)).unwrap();
        match read(&sticky.join("planted/deeper/file")) {
            Err(SourceError::Refused { what: Refusal::PlantedSymlink { owner: 54321, .. }, .. }) => {}
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn kernel_files_and_devices_are_refused_before_they_are_opened() {
        for (path, fs) in
            [("/proc/self/mem", "procfs"), ("/sys/kernel/uevent_seqnum", "sysfs"), ("/dev/fd/0", "procfs")]
        {
            match open_path(Path::new(path), Access::READ, later()) {
                Err(SourceError::Refused { what: Refusal::KernelFs { fs: found, .. }, .. }) => assert_eq!(found, fs),
                other => panic!("{path}: {other:?}"),
            }
        }
        let kmsg = open_path(Path::new("/dev/kmsg"), Access::READ, later()).unwrap_err();
        assert!(matches!(kmsg, SourceError::Refused { what: Refusal::Device { major: 1, minor: 11 }, .. }), "{kmsg:?}");
        assert_eq!(kmsg.code(), crate::codes::ReturnCode::UnsupportedSource);
        assert_eq!(open_path(Path::new("/dev/null"), Access::WRITE, later()).unwrap().1, Kind::Device);
    }
}
