//! Processes, descriptors and bounded waits.

use std::fs;
use std::os::fd::{AsFd, FromRawFd, OwnedFd};
use std::process::Child;
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout};

/// Opens a pidfd for a process.
pub fn pidfd_open(pid: u32) -> OwnedFd {
    // SAFETY: pidfd_open takes no pointers; the result is checked before use.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    assert!(fd >= 0, "pidfd_open({pid}): {}", std::io::Error::last_os_error());
    // SAFETY: a fresh descriptor that nothing else owns.
    unsafe { OwnedFd::from_raw_fd(fd as i32) }
}

/// Waits until `child` has exited (without reaping it), at most `limit`.
pub fn wait_exit(child: &Child, limit: Duration) -> bool {
    let pidfd = pidfd_open(child.id());
    poll_in(pidfd.as_fd(), limit)
}

/// Waits until `fd` is readable (or hung up), at most `limit`.
pub fn poll_in(fd: std::os::fd::BorrowedFd<'_>, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let ms = i32::try_from(left.as_millis()).unwrap_or(i32::MAX);
        let mut fds = [PollFd::new(fd, PollFlags::POLLIN)];
        match nix::poll::poll(&mut fds, PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX)) {
            Ok(0) => return false,
            Ok(_) => return true,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => panic!("poll: {e}"),
        }
    }
}

/// Reads from `fd` until `want` has been seen (or end of data), at most `limit`.
pub fn read_until(fd: &OwnedFd, want: &str, limit: Duration) -> String {
    let deadline = Instant::now() + limit;
    let mut seen = Vec::new();
    while !String::from_utf8_lossy(&seen).contains(want) {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(poll_in(fd.as_fd(), left), "no {want:?} within {limit:?}; got {:?}", String::from_utf8_lossy(&seen));
        let mut buf = [0u8; 4096];
        let n = nix::unistd::read(fd, &mut buf).expect("read");
        if n == 0 {
            break;
        }
        seen.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&seen).into_owned()
}

/// The parent pid and command name of a process, if it exists and is not a zombie.
pub fn live_process(pid: i32) -> Option<(i32, String)> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // "pid (comm) state ppid ..."; comm may hold spaces and parentheses.
    let (head, rest) = stat.rsplit_once(')')?;
    let comm = head.split_once('(')?.1.to_string();
    let mut f = rest.split_whitespace();
    let state = f.next()?;
    let ppid = f.next()?.parse().ok()?;
    (state != "Z" && state != "X").then_some((ppid, comm))
}

/// Live processes whose parent is `parent`: (pid, comm).
pub fn children_of(parent: i32) -> Vec<(i32, String)> {
    fs::read_dir("/proc")
        .expect("list /proc")
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(|pid| live_process(pid).filter(|(pp, _)| *pp == parent).map(|(_, c)| (pid, c)))
        .collect()
}

/// Whether a command name is a guest's (the loader runs from a sealed memfd).
pub fn is_guest_comm(comm: &str) -> bool {
    comm.starts_with("memfd:zerolab")
}

/// Waits until process `pid` is gone or a zombie, at most `limit`.
pub fn wait_gone(pid: i32, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while live_process(pid).is_some() {
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    true
}

/// The number of open descriptors of this process.
pub fn open_fds() -> usize {
    fs::read_dir("/proc/self/fd").expect("list /proc/self/fd").count()
}
