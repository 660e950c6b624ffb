//! Mount, ipc and uts namespaces shared by a root supervisor's guests.
//!
//! Creating a mount namespace copies the host's mount tree and destroying it
//! waits for the kernel to release it: about 100-150 µs of every guest's life
//! on these machines. A guest has no file-system, IPC or hostname calls in its
//! policy, so one set of these namespaces, made once per process, isolates it
//! from the host as well as a fresh set would; each guest still gets its own
//! pid namespace. The namespaces are made by the loader in holder mode (a
//! short-lived root process that unshares them, makes every mount private and
//! sets the hostname `zerolab`); the supervisor keeps descriptors to them and
//! guests `setns` into them before exec. Without root, or if anything fails,
//! [`shared`] returns `None` and every guest gets namespaces of its own.

use std::ffi::CString;
use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::sync::OnceLock;

use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sys::socket;

use super::loader;
use super::spawn::{self, Plan};

struct Shared {
    fds: [OwnedFd; 3],
}

static SHARED: OnceLock<Option<Shared>> = OnceLock::new();

/// Descriptors of the shared (mount, ipc, uts) namespaces, made on first use;
/// `None` when the supervisor is not root or they could not be made.
pub fn shared() -> Option<[RawFd; 3]> {
    if !nix::unistd::geteuid().is_root() {
        return None;
    }
    let shared = SHARED.get_or_init(|| match create() {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!("cannot create the shared guest namespaces ({e}); each guest gets its own");
            None
        }
    });
    shared.as_ref().map(|s| s.fds.each_ref().map(AsRawFd::as_raw_fd))
}

fn create() -> std::io::Result<Shared> {
    let (ours, theirs) = socket::socketpair(
        socket::AddressFamily::Unix,
        socket::SockType::Stream,
        None,
        socket::SockFlag::SOCK_CLOEXEC,
    )?;
    let holder = spawn::spawn(Plan {
        fds: vec![theirs.as_raw_fd(), loader::fd()?],
        loader: 1,
        rlimits: Vec::new(),
        namespaces: false,
        join: None,
        privileged: true,
        argv: vec![CString::new("zerolab-nsholder").expect("no NUL"), CString::new("h").expect("no NUL")],
    })
    .map_err(std::io::Error::other)?;
    drop(theirs);
    let opened = (|| {
        let mut pfd = [PollFd::new(ours.as_fd(), PollFlags::POLLIN)];
        if nix::poll::poll(&mut pfd, PollTimeout::from(2000u16))? == 0 {
            return Err(std::io::Error::other("the namespace holder did not answer"));
        }
        let mut ready = [0u8; 1];
        let mut sock = std::fs::File::from(ours.try_clone()?);
        if sock.read(&mut ready)? != 1 || ready[0] != b'k' {
            return Err(std::io::Error::other("the namespace holder failed to unshare"));
        }
        let open = |kind: &str| -> std::io::Result<OwnedFd> {
            Ok(std::fs::File::open(format!("/proc/{}/ns/{kind}", holder.pid))?.into())
        };
        Ok(Shared { fds: [open("mnt")?, open("ipc")?, open("uts")?] })
    })();
    // Closing our end lets the holder exit; the namespaces live on in `fds`.
    drop(ours);
    let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(holder.pid), None);
    opened
}
