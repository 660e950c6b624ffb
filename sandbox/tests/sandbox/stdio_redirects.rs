//! `zvsh --manifest` whose `/dev/stdout` and `/dev/stderr` channels are the shell's
//! redirections: the guest writes where the descriptors point (after what came before,
//! at the end under `>>`, never truncating), whatever the channel's type, and the
//! report follows the guest's output instead of landing inside it.

use std::path::Path;
use std::process::Command;

use crate::harness::{guest, Lab, Limits, Manifest, Report};

/// `positional gate /dev/stdout 0 0`: "abc", then "hello" twice at offset 0 on
/// `/dev/stdout` (type `stdout_type`), the results on `/dev/stderr` (type
/// `stderr_type`); both channels are zvsh's own descriptors.
fn positional(lab: &Lab, stdout_type: u8, stderr_type: u8) -> std::path::PathBuf {
    let m = Manifest::new(guest("positional"))
        .channel("/dev/null", "/dev/stdin", 0, Limits::READ_ONLY)
        .channel("/dev/stdout", "/dev/stdout", stdout_type, Limits::WRITE_ONLY)
        .channel("/dev/stderr", "/dev/stderr", stderr_type, Limits::WRITE_ONLY)
        .args(["positional", "gate", "/dev/stdout", "0", "0"]);
    lab.write(&format!("m-{stdout_type}-{stderr_type}"), m.render())
}

/// Runs `script` with `sh -c` in the lab, `$0` being zvsh and `$1` the manifest.
fn shell(lab: &Lab, script: &str, manifest: &Path) {
    let status = Command::new("sh")
        .arg("-c")
        .arg(script)
        .arg(env!("CARGO_BIN_EXE_zvsh"))
        .arg(manifest)
        .current_dir(lab.dir())
        .env("HOME", lab.dir())
        .env("XDG_CACHE_HOME", lab.path(".cache"))
        .status()
        .expect("run sh");
    assert!(status.success(), "{script}: {status}");
}

/// `text` split into what comes before the report (the guest's output after what
/// came before it), the report, and the `after_lines` lines that follow it. The
/// report's first line (the validator state, one digit) starts right after the
/// guest's last byte.
fn split_report(text: &str, after_lines: usize) -> (String, Report, String) {
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    assert!(lines.len() >= 6 + after_lines, "no report in:\n{text}");
    let tail = lines.len() - after_lines;
    let head = lines[..tail - 5].concat();
    let (before, validator) = head.split_at(head.len() - 2);
    let report = Report::parse(&format!("{validator}{}", lines[tail - 5..tail].concat()));
    (before.to_owned(), report, lines[tail..].concat())
}

#[test]
fn a_redirected_stdout_keeps_what_came_before_and_the_report_follows_the_guest() {
    let lab = Lab::new();
    for (stdout_type, stderr_type) in [(0, 0), (2, 2)] {
        let m = positional(&lab, stdout_type, stderr_type);
        shell(
            &lab,
            "(echo before; echo before >&2; \"$0\" --manifest \"$1\"; echo after; echo after >&2) >out 2>err",
            &m,
        );
        let out = lab.read_string("out");
        let (guest_out, report, after) = split_report(&out, 1);
        assert_eq!(guest_out, "before\nabchellohello", "type {stdout_type}: the guest's bytes in order:\n{out}");
        assert_eq!((report.exit_state.as_str(), report.user_code), ("ok", 0), "type {stdout_type}:\n{out}");
        assert_eq!(after, "after\n", "type {stdout_type}:\n{out}");
        assert_eq!(
            lab.read_string("err"),
            "before\nr0=5\nr1=5\ndone=1\nafter\n",
            "type {stderr_type}: stderr keeps its order too"
        );
    }
}

#[test]
fn a_stdout_opened_for_append_is_appended_to() {
    let lab = Lab::new();
    for (stdout_type, stderr_type) in [(0, 0), (2, 2)] {
        let m = positional(&lab, stdout_type, stderr_type);
        lab.write("out", "first\n");
        lab.write("err", "first\n");
        shell(&lab, "\"$0\" --manifest \"$1\" >>out 2>>err; echo last >>out", &m);
        let out = lab.read_string("out");
        let (guest_out, report, after) = split_report(&out, 1);
        assert_eq!(guest_out, "first\nabchellohello", "type {stdout_type}:\n{out}");
        assert_eq!((report.exit_state.as_str(), after.as_str()), ("ok", "last\n"), "type {stdout_type}:\n{out}");
        assert_eq!(lab.read_string("err"), "first\nr0=5\nr1=5\ndone=1\n", "type {stderr_type}");
    }
}
