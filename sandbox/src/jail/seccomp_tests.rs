//! The filter and `decide` must agree: run the compiled BPF in a small
//! interpreter over a grid of calls and compare.

use super::*;

fn policy() -> Policy {
    Policy {
        trampoline: 0x10000..0x11000,
        readable: 0..5,
        writable: 3..7,
        random_get: 1..5,
        random_put: 4..6,
        mediated: 7..9,
        socket: 9,
        loader: 0x100_0000_0000..0x100_0010_0000,
    }
}

/// Classic BPF, just the instructions `Policy::filter` emits.
fn run(prog: &[libc::sock_filter], call: &Call) -> u32 {
    let mut data = [0u8; 64];
    data[0..4].copy_from_slice(&call.nr.to_le_bytes());
    data[4..8].copy_from_slice(&call.arch.to_le_bytes());
    data[8..16].copy_from_slice(&call.ip.to_le_bytes());
    for (i, a) in call.args.iter().enumerate() {
        data[16 + 8 * i..24 + 8 * i].copy_from_slice(&a.to_le_bytes());
    }
    let (mut pc, mut acc) = (0usize, 0u32);
    loop {
        let i = prog[pc];
        pc += 1;
        match i.code {
            BPF_LD_W_ABS => {
                let k = i.k as usize;
                acc = u32::from_le_bytes(data[k..k + 4].try_into().unwrap());
            }
            BPF_JEQ_K => pc += if acc == i.k { i.jt } else { i.jf } as usize,
            BPF_JGE_K => pc += if acc >= i.k { i.jt } else { i.jf } as usize,
            BPF_JA => pc += i.k as usize,
            BPF_RET_K => return i.k,
            other => panic!("unexpected BPF op {other:#x}"),
        }
    }
}

#[test]
fn filter_agrees_with_decide_on_a_grid() {
    let p = policy();
    let prog = p.filter();
    let ips = [0x10005, 0x10fff, 0x0ffff, 0x11000, 0x1_0001_0005, 0xffff_ffff_ff60_0000, 0x401000];
    let nrs = [0, 1, 3, 10, 11, 17, 18, 39, 46, 57, 59, 158, 231, 0x4000_0000, 0x4000_0001];
    let arches = [AUDIT_ARCH_X86_64, 0x4000_0003];
    let fds: [u64; 14] = [0, 1, 2, 3, 4, 5, 6, 7, 9, 10, 0x1_0000_0003, 0x1002, 0x1003, 0x7_0000_1002];
    for &ip in &ips {
        for &nr in &nrs {
            for &arch in &arches {
                for &fd in &fds {
                    for len in [0x10_0000u64, 0x1000] {
                        let args = [if nr == nr::MUNMAP { p.loader.start } else { fd }, len, 0, 0, 0, 0];
                        let call = Call { nr, arch, ip, args };
                        let want = match p.decide(&call) {
                            Verdict::Allow => RET_ALLOW,
                            _ => RET_USER_NOTIF,
                        };
                        assert_eq!(run(&prog, &call), want, "{call:x?}");
                    }
                }
            }
        }
    }
}

#[test]
fn reads_outside_the_trampoline_are_violations() {
    let call = Call { nr: nr::READ, arch: AUDIT_ARCH_X86_64, ip: 0x401000, args: [0; 6] };
    assert_eq!(policy().decide(&call), Verdict::Violation);
}

#[test]
fn i386_calls_are_violations_even_from_the_trampoline() {
    let call = Call { nr: nr::READ, arch: 0x4000_0003, ip: 0x10010, args: [0; 6] };
    assert_eq!(policy().decide(&call), Verdict::Violation);
}

#[test]
fn channel_classes_map_to_verdicts() {
    let p = policy();
    let at = |nr, fd| p.decide(&Call { nr, arch: AUDIT_ARCH_X86_64, ip: 0x10010, args: [fd, 0, 0, 0, 0, 0] });
    assert_eq!(at(nr::READ, 0), Verdict::Allow);
    assert_eq!(at(nr::WRITE, 0), Verdict::Violation, "read-only direct channel");
    assert_eq!(at(nr::PWRITE64, 4), Verdict::Allow);
    assert_eq!(at(nr::READ, 6), Verdict::Violation, "write-only direct channel");
    assert_eq!(at(nr::PREAD64, 0), Verdict::Violation, "sequential read-only direct channel");
    assert_eq!(at(nr::PREAD64, 1), Verdict::Allow, "random read-only direct channel");
    assert_eq!(at(nr::PREAD64, 3), Verdict::Allow, "random get, sequential put");
    assert_eq!(at(nr::PWRITE64, 3), Verdict::Violation, "random get, sequential put");
    assert_eq!(at(nr::WRITE, 3), Verdict::Allow);
    assert_eq!(at(nr::PWRITE64, 5), Verdict::Allow, "random write-only direct channel");
    assert_eq!(at(nr::PWRITE64, 6), Verdict::Violation, "sequential write-only direct channel");
    assert_eq!(at(nr::WRITE, 6), Verdict::Allow);
    assert_eq!(at(nr::PWRITE64, 7), Verdict::Mediate, "mediated channels take every call to the supervisor");
    assert_eq!(at(nr::PREAD64, 8), Verdict::Mediate);
    assert_eq!(at(nr::READ, 9), Verdict::Violation, "the socket is not a channel");
    assert_eq!(at(nr::SENDMSG, 9), Verdict::Allow);
    assert_eq!(at(nr::SENDMSG, 10), Verdict::Violation);
    assert_eq!(at(nr::CLOSE, 9), Verdict::Allow);
    assert_eq!(at(nr::CLOSE, 10), Verdict::Allow, "the listener");
    assert_eq!(at(nr::CLOSE, 11), Verdict::Violation);
    assert_eq!(at(nr::CLOSE, 3), Verdict::Violation);
    assert_eq!(at(nr::EXIT_GROUP, 0), Verdict::Exit);
    assert_eq!(at(nr::MPROTECT, 0), Verdict::Jail);
    assert_eq!(at(39, 0), Verdict::Violation);
}

