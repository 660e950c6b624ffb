//! The seccomp policy: the jail's boundary, as one table.
//!
//! A guest may enter the kernel only from the trampoline page, only for the
//! calls the six operations need, and only on its channel descriptors.
//! [`Policy::decide`] states the rules; [`Policy::filter`] compiles the same
//! rules to classic BPF, and the supervisor runs `decide` again on every
//! notification it receives, so the kernel and the supervisor cannot drift
//! apart (a test compares them on a grid of inputs with a BPF interpreter).
//!
//! The filter answers in two ways only. `ALLOW` for a call that may run as it
//! is; `USER_NOTIF` for everything else, which hands the stopped call to the
//! supervisor: it performs mediated channel I/O itself, validates `zvm_jail`
//! regions, and kills the guest for anything else, recording the call number
//! and address for the report. The call never runs unless the supervisor says
//! so, and if the supervisor is gone the kernel fails it with `ENOSYS`, so the
//! design fails closed.
//!
//! Allowed calls and why (each only from the trampoline page):
//!
//! | call | allowed when | needed by |
//! |---|---|---|
//! | `read` | fd in the readable direct channels | `zvm_pread` on an unlimited sequential channel |
//! | `pread64` | fd in the random-get direct channels (readable, type 1 or 3) | `zvm_pread` on an unlimited random channel |
//! | `write` | fd in the writable direct channels | `zvm_pwrite` on an unlimited sequential channel |
//! | `pwrite64` | fd in the random-put direct channels (writable, type 2 or 3) | `zvm_pwrite` on an unlimited random channel |
//! | `sendmsg` | fd is the start-up socket | `zl_enter`: hands the listener to the supervisor (the socket is closed next, so the rule is dead afterwards) |
//! | `close` | fd is the start-up socket or the listener after it | `zl_enter`: closes both |
//! | `munmap` | exactly the loader's window | `zl_enter`: unmaps the loader (repeating it unmaps nothing) |
//! | `arch_prctl` | the option (low 32 bits, as the kernel reads it) is `ARCH_SET_FS` | `zvm_set_fs`: a libc's thread pointer (the guest's own fs base; with FSGSBASE it could set it without the kernel anyway) |
//! | `mprotect` | notified, never allowed | `zvm_jail`/`zvm_unjail`: the supervisor checks and validates, then lets it continue |
//! | `exit_group` | notified | `zvm_exit`: the supervisor reads the guest's final I/O counters (readable only while it lives) and its full 64-bit code, then lets it continue |
//! | `fork` | notified, never allowed; from `zvm_fork`'s body only (anywhere else it kills) | `zvm_fork`: a daemon's supervisor reads the guest's memory for its copies and ends it (`session::daemon`); any other answers `ENOSYS` |
//!
//! A positional call on a sequential channel is a violation: a sequential
//! channel ignores offsets (ZeroVM's rule), and one `pwrite64` at a huge
//! offset would make a sequential output a huge sparse file. How far a
//! random-put file may grow is bounded elsewhere (the guest's
//! `RLIMIT_FSIZE`, see `session`), since the filter cannot see file sizes.
//!
//! File descriptors are compared on their low 32 bits because the kernel
//! truncates them to `unsigned int`; addresses are compared on all 64 bits.

use std::ops::Range;

/// `AUDIT_ARCH_X86_64`: the only ABI a guest may use (not i386 `int 0x80`, not x32).
pub const AUDIT_ARCH_X86_64: u32 = 0xC000_003E;

