//! The per-lab lock between two real processes: while one process holds a lab's lock,
//! `zerolab down` in another says whom it waits for, and either gives up after
//! `ZEROLAB_LOCK_WAIT` naming the holder (the lab untouched) or, once the holder lets
//! go, goes on and takes the lab down. Needs no root: an `ssh` lab that never reached a
//! node has nothing to remove from one.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use zerolab::lab::{Lab, LabLock, LockWait};

/// A temp dir with an `ssh` cluster file for lab `name` and that lab's directory.
fn lab(name: &str) -> (tempfile::TempDir, Lab) {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "apiVersion: zerolab/v1\nkind: Cluster\nname: {name}\nprovider: ssh\n\
         nodes:\n  - {{name: a, address: 127.0.0.1, port: 1, user: root, key: /nonexistent/key}}\n"
    );
    std::fs::write(dir.path().join("lab.yaml"), text).unwrap();
    let lab = Lab::at(dir.path().join("labs"), name).unwrap();
    std::fs::create_dir_all(lab.dir()).unwrap();
    (dir, lab)
}

fn down(dir: &std::path::Path, wait: &str) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_zerolab"));
    command
        .args(["down", "lab.yaml", "--lab-root", "labs"])
        .current_dir(dir)
        .env("ZEROLAB_LOCK_WAIT", wait)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

fn hold(lab: &Lab) -> LabLock {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let wait = LockWait { within: Duration::ZERO, waiting: None };
    runtime.block_on(LabLock::acquire(lab, "zerolab test", &wait)).unwrap()
}

#[test]
fn a_second_command_gives_up_after_the_bound_naming_the_holder() {
    let (dir, lab) = lab("lk1");
    let held = hold(&lab);
    let output = down(dir.path(), "0.3").output().unwrap();
    let pid = std::process::id();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(
        (output.status.code(), stderr.as_str()),
        (
            Some(2),
            format!(
                "zerolab: lab lk1 is being changed by pid {pid} (zerolab test); waiting for it to finish\n\
                 zerolab: lab lk1 is busy: pid {pid} (zerolab test) has been changing it for more than 300ms; wait \
                 for it to finish, or stop it (a killed command lets go of the lab at once)\n"
            )
            .as_str()
        )
    );
    assert!(lab.dir().exists(), "the lab was left alone");
    drop(held);
}

#[test]
fn a_second_command_waits_for_the_first_then_goes_on() {
    let (dir, lab) = lab("lk2");
    let held = hold(&lab);
    let mut child = down(dir.path(), "30").spawn().unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    assert_eq!(
        line,
        format!(
            "zerolab: lab lk2 is being changed by pid {} (zerolab test); waiting for it to finish\n",
            std::process::id()
        )
    );
    std::thread::sleep(Duration::from_millis(200));
    assert!(lab.dir().exists() && child.try_wait().unwrap().is_none(), "down waits");
    drop(held);
    let output = child.wait_with_output().unwrap();
    assert_eq!((output.status.code(), String::from_utf8(output.stdout).unwrap()), (Some(0), "lab lk2: down\n".into()));
    assert!(!lab.dir().exists());
    let root: PathBuf = dir.path().join("labs");
    assert!(root.exists());
}
