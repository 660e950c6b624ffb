//! Pool slots: a daemon's copy launched before its job arrives.
//!
//! [`prestart`] runs the isolation sequence of [`launch`](super::launch) up to
//! the loader's step 4b (its own process and pid namespace, descriptors,
//! limits, privileges, exec of the loader, the guest's address space with the
//! daemon's memory mapped copy-on-write) and leaves the loader waiting on its
//! start-up socket (`loader.c`, step 4c). [`Slot::start`] hands it one job:
//! the job's CPU time and file size limits (the loader lowers its own), its
//! channels and its sealed layout, as descriptors; the loader
//! places them, maps the job's manifest area, and goes on with steps 5-9 as
//! any guest does: the filter, built for the job's channels, is installed
//! last. A slot has seen nothing but the daemon's memory before its job, and
//! runs exactly one: it is consumed by `start`, and a slot never started is
//! killed and reaped when dropped.

use std::ffi::CString;
use std::io::IoSlice;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::time::Instant;

use nix::sys::socket::{self, ControlMessage, MsgFlags};

use super::spawn::{self, Child, Plan, Rlimit};
use super::{kill_and_reap, loader, namespaces, receive_hello, JailError, Launched};

/// `ZL_SLOT_FD`: the loader waits with its own descriptors from here up, so
/// its job's channels can land below.
pub const SLOT_FD: u64 = 1024;
/// `ZL_SLOT_MAX_FDS`: descriptors one job message carries at most (its
/// channels and its layout; the kernel's limit for one `SCM_RIGHTS`).
pub const MAX_FDS: usize = 253;

/// What a slot needs before its job: everything of a copy but the channels.
pub struct SlotSpec {
    /// The sealed image.
    pub image: RawFd,
    /// The sealed layout of the slot: the daemon's program and memory, no channels.
    pub layout: OwnedFd,
    /// The daemon's memory file.
    pub state: RawFd,
    /// Resource limits until the job's (at least as high as any job's).
    pub rlimits: Vec<Rlimit>,
    /// Whether to ask for namespaces.
    pub namespaces: bool,
    /// Whether a root supervisor's guests share mount, ipc and uts namespaces.
    pub share_namespaces: bool,
    /// The priority (nice) the slot gets back when its job starts, if it was
    /// launched at a lower one.
    pub nice: Option<i32>,
}

/// A launched copy waiting for its job.
#[derive(Debug)]
pub struct Slot {
    child: Option<Child>,
    sock: OwnedFd,
    nice: Option<i32>,
}

/// Launches a slot (see the module doc). The calling thread must outlive the
/// slot and the guest it becomes: the parent-death signal follows it.
pub fn prestart(spec: SlotSpec) -> Result<Slot, JailError> {
    let loader = loader::fd()?;
    let (ours, theirs) = socket::socketpair(
        socket::AddressFamily::Unix,
        socket::SockType::SeqPacket,
        None,
        socket::SockFlag::SOCK_CLOEXEC,
    )
    .map_err(std::io::Error::from)?;
    let child = spawn::spawn(Plan {
        fds: vec![theirs.as_raw_fd(), spec.image, spec.layout.as_raw_fd(), loader, spec.state],
        loader: 3,
        rlimits: spec.rlimits,
        namespaces: spec.namespaces,
        join: if spec.namespaces && spec.share_namespaces { namespaces::shared() } else { None },
        privileged: false,
        argv: vec![CString::new("zerolab-loader").expect("no NUL"), CString::new("p").expect("no NUL")],
    })?;
    Ok(Slot { child: Some(child), sock: ours, nice: spec.nice })
}

impl Slot {
    /// The slot's pid.
    pub fn pid(&self) -> Option<libc::pid_t> {
        self.child.as_ref().map(|c| c.pid)
    }

    /// Whether `channels` (and the layout) fit in one job message.
    pub fn fits(channels: usize) -> bool {
        channels < MAX_FDS
    }

    /// Gives the slot its job: sets its priority back (see [`SlotSpec::nice`]),
    /// sends its `RLIMIT_CPU` and `RLIMIT_FSIZE`
    /// (the loader lowers its own to them: a supervisor without
    /// `CAP_SYS_RESOURCE` may not change another user's), the `channels`
    /// (guest descriptor order) and the job's sealed `layout`, and waits,
    /// until `deadline`, for the guest to start. The slot is used up
    /// whatever happens; on failure its process is killed and reaped.
    pub fn start(
        mut self,
        channels: &[RawFd],
        layout: &OwnedFd,
        (cpu_secs, file_size): (u64, u64),
        deadline: Instant,
    ) -> Result<Launched, JailError> {
        let child = self.child.take().expect("a slot is started once");
        let result = (|| {
            if let Some(nice) = self.nice {
                // Raw: nix has no setpriority.
                // SAFETY: an integer call on our own child.
                if unsafe { libc::setpriority(libc::PRIO_PROCESS, child.pid as libc::id_t, nice) } < 0 {
                    return Err(JailError::Io(std::io::Error::last_os_error()));
                }
            }
            let mut fds: Vec<RawFd> = channels.to_vec();
            fds.push(layout.as_raw_fd());
            let rights = [ControlMessage::ScmRights(&fds)];
            let mut limits = [0u8; 16];
            limits[..8].copy_from_slice(&cpu_secs.to_le_bytes());
            limits[8..].copy_from_slice(&file_size.to_le_bytes());
            socket::sendmsg::<()>(self.sock.as_raw_fd(), &[IoSlice::new(&limits)], &rights, MsgFlags::empty(), None)
                .map_err(std::io::Error::from)?;
            receive_hello(&self.sock, deadline)
        })();
        match result {
            Ok((listener, baseline)) => Ok(Launched { child, listener, baseline }),
            Err(e) => {
                kill_and_reap(&child);
                Err(e)
            }
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Some(child) = self.child.take() {
            kill_and_reap(&child);
        }
    }
}
