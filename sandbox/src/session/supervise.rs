//! The supervisor: waits for the guest, answers its notified calls, enforces
//! `Timeout`, and writes the report.
//!
//! One loop per session polls the guest's pidfd and its seccomp listener
//! until the guest exits or the deadline passes. Each notification is decided
//! again with [`Policy::decide`]; mediated reads and writes are performed here
//! against the channel with exact limit accounting, `zvm_jail` regions are
//! validated before the kernel may apply them, and anything else kills the
//! guest with the call named in the report. No wait here is unbounded: channel
//! I/O on pipes and sockets waits at most until the session's deadline, and a
//! `zvm_jail` region is validated in 1 MiB pieces with the deadline checked
//! between them (the supervisor's memory stays flat whatever the region).
//! A mediated call on a sequential channel ignores its offset, and a random
//! write never takes a file past its size at start plus `put_size`.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sys::wait::{waitid, Id, WaitPidFlag};

use super::describe::describe_violation;

mod ending;
use crate::channel::{Channel, SocketBytes};
use crate::codes::ReturnCode;
use crate::jail::notify::{self, Listener};
use crate::jail::seccomp::{nr, Call, Policy, Verdict};
use crate::jail::spawn::Child;
use crate::jail::{IoCounters, Launched};
use crate::report::{Report, Traffic};
use crate::validator;

const EINVAL: i64 = -(libc::EINVAL as i64);
const EDQUOT: i64 = -(libc::EDQUOT as i64);
const EPERM: i64 = -(libc::EPERM as i64);
const ENOSYS: i64 = -(libc::ENOSYS as i64);
/// Largest single transfer the supervisor makes for a mediated call.
const CHUNK: usize = 1 << 20;

/// Per-channel usage of a mediated channel.
#[derive(Debug, Default)]
struct Usage {
    traffic: Traffic,
    etag: Option<blake3::Hasher>,
    /// The channel refused `RWF_NOWAIT`: poll before every transfer.
    blocking_only: bool,
    /// How far a random write may reach: the file's size at start plus
    /// `put_size` (`u64::MAX` for anything but a writable regular file).
    end: u64,
}

#[derive(Debug, Clone, Copy)]
enum Dir {
    Read,
    Write,
}

/// A channel as it was just before the guest ran.
#[derive(Debug)]
pub(super) struct AtStart {
    /// A direct network channel's socket counters.
    pub socket: Option<SocketBytes>,
    /// How far its file may grow (see `Usage::end`).
    pub end: u64,
}

/// The guest's memory as the supervisor sees it.
#[derive(Debug, Clone)]
pub(super) struct GuestMemory {
    /// The heap: start and size.
    pub heap: (u64, u64),
    /// Every page range the guest can write (writable segments, heap, stack),
    /// and whether it is anonymous (a page never touched is zeros).
    pub writable: Vec<(u64, u64, bool)>,
    /// A daemon: `zvm_fork` makes it the template of its copies.
    pub daemon: bool,
    /// A daemon's copy (its report's daemon line says so).
    pub copy: bool,
}

/// A running guest.
#[derive(Debug)]
pub struct Session {
    child: Child,
    listener: Listener,
    baseline: Option<IoCounters>,
    channels: Vec<Channel>,
    /// Each direct network channel's socket counters before the guest ran.
    net_start: Vec<Option<SocketBytes>>,
    usage: Vec<Usage>,
    /// Channel index for each mediated guest descriptor, from `policy.mediated.start`.
    mediated: Vec<usize>,
    policy: Policy,
    memory: GuestMemory,
    /// A daemon's memory, taken at its `zvm_fork` (or why it could not be).
    forked: Option<std::io::Result<super::daemon::Template>>,
    deadline: Instant,
    buf: Vec<u8>,
    killed: Option<(String, ReturnCode)>,
    listening: bool,
    /// Why a [`KillHandle`] killed the guest, set before it signals it.
    killed_elsewhere: Arc<OnceLock<String>>,
    /// What the guest passed to `zvm_exit`, and its counters at that moment.
    exit: Option<(i64, Option<IoCounters>)>,
    /// Hold the guest at its `zvm_exit` (`wait_early`) ...
    hold_exit: bool,
    /// ... and the notification held there, not yet answered.
    held_exit: Option<u64>,
}

/// Kills a session's guest from another thread; its report then says `killed`, or
/// the reason given to [`KillHandle::kill_because`].
#[derive(Debug, Clone)]
pub struct KillHandle {
    pidfd: Arc<OwnedFd>,
    why: Arc<OnceLock<String>>,
}

