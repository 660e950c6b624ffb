//! Planted links and files (issue 9, class 2): another user's symbolic link in a
//! sticky world-writable directory is never followed by the (root) supervisor,
//! whatever `fs.protected_symlinks` says, so it can neither read a root-only
//! file into a guest nor truncate one; an output that another user planted
//! there as a file or FIFO is refused too, and so is a hard-linked file there. Refusals are code 93. Root-owned
//! links in the same directory, and the user's links in a directory that is not
//! sticky, still work. Needs root (to own files as another user).

use std::fs;
use std::os::unix::fs::{lchown, symlink, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::sys::stat::Mode;

use crate::harness::{guest, root_or_skip, Lab, Limits};

/// The user who plants things: `nobody`.
const OTHER: u32 = 65534;
const SECRET: &str = "root's secret\n";
const PRECIOUS: &str = "root's precious data\n";

/// A lab with `secret` and `target` (root-only, 0600) and `shared`, a sticky
/// world-writable directory like `/tmp`.
fn setup() -> (Lab, PathBuf, PathBuf, PathBuf) {
    let lab = Lab::new();
    let secret = lab.write("secret", SECRET);
    let target = lab.write("target", PRECIOUS);
    for f in [&secret, &target] {
        fs::set_permissions(f, fs::Permissions::from_mode(0o600)).unwrap();
    }
    let shared = lab.path("shared");
    fs::create_dir(&shared).unwrap();
    fs::set_permissions(&shared, fs::Permissions::from_mode(0o1777)).unwrap();
    (lab, secret, target, shared)
}

/// A symbolic link at `link` to `to`, owned by `owner`.
fn plant_link(to: &Path, link: &Path, owner: u32) -> PathBuf {
    symlink(to, link).unwrap();
    lchown(link, Some(owner), Some(owner)).unwrap();
    link.to_path_buf()
}

#[track_caller]
fn assert_refused(lab: &Lab, m: &crate::harness::Manifest, what: &str) {
    let out = lab.run(m);
    assert_eq!(out.code, 93, "not refused\n{out}");
    let r = out.report();
    r.assert_never_ran(2);
    assert!(r.exit_state.contains(what), "{r:?}");
    let leaked = lab.path("stdout").exists() && lab.read_string("stdout").contains(SECRET);
    assert!(!leaked, "the secret reached the guest's output");
}

#[track_caller]
fn assert_intact(target: &Path) {
    assert_eq!(fs::read_to_string(target).unwrap(), PRECIOUS, "{} was truncated or overwritten", target.display());
}

#[test]
fn another_users_links_in_a_sticky_directory_are_not_followed() {
    if !root_or_skip("another_users_links_in_a_sticky_directory_are_not_followed") {
        return;
    }
    let (lab, secret, target, shared) = setup();
    let input = plant_link(&secret, &shared.join("input"), OTHER);
    let output = plant_link(&target, &shared.join("output"), OTHER);

    // Reading through the one and writing through the other, as in the issue.
    let both = lab.manifest(guest("cat")).channel(&input, "/dev/stdin", 0, Limits::READ_ONLY).channel(
        &output,
        "/dev/stdout",
        0,
        Limits::WRITE_ONLY,
    );
    assert_refused(&lab, &both, &format!("goes through the symbolic link {}, owned by uid 65534", input.display()));
    assert_intact(&target);

    // Each alone.
    let read = lab.manifest(guest("cat")).channel(&input, "/dev/stdin", 0, Limits::READ_ONLY);
    assert_refused(&lab, &read, "sticky world-writable directory");
    let write = lab.manifest(guest("hello")).channel(&output, "/dev/stdout", 0, Limits::WRITE_ONLY);
    assert_refused(&lab, &write, &format!("goes through the symbolic link {}", output.display()));
    assert_intact(&target);
    let rw = lab.manifest(guest("hello")).channel(&output, "/dev/data", 3, Limits::UNLIMITED);
    assert_refused(&lab, &rw, "owned by uid 65534");
    assert_intact(&target);

    // A planted link to a directory is no way round either.
    let dir = plant_link(lab.dir(), &shared.join("dir"), OTHER);
    let through = lab.manifest(guest("cat")).channel(dir.join("secret"), "/dev/stdin", 0, Limits::READ_ONLY);
    assert_refused(&lab, &through, &format!("the symbolic link {}", dir.display()));
    let through = lab.manifest(guest("hello")).channel(dir.join("target"), "/dev/stdout", 0, Limits::WRITE_ONLY);
    assert_refused(&lab, &through, "sticky world-writable directory");
    assert_intact(&target);
}

#[test]
fn another_users_file_or_fifo_in_a_sticky_directory_is_no_output() {
    if !root_or_skip("another_users_file_or_fifo_in_a_sticky_directory_is_no_output") {
        return;
    }
    let (lab, secret, _, shared) = setup();
    // The other user hopes root writes the guest's output where they can read it.
    let planted = shared.join("out");
    fs::write(&planted, PRECIOUS).unwrap();
    std::os::unix::fs::chown(&planted, Some(OTHER), Some(OTHER)).unwrap();
    let m = lab.manifest(guest("hello")).channel(&planted, "/dev/stdout", 0, Limits::WRITE_ONLY);
    assert_refused(&lab, &m, "is a regular file owned by uid 65534 in the sticky directory");
    assert_intact(&planted);

    let fifo = shared.join("fifo");
    nix::unistd::mkfifo(&fifo, Mode::from_bits_truncate(0o666)).unwrap();
    std::os::unix::fs::chown(&fifo, Some(OTHER), Some(OTHER)).unwrap();
    let m = lab.manifest(guest("hello")).timeout(1).channel(&fifo, "/dev/stdout", 0, Limits::WRITE_ONLY);
    assert_refused(&lab, &m, "is a FIFO owned by uid 65534");

    // A hard link planted there (as root could; any user can when
    // fs.protected_hardlinks is off) reaches a root-only file elsewhere.
    let hard = shared.join("hard");
    fs::hard_link(&secret, &hard).unwrap();
    let m = lab.manifest(guest("cat")).channel(&hard, "/dev/stdin", 0, Limits::READ_ONLY);
    assert_refused(&lab, &m, "is a regular file with 2 hard links in the sticky directory");
    let m = lab.manifest(guest("hello")).channel(&hard, "/dev/stdout", 0, Limits::WRITE_ONLY);
    assert_refused(&lab, &m, "hard links");
    assert_eq!(fs::read_to_string(&secret).unwrap(), SECRET, "truncated through a hard link");

    // Reading another user's file is reading their data: allowed.
    let m = lab.manifest(guest("cat")).channel(&planted, "/dev/stdin", 0, Limits::READ_ONLY);
    lab.run(&m).expect_code(0);
    assert_eq!(lab.read_string("stdout"), PRECIOUS);
    // A new output in the sticky directory is root's own file.
    let fresh = shared.join("fresh");
    lab.run(&lab.manifest(guest("hello")).channel(&fresh, "/dev/stdout", 0, Limits::WRITE_ONLY)).expect_code(0);
    assert_eq!(fs::read_to_string(&fresh).unwrap(), "Hello, World!\n");
}

#[test]
fn root_links_and_links_in_ordinary_directories_still_work() {
    if !root_or_skip("root_links_and_links_in_ordinary_directories_still_work") {
        return;
    }
    let (lab, secret, target, shared) = setup();
    // Root's own links in the sticky directory.
    let input = plant_link(&secret, &shared.join("input"), 0);
    let output = plant_link(&target, &shared.join("output"), 0);
    let m = lab.manifest(guest("cat")).channel(&input, "/dev/stdin", 0, Limits::READ_ONLY).channel(
        &output,
        "/dev/stdout",
        0,
        Limits::WRITE_ONLY,
    );
    lab.run(&m).expect_code(0);
    assert_eq!(fs::read_to_string(&target).unwrap(), SECRET, "copied through root's links");

    // The other user's links in a directory that is not sticky (root's, 0755).
    let plain = lab.path("plain");
    fs::create_dir(&plain).unwrap();
    fs::set_permissions(&plain, fs::Permissions::from_mode(0o755)).unwrap();
    fs::write(&target, PRECIOUS).unwrap();
    let input = plant_link(&target, &plain.join("input"), OTHER);
    let output = plant_link(&lab.path("copy"), &plain.join("output"), OTHER);
    let m = lab.manifest(guest("cat")).channel(&input, "/dev/stdin", 0, Limits::READ_ONLY).channel(
        &output,
        "/dev/stdout",
        0,
        Limits::WRITE_ONLY,
    );
    lab.run(&m).expect_code(0);
    assert_eq!(lab.read_string("copy"), PRECIOUS, "created through the link");

    // In a sticky directory the directory's owner's links are followed too.
    let theirs = lab.path("theirs");
    fs::create_dir(&theirs).unwrap();
    fs::set_permissions(&theirs, fs::Permissions::from_mode(0o1777)).unwrap();
    std::os::unix::fs::chown(&theirs, Some(OTHER), Some(OTHER)).unwrap();
    let input = plant_link(&target, &theirs.join("input"), OTHER);
    let m = lab.manifest(guest("cat")).channel(&input, "/dev/stdin", 0, Limits::READ_ONLY);
    lab.run(&m).expect_code(0);
    assert_eq!(lab.read_string("stdout"), PRECIOUS);
}

#[test]
fn a_program_is_never_read_through_another_users_link() {
    if !root_or_skip("a_program_is_never_read_through_another_users_link") {
        return;
    }
    let (lab, _, _, shared) = setup();
    // A root-only program: its bytes are the guest's to read once it runs.
    let private = lab.path("private-hello");
    fs::copy(guest("hello"), &private).unwrap();
    fs::set_permissions(&private, fs::Permissions::from_mode(0o700)).unwrap();
    let planted = plant_link(&private, &shared.join("prog"), OTHER);
    let out = lab.run(&lab.manifest(&planted));
    assert_eq!(out.code, 5, "a planted program link was followed\n{out}");
    let r = out.report();
    r.assert_never_ran(2);
    assert!(r.exit_state.contains(&format!("goes through the symbolic link {}", planted.display())), "{r:?}");

    // Root's own link in the same directory still runs it.
    let ours = shared.join("ours");
    symlink(&private, &ours).unwrap();
    lab.run(&lab.manifest(&ours)).expect_code(0);
}
