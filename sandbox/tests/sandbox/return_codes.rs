//! Start-up failures through `zvsh --manifest`: the return code (exit
//! status) and report line 6 for a handful of manifests that cannot run. The
//! parser's unit tests cover every manifest error; these check that the
//! binary reports the first error of each kind and never starts the guest.

use crate::harness::{dynamic_elf, guest, static_libc_elf, Lab, Limits};

#[test]
fn missing_program_file_is_code_2() {
    let lab = Lab::new();
    let r = lab.run(&lab.manifest(lab.path("no-such-program"))).expect_code(2).report();
    r.assert_never_ran(2);
    assert!(r.exit_state.contains("does not exist"), "{r:?}");
}

#[test]
fn dev_zero_as_program_is_code_5() {
    let lab = Lab::new();
    let r = lab.run(&lab.manifest("/dev/zero")).expect_code(5).report();
    r.assert_never_ran(2);
    assert!(r.exit_state.contains("/dev/zero"), "{r:?}");
}

#[test]
fn directory_as_channel_is_code_93() {
    let lab = Lab::new();
    std::fs::create_dir(lab.path("adir")).unwrap();
    let m = lab.manifest(guest("hello")).channel(lab.path("adir"), "/dev/dir", 0, Limits::READ_ONLY);
    let r = lab.run(&m).expect_code(93).report();
    r.assert_never_ran(2);
    assert!(r.exit_state.contains("directory") && r.exit_state.contains("/dev/dir"), "{r:?}");
    assert!(!lab.path("stdout").exists() || lab.read("stdout").is_empty(), "the guest ran");
}

#[test]
fn missing_path_of_readable_channel_is_code_14() {
    let lab = Lab::new();
    let m = lab.manifest(guest("hello")).channel(lab.path("absent"), "/dev/in", 0, Limits::READ_ONLY);
    let r = lab.run(&m).expect_code(14).report();
    r.assert_never_ran(2);
    assert!(r.exit_state.contains("does not exist"), "{r:?}");
    assert!(!lab.path("absent").exists(), "a readable channel's path was created");
}

#[test]
fn memory_outside_1_byte_to_4_gib_is_code_12() {
    let lab = Lab::new();
    for memory in ["4294967297", "0", "-1"] {
        let r = lab.run(&lab.manifest(guest("hello")).memory(memory)).expect_code(12).report();
        r.assert_never_ran(2);
        assert!(r.exit_state.starts_with("MANIFEST 3:"), "Memory = {memory}: {r:?}");
    }
}

/// Issue 9: `Timeout = i64::MAX` passed the check, then `now + Timeout` panicked zvsh.
#[test]
fn timeout_beyond_the_clock_is_code_14_not_a_panic() {
    let lab = Lab::new();
    for timeout in ["9223372036854775807", "0x7fffffffffffffff", "2147483648"] {
        let r = lab.run(&lab.manifest(guest("hello")).timeout(timeout)).expect_code(14).report();
        r.assert_never_ran(2);
        assert!(
            r.exit_state.starts_with("MANIFEST 4: Timeout")
                && r.exit_state.contains("is more than the largest supported"),
            "Timeout = {timeout}: {r:?}"
        );
    }
}

#[test]
fn channel_with_all_limits_zero_is_code_22() {
    let lab = Lab::new();
    let m = lab.manifest(guest("hello")).channel(lab.path("x"), "/dev/x", 0, Limits::NONE);
    let r = lab.run(&m).expect_code(22).report();
    r.assert_never_ran(2);
    assert!(r.exit_state.contains("invalid i/o type"), "{r:?}");
}

#[test]
fn text_file_as_program_is_code_8_with_a_message() {
    let lab = Lab::new();
    let text = lab.write("script.sh", "#!/bin/sh\necho escaped\n");
    let r = lab.run(&lab.manifest(text)).expect_code(8).report();
    r.assert_never_ran(2);
    assert!(r.exit_state.contains("not an ELF"), "{r:?}");
}

/// Offsets inside the parts of an ELF the loader needs: the ELF header, the
/// program headers, and the last byte of loaded data.
fn cuts(elf: &[u8]) -> Vec<usize> {
    let u16_at = |o: usize| u16::from_le_bytes([elf[o], elf[o + 1]]) as usize;
    let u64_at = |o: usize| u64::from_le_bytes(elf[o..o + 8].try_into().unwrap()) as usize;
    let (phoff, phentsize, phnum) = (u64_at(0x20), u16_at(0x36), u16_at(0x38));
    let load_end = (0..phnum)
        .map(|i| phoff + i * phentsize)
        .filter(|&ph| u32::from_le_bytes(elf[ph..ph + 4].try_into().unwrap()) == 1) // PT_LOAD
        .map(|ph| u64_at(ph + 8) + u64_at(ph + 0x20))
        .max()
        .expect("a PT_LOAD segment");
    vec![1, 4, 40, 63, phoff + phentsize / 2, phoff + phnum * phentsize - 1, load_end - 1]
}

#[test]
fn truncated_elf_is_code_8_wherever_it_is_cut() {
    let lab = Lab::new();
    let hello = std::fs::read(guest("hello")).unwrap();
    for cut in cuts(&hello) {
        let prog = lab.write(&format!("hello.{cut}"), &hello[..cut]);
        let r = lab.run(&lab.manifest(&prog)).expect_code(8).report();
        r.assert_never_ran(2);
        assert!(r.exit_state.contains("truncated") || r.exit_state.contains("not an ELF"), "cut at {cut}: {r:?}");
    }
}

#[test]
fn dynamic_elf_is_code_8_and_the_message_says_to_use_zvm_gcc() {
    let lab = Lab::new();
    let r = lab.run(&lab.manifest(dynamic_elf())).expect_code(8).report();
    r.assert_never_ran(2);
    assert!(r.exit_state.contains("dynamically linked") && r.exit_state.contains("zvm-gcc"), "{r:?}");

    // The shell front end prints the manifest, the report and the classic ERROR line.
    let out = lab.zvsh().arg(dynamic_elf()).run().expect_code(8);
    assert!(out.stdout.is_empty(), "{out}");
    let err = out.stderr();
    assert!(err.starts_with("Version = 20130611\n"), "{out}");
    assert!(err.contains(&format!("Program = {}\n", dynamic_elf().display())), "{out}");
    assert!(err.ends_with("ERROR: ZeroVM return code is 8\n"), "{out}");
    let shown = out.failure_report();
    assert_eq!(shown.exit_state, r.exit_state);
    shown.assert_never_ran(2);
}

/// Its thread-local storage is accepted now (zvm-cc guests have it too), so the
/// validator is what refuses it, at glibc's first `syscall`.
#[test]
fn static_libc_program_is_code_8_and_the_message_says_to_use_zvm_cc() {
    let lab = Lab::new();
    let r = lab.run(&lab.manifest(static_libc_elf())).expect_code(8).report();
    r.assert_never_ran(1);
    assert!(r.exit_state.contains("forbidden instruction `syscall`"), "{r:?}");
    assert!(r.exit_state.contains("rebuilt with zvm-cc"), "{r:?}");
}

#[test]
fn memory_smaller_than_the_program_is_code_12() {
    let lab = Lab::new();
    for memory in [4096, 65536] {
        let r = lab.run(&lab.manifest(guest("hello")).memory(memory)).expect_code(12).report();
        r.assert_never_ran(2);
        assert!(r.exit_state.contains("smaller than the program"), "Memory = {memory}: {r:?}");
    }
}