impl KillHandle {
    /// Kills the guest now (a no-op once it has ended).
    pub fn kill(&self) {
        self.kill_because("killed");
    }

    /// Kills the guest now, its report's exit state `why` (`lease expired`, say); the
    /// first reason given wins.
    pub fn kill_because(&self, why: &str) {
        let _ = self.why.set(why.to_owned());
        kill_pidfd(&self.pidfd);
    }
}

/// How the guest ended, before the report is written.
struct End {
    status: libc::c_int,
    io: Option<IoCounters>,
    rusage: libc::rusage,
}

impl Session {
    pub(super) fn new(
        launched: Launched,
        channels: Vec<Channel>,
        at_start: Vec<AtStart>,
        fd_of: Vec<u32>,
        policy: Policy,
        memory: GuestMemory,
        deadline: Instant,
    ) -> Session {
        let start = policy.mediated.start;
        let mut mediated = vec![0; (policy.mediated.end - start) as usize];
        for (i, &fd) in fd_of.iter().enumerate() {
            if policy.mediated.contains(&fd) {
                mediated[(fd - start) as usize] = i;
            }
        }
        let usage = channels
            .iter()
            .zip(&at_start)
            .map(|(c, s)| Usage { etag: c.etag.then(blake3::Hasher::new), end: s.end, ..Usage::default() })
            .collect();
        Session {
            child: launched.child,
            listener: launched.listener,
            baseline: launched.baseline,
            channels,
            net_start: at_start.into_iter().map(|s| s.socket).collect(),
            usage,
            mediated,
            policy,
            memory,
            forked: None,
            deadline,
            buf: Vec::new(),
            killed: None,
            listening: true,
            killed_elsewhere: Arc::new(OnceLock::new()),
            exit: None,
            hold_exit: false,
            held_exit: None,
        }
    }

    /// The guest's pid (in the supervisor's pid namespace).
    pub fn pid(&self) -> libc::pid_t {
        self.child.pid
    }

    /// A handle another thread can use to kill the guest.
    pub fn kill_handle(&self) -> std::io::Result<KillHandle> {
        Ok(KillHandle { pidfd: Arc::new(self.child.pidfd.try_clone()?), why: Arc::clone(&self.killed_elsewhere) })
    }

    /// Supervises the guest until it ends, then reports.
    pub fn wait(mut self) -> Report {
        loop {
            if let Some(end) = self.supervise(None) {
                return self.finish(end);
            }
        }
    }

    /// Supervises the guest until it ends or `until` passes, whichever is
    /// first. Returns the report if it ended, else the session to wait on again
    /// (the session's own `Timeout` still applies).
    #[allow(clippy::result_large_err)] // the Err is the session, handed back to wait on
    pub fn wait_until(mut self, until: Instant) -> Result<Report, Session> {
        match self.supervise(Some(until)) {
            Some(end) => Ok(self.finish(end)),
            None => Err(self),
        }
    }

    /// Supervises a daemon until its `zvm_fork`: its memory then (the template
    /// of its copies), or the report if it ended first or could not be read.
    #[allow(clippy::result_large_err)] // the report, as `wait` gives it
    pub(super) fn wait_fork(mut self) -> Result<super::daemon::Template, Report> {
        let end = loop {
            if let Some(end) = self.supervise(None) {
                break end;
            }
        };
        match self.forked.take() {
            Some(Ok(template)) => Ok(template),
            Some(Err(e)) => {
                let mut report = self.finish(end);
                report.exit_state = format!("cannot read the daemon's memory: {e}");
                report.return_code = ReturnCode::Killed;
                Err(report)
            }
            None => Err(self.finish(end)),
        }
    }

    /// Kills the guest now; `wait` then reports `killed`.
    pub fn kill(&mut self) {
        self.kill_for("killed".into(), ReturnCode::Killed);
    }

    fn kill_for(&mut self, why: String, code: ReturnCode) {
        if self.killed.is_none() {
            self.killed = Some((why, code));
        }
        kill_pidfd(&self.child.pidfd);
    }

