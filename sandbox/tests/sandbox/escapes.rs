//! Escape attempts (`tests/guests/esc_*.c`, `loop.c`): each is stopped with
//! the documented return code and exit state, never prints `reached=1`, and
//! leaves nothing behind on the host: the temp dir holds only the manifest
//! and the two output files, and those hold only what the guest printed
//! before it was stopped. Each case is run again built with `zvm-cc` (musl and
//! the POSIX runtime linked in) and must be stopped the same way.

use std::os::unix::process::CommandExt;
use std::time::Duration;

use crate::harness::{guest, zvm_cc_guest, Lab, Outcome, Report};

/// Runs an escape guest with the standard channels; checks it never got
/// through and that the temp dir gained nothing.
fn attempt(lab: &Lab, name: &str, args: &[&str], code: i32) -> (Outcome, Report) {
    let mut argv = vec![name];
    argv.extend_from_slice(args);
    let out = lab.run(&lab.manifest(guest(name)).timeout(2).args(&argv)).expect_code(code);
    let report = out.report();
    let (stdout, stderr) = (lab.read_string("stdout"), lab.read_string("stderr"));
    assert!(!stdout.contains("reached=1") && !stderr.contains("reached=1"), "{name} got through:\n{stdout}{stderr}");
    let left: Vec<String> = lab.listing().into_iter().filter(|n| n != ".cache").collect();
    assert_eq!(left, ["manifest.0", "stderr", "stdout"], "{name} left files behind");
    (out, report)
}

#[test]
fn validator_rejects_forbidden_instructions_before_the_guest_runs() {
    for (name, insn) in
        [("esc_syscall", "`syscall`"), ("esc_int80", "`int 0x80`"), ("esc_rdtsc", "`rdtsc`"), ("esc_cpuid", "`cpuid`")]
    {
        let lab = Lab::new();
        let (out, r) = attempt(&lab, name, &[], 8);
        assert_eq!(r.validator, 1, "{name}: validator state\n{out}");
        assert!(r.exit_state.starts_with("validation failed:") && r.exit_state.contains(insn), "{name}: {r:?}");
        assert_eq!(
            (lab.read_string("stdout"), lab.read_string("stderr")),
            (String::new(), String::new()),
            "{name} ran"
        );
    }
}

/// Checks a kill for a forbidden call: `forbidden call NR (NAME) at 0x...`.
#[track_caller]
fn assert_forbidden_call(r: &Report, nr: u32, name: &str) {
    assert_eq!(r.validator, 0, "{r:?}");
    let prefix = format!("forbidden call {nr} ({name}) at 0x");
    let addr = r.exit_state.strip_prefix(&prefix).unwrap_or_else(|| panic!("expected {prefix}..., got {r:?}"));
    assert!(!addr.is_empty() && addr.chars().all(|c| c.is_ascii_hexdigit()), "{r:?}");
}

#[test]
fn syscall_hidden_inside_another_instruction_is_killed() {
    let lab = Lab::new();
    let (_, r) = attempt(&lab, "esc_hidden", &[], 4);
    assert_forbidden_call(&r, 39, "getpid");
    assert_eq!(lab.read_string("stdout"), "started=1\n");
}

#[test]
fn trampoline_syscall_with_a_forbidden_number_is_killed() {
    for (args, nr, name) in [(&["nr"][..], 57, "fork"), (&["nr", "39"][..], 39, "getpid")] {
        let lab = Lab::new();
        let (_, r) = attempt(&lab, "esc_tramp", args, 4);
        assert_forbidden_call(&r, nr, name);
        let stdout = lab.read_string("stdout");
        assert!(stdout.starts_with("started=1\ngadget=") && stdout.lines().count() == 2, "{stdout}");
        assert!(r.exit_state.ends_with(&format!("{:#x}", 0x10000 + gadget(&stdout))), "address of the gadget: {r:?}");
    }
}

fn gadget(stdout: &str) -> u64 {
    crate::harness::kv(stdout)["gadget"].parse().unwrap()
}

