//! The shell front end: `zvsh PROGRAM ARGS…` with stdio streamed through
//! pipes, `@FILE` and `@NAME=VALUE` arguments, `--zvm-getrc`,
//! `--zvm-save-dir`, `zvsh.cfg` in the current directory, and `--zvm-image`.

use std::collections::BTreeMap;
use std::fs;
use std::time::Duration;

use crate::harness::{assert_kv, guest, kv, noise, Lab, Report, U};

#[test]
fn zvsh_runs_hello() {
    let lab = Lab::new();
    let out = lab.zvsh().arg(guest("hello")).run().expect_code(0);
    assert_eq!(out.stdout(), "Hello, World!\n");
    assert_eq!(out.stderr(), "", "nothing on stderr when all is well");
}

#[test]
fn zvsh_streams_10_mb_through_cat_unchanged() {
    let lab = Lab::new();
    let data = noise(10 << 20, 42);
    let out = lab.zvsh().arg(guest("cat")).stdin(data.clone()).run().expect_code(0);
    assert!(out.stdout == data, "cat changed the data: {} bytes in, {} out", data.len(), out.stdout.len());
    assert_eq!(out.stderr(), "");
}

#[test]
fn zvsh_wc_counts_like_host_wc() {
    let lab = Lab::new();
    let mut text = String::from("  leading spaces\ttab\x0bvt\x0cff\r\ncrlf\n\n\nempty lines  \n");
    for i in 0..2000 {
        text.push_str(&format!("line {i} has{}words\n", " ".repeat(i % 7)));
    }
    text.push_str("no final newline");
    let file = lab.write("text", &text);
    let host = std::process::Command::new("wc").env("LC_ALL", "C").arg(&file).output().expect("run wc");
    let host: Vec<u64> =
        String::from_utf8_lossy(&host.stdout).split_whitespace().take(3).map(|n| n.parse().unwrap()).collect();
    let out = lab.zvsh().arg(guest("wc")).stdin(text.clone()).run().expect_code(0);
    let ours: Vec<u64> = out.stdout().split_whitespace().map(|n| n.parse().unwrap()).collect();
    assert_eq!(ours, host, "LINES WORDS BYTES\n{out}");
    assert_eq!(ours[2], text.len() as u64);
}

