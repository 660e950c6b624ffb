//! What a channel source may be (issue 9, class 1): the supervisor's own memory
//! (`/proc/self/mem`), other procfs and sysfs files, `/dev/kmsg` and the magic
//! links of `/proc/*/fd` are refused with code 93 before the guest runs, by
//! `zvsh --manifest`, `zvsh PROGRAM @FILE` and for zvsh's own standard
//! descriptors; `/dev/null`, `/dev/zero`, `/dev/full`, `/dev/urandom`, regular
//! files and `/dev/stdin` (zvsh's own descriptor 0) still work.

use std::fs::File;
use std::process::{Command, Stdio};

use crate::harness::{guest, kv, Lab, Limits, Report, U};

/// Runs a manifest whose channel `/dev/data` is `source` (type `ty`) and checks
/// that it is refused with 93 before the guest ran, with a message naming the
/// path and `what` it is.
#[track_caller]
fn refused(lab: &Lab, source: &str, ty: u8, limits: Limits, what: &str) {
    let m = lab.manifest(guest("hello")).channel(source, "/dev/data", ty, limits);
    let out = lab.run(&m);
    assert_eq!(out.code, 93, "{source} was not refused\n{out}");
    let r = out.report();
    r.assert_never_ran(2);
    assert!(r.exit_state.contains("channel /dev/data: "), "{source}: {r:?}");
    assert!(r.exit_state.contains(source) && r.exit_state.contains(what), "{source}: {r:?}");
    assert!(!lab.path("stdout").exists() || lab.read("stdout").is_empty(), "the guest ran with {source}");
}

#[test]
fn the_supervisors_memory_is_no_channel() {
    let lab = Lab::new();
    // Read and write: with these two a guest could patch the supervisor's code.
    refused(&lab, "/proc/self/mem", 3, Limits::UNLIMITED, "on procfs");
    refused(&lab, "/proc/self/maps", 0, Limits::READ_ONLY, "on procfs");
}

#[test]
fn kernel_files_are_no_channels() {
    let lab = Lab::new();
    for path in ["/proc/self/environ", "/proc/1/cmdline", "/proc/version"] {
        refused(&lab, path, 0, Limits::READ_ONLY, "on procfs");
    }
    refused(&lab, "/sys/kernel/uevent_seqnum", 0, Limits::READ_ONLY, "on sysfs");
    refused(&lab, "/dev/kmsg", 0, Limits::READ_ONLY, "the character device 1:11");
}

#[test]
fn magic_links_are_no_channels() {
    let lab = Lab::new();
    // zvsh's descriptor 0 is /dev/null here: harmless, but reached through /proc.
    for path in ["/dev/fd/0", "/proc/self/fd/0", "/proc/thread-self/fd/1"] {
        refused(&lab, path, 0, Limits::READ_ONLY, "on procfs");
    }
    // A link of our own to a magic link is no way round.
    let link = lab.path("fd0");
    std::os::unix::fs::symlink("/proc/self/fd/0", &link).unwrap();
    refused(&lab, link.to_str().unwrap(), 0, Limits::READ_ONLY, "on procfs");
}

/// Reads `/dev/data` (`source`) three times 16 bytes; returns what `limits` saw.
fn read_three(lab: &Lab, source: &str) -> (String, String) {
    let m = lab.manifest(guest("limits")).channel(source, "/dev/data", 0, Limits::read_only(3, U)).args([
        "limits",
        "/dev/data",
        "read",
        "16",
    ]);
    let out = lab.run(&m).expect_code(0);
    assert_eq!(out.report().exit_state, "ok", "{source}\n{out}");
    let seen = kv(&lab.read_string("stdout"));
    (seen["calls"].clone(), seen["bytes"].clone())
}

#[test]
fn harmless_devices_and_files_still_work() {
    let lab = Lab::new();
    for dev in ["/dev/zero", "/dev/urandom", "/dev/random", "/dev/full"] {
        assert_eq!(read_three(&lab, dev), ("3".into(), "48".into()), "{dev}");
    }
    assert_eq!(read_three(&lab, "/dev/null"), ("3".into(), "0".into()));
    let file = lab.write("data", [7u8; 40]);
    assert_eq!(read_three(&lab, file.to_str().unwrap()), ("3".into(), "40".into()));
    // A root-owned link in a private directory is followed as before.
    std::os::unix::fs::symlink(&file, lab.path("link")).unwrap();
    assert_eq!(read_three(&lab, lab.path("link").to_str().unwrap()), ("3".into(), "40".into()));
}

#[test]
fn dev_stdin_is_zvshs_own_descriptor_0() {
    let lab = Lab::new();
    let m = lab.manifest(guest("cat")).channel("/dev/stdin", "/dev/stdin", 0, Limits::READ_ONLY);
    let path = lab.write("manifest", m.render());
    let out = lab.zvsh().arg("--manifest").arg(&path).stdin("through zvsh's stdin\n").run().expect_code(0);
    assert_eq!(out.report().exit_state, "ok", "{out}");
    assert_eq!(lab.read_string("stdout"), "through zvsh's stdin\n");
}

/// `zvsh ARGS` with its stdin opened from `stdin`.
fn zvsh_with_stdin(lab: &Lab, stdin: &str, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_zvsh"))
        .args(args)
        .current_dir(lab.dir())
        .env("HOME", lab.dir())
        .env("XDG_CACHE_HOME", lab.path(".cache"))
        .stdin(File::open(stdin).expect("open the stdin file"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .expect("run zvsh");
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.code().unwrap_or(-1), text(&out.stdout), text(&out.stderr))
}

#[test]
fn zvshs_own_descriptors_are_checked_like_any_source() {
    let lab = Lab::new();
    let m = lab.manifest(guest("cat")).channel("/dev/stdin", "/dev/stdin", 0, Limits::READ_ONLY);
    let path = lab.write("manifest", m.render());
    let (code, stdout, stderr) = zvsh_with_stdin(&lab, "/proc/version", &["--manifest", path.to_str().unwrap()]);
    assert_eq!(code, 93, "{stdout}{stderr}");
    let r = Report::parse(&stdout);
    r.assert_never_ran(2);
    assert!(r.exit_state.contains("/dev/stdin is on procfs (descriptor 0)"), "{r:?}");
    assert!(!lab.path("stdout").exists(), "the guest ran");

    // The shell front end: its stdin, and an @FILE.
    let (code, _, stderr) = zvsh_with_stdin(&lab, "/proc/version", &[guest("cat").to_str().unwrap()]);
    assert_eq!(code, 93, "{stderr}");
    assert!(stderr.contains("channel /dev/stdin: /dev/stdin is on procfs"), "{stderr}");
    let (code, _, stderr) =
        zvsh_with_stdin(&lab, "/dev/null", &[guest("cat").to_str().unwrap(), "@/proc/self/environ"]);
    assert_eq!(code, 93, "{stderr}");
    assert!(stderr.contains("/proc/self/environ is on procfs"), "{stderr}");
    // A regular file is fine.
    let input = lab.write("input", "a file as stdin\n");
    let (code, stdout, stderr) = zvsh_with_stdin(&lab, input.to_str().unwrap(), &[guest("cat").to_str().unwrap()]);
    assert_eq!((code, stdout.as_str()), (0, "a file as stdin\n"), "{stderr}");
}