#[test]
fn trampoline_syscall_on_a_descriptor_that_is_no_channel_is_killed() {
    let lab = Lab::new();
    // zvsh holds descriptor 1000 open on a marker file: the jail must not
    // pass it on, and the guest's write must not land there.
    let marker = lab.write("marker", "");
    let file = std::fs::OpenOptions::new().append(true).open(&marker).unwrap();
    let m = lab.manifest(guest("esc_tramp")).timeout(2).args(["esc_tramp", "fd", "1000"]);
    let path = lab.write("manifest.0", m.render());
    let mut cmd = lab.zvsh().arg("--manifest").arg(path);
    let fd = std::os::fd::AsRawFd::as_raw_fd(&file);
    // SAFETY: dup2 is async-signal-safe; both descriptors are valid in the child.
    unsafe {
        cmd.command().pre_exec(move || {
            if libc::dup2(fd, 1000) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let r = cmd.run().expect_code(4).report();
    drop(file);
    assert_forbidden_call(&r, 1, "write");
    let stdout = lab.read_string("stdout");
    assert!(stdout.starts_with("started=1\ngadget=") && !stdout.contains("ret="), "{stdout}");
    assert_eq!(std::fs::read(&marker).unwrap(), b"", "the guest wrote to the host's descriptor");
}

#[test]
fn vsyscall_page_call_is_killed() {
    let lab = Lab::new();
    let (_, r) = attempt(&lab, "esc_vsyscall", &[], 4);
    // Where the kernel maps the vsyscall page it emulates the call, and the
    // filter sees it; with vsyscall=none the jump itself faults.
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    if maps.contains("[vsyscall]") {
        assert_eq!(r.exit_state, "forbidden call 96 (gettimeofday) at 0xffffffffff600000");
    } else {
        assert!(r.exit_state.starts_with("Signal 11 from untrusted code"), "{r:?}");
    }
    assert_eq!(lab.read_string("stdout"), "started=1\n");
}

#[test]
fn writes_to_code_and_execution_of_data_end_in_signal_11() {
    for name in
        ["esc_write_code", "esc_write_tramp", "esc_exec_data", "esc_exec_stack", "esc_exec_heap", "esc_beyond_heap"]
    {
        let lab = Lab::new();
        let (out, r) = attempt(&lab, name, &[], 4);
        assert_eq!(r.validator, 0, "{name}: {out}");
        assert_eq!(r.exit_state, "Signal 11 from untrusted code (SIGSEGV: invalid memory access)", "{name}");
        let stdout = lab.read_string("stdout");
        let expected = if name == "esc_beyond_heap" { 2 } else { 1 };
        assert!(stdout.starts_with("started=1\n") && stdout.lines().count() == expected, "{name}: {stdout}");
    }
}

#[test]
fn endless_loop_is_stopped_at_timeout() {
    let lab = Lab::new();
    let out = lab.run(&lab.manifest(guest("loop")).timeout(1)).expect_code(4);
    let r = out.report();
    assert_eq!((r.validator, r.user_code, r.exit_state.as_str()), (0, 0, "session timeout"), "{out}");
    assert!(
        out.elapsed >= Duration::from_secs(1) && out.elapsed < Duration::from_millis(1500),
        "Timeout = 1 took {:?}",
        out.elapsed
    );
    assert_eq!(lab.read_string("stdout"), "started=1\n");
}

/// What a run shows, with addresses (hex in reports, decimal in `target=`)
/// masked, since the two toolchains lay code out differently.
fn shown(out: &Outcome) -> (i32, String, String) {
    fn mask(text: &str) -> String {
        let mut out = String::new();
        let mut rest = text;
        while let Some(at) = [rest.find("0x"), rest.find("target=")].into_iter().flatten().min() {
            let prefix = if rest[at..].starts_with("0x") { "0x" } else { "target=" };
            out.push_str(&rest[..at]);
            out.push_str(prefix);
            out.push_str("ADDR");
            rest = rest[at + prefix.len()..].trim_start_matches(|c: char| c.is_ascii_hexdigit());
        }
        out.push_str(rest);
        out
    }
    (out.code, mask(&out.stdout()), mask(&out.report().exit_state))
}

#[test]
fn escape_guests_built_with_zvm_cc_are_stopped_the_same_way() {
    let cases: &[(&str, &[&str])] = &[
        ("esc_syscall", &[]),
        ("esc_int80", &[]),
        ("esc_rdtsc", &[]),
        ("esc_cpuid", &[]),
        ("esc_hidden", &[]),
        ("esc_tramp", &["nr", "57"]),
        ("esc_tramp", &["fd", "1000"]),
        ("esc_vsyscall", &[]),
        ("esc_write_code", &[]),
        ("esc_write_tramp", &[]),
        ("esc_exec_data", &[]),
        ("esc_exec_stack", &[]),
        ("esc_exec_heap", &[]),
        ("esc_beyond_heap", &[]),
    ];
    for &(name, args) in cases {
        let lab = Lab::new();
        let mut argv = vec![name];
        argv.extend_from_slice(args);
        let zvm_gcc = lab.run(&lab.manifest(guest(name)).timeout(2).args(&argv));
        let zvm_cc = lab.run(&lab.manifest(zvm_cc_guest(name)).timeout(2).args(&argv));
        assert!(!zvm_cc.stdout().contains("reached=1"), "{name} {args:?} built with zvm-cc got through:\n{zvm_cc}");
        assert_eq!(shown(&zvm_cc), shown(&zvm_gcc), "{name} {args:?}: zvm-cc build against zvm-gcc build");
    }
}
