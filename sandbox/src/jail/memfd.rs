//! Sealed memory files: how bytes reach the jailed child unchanged.
//!
//! The guest image, the layout and the loader travel as memfds sealed against
//! writes, growth and shrinking, so the bytes the supervisor inspected and
//! validated are exactly the bytes the loader maps: nobody, the supervisor
//! included, can change them afterwards.

use std::fs::File;
use std::io;
use std::os::fd::OwnedFd;

use nix::fcntl::{fcntl, FcntlArg, SealFlag};
use nix::sys::memfd::{memfd_create, MFdFlags};

/// Creates a memfd, lets `fill` write it, then seals it.
pub fn sealed_memfd_from(name: &std::ffi::CStr, fill: impl FnOnce(&mut File) -> io::Result<()>) -> io::Result<OwnedFd> {
    let mut file = File::from(memfd_create(name, MFdFlags::MFD_CLOEXEC | MFdFlags::MFD_ALLOW_SEALING)?);
    fill(&mut file)?;
    let fd = OwnedFd::from(file);
    seal(&fd)?;
    Ok(fd)
}

/// Seals a memfd against any further change.
pub fn seal(fd: &OwnedFd) -> io::Result<()> {
    let seals = SealFlag::F_SEAL_SEAL | SealFlag::F_SEAL_SHRINK | SealFlag::F_SEAL_GROW | SealFlag::F_SEAL_WRITE;
    fcntl(fd, FcntlArg::F_ADD_SEALS(seals))?;
    Ok(())
}
