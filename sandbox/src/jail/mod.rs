//! The jail: a guest in its own process, fresh address space and seccomp filter.
//!
//! [`launch`] is the whole isolation sequence, in the order of [`Step`] (the
//! rows of `docs/security.md`'s table):
//!
//! - [`Step::SealedFiles`]: the image, layout and loader are sealed memfds
//!   (`memfd`, `layout`, `loader`): what was validated is what gets mapped;
//!   then a socket pair for the start-up handshake;
//! - [`Step::Namespaces`] to [`Step::ExecLoader`] (`spawn`): the child is
//!   cloned into a new pid namespace and new (or, for a root supervisor,
//!   shared: `namespaces`) user/mount/ipc/uts namespaces, its descriptors are
//!   reduced to the channels, it gets its resource limits, drops its
//!   privileges, sets `no_new_privs` and the parent-death signal and execs
//!   the loader, which a root supervisor made execute-only so the guest is
//!   not dumpable from exec on ([`Step::NotDumpable`], `loader`);
//! - [`Step::MapGuest`] to [`Step::SeccompFilter`] (`loader/loader.c`, policy
//!   in `seccomp`): the loader builds the guest's address space from the
//!   layout alone: image, heap, stack with guard page, read-only manifest
//!   area; it unmaps the vDSO and its own stack, makes `rdtsc`, `rdtscp` and
//!   `cpuid` fault and ignores `SIGXFSZ`, then installs the seccomp filter last;
//! - [`Step::EnterGuest`]: `zl_enter`, in the trampoline page, sends the
//!   filter's listener to the supervisor, unmaps the loader and jumps to the
//!   guest.
//!
//! From then on the supervisor holds the listener: every call the filter did
//! not allow comes to it (`notify`), and it kills the guest for any violation.
//!
//! A step that cannot be applied stops the launch (fail closed); the two
//! exceptions are namespaces, which the kernel may refuse to unprivileged
//! users (the guest then runs without them and the report's log says so), and
//! `cpuid` faulting, which some CPUs lack (the guest then can run `cpuid`, and
//! the log says so once per process).

pub mod layout;
pub mod loader;
pub mod memfd;
pub mod namespaces;
pub mod notify;
pub mod seccomp;
pub mod slot;
pub mod spawn;
pub mod step;

use std::ffi::CString;
use std::io::IoSliceMut;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::time::Instant;

use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{self, ControlMessageOwned, MsgFlags};

use self::notify::Listener;
use self::spawn::{Child, Plan, Rlimit, SpawnError};
pub use self::step::Step;

/// I/O counters of the guest process (from `/proc/PID/io`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IoCounters {
    /// Bytes read.
    pub rchar: u64,
    /// Bytes written.
    pub wchar: u64,
    /// Read calls.
    pub syscr: u64,
    /// Write calls.
    pub syscw: u64,
}

impl IoCounters {
    /// Parses the text of `/proc/PID/io`.
    pub fn parse(text: &str) -> Option<Self> {
        let mut c = IoCounters::default();
        let mut seen = 0;
        for line in text.lines() {
            let Some((k, v)) = line.split_once(':') else { continue };
            let Ok(v) = v.trim().parse() else { continue };
            match k {
                "rchar" => c.rchar = v,
                "wchar" => c.wchar = v,
                "syscr" => c.syscr = v,
                "syscw" => c.syscw = v,
                _ => continue,
            }
            seen += 1;
        }
        (seen == 4).then_some(c)
    }

    /// Reads the counters of process `pid` (a zombie still has them).
    pub fn of(pid: libc::pid_t) -> Option<Self> {
        Self::parse(&std::fs::read_to_string(format!("/proc/{pid}/io")).ok()?)
    }
}

/// A guest that has entered its first instruction.
#[derive(Debug)]
pub struct Launched {
    /// The guest process.
    pub child: Child,
    /// Where its disallowed calls arrive.
    pub listener: Listener,
    /// Its I/O counters just before the guest ran, if /proc was readable.
    pub baseline: Option<IoCounters>,
}

