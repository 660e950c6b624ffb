//! Other processes of the guests' user cannot reach into a guest: a process
//! running as `nobody`, like a root supervisor's guests, can neither trace a
//! guest, nor take its channel descriptors, nor read or write its memory.
//! The supervisor still can (its mediated calls and report work). Root only:
//! a non-root supervisor's guests run as its own user.

use std::ffi::CString;
use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::time::Duration;

use zerolab_sandbox::channel::Channel;
use zerolab_sandbox::manifest::{AccessType, Limits};
use zerolab_sandbox::session::{self, Guest, Options};

use crate::harness::{guest, root_or_skip, Lab};

const NOBODY: libc::c_long = 65534;
/// What the attacker writes into the guest's output file if it gets the descriptor.
const PWNED: &[u8] = b"written by another process of nobody\n";

/// The four attacks, in the order the attacker reports them.
const ATTACKS: [&str; 4] =
    ["ptrace(PTRACE_SEIZE)", "pidfd_getfd of its channels", "process_vm_readv", "open /proc/PID/mem"];

fn channel(alias: &str, limits: Limits, fd: impl Into<OwnedFd>) -> Channel {
    Channel::from_fd(alias, AccessType::SeqGetSeqPut, limits, fd.into()).expect("channel from fd")
}

/// Forks a child that becomes `nobody` and attacks `pid`; returns each
/// attack's errno (0: it worked). The child runs raw system calls only (the
/// test process has threads) and reports on a pipe.
fn attack_as_nobody(pid: libc::pid_t) -> [i32; 4] {
    let mem = CString::new(format!("/proc/{pid}/mem")).unwrap();
    let (r, w) = nix::unistd::pipe().unwrap();
    // SAFETY: the child makes only async-signal-safe system calls on data
    // prepared before the fork, then _exits.
    let child = unsafe { libc::fork() };
    assert!(child >= 0, "fork: {}", std::io::Error::last_os_error());
    if child == 0 {
        attacker(pid, &mem, w.as_raw_fd());
    }
    drop(w);
    let mut bytes = [0u8; 16];
    std::fs::File::from(r).read_exact(&mut bytes).expect("the attacker's results");
    let mut status = 0;
    // SAFETY: waitpid on our own child.
    unsafe { libc::waitpid(child, &mut status, 0) };
    std::array::from_fn(|i| i32::from_ne_bytes(bytes[i * 4..i * 4 + 4].try_into().unwrap()))
}

/// The forked attacker (never returns).
fn attacker(pid: libc::pid_t, mem: &CString, report: i32) -> ! {
    let mut out = [0i32; 4];
    // SAFETY: raw system calls on valid local buffers and a NUL-terminated
    // path made before the fork; no allocation, no locks.
    unsafe {
        let errno = || *libc::__errno_location();
        let ok = libc::syscall(libc::SYS_setgroups, 0, std::ptr::null::<libc::gid_t>()) == 0
            && libc::syscall(libc::SYS_setresgid, NOBODY, NOBODY, NOBODY) == 0
            && libc::syscall(libc::SYS_setresuid, NOBODY, NOBODY, NOBODY) == 0;
        if !ok {
            libc::_exit(1);
        }
        // A seize does not stop the guest; the attacker's exit detaches it.
        out[0] = if libc::ptrace(libc::PTRACE_SEIZE, pid, 0, 0) == 0 { 0 } else { errno() };
        let pidfd = libc::syscall(libc::SYS_pidfd_open, pid, 0) as i32;
        // The guest's descriptors 0-2 are its channels (in an order of the
        // supervisor's choosing): take each, write into whichever will take it.
        out[1] = if pidfd < 0 { errno() } else { libc::EPERM };
        for target in 0..3 {
            if pidfd < 0 {
                break;
            }
            let fd = libc::syscall(libc::SYS_pidfd_getfd, pidfd, target, 0) as i32;
            if fd >= 0 {
                libc::write(fd, PWNED.as_ptr().cast(), PWNED.len());
                out[1] = 0;
            } else if out[1] != 0 && errno() != libc::EPERM {
                out[1] = errno();
            }
        }
        let mut word = [0u8; 8];
        let local = libc::iovec { iov_base: word.as_mut_ptr().cast(), iov_len: 8 };
        let remote = libc::iovec { iov_base: 0x10000 as *mut libc::c_void, iov_len: 8 };
        out[2] = if libc::process_vm_readv(pid, &local, 1, &remote, 1, 0) == 8 { 0 } else { errno() };
        out[3] = if libc::open(mem.as_ptr(), libc::O_RDWR) >= 0 { 0 } else { errno() };
        libc::write(report, out.as_ptr().cast(), 16);
        libc::_exit(0)
    }
}

#[test]
fn other_processes_of_the_guests_user_cannot_reach_into_a_guest() {
    if !root_or_skip("other_processes_of_the_guests_user_cannot_reach_into_a_guest") {
        return;
    }
    let lab = Lab::new();
    // The output is a root-only file; the input a pipe the guest blocks on.
    let out_path = lab.path("out");
    let out = OpenOptions::new().write(true).create_new(true).mode(0o600).open(&out_path).unwrap();
    let (stdin_r, stdin_w) = nix::unistd::pipe().unwrap();
    let devnull = OpenOptions::new().write(true).open("/dev/null").unwrap();
    // Limits make the channels mediated: the supervisor reads and writes the
    // guest's memory for every call.
    let g = Guest {
        program: guest("cat"),
        program_member: None,
        memory: 32 << 20,
        timeout: Duration::from_secs(20),
        channels: vec![
            channel("/dev/stdin", Limits::read_only(1 << 20, 1 << 30), stdin_r),
            channel("/dev/stdout", Limits::write_only(1 << 20, 1 << 30), out),
            channel("/dev/stderr", Limits::WRITE_ONLY, devnull),
        ],
        args: Vec::new(),
        env: Vec::new(),
    };
    let session = session::spawn(g, &Options::default()).expect("spawn");
    let pid = session.pid();
    // Not dumpable from exec on: the loader never asks for it (no
    // PR_SET_DUMPABLE), so this is the kernel's verdict on the exec of an
    // execute-only loader, already in force before the loader's first step.
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    assert!(status.lines().any(|l| l.split_whitespace().eq(["Uid:", "65534", "65534", "65534", "65534"])), "{status}");
    let mem_owner = std::fs::metadata(format!("/proc/{pid}/mem")).unwrap().uid();

    let got = attack_as_nobody(pid);
    let reached: Vec<String> = ATTACKS
        .iter()
        .zip(got)
        .filter(|&(_, e)| e != libc::EPERM && e != libc::EACCES)
        .map(|(a, e)| format!("{a}: {}", if e == 0 { "succeeded".into() } else { format!("errno {e}") }))
        .collect();

    // The supervisor still mediates: the guest copies its input and ends well.
    std::fs::File::from(stdin_w).write_all(b"from the supervisor\n").unwrap();
    let r = session.wait();
    let written = std::fs::read(&out_path).unwrap();
    assert!(reached.is_empty(), "a process of nobody reached into the guest: {reached:?}\noutput: {written:?}");
    assert_eq!(mem_owner, 0, "the guest was dumpable right after it started");
    assert_eq!((r.exit_state.as_str(), r.user_code), ("ok", 0), "{r}");
    assert_eq!(written, b"from the supervisor\n", "only the guest wrote its output");
    assert!(r.accounting.local.puts >= 1 && r.accounting.local.put_bytes == 20, "{r}");
}
