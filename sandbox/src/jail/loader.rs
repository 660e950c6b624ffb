//! The embedded guest loader (built from `loader/` by `build.rs`).
//!
//! It is kept in one sealed memfd per process and exec'd from there with
//! `execveat(fd, "", AT_EMPTY_PATH)`, so no file on disk can be swapped under
//! a running supervisor.

use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::OnceLock;

use super::memfd::sealed_memfd_from;

/// The loader binary.
pub static LOADER: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/zvm-loader"));

/// The loader's window (`ZL_LOADER_BASE`, `ZL_LOADER_LEN`), unmapped by `zl_enter`.
pub const WINDOW: std::ops::Range<u64> = 0x100_0000_0000..0x100_0010_0000;

static LOADER_FD: OnceLock<Result<OwnedFd, String>> = OnceLock::new();

/// The sealed memfd holding the loader, created on first use.
pub fn fd() -> std::io::Result<RawFd> {
    let fd = LOADER_FD
        .get_or_init(|| sealed_memfd_from(c"zerolab-loader", |f| f.write_all(LOADER)).map_err(|e| e.to_string()));
    match fd {
        Ok(fd) => Ok(fd.as_raw_fd()),
        Err(e) => Err(std::io::Error::other(format!("cannot create the loader memfd: {e}"))),
    }
}
