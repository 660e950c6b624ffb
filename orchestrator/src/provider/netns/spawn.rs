//! Starting an isolated (`rootfs:`) node's first process: its sshd, as root of a user
//! namespace, on the node's own root file system.
//!
//! Nothing from the node's file tree runs with this machine's privileges: every step
//! up to the user namespace is a system call made by zerolab itself (in the child of a
//! `fork`, before `exec`), and the first program loaded from the node's tree is its
//! sshd, already unprivileged. In order ([`Step`] numbers them in errors):
//!
//! 1. `setsid`, join the node's network namespace and its cgroups (each controller's
//!    `zerolab/<ns>`), so everything the node ever runs is counted and limited;
//! 2. `clone` into new mount, UTS, IPC and pid namespaces: the child is the node's
//!    PID 1 (sshd, which reaps every child it gets);
//! 3. every mount private (nothing propagates back to this machine); the node's root:
//!    an overlay of the cached root file system (read-only lower) and the node's
//!    `upper/` (its changes), mounted on `root/`;
//! 4. `/proc` of its own pid namespace (`nosuid,nodev,noexec`); a `/dev` tmpfs with
//!    only `null zero full random urandom tty` bound from this machine, its own
//!    `devpts` instance (`ptmx` 0666, gid tty) and a `/dev/shm`; no `/sys`;
//! 5. `/run` (the node's `run/`, where sshd's pid file tells zerolab it listens),
//!    `/etc/ssh` (its `etc-ssh/`: own host key, the lab's authorized key) and the agent
//!    binary, read-only, where `install.rs` looks for it (so `up` finds it unchanged);
//! 6. host name = the node's name; in its network namespace only,
//!    `ip_unprivileged_port_start = 0` (sshd binds port 22 without a capability over
//!    the network namespace, which stays this machine's) and `ping_group_range` open
//!    (ICMP datagram sockets: ping without raw sockets);
//! 7. `pivot_root` into the node's root, the old root detached (`MNT_DETACH`): this
//!    machine's files are unreachable from here on;
//! 8. a new user namespace; the intermediate process (still this machine's root)
//!    maps 0..65535 inside to [`ID_BASE`].. outside, then exits; the node's PID 1
//!    drops to uid/gid 0 of that namespace (no supplementary groups);
//! 9. `exec /usr/sbin/sshd -D -e -r`.
//!
//! The user namespace is made last, so the mount, UTS, IPC, pid and network
//! namespaces all belong to this machine's: root inside has no capability over them
//! (it cannot mount, change the host name, configure links or addresses, or write
//! `/proc/sys`), only over its own files.
//!
//! The closure given to `pre_exec` runs between `fork` and `exec` of a multi-threaded
//! process, so it only makes system calls on values prepared before the fork (no
//! allocation, no locks).

use std::ffi::{CStr, CString};
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};

use super::host::NetnsError;

/// uid and gid 0 inside an isolated node are this outside; 65536 ids are mapped.
pub const ID_BASE: u32 = 1_000_000;
/// How many ids an isolated node maps.
pub const ID_COUNT: u32 = 65_536;

/// A step of the node's start, as numbered in the module docs and in errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
enum Step {
    Session = 1,
    Clone,
    Mounts,
    Dev,
    Binds,
    Names,
    Pivot,
    UserNs,
    Exec,
}

impl Step {
    fn from_u8(value: u8) -> Option<Step> {
        [Step::Session, Step::Clone, Step::Mounts, Step::Dev, Step::Binds, Step::Names, Step::Pivot, Step::UserNs]
            .into_iter()
            .find(|step| *step as u8 == value)
    }

    fn describe(self) -> &'static str {
        match self {
            Step::Session => "joining its network namespace and cgroups",
            Step::Clone => "making its mount, UTS, IPC and pid namespaces",
            Step::Mounts => "mounting its root file system and /proc",
            Step::Dev => "making its /dev",
            Step::Binds => "binding /run, /etc/ssh and the agent",
            Step::Names => "setting its host name and network settings",
            Step::Pivot => "pivoting into its root",
            Step::UserNs => "entering its user namespace",
            Step::Exec => "starting sshd",
        }
    }
}

