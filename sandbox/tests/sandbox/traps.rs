//! Instructions the validator cannot see: `rdtsc`, `rdtscp` and `cpuid`
//! hidden inside another instruction's bytes (`tests/guests/esc_hidden_time.c`)
//! pass validation, and the kernel makes them fault, so the guest gets no
//! clock and no CPU identity: it is killed by signal 11 before it can print
//! a value. `cpuid` faults only where the CPU supports CPUID faulting; where
//! it does not, the guest reads it (the documented limit) and the test checks
//! that this is the only way the outcome differs.

use crate::harness::{announce_skip, guest, Lab};

/// Runs `esc_hidden_time INSN` and returns (zvsh exit code, report, stdout).
fn run_hidden(insn: &str) -> (i32, crate::harness::Report, String) {
    let lab = Lab::new();
    let out = lab.run(&lab.manifest(guest("esc_hidden_time")).timeout(5).args(["esc_hidden_time", insn]));
    let code = out.code;
    (code, out.report(), lab.read_string("stdout"))
}

/// Whether this CPU and kernel can make `cpuid` fault (as the loader asks).
fn cpuid_faults_here() -> bool {
    const ARCH_SET_CPUID: libc::c_long = 0x1012;
    // SAFETY: enabling cpuid on this thread, where it is enabled, changes
    // nothing; it fails with ENODEV exactly where faulting is unsupported.
    unsafe { libc::syscall(libc::SYS_arch_prctl, ARCH_SET_CPUID, 1) == 0 }
}

#[test]
fn hidden_rdtsc_and_rdtscp_fault_instead_of_reading_the_clock() {
    for insn in ["rdtsc", "rdtscp"] {
        let (code, r, stdout) = run_hidden(insn);
        assert_eq!(stdout, "started=1\n", "{insn} ran: {r:?}");
        assert_eq!((code, r.validator), (4, 0), "{insn}: {r:?}");
        assert!(r.exit_state.starts_with("Signal 11"), "{insn}: {r:?}");
    }
}

#[test]
fn hidden_cpuid_faults_where_the_cpu_can_make_it_fault() {
    let (code, r, stdout) = run_hidden("cpuid");
    if cpuid_faults_here() {
        assert_eq!(stdout, "started=1\n", "cpuid ran: {r:?}");
        assert_eq!((code, r.validator), (4, 0), "{r:?}");
        assert!(r.exit_state.starts_with("Signal 11"), "{r:?}");
    } else {
        announce_skip(
            "hidden_cpuid_faults_where_the_cpu_can_make_it_fault (fault part)",
            "this CPU has no CPUID faulting: a hidden cpuid runs, as documented",
        );
        assert!(stdout.starts_with("started=1\nvalue=") && stdout.ends_with("reached=1\n"), "{stdout}");
        assert_eq!((code, r.exit_state.as_str()), (0, "ok"), "{r:?}");
    }
}
