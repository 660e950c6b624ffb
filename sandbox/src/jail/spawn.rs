//! Starting the jailed child: clone, then the ordered isolation steps, then
//! exec of the loader.
//!
//! The child is created with `clone(CLONE_VM | CLONE_VFORK)` like
//! `posix_spawn`: no page tables are copied, and the parent thread waits until
//! the child has exec'd. Until then the child shares the parent's memory, so
//! it runs only `child_main`: raw system calls on data prepared by the
//! parent, no allocation, no locks, no unwinding. Signals are blocked in the
//! parent across the clone so no handler can run in the child; the loader
//! unblocks them after exec has reset the handlers.
//!
//! The steps, in order, each a block in `child_main` named by its [`Step`] (the
//! rows of `docs/security.md`'s table; 1 is done by then, 9-13 follow exec):
//! - [`Step::Namespaces`] come from the clone flags (user for non-root, pid,
//!   mount, ipc, uts); a non-root child then maps its own uid/gid and denies
//!   `setgroups`, which must precede any credential change; a root child
//!   joins the shared mount, ipc and uts namespaces (`namespaces.rs`) while
//!   it still holds the descriptors and the privilege to;
//! - [`Step::Descriptors`]: the channels become `0..N`, then the start-up
//!   socket (N), the image (N+1), the layout (N+2) and the loader (N+3,
//!   close-on-exec); every other descriptor is closed; then `/proc/self/io`
//!   is opened at N+4 for the loader's I/O baseline, before
//!   [`Step::DropPrivileges`], after which a root supervisor's child is not
//!   dumpable and its /proc files are root's;
//! - [`Step::ResourceLimits`] (address space from `Memory`, no core dumps,
//!   descriptor and CPU-time caps), set while still privileged enough to
//!   lower them;
//! - [`Step::DropPrivileges`]: root drops its groups, then gid, then uid to
//!   `nobody`; a non-root child is already unprivileged and loses its
//!   namespace capabilities at exec. A root supervisor's loader is
//!   execute-only (`loader.rs`), so the kernel makes its exec non-dumpable
//!   from the first instruction on ([`Step::NotDumpable`]): no other process
//!   of `nobody` may trace the guest, read or write its memory or take its
//!   descriptors (`ptrace`, `pidfd_getfd`, `process_vm_readv`,
//!   `/proc/PID/mem`), while the supervisor, holding `CAP_SYS_PTRACE`, still
//!   may. That needs `fs.suid_dumpable` 0 or 2, so a root supervisor refuses
//!   to start guests where it is 1. A non-root supervisor's guest runs as the
//!   supervisor's own user, whose processes can trace the supervisor itself
//!   anyway, and stays dumpable so that the supervisor can read its
//!   `/proc/PID/io`;
//! - [`Step::NoNewPrivs`], required for an unprivileged seccomp filter and so
//!   exec can never gain privileges;
//! - [`Step::ParentDeathSignal`], after the credential change (which clears it);
//! - [`Step::ExecLoader`]: the loader maps the guest and installs the filter last.
//!
//! The child's code is raw `libc`, not `nix`: it runs between a
//! `CLONE_VM | CLONE_VFORK` clone and exec, in the parent's memory, where only
//! async-signal-safe system calls on prepared data are allowed (and glibc's
//! credential wrappers would signal the parent's threads). The parent's side
//! uses `nix` but for `clone` itself: it needs the `CLONE_PIDFD`
//! out-parameter, which `nix::sched::clone` lacks.

use std::ffi::CString;
use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

use nix::sys::signal::{pthread_sigmask, SigSet, SigmaskHow};

use super::step::Step;

/// The unprivileged identity a root supervisor drops guests to.
pub const NOBODY: u32 = 65534;

/// A resource limit to apply in the child.
#[derive(Debug, Clone, Copy)]
pub struct Rlimit {
    /// `RLIMIT_*`.
    pub resource: libc::__rlimit_resource_t,
    /// Soft and hard limit.
    pub value: u64,
}