/// `channel.I.*` of `manifest.c` as one line per channel.
fn channel_line(out: &BTreeMap<String, String>, i: usize) -> String {
    ["name", "type", "gets", "get_size", "puts", "put_size", "size"]
        .iter()
        .map(|k| out[&format!("channel.{i}.{k}")].as_str())
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn plain_argument_naming_a_local_file_is_attached() {
    let lab = Lab::new();
    lab.write("hello.py", "print(1)");
    fs::create_dir_all(lab.path("sub")).unwrap();
    let out =
        lab.zvsh().args([guest("manifest").to_str().unwrap(), "hello.py", "missing.py", "sub", "/etc/hostname"]).run();
    let seen = kv(&out.expect_code(0).stdout());
    // Only a regular file under the current directory is attached; a missing
    // file, a directory and an absolute path are passed as they are.
    assert_eq!(
        [&seen["argv.1"], &seen["argv.2"], &seen["argv.3"], &seen["argv.4"]],
        ["/dev/1.hello.py", "missing.py", "sub", "/etc/hostname"]
    );
    assert_eq!(channel_line(&seen, 3), format!("/dev/1.hello.py 3 {U} {U} 0 0 8"));
}

#[test]
fn at_file_attaches_host_files_as_numbered_channels() {
    let lab = Lab::new();
    lab.write("rin", "ABCDEFGHIJKLMNOP");
    let out = lab.zvsh().args([guest("manifest").to_str().unwrap(), "@rin", "@newout", "@FOO=bar", "FOO"]).run();
    let out = out.expect_code(0);
    let seen = kv(&out.stdout());
    // argv gets the channel names instead of the @ arguments; @NAME=VALUE is no argument.
    assert_eq!(seen["argc"], "4");
    assert_eq!(
        (seen["argv.1"].as_str(), seen["argv.2"].as_str(), seen["argv.3"].as_str()),
        ("/dev/1.rin", "/dev/2.newout", "FOO")
    );
    assert_eq!((seen["env.0"].as_str(), seen["getenv.FOO"].as_str()), ("FOO=bar", "bar"));
    // An existing file is a read-only random channel; a new one a write-only output.
    assert_eq!(channel_line(&seen, 3), format!("/dev/1.rin 3 {U} {U} 0 0 16"));
    assert_eq!(channel_line(&seen, 4), format!("/dev/2.newout 0 0 0 {U} {U} 0"));
    assert_eq!(lab.read("newout"), b"");

    // The attached file is readable at any offset and not writable.
    let seq = "from stdin";
    let out = lab
        .zvsh()
        .args([guest("calls").to_str().unwrap(), "/dev/stdin", "@rin", "@rout"])
        .stdin(seq)
        .run()
        .expect_code(0);
    let seen = kv(&out.stdout());
    for (k, v) in [
        ("seq_data", crate::harness::hex(seq.as_bytes())),
        ("rand_size", "16".into()),
        ("rand_data_8", crate::harness::hex(b"IJKL")),
        ("rand_clamped_data", crate::harness::hex(b"NOP")),
        ("write_readonly", "-22".into()),
        ("done", "1".into()),
    ] {
        assert_eq!(seen.get(k), Some(&v), "{k}\n{out}");
    }
    assert_eq!(lab.read_string("rin"), "ABCDEFGHIJKLMNOP");
    // The new file is a sequential output: offsets are ignored.
    assert_eq!(lab.read_string("rout"), "AAAABBCC");
}

#[test]
fn zvm_getrc_exits_with_the_zerovm_code_instead_of_the_guests() {
    let lab = Lab::new();
    // limits with no arguments prints its usage and returns 2.
    let out = lab.zvsh().arg(guest("limits")).run().expect_code(2);
    assert!(out.stderr().contains("usage: limits"), "{out}");
    lab.zvsh().arg("--zvm-getrc").arg(guest("limits")).run().expect_code(0);
    // A failed session exits with its return code either way.
    let out = lab.zvsh().arg("--zvm-getrc").arg(guest("esc_hidden")).run().expect_code(4);
    assert!(out.failure_report().exit_state.starts_with("forbidden call 39"), "{out}");
    lab.zvsh().arg(guest("esc_hidden")).run().expect_code(4);
}

#[test]
fn zvm_save_dir_keeps_the_manifest_and_the_report() {
    let lab = Lab::new();
    let out = lab.zvsh().args(["--zvm-save-dir", "saved"]).arg(guest("hello")).run().expect_code(0);
    assert_eq!(out.stdout(), "Hello, World!\n");
    let manifest = lab.read_string("saved/manifest");
    for line in [
        "Version = 20130611".to_string(),
        format!("Program = {}", guest("hello").display()),
        format!("Memory = {U}, 0"),
        "Timeout = 50".to_string(),
        format!("Channel = /dev/stdin, /dev/stdin, 0, 0, {U}, {U}, 0, 0"),
        format!("Channel = /dev/stdout, /dev/stdout, 0, 0, 0, 0, {U}, {U}"),
        format!("Channel = /dev/stderr, /dev/stderr, 0, 0, 0, 0, {U}, {U}"),
    ] {
        assert!(manifest.lines().any(|l| l == line), "no {line:?} in\n{manifest}");
    }
    let r = Report::parse(&lab.read_string("saved/report"));
    assert_eq!((r.validator, r.user_code, r.exit_state.as_str()), (0, 0, "ok"));

    // A failure is saved too.
    lab.zvsh().args(["--zvm-save-dir", "failed"]).arg(guest("esc_hidden")).run().expect_code(4);
    let r = Report::parse(&lab.read_string("failed/report"));
    assert!(r.exit_state.starts_with("forbidden call 39 (getpid)"), "{r:?}");
}

#[test]
fn zvsh_cfg_in_the_current_directory_sets_limits() {
    let lab = Lab::new();
    lab.write("zvsh.cfg", "[limits]\nwbytes = 5\n");
    // hello's second write gets -EDQUOT, so hello returns 1.
    let out = lab.zvsh().args(["--zvm-save-dir", "saved"]).arg(guest("hello")).run().expect_code(1);
    assert_eq!(out.stdout(), "Hello");
    let manifest = lab.read_string("saved/manifest");
    assert!(manifest.contains(&format!("Channel = /dev/stdout, /dev/stdout, 0, 0, 0, 0, {U}, 5\n")), "{manifest}");
    let r = Report::parse(&lab.read_string("saved/report"));
    assert_eq!((r.user_code, r.exit_state.as_str(), r.local.put_bytes), (1, "ok", 5), "{r:?}");
}

#[test]
fn zvsh_cfg_in_the_current_directory_sets_timeout_and_memory() {
    let lab = Lab::new();
    lab.write("zvsh.cfg", "[manifest]\nTimeout = 1\nMemory = 33554432\n");
    let out = lab.zvsh().arg(guest("loop")).run().expect_code(4);
    assert!(out.elapsed < Duration::from_millis(1500), "Timeout = 1 took {:?}", out.elapsed);
    assert!(out.stderr().contains("\nTimeout = 1\n"), "{out}");
    assert_eq!(out.failure_report().exit_state, "session timeout");

    let out = lab.zvsh().arg(guest("manifest")).run().expect_code(0);
    let seen = kv(&out.stdout());
    let n = |k: &str| seen[k].parse::<u64>().unwrap();
    assert!(n("heap_size") + n("stack_size") <= 32 << 20 && n("heap_size") > 16 << 20, "{out}");
}

/// Issue 9: every number in `zvsh.cfg` is held to the manifest's rule where it is read;
/// `Timeout = i64::MAX` used to panic zvsh (exit 101) in `now + Timeout`.
#[test]
fn zvsh_cfg_numbers_the_runtime_cannot_use_are_manifest_errors() {
    let cases = [
        ("[manifest]\nTimeout = 9223372036854775807\n", 14, "is more than the largest supported (2147483647 seconds)"),
        ("[manifest]\nTimeout = 0\n", 14, "invalid Timeout 0"),
        ("[manifest]\nMemory = 18446744073709551615\n", 12, "invalid memory size 18446744073709551615"),
        ("[limits]\nwbytes = 18446744073709551615\n", 14, "wbytes 18446744073709551615 is more than the largest"),
    ];
    for (cfg, code, message) in cases {
        let lab = Lab::new();
        lab.write("zvsh.cfg", cfg);
        let out = lab.zvsh().arg(guest("hello")).run().expect_code(code);
        assert!(out.stderr().contains(message), "{cfg}: {out}");
        assert!(out.stderr().contains("zvsh.cfg: ["), "{cfg}: the message names the file and setting: {out}");
        assert_eq!(out.stdout(), "", "{cfg}: the guest ran");
    }
}

/// A tar holding the given files (mode 0755).
fn tar_with(lab: &Lab, name: &str, files: &[(&str, &[u8])]) -> std::path::PathBuf {
    let path = lab.path(name);
    let mut b = tar::Builder::new(std::fs::File::create(&path).unwrap());
    for (p, data) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o755);
        b.append_data(&mut h, p, *data).unwrap();
    }
    b.into_inner().unwrap();
    path
}

