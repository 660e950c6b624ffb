//! zvsh run by an unprivileged user (uid/gid 65534): the jail then builds
//! its namespaces from a user namespace. Needs root to switch users; skips
//! (with a message) otherwise.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;

use crate::harness::{guest, root_or_skip, Lab, Report, Zvsh};

const NOBODY: u32 = 65534;

/// zvsh as nobody, in a lab nobody may write to.
fn as_nobody(lab: &Lab) -> Zvsh {
    fs::set_permissions(lab.dir(), fs::Permissions::from_mode(0o777)).unwrap();
    let mut z = lab.zvsh();
    z.command().uid(NOBODY).gid(NOBODY);
    z
}

#[test]
fn unprivileged_user_runs_hello() {
    if !root_or_skip("unprivileged_user_runs_hello") {
        return;
    }
    let lab = Lab::new();
    let out = as_nobody(&lab).args(["--zvm-save-dir", "saved"]).arg(guest("hello")).run().expect_code(0);
    assert_eq!(out.stdout(), "Hello, World!\n");
    // No warning that the jail ran without namespaces.
    assert_eq!(out.stderr(), "");
    let r = Report::parse(&lab.read_string("saved/report"));
    assert_eq!((r.validator, r.exit_state.as_str()), (0, "ok"), "{r:?}");
}

#[test]
fn unprivileged_user_cannot_escape_either() {
    if !root_or_skip("unprivileged_user_cannot_escape_either") {
        return;
    }
    let lab = Lab::new();
    let out = as_nobody(&lab).arg(guest("esc_hidden")).run().expect_code(4);
    assert!(out.failure_report().exit_state.starts_with("forbidden call 39 (getpid)"), "{out}");
    let out = as_nobody(&lab).arg(guest("esc_exec_data")).run().expect_code(4);
    assert!(out.failure_report().exit_state.starts_with("Signal 11"), "{out}");
}

#[test]
fn unprivileged_report_counts_direct_channel_io() {
    if !root_or_skip("unprivileged_report_counts_direct_channel_io") {
        return;
    }
    let lab = Lab::new();
    as_nobody(&lab).args(["--zvm-save-dir", "saved"]).arg(guest("hello")).run().expect_code(0);
    let r = Report::parse(&lab.read_string("saved/report"));
    assert_eq!((r.local.puts, r.local.put_bytes), (1, 14), "{r:?}");
}