/// What the child needs, prepared by the parent.
pub struct Plan {
    /// Source descriptors in target order: channels, socket, image, layout, loader,
    /// and a daemon's memory file for its copies.
    pub fds: Vec<RawFd>,
    /// Where the loader is in `fds` (it is exec'd, and closed by that exec).
    pub loader: usize,
    /// Resource limits.
    pub rlimits: Vec<Rlimit>,
    /// Whether to ask for new namespaces.
    pub namespaces: bool,
    /// Shared mount, ipc and uts namespaces to join instead of creating them
    /// (a root supervisor's; the pid namespace is still new per guest).
    pub join: Option<[RawFd; 3]>,
    /// Keep the supervisor's privileges (only the namespace holder does).
    pub privileged: bool,
    /// argv for the loader: its name and the channel count.
    pub argv: Vec<CString>,
}

/// A started child.
#[derive(Debug)]
pub struct Child {
    /// Its pid in the supervisor's pid namespace.
    pub pid: libc::pid_t,
    /// A pidfd for it.
    pub pidfd: OwnedFd,
    /// Namespaces it did not get, if any (said in the report's log).
    pub isolation_note: Option<String>,
}

/// Why the child could not be started.
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    /// `clone` failed.
    #[error("cannot create the guest process")]
    Clone(#[source] io::Error),
    /// A root supervisor's guests would be dumpable.
    #[error(
        "fs.suid_dumpable is 1, which would let every process running as nobody trace the guests; \
         set it to 0 (sysctl fs.suid_dumpable=0)"
    )]
    Dumpable,
    /// A step in the child failed.
    #[error("jail step {step} failed in the guest process")]
    Step {
        /// Which step.
        step: Step,
        /// The errno.
        #[source]
        source: io::Error,
    },
}

struct Ctx {
    fds: Vec<RawFd>,
    loader: usize,
    join: Option<[RawFd; 3]>,
    scratch_base: RawFd,
    rlimits: Vec<Rlimit>,
    root: bool,
    privileged: bool,
    userns: bool,
    maps: [(CString, CString); 3],
    argv: Vec<*const libc::c_char>,
    envp: [*const libc::c_char; 1],
    fail_step: Option<Step>,
    fail_errno: i32,
}

fn last_errno() -> i32 {
    io::Error::last_os_error().raw_os_error().unwrap_or(libc::EIO)
}

fn write_file(path: &CString, data: &CString) -> bool {
    // SAFETY: valid NUL-terminated strings; the fd is closed before return.
    unsafe {
        let fd = libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
        if fd < 0 {
            return false;
        }
        let len = data.as_bytes().len();
        let ok = libc::write(fd, data.as_ptr().cast(), len) == len as isize;
        libc::close(fd);
        ok
    }
}

