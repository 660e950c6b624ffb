//! Sealed memory files: how bytes reach the jailed child unchanged.
//!
//! The guest image, the layout and the loader travel as memfds sealed against
//! writes, growth and shrinking, so the bytes the supervisor inspected and
//! validated are exactly the bytes the loader maps: nobody, the supervisor
//! included, can change them afterwards.

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// Creates a memfd, lets `fill` write it, then seals it.
pub fn sealed_memfd_from(name: &std::ffi::CStr, fill: impl FnOnce(&mut File) -> io::Result<()>) -> io::Result<OwnedFd> {
    // SAFETY: memfd_create takes a valid NUL-terminated name and flags; the
    // returned descriptor is checked and owned exactly once below.
    let raw = unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING) };
    if raw < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `raw` is a fresh descriptor nobody else owns.
    let mut file = unsafe { File::from_raw_fd(raw) };
    fill(&mut file)?;
    let fd = OwnedFd::from(file);
    seal(&fd)?;
    Ok(fd)
}

/// Seals a memfd against any further change.
pub fn seal(fd: &OwnedFd) -> io::Result<()> {
    let seals = libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;
    // SAFETY: F_ADD_SEALS on a descriptor we own; no pointers involved.
    if unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_ADD_SEALS, seals) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