/// System call numbers the policy names.
pub mod nr {
    /// `read(2)`
    pub const READ: u32 = 0;
    /// `write(2)`
    pub const WRITE: u32 = 1;
    /// `close(2)`
    pub const CLOSE: u32 = 3;
    /// `mprotect(2)`
    pub const MPROTECT: u32 = 10;
    /// `munmap(2)`
    pub const MUNMAP: u32 = 11;
    /// `pread64(2)`
    pub const PREAD64: u32 = 17;
    /// `pwrite64(2)`
    pub const PWRITE64: u32 = 18;
    /// `sendmsg(2)`
    pub const SENDMSG: u32 = 46;
    /// `fork(2)`: never run; `zvm_fork`'s gate asks the supervisor with it
    pub const FORK: u32 = 57;
    /// `arch_prctl(2)`
    pub const ARCH_PRCTL: u32 = 158;
    /// `exit_group(2)`
    pub const EXIT_GROUP: u32 = 231;
}

/// `ARCH_SET_FS`: the one `arch_prctl` option a guest may use.
pub const ARCH_SET_FS: u32 = 0x1002;

/// Every call the filter can allow, by name (docs/security.md lists the same).
pub const ALLOWED: &[(&str, u32)] = &[
    ("read", nr::READ),
    ("pread64", nr::PREAD64),
    ("write", nr::WRITE),
    ("pwrite64", nr::PWRITE64),
    ("sendmsg", nr::SENDMSG),
    ("close", nr::CLOSE),
    ("munmap", nr::MUNMAP),
    ("arch_prctl", nr::ARCH_PRCTL),
];

const RET_ALLOW: u32 = 0x7fff_0000;
const RET_USER_NOTIF: u32 = 0x7fc0_0000;

/// What the policy says about one system call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Runs as it is.
    Allow,
    /// A read or write on a limited channel: the supervisor performs it.
    Mediate,
    /// `mprotect` from the jail gates: the supervisor checks it.
    Jail,
    /// `exit_group`: the supervisor records the final counters and code.
    Exit,
    /// `fork` from `zvm_fork`'s gate: a daemon's supervisor takes the guest as
    /// the template of its copies; any other answers `ENOSYS`.
    Fork,
    /// Anything else: the guest is killed and the call reported.
    Violation,
}

/// One guest's policy: the trampoline page and its descriptor ranges.
///
/// Channel descriptors are laid out so each class is one range, in this
/// order: read-only sequential, read-only random, read-write type 1 (random
/// get, sequential put), read-write type 3, write-only random, write-only
/// sequential (all direct), then mediated. So `readable`, `writable`,
/// `random_get` (within `readable`) and `random_put` (within `writable`) are
/// each one range. A direct read-write channel of type 0 or 2 would break the
/// ranges; the manifest refuses them, and one handed in as a descriptor is
/// mediated instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// The trampoline page.
    pub trampoline: Range<u64>,
    /// Descriptors the guest may read directly.
    pub readable: Range<u32>,
    /// Descriptors the guest may write directly.
    pub writable: Range<u32>,
    /// Readable direct descriptors the guest may read at an offset.
    pub random_get: Range<u32>,
    /// Writable direct descriptors the guest may write at an offset.
    pub random_put: Range<u32>,
    /// Descriptors the supervisor mediates.
    pub mediated: Range<u32>,
    /// The start-up socket (`zl_enter` sends the listener on it, then closes
    /// it and the listener, which the loader received as `socket + 1`).
    pub socket: u32,
    /// The loader's window, unmapped by `zl_enter`.
    pub loader: Range<u64>,
}

/// The parts of `struct seccomp_data` the policy reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Call {
    /// System call number.
    pub nr: u32,
    /// `AUDIT_ARCH_*` of the calling convention used.
    pub arch: u32,
    /// Address just past the `syscall` instruction.
    pub ip: u64,
    /// The six arguments.
    pub args: [u64; 6],
}

