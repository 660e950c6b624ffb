//! Seccomp user notifications and guest memory access.
//!
//! The supervisor receives the calls the filter did not allow
//! ([`Listener::recv`]), answers each exactly once ([`Listener::respond`],
//! [`Listener::allow`]), and moves bytes in and out of the stopped guest with
//! `process_vm_readv`/`process_vm_writev`. The guest is single-threaded
//! (`clone` is not in its policy) and stopped in the notified call, so what
//! the supervisor reads cannot change before it answers.

use std::io::{self, IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, OwnedFd};

use nix::sys::uio::{process_vm_readv, process_vm_writev, RemoteIoVec};
use nix::unistd::Pid;

use super::seccomp::Call;

// The listener's ioctls are raw `libc` calls: nix has no seccomp notification
// wrappers. Numbers from <linux/seccomp.h>: _IOWR('!', 0, struct seccomp_notif),
// _IOWR('!', 1, struct seccomp_notif_resp).
const NOTIF_RECV: libc::c_ulong = 0xc050_2100;
const NOTIF_SEND: libc::c_ulong = 0xc018_2101;
// _IOW('!', 4, __u64) and SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP (Linux 6.6).
const NOTIF_SET_FLAGS: libc::c_ulong = 0x4008_2104;
const FD_SYNC_WAKE_UP: u64 = 1;
const FLAG_CONTINUE: u32 = 1;

/// A received notification.
#[derive(Debug, Clone, Copy)]
pub struct Notification {
    /// Cookie for the answer.
    pub id: u64,
    /// The call.
    pub call: Call,
}

#[repr(C)]
#[derive(Default)]
struct RawNotif {
    id: u64,
    pid: u32,
    flags: u32,
    nr: i32,
    arch: u32,
    ip: u64,
    args: [u64; 6],
}

#[repr(C)]
struct RawResp {
    id: u64,
    val: i64,
    error: i32,
    flags: u32,
}

/// The listener descriptor the loader sent.
#[derive(Debug)]
pub struct Listener(pub OwnedFd);

impl Listener {
    /// Asks the kernel to hand each notification and answer over on the
    /// current CPU (a direct switch between guest and supervisor instead of
    /// two cross-CPU wake-ups). Kernels before 6.6 lack it; that only costs speed.
    pub fn prefer_sync_wakeups(&self) -> bool {
        // SAFETY: NOTIF_SET_FLAGS takes the flags by value.
        unsafe { libc::ioctl(self.0.as_raw_fd(), NOTIF_SET_FLAGS, FD_SYNC_WAKE_UP) == 0 }
    }

    /// Takes the next notification (blocks; poll the fd first).
    pub fn recv(&self) -> io::Result<Notification> {
        let mut n = RawNotif::default();
        // SAFETY: NOTIF_RECV fills a zeroed struct seccomp_notif of the right size.
        if unsafe { libc::ioctl(self.0.as_raw_fd(), NOTIF_RECV, &mut n) } < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Notification { id: n.id, call: Call { nr: n.nr as u32, arch: n.arch, ip: n.ip, args: n.args } })
    }

    /// Completes the call with `result` (a value, or a negated errno).
    pub fn respond(&self, id: u64, result: i64) -> io::Result<()> {
        let (val, error) = if result < 0 { (0, result as i32) } else { (result, 0) };
        self.send(RawResp { id, val, error, flags: 0 })
    }

    /// Lets the call run as the guest made it. Used only for `mprotect` after
    /// validation: its arguments are plain values the stopped guest cannot change.
    pub fn allow(&self, id: u64) -> io::Result<()> {
        self.send(RawResp { id, val: 0, error: 0, flags: FLAG_CONTINUE })
    }

    fn send(&self, mut resp: RawResp) -> io::Result<()> {
        // SAFETY: NOTIF_SEND reads a struct seccomp_notif_resp.
        if unsafe { libc::ioctl(self.0.as_raw_fd(), NOTIF_SEND, &mut resp) } < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

/// Reads guest memory `[addr, addr + buf.len())`.
pub fn read_guest(pid: libc::pid_t, addr: u64, buf: &mut [u8]) -> io::Result<usize> {
    let remote = [RemoteIoVec { base: addr as usize, len: buf.len() }];
    Ok(process_vm_readv(Pid::from_raw(pid), &mut [IoSliceMut::new(buf)], &remote)?)
}

/// Writes `buf` into guest memory at `addr`.
pub fn write_guest(pid: libc::pid_t, addr: u64, buf: &[u8]) -> io::Result<usize> {
    let remote = [RemoteIoVec { base: addr as usize, len: buf.len() }];
    Ok(process_vm_writev(Pid::from_raw(pid), &[IoSlice::new(buf)], &remote)?)
}