    /// Runs the loop until the guest ends (`Some`), `until` passes or the
    /// guest is held at its `zvm_exit` (`None`).
    fn supervise(&mut self, until: Option<Instant>) -> Option<End> {
        // The listener reports POLLHUP once the guest starts exiting, before
        // its pidfd is readable; from then on only the pidfd matters.
        loop {
            let now = Instant::now();
            let left = self.deadline.saturating_duration_since(now);
            if left.is_zero() {
                self.kill_for("session timeout".into(), ReturnCode::Killed);
                return Some(self.reap_blocking());
            }
            let left = match until {
                Some(u) if u <= now => return None,
                Some(u) => left.min(u - now),
                None => left,
            };
            let listening = self.listening;
            let ms = left.as_millis().clamp(1, i32::MAX as u128) as i32;
            let (exited, notified, hangup) = {
                let mut fds = [
                    PollFd::new(self.child.pidfd.as_fd(), PollFlags::POLLIN),
                    PollFd::new(self.listener.0.as_fd(), PollFlags::POLLIN),
                ];
                let watched = if listening { 2 } else { 1 };
                match nix::poll::poll(&mut fds[..watched], PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX)) {
                    Ok(_) => (),
                    Err(nix::errno::Errno::EINTR) => continue,
                    Err(e) => {
                        self.kill_for(format!("supervisor poll failed: {e}"), ReturnCode::Killed);
                        return Some(self.reap_blocking());
                    }
                }
                let has = |f: &PollFd, flags: PollFlags| f.revents().is_some_and(|r| r.intersects(flags));
                let gone = PollFlags::POLLHUP | PollFlags::POLLERR | PollFlags::POLLNVAL;
                (
                    has(&fds[0], PollFlags::POLLIN | gone),
                    listening && has(&fds[1], PollFlags::POLLIN),
                    listening && has(&fds[1], gone),
                )
            };
            if notified && !exited {
                self.handle_notification();
                if self.held_exit.is_some() {
                    return None;
                }
            } else if hangup {
                self.listening = false;
            }
            if exited {
                return Some(self.reap_blocking());
            }
        }
    }

    fn handle_notification(&mut self) {
        let Ok(n) = self.listener.recv() else { return };
        let result = match self.policy.decide(&n.call) {
            Verdict::Mediate => self.mediate(&n.call),
            Verdict::Jail => match self.jail(&n.call) {
                Ok(()) => {
                    let _ = self.listener.allow(n.id);
                    return;
                }
                Err(e) => e,
            },
            Verdict::Exit => {
                // Read while the guest lives: a zombie's counters are root's to read.
                self.exit = Some((n.call.args[0] as i64, IoCounters::of(self.child.pid)));
                if self.hold_exit {
                    self.held_exit = Some(n.id);
                } else {
                    let _ = self.listener.allow(n.id);
                }
                return;
            }
            Verdict::Fork if self.memory.daemon && self.forked.is_none() => {
                // The daemon is done: its memory is the template, and it ends here.
                let sp = n.call.args[0];
                self.forked = Some(super::daemon::Template::take(self.child.pid, &self.memory, sp));
                self.kill_for("daemon: forked".into(), ReturnCode::Ok);
                return;
            }
            Verdict::Allow | Verdict::Fork => ENOSYS,
            Verdict::Violation => {
                self.kill_for(describe_violation(&n.call), ReturnCode::Killed);
                return;
            }
        };
        let _ = self.listener.respond(n.id, result);
    }

    /// Performs a read or write on a mediated channel for the guest.
    fn mediate(&mut self, call: &Call) -> i64 {
        let fd = call.args[0] as u32;
        let idx = self.mediated[(fd - self.policy.mediated.start) as usize];
        let (buf_addr, size, offset) = (call.args[1], call.args[2] as i64, call.args[3] as i64);
        let read = matches!(call.nr, nr::READ | nr::PREAD64);
        let access = self.channels[idx].access;
        // A sequential channel ignores the offset (ZeroVM's rule), whichever
        // call reached us: the trampoline uses read/write for it, a guest
        // jumping into the trampoline may not.
        let random = matches!(call.nr, nr::PREAD64 | nr::PWRITE64)
            && if read { access.random_get() } else { access.random_put() };
        let limits = self.channels[idx].limits;
        if (read && !limits.readable()) || (!read && !limits.writable()) {
            self.kill_for(describe_violation(call), ReturnCode::Killed);
            return EINVAL;
        }
        if size < 0 {
            return -(libc::EFAULT as i64);
        }
        if offset < 0 && random {
            return EINVAL;
        }
        let used = self.usage[idx].traffic;
        let (calls, bytes, max_calls, max_bytes) = if read {
            (used.gets, used.get_bytes, limits.gets, limits.get_size)
        } else {
            (used.puts, used.put_bytes, limits.puts, limits.put_size)
        };
        if calls >= max_calls || bytes >= max_bytes {
            return EDQUOT;
        }
        let mut want = (size as u64).min(max_bytes - bytes);
        if random && !read {
            // No write takes the file past its size at start plus put_size,
            // so an offset cannot make it a huge sparse file.
            let room = self.usage[idx].end.saturating_sub(offset as u64);
            if room == 0 {
                return EDQUOT;
            }
            want = want.min(room);
        }
        let result = if read {
            self.mediated_read(idx, buf_addr, want.min(CHUNK as u64) as usize, random.then_some(offset))
        } else {
            self.mediated_write(idx, buf_addr, want, random.then_some(offset))
        };
        let u = &mut self.usage[idx].traffic;
        let moved = result.max(0) as u64;
        if read {
            u.gets += 1;
            u.get_bytes += moved;
        } else {
            u.puts += 1;
            u.put_bytes += moved;
        }
        result
    }

    fn mediated_read(&mut self, idx: usize, addr: u64, len: usize, offset: Option<i64>) -> i64 {
        self.buf.resize(len, 0);
        let got = match self.transfer(idx, Dir::Read, len, offset.unwrap_or(-1)) {
            Ok(n) => n,
            Err(e) => return e,
        };
        // Like the kernel, deliver the bytes that fit before the first
        // inaccessible page; none fitting is -EINVAL (ZeroVM's bad buffer).
        let delivered =
            if got == 0 { 0 } else { notify::write_guest(self.child.pid, addr, &self.buf[..got]).unwrap_or(0) };
        if got > 0 && delivered == 0 {
            return EINVAL;
        }
        if delivered < got && offset.is_none() && self.channels[idx].regular {
            // Give back what a sequential file read could not deliver.
            let back = delivered as i64 - got as i64;
            let _ = nix::unistd::lseek(&self.channels[idx].fd, back, nix::unistd::Whence::SeekCur);
        }
        if let Some(h) = &mut self.usage[idx].etag {
            h.update(&self.buf[..delivered]);
        }
        delivered as i64
    }

    fn mediated_write(&mut self, idx: usize, addr: u64, len: u64, offset: Option<i64>) -> i64 {
        let mut done: u64 = 0;
        while done < len {
            let n = (len - done).min(CHUNK as u64) as usize;
            self.buf.resize(n, 0);
            if notify::read_guest(self.child.pid, addr + done, &mut self.buf).ok() != Some(n) {
                return if done > 0 { done as i64 } else { EINVAL };
            }
            let put = match self.transfer(idx, Dir::Write, n, offset.map_or(-1, |o| o + done as i64)) {
                Ok(0) => return if done > 0 { done as i64 } else { -(libc::EIO as i64) },
                Ok(k) => k as isize,
                Err(e) => return if done > 0 { done as i64 } else { e },
            };
            if let Some(h) = &mut self.usage[idx].etag {
                h.update(&self.buf[..put as usize]);
            }
            done += put as u64;
        }
        done as i64
    }

    /// One read or write between `self.buf[..len]` and a channel, at
    /// `offset` (-1: the file position). Tried first without blocking
    /// (`RWF_NOWAIT`), so the common case costs one system call; a channel that
    /// would block is polled until it is ready, the guest dies, or the deadline
    /// passes (then the guest is killed for the timeout). Returns bytes moved
    /// or a negated errno.
    fn transfer(&mut self, idx: usize, dir: Dir, len: usize, offset: i64) -> Result<usize, i64> {
        let fd = self.channels[idx].fd.as_raw_fd();
        let regular = self.channels[idx].regular;
        let mut nowait = !regular && !self.usage[idx].blocking_only;
        let what = if matches!(dir, Dir::Read) { PollFlags::POLLIN } else { PollFlags::POLLOUT };
        loop {
            if !regular && !nowait && !self.wait_ready(idx, what) {
                return Err(EINVAL);
            }
            let iov = libc::iovec { iov_base: self.buf.as_mut_ptr().cast(), iov_len: len };
            let flags = if nowait { libc::RWF_NOWAIT } else { 0 };
            // Raw: nix has no preadv2/pwritev2 (the flags carry RWF_NOWAIT).
            // SAFETY: the iovec covers our own buffer of `len` bytes.
            let r = unsafe {
                match dir {
                    Dir::Read => libc::preadv2(fd, &iov, 1, offset, flags),
                    Dir::Write => libc::pwritev2(fd, &iov, 1, offset, flags),
                }
            };
            if r >= 0 {
                return Ok(r as usize);
            }
            match std::io::Error::last_os_error().raw_os_error().unwrap_or(libc::EIO) {
                libc::EINTR => continue,
                libc::EOPNOTSUPP if nowait => {
                    self.usage[idx].blocking_only = true;
                    nowait = false;
                }
                libc::EAGAIN if nowait => {
                    if !self.wait_ready(idx, what) {
                        return Err(EINVAL);
                    }
                }
                e => return Err(-(e as i64)),
            }
        }
    }

    /// Waits until a pipe/socket channel is ready, the guest dies, or the
    /// deadline passes (then the guest is killed for the timeout).
    fn wait_ready(&mut self, idx: usize, what: PollFlags) -> bool {
        loop {
            let left = self.deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                self.kill_for("session timeout".into(), ReturnCode::Killed);
                return false;
            }
            let ms = left.as_millis().clamp(1, i32::MAX as u128) as i32;
            let mut fds = [
                PollFd::new(self.channels[idx].fd.as_fd(), what),
                PollFd::new(self.child.pidfd.as_fd(), PollFlags::POLLIN),
            ];
            match nix::poll::poll(&mut fds, PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX)) {
                Ok(0) | Err(nix::errno::Errno::EINTR) => continue,
                Ok(_) => {
                    if fds[1].revents().is_some_and(|r| !r.is_empty()) {
                        return false;
                    }
                    return true;
                }
                Err(_) => return false,
            }
        }
    }

    /// `zvm_jail`/`zvm_unjail`: a 64 KiB-aligned heap region; jail validates it.
    fn jail(&mut self, call: &Call) -> Result<(), i64> {
        let (addr, len, prot) = (call.args[0], call.args[1], call.args[2]);
        let align = crate::abi::JAIL_ALIGN;
        let heap = self.memory.heap;
        let heap_end = heap.0 + heap.1;
        let end = addr.checked_add(len).ok_or(EINVAL)?;
        if len == 0 || addr % align != 0 || len % align != 0 || addr < heap.0 || end > heap_end {
            return Err(EINVAL);
        }
        let rx = (libc::PROT_READ | libc::PROT_EXEC) as u64;
        let rw = (libc::PROT_READ | libc::PROT_WRITE) as u64;
        if prot == rw {
            return Ok(());
        }
        if prot != rx {
            return Err(EINVAL);
        }
        // In pieces through the one transfer buffer: the supervisor's memory
        // stays flat whatever the region (up to all of `Memory`), and the
        // session's deadline is checked between pieces, so a guest that
        // jails its whole heap again and again still ends at its Timeout.
        let refused = |v: validator::Violation| {
            tracing::debug!("zvm_jail refused: {v}");
            EPERM
        };
        let mut sweep = validator::Sweep::new(addr);
        let mut at = addr;
        while at < end {
            let n = (end - at).min(CHUNK as u64) as usize;
            self.buf.resize(n, 0);
            if notify::read_guest(self.child.pid, at, &mut self.buf).ok() != Some(n) {
                return Err(EINVAL);
            }
            sweep.feed(&self.buf).map_err(refused)?;
            at += n as u64;
            if Instant::now() >= self.deadline {
                self.kill_for("session timeout".into(), ReturnCode::Killed);
                return Err(EINVAL);
            }
        }
        sweep.finish().map_err(refused)
    }

    fn reap_blocking(&mut self) -> End {
        // Read the zombie's counters before reaping it: WNOWAIT leaves it in place.
        let _ = waitid(Id::PIDFd(self.child.pidfd.as_fd()), WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT);
        let io = match self.exit {
            Some((_, Some(io))) => Some(io),
            _ => IoCounters::of(self.child.pid),
        };
        let mut status = 0;
        // SAFETY: rusage is plain data; zeroed is a valid value.
        let mut rusage: libc::rusage = unsafe { std::mem::zeroed() };
        // Raw: nix has no wait4, the one call that reaps and returns the rusage.
        // SAFETY: wait4 on our own child with valid out-pointers.
        unsafe {
            libc::wait4(self.child.pid, &mut status, 0, &mut rusage);
        }
        End { status, io, rusage }
    }
}

/// Kills the guest behind `pidfd` (raw: nix has no pidfd_send_signal).
fn kill_pidfd(pidfd: &OwnedFd) {
    // SAFETY: pidfd_send_signal on a pidfd we hold; no pointers but the null info.
    unsafe {
        libc::syscall(libc::SYS_pidfd_send_signal, pidfd.as_raw_fd(), libc::SIGKILL, std::ptr::null::<u8>(), 0);
    }
}