#[test]
fn zvm_image_runs_a_program_from_inside_the_tar() {
    let lab = Lab::new();
    let hello = std::fs::read(guest("hello")).unwrap();
    let dump = std::fs::read(guest("manifest")).unwrap();
    let tar = tar_with(&lab, "img.tar", &[("bin/hi", &hello), ("dump", &dump)]);
    let out = lab.zvsh().args(["--zvm-image", "img.tar", "hi"]).run().expect_code(0);
    assert_eq!(out.stdout(), "Hello, World!\n");

    // The image itself is attached as a read-only random channel.
    let out = lab.zvsh().args(["--zvm-image", "img.tar,/,ro", "dump"]).run().expect_code(0);
    let seen = kv(&out.stdout());
    let size = std::fs::metadata(&tar).unwrap().len();
    assert_eq!(channel_line(&seen, 3), format!("/dev/1.img.tar 3 {U} {U} 0 0 {size}"));
    assert_kv(
        &out.stdout().lines().filter(|l| l.starts_with("argv")).map(|l| format!("{l}\n")).collect::<String>(),
        &[("argv.0", &"dump")],
    );
}

#[test]
fn a_program_inside_the_tar_is_read_from_its_member_and_validated() {
    let lab = Lab::new();
    let hello = std::fs::read(guest("hello")).unwrap();
    let syscall = std::fs::read(guest("esc_syscall")).unwrap();
    // The member's bytes sit between others: only its range is the program.
    tar_with(&lab, "img.tar", &[("before", b"not a program"), ("bin/bad", &syscall), ("bin/hi", &hello)]);
    let out = lab.zvsh().args(["--zvm-image", "img.tar", "hi"]).run().expect_code(0);
    assert_eq!(out.stdout(), "Hello, World!\n");
    // A member is checked like a program file: its system call is found.
    let out = lab.zvsh().args(["--zvm-image", "img.tar", "bad"]).run().expect_code(8);
    assert!(out.stderr().contains("forbidden instruction `syscall`"), "{out}");
    // A member that is no program is refused as one.
    let out = lab.zvsh().args(["--zvm-image", "img.tar", "before"]).run().expect_code(8);
    assert!(out.stderr().contains("not an ELF executable"), "{out}");
}