#[test]
fn fork_is_zvm_fork_only_from_its_gate() {
    let p = policy();
    let at = |ip| p.decide(&Call { nr: nr::FORK, arch: AUDIT_ARCH_X86_64, ip, args: [0; 6] });
    assert_eq!(at(0x10300 + 0x30), Verdict::Fork, "zvm_fork's body");
    assert_eq!(at(0x10010), Verdict::Violation, "a fork gadget elsewhere in the trampoline");
    assert_eq!(at(0x10380), Verdict::Violation, "past the body");
}

#[test]
fn arch_prctl_is_allowed_only_to_set_the_fs_base() {
    let p = policy();
    let at = |ip, option| {
        p.decide(&Call { nr: nr::ARCH_PRCTL, arch: AUDIT_ARCH_X86_64, ip, args: [option, 0x5000, 0, 0, 0, 0] })
    };
    assert_eq!(at(0x101e8, 0x1002), Verdict::Allow, "ARCH_SET_FS");
    assert_eq!(at(0x101e8, 0x9_0000_1002), Verdict::Allow, "the kernel reads the option as an int");
    assert_eq!(at(0x101e8, 0x1001), Verdict::Violation, "ARCH_SET_GS");
    assert_eq!(at(0x101e8, 0x1003), Verdict::Violation, "ARCH_GET_FS");
    assert_eq!(at(0x101e8, 0x1012), Verdict::Violation, "ARCH_SET_CPUID");
    assert_eq!(at(0x401000, 0x1002), Verdict::Violation, "outside the trampoline");
}

#[test]
fn munmap_is_allowed_only_for_the_exact_loader_window() {
    let p = policy();
    let at = |a, l| p.decide(&Call { nr: nr::MUNMAP, arch: AUDIT_ARCH_X86_64, ip: 0x10010, args: [a, l, 0, 0, 0, 0] });
    assert_eq!(at(p.loader.start, 0x10_0000), Verdict::Allow);
    assert_eq!(at(p.loader.start, 0x1000), Verdict::Violation);
    assert_eq!(at(0x10000, 0x10_0000), Verdict::Violation);
}

/// docs/security.md's table of allowed calls must match the policy's.
#[test]
fn security_doc_lists_exactly_the_allowed_calls() {
    let doc = include_str!("../../../docs/security.md");
    let section = doc.split("### Allowed system calls").nth(1).expect("section");
    let table = section.split("\n\n").find(|b| b.trim_start().starts_with('|')).expect("table");
    let mut documented: Vec<&str> = table.lines().skip(2).filter_map(|l| l.split('|').nth(1)).map(str::trim).collect();
    documented.sort();
    let mut allowed: Vec<&str> = ALLOWED.iter().map(|(name, _)| *name).collect();
    allowed.sort();
    assert_eq!(documented, allowed);
    // Positional calls only on random channels (a sequential channel ignores offsets).
    for row in table.lines().skip(2) {
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        if matches!(cells[1], "pread64" | "pwrite64") {
            assert!(
                cells[2].contains("random"),
                "docs/security.md: {} must be allowed on random channels only",
                cells[1]
            );
        }
    }
    let p = policy();
    for (name, number) in ALLOWED {
        let args = [if *number == nr::MUNMAP { p.loader.start } else { 9 }, 0x10_0000, 0, 0, 0, 0];
        let reachable = [0u64, 3, 4, 9, u64::from(ARCH_SET_FS)].iter().any(|&fd| {
            let args = if *number == nr::MUNMAP { args } else { [fd, 0, 0, 0, 0, 0] };
            p.decide(&Call { nr: *number, arch: AUDIT_ARCH_X86_64, ip: 0x10010, args }) == Verdict::Allow
        });
        assert!(reachable, "{name} is listed as allowed but the policy never allows it");
    }
}