/// The child, between clone and exec. Only raw system calls on `Ctx`.
extern "C" fn child_main(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `arg` is the `Ctx` the parent passed to clone; the parent is
    // suspended (CLONE_VFORK) until we exec or exit, so nobody else touches it.
    let ctx = unsafe { &mut *(arg as *mut Ctx) };
    let fail = |ctx: &mut Ctx, step: Step| -> libc::c_int {
        ctx.fail_errno = last_errno();
        ctx.fail_step = Some(step);
        // SAFETY: _exit never returns and runs no atexit handlers or destructors.
        unsafe { libc::_exit(127) }
    };
    // Step::Namespaces: a non-root child maps its own ids in its new user
    // namespace; a root child joins the shared ones.
    if ctx.userns {
        for (path, data) in &ctx.maps {
            if !write_file(path, data) {
                return fail(ctx, Step::Namespaces);
            }
        }
    }
    if let Some(join) = ctx.join {
        for (fd, kind) in join.into_iter().zip([libc::CLONE_NEWNS, libc::CLONE_NEWIPC, libc::CLONE_NEWUTS]) {
            // SAFETY: setns on a namespace descriptor the parent keeps open.
            if unsafe { libc::setns(fd, kind) } < 0 {
                return fail(ctx, Step::Namespaces);
            }
        }
    }
    // Step::Descriptors: first move every source above all targets (so no
    // dup2 clobbers a source not yet moved), then into place.
    let n = ctx.fds.len();
    for i in 0..n {
        // SAFETY: F_DUPFD_CLOEXEC on descriptors the parent keeps open.
        let tmp = unsafe { libc::fcntl(ctx.fds[i], libc::F_DUPFD_CLOEXEC, ctx.scratch_base) };
        if tmp < 0 {
            return fail(ctx, Step::Descriptors);
        }
        ctx.fds[i] = tmp;
    }
    for (target, &src) in ctx.fds.iter().enumerate() {
        // SAFETY: dup2 between descriptors this process owns; it clears
        // close-on-exec on the target, which is what the channels need.
        if unsafe { libc::dup2(src, target as RawFd) } < 0 {
            return fail(ctx, Step::Descriptors);
        }
    }
    let loader = ctx.loader as RawFd;
    // SAFETY: plain descriptor flag, range-close and open calls on our own
    // table; the path is a static NUL-terminated string.
    unsafe {
        if libc::fcntl(loader, libc::F_SETFD, libc::FD_CLOEXEC) < 0 {
            return fail(ctx, Step::Descriptors);
        }
        if libc::syscall(libc::SYS_close_range, n as u32, u32::MAX, 0) < 0 {
            return fail(ctx, Step::Descriptors);
        }
        // Lands at N+4 (N+5 for a daemon's copy), the lowest free descriptor; without it the report
        // just lacks the direct channels' counts, as the loader tells it.
        if !ctx.privileged {
            libc::open(c"/proc/self/io".as_ptr(), libc::O_RDONLY);
        }
    }
    // Step::ResourceLimits.
    for r in &ctx.rlimits {
        let lim = libc::rlimit { rlim_cur: r.value, rlim_max: r.value };
        // SAFETY: prlimit64 on ourselves with a valid struct.
        if unsafe { libc::syscall(libc::SYS_prlimit64, 0, r.resource, &lim, std::ptr::null_mut::<libc::rlimit>()) } < 0
        {
            return fail(ctx, Step::ResourceLimits);
        }
    }
    // Step::DropPrivileges (groups, then gid, then uid: each needs the one
    // after). Raw system calls: glibc's wrappers would broadcast the change
    // to the threads of the parent, whose memory this child shares.
    if ctx.root && !ctx.privileged {
        let id = NOBODY as libc::c_long;
        // SAFETY: credential system calls with plain integer arguments.
        let ok = unsafe {
            libc::syscall(libc::SYS_setgroups, 0, std::ptr::null::<libc::gid_t>()) == 0
                && libc::syscall(libc::SYS_setresgid, id, id, id) == 0
                && libc::syscall(libc::SYS_setresuid, id, id, id) == 0
        };
        if !ok {
            return fail(ctx, Step::DropPrivileges);
        }
    }
    // SAFETY: prctl with integer arguments only.
    unsafe {
        // Step::NoNewPrivs.
        if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 {
            return fail(ctx, Step::NoNewPrivs);
        }
        // Step::ParentDeathSignal.
        if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) < 0 {
            return fail(ctx, Step::ParentDeathSignal);
        }
    }
    // Step::ExecLoader.
    // SAFETY: argv/envp are NULL-terminated arrays of valid C strings owned by
    // the parent, alive until the parent resumes.
    unsafe {
        libc::syscall(
            libc::SYS_execveat,
            loader,
            c"".as_ptr(),
            ctx.argv.as_ptr(),
            ctx.envp.as_ptr(),
            libc::AT_EMPTY_PATH,
        );
    }
    fail(ctx, Step::ExecLoader)
}