#[test]
fn zvsh_grows_its_stdout_pipe_to_a_mebibyte() {
    use std::io::Read;

    use nix::fcntl::{fcntl, FcntlArg};

    let lab = Lab::new();
    let data = noise(1 << 20, 7);
    let mut child = lab.zvsh().arg(guest("cat")).stdin(data.clone()).spawn();
    let mut stdout = child.stdout.take().expect("stdout pipe");
    let mut got = Vec::new();
    stdout.read_to_end(&mut got).expect("read the guest's output");
    assert!(child.wait().expect("wait for zvsh").success());
    assert!(got == data, "cat changed the data: {} bytes in, {} out", data.len(), got.len());
    let size = fcntl(&stdout, FcntlArg::F_GETPIPE_SZ).expect("F_GETPIPE_SZ");
    assert_eq!(size, zerolab_sandbox::channel::PIPE_SIZE, "zvsh left its stdout pipe at {size} bytes");
}

#[test]
fn a_forbidden_instruction_in_a_zvm_gcc_build_is_explained_for_what_it_is() {
    let lab = Lab::new();
    // esc_syscall is built with zvm-gcc and has a `syscall` in inline assembly.
    let out = lab.zvsh().arg(guest("esc_syscall")).run().expect_code(8);
    let stderr = out.stderr();
    let line = stderr.lines().find(|l| l.contains("validation failed")).unwrap_or_else(|| panic!("{out}"));
    let addr = line.split(" at ").nth(1).and_then(|rest| rest.split(' ').next()).unwrap_or_else(|| panic!("{line}"));
    assert!(addr.starts_with("0x4"), "the address of the instruction: {line}");
    assert!(line.contains("forbidden instruction `syscall`"), "{line}");
    assert!(line.contains("in a program built with sandbox/guest/zvm-gcc it comes from inline assembly"), "{line}");
    assert!(line.contains(&format!("`objdump -d --start-address={addr} PROGRAM` shows it")), "{line}");
    assert!(!line.contains("build them with"), "not told to build with zvm-gcc as if it had not been: {line}");

    let out = lab.zvsh().arg(guest("esc_rdtsc")).run().expect_code(8);
    assert!(out.stderr().contains("may not read the clock"), "{out}");
}

#[test]
fn zvm_debug_writes_no_colour_codes_into_a_pipe() {
    let lab = Lab::new();
    let out = lab.zvsh().args(["--zvm-debug"]).arg(guest("hello")).run().expect_code(0);
    let stderr = out.stderr();
    assert!(stderr.contains("DEBUG") && stderr.contains("Program = "), "the debug log and the manifest: {stderr}");
    assert!(!stderr.contains('\x1b'), "escape codes in a pipe:\n{stderr}");
}

#[test]
fn help_explains_at_file_channels_with_an_example() {
    let lab = Lab::new();
    let out = lab.zvsh().arg("--help").run().expect_code(0);
    let help = out.stdout();
    for said in [
        "@FILE        attach the host file FILE as a channel named /dev/N.BASENAME",
        "An existing FILE is a read-only random-access\n               channel (type 3)",
        "zvm_pread(channel, buf, size, offset)",
        "does not exist is created as a write-only sequential output",
        "@NAME=VALUE  set the guest's environment variable NAME",
        "zvsh ./lookup @table.bin @found.txt 42",
        "argv \"./lookup /dev/1.table.bin /dev/2.found.txt 42\"",
    ] {
        assert!(help.contains(said), "--help does not say {said:?}:\n{help}");
    }
}