impl Policy {
    /// The rules, in the order the filter applies them.
    pub fn decide(&self, call: &Call) -> Verdict {
        if call.arch != AUDIT_ARCH_X86_64 || !self.trampoline.contains(&call.ip) {
            return Verdict::Violation;
        }
        let fd = call.args[0] as u32;
        match call.nr {
            nr::READ if self.readable.contains(&fd) => Verdict::Allow,
            nr::PREAD64 if self.random_get.contains(&fd) => Verdict::Allow,
            nr::WRITE if self.writable.contains(&fd) => Verdict::Allow,
            nr::PWRITE64 if self.random_put.contains(&fd) => Verdict::Allow,
            nr::READ | nr::PREAD64 | nr::WRITE | nr::PWRITE64 if self.mediated.contains(&fd) => Verdict::Mediate,
            nr::EXIT_GROUP => Verdict::Exit,
            nr::SENDMSG if fd == self.socket => Verdict::Allow,
            nr::CLOSE if fd == self.socket || fd == self.socket + 1 => Verdict::Allow,
            nr::MUNMAP if call.args[0] == self.loader.start && call.args[1] == self.loader.end - self.loader.start => {
                Verdict::Allow
            }
            nr::ARCH_PRCTL if fd == ARCH_SET_FS => Verdict::Allow,
            nr::MPROTECT => Verdict::Jail,
            nr::FORK if self.is_fork_gate(call.ip) => Verdict::Fork,
            _ => Verdict::Violation,
        }
    }

    /// Whether `ip` lies in `zvm_fork`'s body in this policy's trampoline page.
    fn is_fork_gate(&self, ip: u64) -> bool {
        let body = &crate::abi::gate::FORK_BODY;
        (self.trampoline.start + body.start..self.trampoline.start + body.end).contains(&ip)
    }

    /// The same rules as classic BPF for `seccomp(SECCOMP_SET_MODE_FILTER)`.
    pub fn filter(&self) -> Vec<libc::sock_filter> {
        let mut b = Bpf::default();
        let (deny, allow) = (b.label(), b.label());
        // The calling convention: only the native 64-bit one.
        b.load(OFF_ARCH);
        b.jump_unless_eq(AUDIT_ARCH_X86_64, deny);
        // The instruction pointer: inside the trampoline page, all 64 bits.
        b.load(OFF_IP + 4);
        b.jump_unless_eq((self.trampoline.start >> 32) as u32, deny);
        b.load(OFF_IP);
        let ip_ok = b.label();
        b.jump_if_outside(self.trampoline.start as u32..self.trampoline.end as u32, deny, ip_ok);
        b.bind(ip_ok);
        // The call number.
        let (read, write, sock, unmap) = (b.label(), b.label(), b.label(), b.label());
        let (pread, pwrite) = (b.label(), b.label());
        b.load(OFF_NR);
        b.jump_if_eq(nr::READ, read);
        b.jump_if_eq(nr::WRITE, write);
        b.jump_if_eq(nr::PREAD64, pread);
        b.jump_if_eq(nr::PWRITE64, pwrite);
        let (close, set_fs) = (b.label(), b.label());
        b.jump_if_eq(nr::SENDMSG, sock);
        b.jump_if_eq(nr::CLOSE, close);
        b.jump_if_eq(nr::MUNMAP, unmap);
        b.jump_if_eq(nr::ARCH_PRCTL, set_fs);
        b.jump(deny);
        b.bind(read);
        b.load(OFF_ARG0);
        b.jump_if_outside(self.readable.clone(), deny, allow);
        b.bind(write);
        b.load(OFF_ARG0);
        b.jump_if_outside(self.writable.clone(), deny, allow);
        b.bind(pread);
        b.load(OFF_ARG0);
        b.jump_if_outside(self.random_get.clone(), deny, allow);
        b.bind(pwrite);
        b.load(OFF_ARG0);
        b.jump_if_outside(self.random_put.clone(), deny, allow);
        b.bind(sock);
        b.load(OFF_ARG0);
        b.jump_unless_eq(self.socket, deny);
        b.jump(allow);
        b.bind(close);
        b.load(OFF_ARG0);
        b.jump_if_outside(self.socket..self.socket + 2, deny, allow);
        b.bind(unmap);
        let len = self.loader.end - self.loader.start;
        for (off, value) in [
            (OFF_ARG0, self.loader.start as u32),
            (OFF_ARG0 + 4, (self.loader.start >> 32) as u32),
            (OFF_ARG1, len as u32),
            (OFF_ARG1 + 4, (len >> 32) as u32),
        ] {
            b.load(off);
            b.jump_unless_eq(value, deny);
        }
        b.jump(allow);
        b.bind(set_fs);
        b.load(OFF_ARG0);
        b.jump_unless_eq(ARCH_SET_FS, deny);
        b.jump(allow);
        // Mediated calls, jail requests and violations all go to the supervisor.
        b.bind(deny);
        b.ret(RET_USER_NOTIF);
        b.bind(allow);
        b.ret(RET_ALLOW);
        b.finish()
    }
}