/// Where an isolated node has `zvsh` (on root's `PATH`).
pub(super) const ZVSH_PATH: &str = "/usr/local/bin/zvsh";

/// What one isolated node is started with.
pub(super) struct NodeStart<'a> {
    /// The node's private directory (`upper/ work/ root/ run/ etc-ssh/`).
    pub dir: &'a Path,
    /// The cached root file system (the overlay's lower layer).
    pub rootfs: &'a Path,
    /// The agent binary bound read-only into the node.
    pub agent: &'a Path,
    /// `zvsh`, bound read-only at [`ZVSH_PATH`] so the node's users can run guests, when
    /// it is beside the agent binary.
    pub zvsh: Option<&'a Path>,
    /// The node's name (its host name).
    pub name: &'a str,
    /// Its network namespace, bound under `/run/netns`.
    pub netns: &'a Path,
    /// The `cgroup.procs` files of its cgroups.
    pub cgroups: &'a [std::path::PathBuf],
    /// Where sshd's output goes.
    pub log: File,
}

/// Everything the forked children use, made before the fork.
struct Prepared {
    netns: OwnedFd,
    cgroups: Vec<OwnedFd>,
    root: CString,
    overlay: CString,
    mounts: Vec<(CString, CString, CString, libc::c_ulong, Option<CString>)>,
    dev_nodes: Vec<(CString, CString)>,
    links: Vec<(CString, CString)>,
    binds: Vec<(CString, CString, bool)>,
    name: CString,
    sysctls: [(CString, &'static [u8]); 2],
    map: Vec<u8>,
}

fn c(path: impl AsRef<[u8]>) -> Result<CString, NetnsError> {
    CString::new(path.as_ref()).map_err(|_| NetnsError::Command {
        command: "start isolated node".into(),
        detail: "a path holds a NUL byte".into(),
    })
}

fn prepare(start: &NodeStart<'_>) -> Result<Prepared, NetnsError> {
    let open = |path: &Path, write: bool| -> Result<OwnedFd, NetnsError> {
        let file =
            std::fs::OpenOptions::new().read(!write).write(write).open(path).map_err(super::host::io_err(path))?;
        Ok(OwnedFd::from(file))
    };
    let netns = open(start.netns, false)?;
    let cgroups = start.cgroups.iter().map(|path| open(path, true)).collect::<Result<_, _>>()?;
    let root = start.dir.join("root");
    let under = |sub: &str| c(root.join(sub).as_os_str().as_bytes());
    let overlay = format!(
        "lowerdir={},upperdir={},workdir={}",
        start.rootfs.display(),
        start.dir.join("upper").display(),
        start.dir.join("work").display()
    );
    let flags = libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;
    let mounts = vec![
        (c("proc")?, under("proc")?, c("proc")?, flags, None),
        (
            c("zerolab-dev")?,
            under("dev")?,
            c("tmpfs")?,
            libc::MS_NOSUID | libc::MS_NOEXEC,
            Some(c("mode=755,size=64k")?),
        ),
    ];
    let mut dev_nodes = Vec::new();
    for node in ["null", "zero", "full", "random", "urandom", "tty"] {
        dev_nodes.push((c(format!("/dev/{node}"))?, under(&format!("dev/{node}"))?));
    }
    let links = vec![
        (c("pts/ptmx")?, under("dev/ptmx")?),
        (c("/proc/self/fd")?, under("dev/fd")?),
        (c("/proc/self/fd/0")?, under("dev/stdin")?),
        (c("/proc/self/fd/1")?, under("dev/stdout")?),
        (c("/proc/self/fd/2")?, under("dev/stderr")?),
    ];
    let mut binds = vec![
        (c(start.dir.join("run").as_os_str().as_bytes())?, under("run")?, false),
        (c(start.dir.join("etc-ssh").as_os_str().as_bytes())?, under("etc/ssh")?, false),
        (c(start.agent.as_os_str().as_bytes())?, under(crate::install::AGENT_PATH.trim_start_matches('/'))?, true),
    ];
    if let Some(zvsh) = start.zvsh {
        binds.push((c(zvsh.as_os_str().as_bytes())?, under(ZVSH_PATH.trim_start_matches('/'))?, true));
    }
    let pts = format!("newinstance,ptmxmode=0666,mode=0620,gid={}", ID_BASE + 5);
    let shm = format!("mode=1777,uid={ID_BASE},gid={ID_BASE},size=64m");
    let mut mounts = mounts;
    mounts.push((c("zerolab-pts")?, under("dev/pts")?, c("devpts")?, libc::MS_NOSUID | libc::MS_NOEXEC, Some(c(pts)?)));
    mounts.push((c("zerolab-shm")?, under("dev/shm")?, c("tmpfs")?, libc::MS_NOSUID | libc::MS_NODEV, Some(c(shm)?)));
    Ok(Prepared {
        netns,
        cgroups,
        root: c(root.as_os_str().as_bytes())?,
        overlay: c(overlay)?,
        mounts,
        dev_nodes,
        links,
        binds,
        name: c(start.name)?,
        sysctls: [
            (c("/proc/sys/net/ipv4/ip_unprivileged_port_start")?, b"0"),
            (c("/proc/sys/net/ipv4/ping_group_range")?, b"0 2147483647"),
        ],
        map: format!("0 {ID_BASE} {ID_COUNT}\n").into_bytes(),
    })
}

/// Starts the node: returns once its sshd was exec'd (or a step failed), with the host
/// pid of the node's PID 1.
pub(super) fn start(start: NodeStart<'_>) -> Result<u32, NetnsError> {
    let plan = prepare(&start)?;
    let (report_r, report_w) = pipe()?;
    let (up_r, up_w) = pipe()?;
    let (down_r, down_w) = pipe()?;
    let fds = Fds {
        report: report_w.as_raw_fd(),
        up_r: up_r.as_raw_fd(),
        up_w: up_w.as_raw_fd(),
        down_r: down_r.as_raw_fd(),
        down_w: down_w.as_raw_fd(),
    };
    let err = start.log.try_clone().map_err(super::host::io_err(start.dir))?;
    let mut command = Command::new("/usr/sbin/sshd");
    command
        .args(["-D", "-e", "-r", "-f", "/etc/ssh/sshd_config"])
        .env_clear()
        .env("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
        .stdin(Stdio::null())
        .stdout(start.log)
        .stderr(err);
    // SAFETY: the closure makes only system calls, on memory prepared above (see the
    // module docs); it never returns in the intermediate process (it `_exit`s).
    unsafe {
        command.pre_exec(move || node_steps(&plan, fds));
    }
    let spawned = command.spawn();
    drop((report_w, up_r, up_w, down_r, down_w));
    let mut child = spawned.map_err(|e| NetnsError::Node {
        node: start.name.to_owned(),
        detail: format!("{}: {e}", Step::Exec.describe()),
    })?;
    let mut report = Vec::new();
    let _ = File::from(report_r).read_to_end(&mut report);
    let _ = child.wait();
    // The intermediate reports the PID 1's pid once mapped; a failed step follows it
    // (or comes alone) as the step and errno.
    let (pid, rest) = match report.as_slice() {
        [b'p', a, b, c, d, rest @ ..] => (Some(u32::from_le_bytes([*a, *b, *c, *d])), rest),
        rest => (None, rest),
    };
    match (pid, rest) {
        (Some(pid), []) => Ok(pid),
        (_, [step, a, b, c, d, ..]) => {
            let errno = i32::from_le_bytes([*a, *b, *c, *d]);
            let step = Step::from_u8(*step).unwrap_or(Step::Exec);
            let detail = format!("{}: {}", step.describe(), io::Error::from_raw_os_error(errno));
            Err(NetnsError::Node { node: start.name.to_owned(), detail })
        }
        _ => Err(NetnsError::Node { node: start.name.to_owned(), detail: "its first process ended unreported".into() }),
    }
}

#[derive(Clone, Copy)]
struct Fds {
    report: RawFd,
    up_r: RawFd,
    up_w: RawFd,
    down_r: RawFd,
    down_w: RawFd,
}

fn pipe() -> Result<(OwnedFd, OwnedFd), NetnsError> {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 writes.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        let detail = io::Error::last_os_error().to_string();
        return Err(NetnsError::Command { command: "pipe2".into(), detail });
    }
    // SAFETY: both descriptors were just made and are owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Writes `bytes` whole (pipes take 5 bytes at once).
fn put(fd: RawFd, bytes: &[u8]) {
    // SAFETY: `bytes` is valid for its length.
    let _ = unsafe { libc::write(fd, bytes.as_ptr().cast(), bytes.len()) };
}

/// Reports a failed step with errno and ends this process.
fn fail(fds: Fds, step: Step) -> ! {
    let errno = io::Error::last_os_error().raw_os_error().unwrap_or(0).to_le_bytes();
    put(fds.report, &[step as u8, errno[0], errno[1], errno[2], errno[3]]);
    // SAFETY: ends this forked process without running anything of the parent's.
    unsafe { libc::_exit(1) }
}

fn check(rc: libc::c_long, fds: Fds, step: Step) {
    if rc < 0 {
        fail(fds, step);
    }
}

fn ptr(value: &CStr) -> *const libc::c_char {
    value.as_ptr()
}

fn opt(value: &Option<CString>) -> *const libc::c_void {
    value.as_ref().map_or(std::ptr::null(), |v| v.as_ptr().cast())
}

/// Writes `/proc/<pid>/<file>` with `bytes`, the path built without allocating.
fn write_proc(pid: libc::pid_t, file: &[u8], bytes: &[u8]) -> bool {
    let mut path = [0u8; 64];
    let mut len = 0;
    let mut push = |part: &[u8]| {
        path[len..len + part.len()].copy_from_slice(part);
        len += part.len();
    };
    push(b"/proc/");
    let mut digits = [0u8; 12];
    let (mut n, mut i) = (pid as u32, digits.len());
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    push(&digits[i..]);
    push(b"/");
    push(file);
    // SAFETY: `path` is NUL-terminated (zeroed beyond `len`); `bytes` valid for its length.
    unsafe {
        let fd = libc::open(path.as_ptr().cast(), libc::O_WRONLY | libc::O_CLOEXEC);
        if fd < 0 {
            return false;
        }
        let written = libc::write(fd, bytes.as_ptr().cast(), bytes.len());
        libc::close(fd);
        written == bytes.len() as isize
    }
}

/// The intermediate process's steps (1, 2, the map of 8); the node's PID 1 returns
/// from here into `exec`.
fn node_steps(plan: &Prepared, fds: Fds) -> io::Result<()> {
    // SAFETY: the whole block makes raw system calls on prepared, valid descriptors and
    // NUL-terminated strings; see the module docs.
    unsafe {
        check(libc::setsid() as libc::c_long, fds, Step::Session);
        check(libc::setns(plan.netns.as_raw_fd(), libc::CLONE_NEWNET) as libc::c_long, fds, Step::Session);
        for cgroup in &plan.cgroups {
            if libc::write(cgroup.as_raw_fd(), b"0".as_ptr().cast(), 1) != 1 {
                fail(fds, Step::Session);
            }
        }
        let flags = libc::CLONE_NEWNS | libc::CLONE_NEWUTS | libc::CLONE_NEWIPC | libc::CLONE_NEWPID | libc::SIGCHLD;
        let pid = libc::syscall(libc::SYS_clone, flags as libc::c_ulong, 0usize, 0usize, 0usize, 0usize);
        check(pid, fds, Step::Clone);
        if pid == 0 {
            return first_process(plan, fds);
        }
        // This machine's root maps the node's user namespace once its PID 1 made it
        // (its PID 1 ending first closes the pipe: no wait forever).
        libc::close(fds.up_w);
        libc::close(fds.down_r);
        let pid = pid as libc::pid_t;
        let mut byte = [0u8; 1];
        if libc::read(fds.up_r, byte.as_mut_ptr().cast(), 1) != 1 {
            libc::_exit(1);
        }
        if !write_proc(pid, b"uid_map", &plan.map) || !write_proc(pid, b"gid_map", &plan.map) {
            fail(fds, Step::UserNs);
        }
        let p = (pid as u32).to_le_bytes();
        put(fds.report, &[b'p', p[0], p[1], p[2], p[3]]);
        put(fds.down_w, b"m");
        libc::_exit(0)
    }
}

/// Steps 3 to 8 in the node's PID 1; `Ok` goes on to exec sshd.
fn first_process(plan: &Prepared, fds: Fds) -> io::Result<()> {
    // SAFETY: as in `node_steps` (system calls on prepared values only).
    unsafe {
        libc::close(fds.up_r);
        libc::close(fds.down_w);
        let none = std::ptr::null::<libc::c_char>();
        let nodata = std::ptr::null::<libc::c_void>();
        let root = ptr(&plan.root);
        check(libc::mount(none, c"/".as_ptr(), none, libc::MS_REC | libc::MS_PRIVATE, nodata) as _, fds, Step::Mounts);
        let overlay = plan.overlay.as_ptr().cast();
        check(libc::mount(c"zerolab".as_ptr(), root, c"overlay".as_ptr(), 0, overlay) as _, fds, Step::Mounts);
        for (source, target, kind, flags, data) in &plan.mounts {
            let step = if kind.as_bytes() == b"proc" { Step::Mounts } else { Step::Dev };
            check(libc::mount(ptr(source), ptr(target), ptr(kind), *flags, opt(data)) as _, fds, step);
            if kind.as_bytes() == b"tmpfs" && source.as_bytes() == b"zerolab-dev" {
                for dir in [c"pts", c"shm"] {
                    let mut path = [0u8; 4096];
                    let target = target.as_bytes();
                    let dir = dir.to_bytes();
                    if target.len() + dir.len() + 2 > path.len() {
                        fail(fds, Step::Dev);
                    }
                    path[..target.len()].copy_from_slice(target);
                    path[target.len()] = b'/';
                    path[target.len() + 1..target.len() + 1 + dir.len()].copy_from_slice(dir);
                    check(libc::mkdir(path.as_ptr().cast(), 0o755) as _, fds, Step::Dev);
                }
                for (source, target) in &plan.dev_nodes {
                    let fd = libc::open(ptr(target), libc::O_CREAT | libc::O_WRONLY | libc::O_CLOEXEC, 0o666);
                    check(fd as _, fds, Step::Dev);
                    libc::close(fd);
                    check(libc::mount(ptr(source), ptr(target), none, libc::MS_BIND, nodata) as _, fds, Step::Dev);
                }
                for (to, link) in &plan.links {
                    check(libc::symlink(ptr(to), ptr(link)) as _, fds, Step::Dev);
                }
            }
        }
        for (source, target, read_only) in &plan.binds {
            check(libc::mount(ptr(source), ptr(target), none, libc::MS_BIND, nodata) as _, fds, Step::Binds);
            if *read_only {
                let flags = libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV;
                check(libc::mount(none, ptr(target), none, flags, nodata) as _, fds, Step::Binds);
            }
        }
        let name = plan.name.as_bytes();
        check(libc::sethostname(name.as_ptr().cast(), name.len()) as _, fds, Step::Names);
        for (path, value) in &plan.sysctls {
            let fd = libc::open(ptr(path), libc::O_WRONLY | libc::O_CLOEXEC);
            check(fd as _, fds, Step::Names);
            if libc::write(fd, value.as_ptr().cast(), value.len()) != value.len() as isize {
                fail(fds, Step::Names);
            }
            libc::close(fd);
        }
        check(libc::chdir(root) as _, fds, Step::Pivot);
        check(libc::syscall(libc::SYS_pivot_root, c".".as_ptr(), c".oldroot".as_ptr()), fds, Step::Pivot);
        check(libc::chdir(c"/".as_ptr()) as _, fds, Step::Pivot);
        check(libc::umount2(c"/.oldroot".as_ptr(), libc::MNT_DETACH) as _, fds, Step::Pivot);
        check(libc::unshare(libc::CLONE_NEWUSER) as _, fds, Step::UserNs);
        put(fds.up_w, b"u");
        let mut byte = [0u8; 1];
        if libc::read(fds.down_r, byte.as_mut_ptr().cast(), 1) != 1 {
            fail(fds, Step::UserNs);
        }
        check(libc::syscall(libc::SYS_setgroups, 0usize, 0usize), fds, Step::UserNs);
        check(libc::syscall(libc::SYS_setresgid, 0u32, 0u32, 0u32), fds, Step::UserNs);
        check(libc::syscall(libc::SYS_setresuid, 0u32, 0u32, 0u32), fds, Step::UserNs);
        libc::close(fds.up_w);
        libc::close(fds.down_r);
    }
    Ok(())
}