/// Starts the jailed child for `plan`. The calling thread must outlive the
/// guest: the kernel's parent-death signal follows the thread that forked.
pub fn spawn(plan: Plan) -> Result<Child, SpawnError> {
    let (uid, gid) = (nix::unistd::getuid(), nix::unistd::getgid());
    let root = uid.is_root();
    if root && !plan.privileged && suid_dumpable_is_1() {
        return Err(SpawnError::Dumpable);
    }
    let map = |p: &str, d: String| (CString::new(p).expect("static path"), CString::new(d).expect("digits"));
    let mut argv: Vec<*const libc::c_char> = plan.argv.iter().map(|a| a.as_ptr()).collect();
    argv.push(std::ptr::null());
    let max_src = plan.fds.iter().copied().max().unwrap_or(0);
    let mut ctx = Ctx {
        scratch_base: max_src.max(plan.fds.len() as RawFd) + 1,
        fds: plan.fds,
        loader: plan.loader,
        join: plan.join,
        rlimits: plan.rlimits,
        root,
        privileged: plan.privileged,
        userns: false,
        maps: [
            map("/proc/self/setgroups", "deny".into()),
            map("/proc/self/uid_map", format!("{uid} {uid} 1")),
            map("/proc/self/gid_map", format!("{gid} {gid} 1")),
        ],
        argv,
        envp: [std::ptr::null()],
        fail_step: None,
        fail_errno: 0,
    };
    let mut ns = libc::CLONE_NEWPID;
    if plan.join.is_none() {
        ns |= libc::CLONE_NEWNS | libc::CLONE_NEWIPC | libc::CLONE_NEWUTS;
    }
    if !root {
        ns |= libc::CLONE_NEWUSER;
    }
    const REFUSED: &str =
        "the kernel refused new namespaces; the guest shares the supervisor's (seccomp still confines it)";
    let attempts: &[(libc::c_int, Option<&str>)] =
        if plan.namespaces { &[(ns, None), (0, Some(REFUSED))] } else { &[(0, None)] };
    let mut last_err = io::Error::from_raw_os_error(libc::EINVAL);
    for &(ns, note) in attempts {
        ctx.userns = ns & libc::CLONE_NEWUSER != 0;
        ctx.fail_step = None;
        match clone_once(&mut ctx, ns) {
            Ok((pid, pidfd)) => {
                if let Some(step) = ctx.fail_step {
                    reap(pid);
                    return Err(SpawnError::Step { step, source: io::Error::from_raw_os_error(ctx.fail_errno) });
                }
                return Ok(Child { pid, pidfd, isolation_note: note.map(str::to_string) });
            }
            Err(e) => last_err = e,
        }
    }
    Err(SpawnError::Clone(last_err))
}

fn clone_once(ctx: &mut Ctx, ns: libc::c_int) -> io::Result<(libc::pid_t, OwnedFd)> {
    const STACK: usize = 64 * 1024;
    let mut stack = vec![0u8; STACK];
    let mut pidfd: libc::c_int = -1;
    let flags = ns | libc::CLONE_VM | libc::CLONE_VFORK | libc::CLONE_PIDFD | libc::SIGCHLD;
    // Every signal blocked across the clone, the old mask restored right after on every path.
    let mut old = SigSet::empty();
    pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::all()), Some(&mut old)).map_err(io::Error::from)?;
    // SAFETY: the stack is ours and outlives the child's use of it (the parent
    // is suspended until exec or exit); `ctx` stays valid for the same span;
    // child_main obeys the vfork rules stated in the module doc.
    let pid = unsafe {
        libc::clone(
            child_main,
            stack.as_mut_ptr().add(STACK).cast(),
            flags,
            (ctx as *mut Ctx).cast(),
            &mut pidfd as *mut libc::c_int,
        )
    };
    let err = io::Error::last_os_error();
    let _ = pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&old), None);
    if pid < 0 {
        return Err(err);
    }
    // SAFETY: CLONE_PIDFD stored a fresh descriptor that we now own.
    Ok((pid, unsafe { OwnedFd::from_raw_fd(pidfd) }))
}

/// Whether `fs.suid_dumpable` is 1, the setting under which the kernel leaves
/// an execute-only program dumpable (read once: only root can change it).
fn suid_dumpable_is_1() -> bool {
    static ONE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ONE.get_or_init(|| std::fs::read_to_string("/proc/sys/fs/suid_dumpable").is_ok_and(|v| v.trim() == "1"))
}

/// Waits for a child that failed before exec.
fn reap(pid: libc::pid_t) {
    let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None);
}
