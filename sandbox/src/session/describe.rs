//! How a guest's end is named in its report: the signal that killed it, and the
//! forbidden call that made the supervisor kill it (by name, for the calls escaping
//! guests try most).

use crate::jail::seccomp::{Call, AUDIT_ARCH_X86_64};

/// A signal's name and, for the ones a guest meets, what it means.
pub(super) fn signal_name(sig: i32) -> &'static str {
    match sig {
        libc::SIGSEGV => "SIGSEGV: invalid memory access",
        libc::SIGBUS => "SIGBUS",
        libc::SIGILL => "SIGILL: illegal instruction",
        libc::SIGFPE => "SIGFPE: arithmetic error",
        libc::SIGKILL => "SIGKILL",
        libc::SIGSYS => "SIGSYS: forbidden system call",
        libc::SIGXCPU => "SIGXCPU: CPU time limit",
        libc::SIGTRAP => "SIGTRAP",
        libc::SIGABRT => "SIGABRT",
        libc::SIGPIPE => "SIGPIPE",
        _ => "signal",
    }
}

/// The exit state for a call the policy forbids.
pub(super) fn describe_violation(call: &Call) -> String {
    let abi = if call.arch == AUDIT_ARCH_X86_64 { "" } else { " (32-bit ABI)" };
    let at = if call.ip >= 0xffff_ffff_ff60_0000 { call.ip } else { call.ip.wrapping_sub(2) };
    let name = if call.arch == AUDIT_ARCH_X86_64 { syscall_name(call.nr) } else { None };
    match name {
        Some(n) => format!("forbidden call {} ({n}){abi} at {at:#x}", call.nr),
        None => format!("forbidden call {}{abi} at {at:#x}", call.nr),
    }
}

/// Names of the x86-64 calls an escaping guest most often tries.
fn syscall_name(nr: u32) -> Option<&'static str> {
    Some(match nr {
        0 => "read",
        1 => "write",
        2 => "open",
        3 => "close",
        9 => "mmap",
        10 => "mprotect",
        11 => "munmap",
        12 => "brk",
        17 => "pread64",
        18 => "pwrite64",
        39 => "getpid",
        41 => "socket",
        42 => "connect",
        56 => "clone",
        57 => "fork",
        58 => "vfork",
        59 => "execve",
        60 => "exit",
        62 => "kill",
        96 => "gettimeofday",
        101 => "ptrace",
        157 => "prctl",
        158 => "arch_prctl",
        165 => "mount",
        201 => "time",
        228 => "clock_gettime",
        257 => "openat",
        309 => "getcpu",
        317 => "seccomp",
        322 => "execveat",
        435 => "clone3",
        _ => return None,
    })
}