const OFF_NR: u32 = 0;
const OFF_ARCH: u32 = 4;
const OFF_IP: u32 = 8;
const OFF_ARG0: u32 = 16;
const OFF_ARG1: u32 = 24;

const BPF_LD_W_ABS: u16 = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
const BPF_JEQ_K: u16 = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
const BPF_JGE_K: u16 = (libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K) as u16;
const BPF_JA: u16 = (libc::BPF_JMP | libc::BPF_JA) as u16;
const BPF_RET_K: u16 = (libc::BPF_RET | libc::BPF_K) as u16;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Label(usize);

#[derive(Debug, Clone, Copy)]
enum Target {
    Next,
    To(Label),
}

/// A tiny classic-BPF assembler with forward labels.
#[derive(Default)]
struct Bpf {
    code: Vec<(u16, Target, Target, u32)>,
    labels: Vec<Option<usize>>,
}

impl Bpf {
    fn label(&mut self) -> Label {
        self.labels.push(None);
        Label(self.labels.len() - 1)
    }
    fn bind(&mut self, l: Label) {
        self.labels[l.0] = Some(self.code.len());
    }
    fn push(&mut self, op: u16, jt: Target, jf: Target, k: u32) {
        self.code.push((op, jt, jf, k));
    }
    fn load(&mut self, off: u32) {
        self.push(BPF_LD_W_ABS, Target::Next, Target::Next, off);
    }
    fn jump_if_eq(&mut self, k: u32, to: Label) {
        self.push(BPF_JEQ_K, Target::To(to), Target::Next, k);
    }
    fn jump_unless_eq(&mut self, k: u32, to: Label) {
        self.push(BPF_JEQ_K, Target::Next, Target::To(to), k);
    }
    /// Jumps to `out` unless `range.start <= A < range.end`, else to `inside`.
    fn jump_if_outside(&mut self, range: Range<u32>, out: Label, inside: Label) {
        self.push(BPF_JGE_K, Target::Next, Target::To(out), range.start);
        self.push(BPF_JGE_K, Target::To(out), Target::To(inside), range.end);
    }
    fn jump(&mut self, to: Label) {
        self.push(BPF_JA, Target::To(to), Target::Next, 0);
    }
    fn ret(&mut self, k: u32) {
        self.push(BPF_RET_K, Target::Next, Target::Next, k);
    }
    fn finish(self) -> Vec<libc::sock_filter> {
        let resolve = |at: usize, t: Target| -> u32 {
            match t {
                Target::Next => 0,
                Target::To(l) => {
                    let dest = self.labels[l.0].expect("every BPF label is bound");
                    (dest - at - 1) as u32
                }
            }
        };
        self.code
            .iter()
            .enumerate()
            .map(|(i, &(op, jt, jf, k))| {
                if op == BPF_JA {
                    return libc::sock_filter { code: op, jt: 0, jf: 0, k: resolve(i, jt) };
                }
                let (jt, jf) = (resolve(i, jt), resolve(i, jf));
                assert!(jt < 256 && jf < 256, "BPF jump too long");
                libc::sock_filter { code: op, jt: jt as u8, jf: jf as u8, k }
            })
            .collect()
    }
}

#[cfg(test)]
#[path = "seccomp_tests.rs"]
mod tests;