/// Why a guest could not be launched.
#[derive(Debug, thiserror::Error)]
pub enum JailError {
    /// Creating the child failed.
    #[error(transparent)]
    Spawn(#[from] SpawnError),
    /// The loader reported a failure.
    #[error("guest loader failed: {0}")]
    Loader(String),
    /// The start-up handshake did not complete in time.
    #[error("guest loader did not start within the session's time")]
    StartTimeout,
    /// Local resource failure (socketpair, memfd, poll).
    #[error("cannot set up the jail")]
    Io(#[from] std::io::Error),
}

/// What the jail needs for one guest.
pub struct Spec {
    /// Channel descriptors in guest descriptor order (`0..N`).
    pub channels: Vec<RawFd>,
    /// The sealed image.
    pub image: RawFd,
    /// The sealed layout file.
    pub layout: OwnedFd,
    /// Resource limits for the child.
    pub rlimits: Vec<Rlimit>,
    /// Whether to ask for namespaces.
    pub namespaces: bool,
    /// Whether a root supervisor's guests share mount, ipc and uts namespaces.
    pub share_namespaces: bool,
    /// A daemon's memory file, for its copies (the layout says where it goes).
    pub state: Option<RawFd>,
}

/// Runs the isolation sequence (see the module doc) and returns once the
/// guest is running with the supervisor holding its listener.
pub fn launch(spec: Spec, deadline: Instant) -> Result<Launched, JailError> {
    // Step::SealedFiles: the sealed files exist; then the handshake socket.
    let loader = loader::fd()?;
    let (ours, theirs) = socket::socketpair(
        socket::AddressFamily::Unix,
        socket::SockType::SeqPacket,
        None,
        socket::SockFlag::SOCK_CLOEXEC,
    )
    .map_err(std::io::Error::from)?;
    let n = spec.channels.len();
    let mut fds = spec.channels;
    fds.extend([theirs.as_raw_fd(), spec.image, spec.layout.as_raw_fd(), loader]);
    fds.extend(spec.state);
    // Step::Namespaces to Step::ExecLoader: the child, up to exec of the loader.
    let child = spawn::spawn(Plan {
        fds,
        loader: n + 3,
        rlimits: spec.rlimits,
        namespaces: spec.namespaces,
        join: if spec.namespaces && spec.share_namespaces { namespaces::shared() } else { None },
        privileged: false,
        argv: vec![CString::new("zerolab-loader").expect("no NUL"), CString::new(n.to_string()).expect("digits")],
    })?;
    drop(theirs);
    drop(spec.layout);
    // Step::MapGuest to Step::EnterGuest run in the child; wait for the listener.
    match receive_hello(&ours, deadline) {
        Ok((listener, baseline)) => Ok(Launched { child, listener, baseline }),
        Err(e) => {
            kill_and_reap(&child);
            Err(e)
        }
    }
}

fn receive_hello(sock: &OwnedFd, deadline: Instant) -> Result<(Listener, Option<IoCounters>), JailError> {
    let left = deadline.saturating_duration_since(Instant::now());
    let mut pfd = [PollFd::new(sock.as_fd(), PollFlags::POLLIN)];
    let ms = PollTimeout::try_from(left.as_millis().min(i32::MAX as u128) as i32).unwrap_or(PollTimeout::MAX);
    if nix::poll::poll(&mut pfd, ms).map_err(std::io::Error::from)? == 0 {
        return Err(JailError::StartTimeout);
    }
    let mut buf = [0u8; 256];
    let mut cmsg = nix::cmsg_space!([RawFd; 1]);
    let mut iov = [IoSliceMut::new(&mut buf)];
    let msg = socket::recvmsg::<()>(sock.as_raw_fd(), &mut iov, Some(&mut cmsg), MsgFlags::MSG_CMSG_CLOEXEC)
        .map_err(std::io::Error::from)?;
    let mut listener = None;
    for c in msg.cmsgs().map_err(std::io::Error::from)? {
        if let ControlMessageOwned::ScmRights(fds) = c {
            for fd in fds {
                // SAFETY: SCM_RIGHTS just installed this descriptor for us.
                let owned = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
                listener.get_or_insert(owned);
            }
        }
    }
    let len = msg.bytes;
    let data = &buf[..len];
    let Some(listener) = listener else {
        let text = String::from_utf8_lossy(data).trim().to_string();
        return Err(JailError::Loader(if text.is_empty() { "exited before the guest started".into() } else { text }));
    };
    let word = |i: usize| u64::from_le_bytes(data[i * 8..i * 8 + 8].try_into().expect("8 bytes"));
    let baseline = (len == layout::HELLO_SIZE && word(4) == 1).then(|| IoCounters {
        rchar: word(0),
        wchar: word(1),
        syscr: word(2),
        syscw: word(3),
    });
    let listener = Listener(listener);
    listener.prefer_sync_wakeups();
    Ok((listener, baseline))
}

/// Kills a child and waits for it (the signal raw: nix has no pidfd_send_signal).
pub fn kill_and_reap(child: &Child) {
    // SAFETY: pidfd_send_signal on our own pidfd, no pointers but the null info.
    unsafe {
        libc::syscall(libc::SYS_pidfd_send_signal, child.pidfd.as_raw_fd(), libc::SIGKILL, std::ptr::null::<u8>(), 0);
    }
    let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(child.pid), None);
}
