//! The running guest seen from outside: its namespaces, identity,
//! capabilities, seccomp mode and open descriptors.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::harness::{root_or_skip, Lab};
use crate::library::start_loop;

fn ns(pid: impl std::fmt::Display, kind: &str) -> String {
    std::fs::read_link(format!("/proc/{pid}/ns/{kind}")).unwrap().display().to_string()
}

fn status(pid: i32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap()
}

fn field<'a>(status: &'a str, name: &str) -> &'a str {
    status.lines().find_map(|l| l.strip_prefix(name)).map(str::trim).unwrap_or_else(|| panic!("no {name}"))
}

#[test]
fn guest_lives_in_its_own_pid_namespace_and_none_of_the_hosts() {
    let _lab = Lab::new();
    let (mut a, _oa) = start_loop(Duration::from_secs(20));
    let (mut b, _ob) = start_loop(Duration::from_secs(20));
    for kind in ["pid", "mnt", "ipc", "uts"] {
        assert_ne!(ns(a.pid(), kind), ns("self", kind), "{kind} namespace is the host's");
    }
    assert_ne!(ns(a.pid(), "pid"), ns(b.pid(), "pid"), "two guests share a pid namespace");
    assert_eq!(
        field(&status(a.pid()), "NSpid:").split_whitespace().last(),
        Some("1"),
        "guest is not its pid namespace's init"
    );
    a.kill();
    b.kill();
    assert_eq!(a.wait().exit_state, "killed");
    assert_eq!(b.wait().exit_state, "killed");
}

#[test]
fn guest_has_no_privileges_and_is_in_seccomp_filter_mode() {
    let _lab = Lab::new();
    let (mut s, _out) = start_loop(Duration::from_secs(20));
    let st = status(s.pid());
    assert_eq!(field(&st, "CapEff:"), "0000000000000000", "{st}");
    assert_eq!(field(&st, "CapPrm:"), "0000000000000000", "{st}");
    assert_eq!(field(&st, "NoNewPrivs:"), "1");
    assert_eq!(field(&st, "Seccomp:"), "2", "filter mode");
    if root_or_skip("guest_has_no_privileges_and_is_in_seccomp_filter_mode (uid part)") {
        let uid: Vec<&str> = field(&st, "Uid:").split_whitespace().collect();
        assert_eq!(uid, ["65534"; 4], "a root supervisor's guest runs as nobody");
    }
    s.kill();
    s.wait();
}

#[test]
fn guest_holds_only_its_channel_descriptors() {
    let _lab = Lab::new();
    let (mut s, _out) = start_loop(Duration::from_secs(20));
    let fds: BTreeSet<u32> = std::fs::read_dir(format!("/proc/{}/fd", s.pid()))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_str().unwrap().parse().unwrap())
        .collect();
    assert_eq!(fds, BTreeSet::from([0, 1, 2]), "start-up socket, listener, image and layout must be gone");
    // Exactly: trampoline, manifest area, image, stack guard and stack, heap,
    // and the kernel's vsyscall page; no vDSO, no loader, no layout copy.
    let maps = std::fs::read_to_string(format!("/proc/{}/maps", s.pid())).unwrap();
    let ranges: Vec<(u64, u64)> = maps
        .lines()
        .map(|l| {
            let (a, b) = l.split_whitespace().next().unwrap().split_once('-').unwrap();
            (u64::from_str_radix(a, 16).unwrap(), u64::from_str_radix(b, 16).unwrap())
        })
        .filter(|&(a, _)| !(0x40_0000..0x8000_0000).contains(&a))
        .collect();
    let stack_lo = ranges.iter().find(|r| r.1 == 0xf000_0000).expect("stack ends at STACK_TOP").0;
    let want = [
        (0x1_0000, 0x1_1000),
        (0x2_0000, 0x2_1000),
        (stack_lo - 4096, stack_lo),
        (stack_lo, 0xf000_0000),
        (0x1_0000_0000, ranges[4].1),
        (0xffff_ffff_ff60_0000, 0xffff_ffff_ff60_1000),
    ];
    assert_eq!(ranges, want, "{maps}");
    assert!(maps.lines().next().unwrap().contains("r-xp"), "trampoline page must be read+execute only:\n{maps}");
    s.kill();
    s.wait();
}
