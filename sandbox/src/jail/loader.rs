//! The embedded guest loader (built from `loader/` by `build.rs`).
//!
//! It is kept in one sealed memfd per process and exec'd from there with
//! `execveat(fd, "", AT_EMPTY_PATH)`, so no file on disk can be swapped under
//! a running supervisor. A root supervisor makes that memfd execute-only
//! (mode 0o111): the guest, running as `nobody`, cannot read the program it
//! executes, and for such an exec the kernel makes the process non-dumpable
//! from its first instruction (`would_dump` in fs/exec.c), with no window
//! before the loader could ask for it itself. A non-root supervisor's memfd
//! keeps its mode: its guests must stay dumpable (see `spawn`).

use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::fs::PermissionsExt;
use std::sync::OnceLock;

use super::memfd::sealed_memfd_from;

/// The loader binary.
pub static LOADER: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/zvm-loader"));

/// The loader's window (`ZL_LOADER_BASE`, `ZL_LOADER_LEN`), unmapped by `zl_enter`.
pub const WINDOW: std::ops::Range<u64> = 0x100_0000_0000..0x100_0010_0000;

static LOADER_FD: OnceLock<Result<OwnedFd, String>> = OnceLock::new();

/// The sealed memfd holding the loader, created on first use.
pub fn fd() -> std::io::Result<RawFd> {
    let fd = LOADER_FD.get_or_init(|| {
        note_cpuid_faulting();
        let root = nix::unistd::geteuid().is_root();
        sealed_memfd_from(c"zerolab-loader", |f| {
            f.write_all(LOADER)?;
            if root {
                f.set_permissions(std::fs::Permissions::from_mode(0o111))?;
            }
            Ok(())
        })
        .map_err(|e| e.to_string())
    });
    match fd {
        Ok(fd) => Ok(fd.as_raw_fd()),
        Err(e) => Err(std::io::Error::other(format!("cannot create the loader memfd: {e}"))),
    }
}

/// Whether this CPU and kernel can make `cpuid` fault, as the loader asks
/// (`ARCH_SET_CPUID`). Asking to *enable* `cpuid` on this thread, where it is
/// already enabled, changes nothing and fails with `ENODEV` exactly where
/// faulting is unsupported.
fn cpuid_faulting() -> bool {
    const ARCH_SET_CPUID: libc::c_long = 0x1012;
    // Raw: nix has no arch_prctl.
    // SAFETY: arch_prctl with integer arguments; enabling cpuid is a no-op here.
    unsafe { libc::syscall(libc::SYS_arch_prctl, ARCH_SET_CPUID, 1) == 0 }
}

/// Says once per process, in the log, that guests here can run `cpuid`.
fn note_cpuid_faulting() {
    if !cpuid_faulting() {
        tracing::info!(
            "this CPU cannot make `cpuid` fault: a guest can read the CPU's identity through a `cpuid` \
             hidden from the validator (no clock or randomness: rdtsc and rdtscp still fault)"
        );
    }
}
