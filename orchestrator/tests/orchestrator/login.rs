//! `zerolab ssh` for real on a 3-node `netns` lab: the system's OpenSSH client logs in
//! with the lab's config, runs a command and exits with its status, or runs the shell;
//! each reason it cannot is one line. Needs root, a built `zerolab-agent` (as `up`)
//! and the OpenSSH client; without them the test says it was skipped.

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};

use crate::harness::{prerequisites, LabHarness, Run, Subnet};
use zerolab::lab::NodeState;

/// `zerolab ssh FILE --lab-root ROOT ARGS...` with `stdin` and `PATH` as given.
fn ssh(lab: &LabHarness, args: &[&str], stdin: &str, path: Option<&str>) -> Run {
    let mut command = Command::new(env!("CARGO_BIN_EXE_zerolab"));
    command.arg("ssh").arg(&lab.file).arg("--lab-root").arg(lab.root()).args(args);
    if let Some(path) = path {
        command.env("PATH", path);
    }
    let mut child = command.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    Run {
        code: output.status.code().expect("an exit code"),
        stdout: String::from_utf8(output.stdout).unwrap(),
        stderr: String::from_utf8(output.stderr).unwrap(),
    }
}

#[test]
fn zerolab_ssh_logs_in_with_the_labs_config_or_says_why_not() {
    let Some(agent) = prerequisites("zerolab ssh") else {
        return;
    };
    let lab = LabHarness::new(Subnet::Login, agent);

    let run = ssh(&lab, &["node-2", "--", "hostname"], "", None);
    assert_eq!((run.code, run.stdout.as_str()), (2, ""), "{run:#?}");
    assert_eq!(run.stderr, format!("zerolab: lab {} is not up; run `zerolab up` first\n", Subnet::Login.name()));
    let run = lab.zerolab(&["up"], &[]);
    assert_eq!(run.code, 0, "{run:#?}");

    // A command: its output, and its exit status as zerolab's.
    let run = ssh(&lab, &["node-2", "--", "hostname"], "", None);
    assert_eq!((run.code, run.stdout.as_str(), run.stderr.as_str()), (0, "node-2\n", ""), "{run:#?}");
    let run = ssh(&lab, &["node-2", "--", "exit", "7"], "", None);
    assert_eq!(run.code, 7, "{run:#?}");
    // Words after the node are the command's, even those that look like options.
    let run = ssh(&lab, &["node-3", "--", "echo", "-v", "-p", "2222"], "", None);
    assert_eq!((run.code, run.stdout.as_str()), (0, "-v -p 2222\n"), "{run:#?}");

    // No command: the node's shell, here reading its commands from stdin (not a terminal).
    let run = ssh(&lab, &["node-1"], "hostname\nexit 3\n", None);
    assert_eq!((run.code, run.stdout.as_str()), (3, "node-1\n"), "{run:#?}");

    // The config it wrote: private, in the lab, checking host keys strictly.
    let config = lab.lab().dir().join("ssh_config");
    assert_eq!(fs::metadata(&config).unwrap().permissions().mode() & 0o777, 0o600);
    assert!(fs::read_to_string(&config)
        .unwrap()
        .contains(&format!("Host node-2\n  HostName {}\n", Subnet::Login.address(3))));
    assert!(fs::read_to_string(&config).unwrap().contains("  StrictHostKeyChecking yes\n"));

    // Each reason it cannot log in, in one line.
    let run = ssh(&lab, &["nod-2", "--", "true"], "", None);
    assert_eq!(
        (run.code, run.stderr.as_str()),
        (2, "zerolab: no node named `nod-2`; expected one of `node-1`, `node-2`, `node-3` (did you mean `node-2`?)\n"),
        "{run:#?}"
    );
    let mut state = lab.lab().load_state().unwrap();
    state.nodes.get_mut("node-3").unwrap().state = NodeState::Failed { cause: "agent not healthy".into() };
    lab.lab().save_state(&state).unwrap();
    let run = ssh(&lab, &["node-3", "--", "true"], "", None);
    assert_eq!(
        (run.code, run.stderr.as_str()),
        (2, "zerolab: node node-3 is not ready (failed: agent not healthy); run `zerolab up` first\n"),
        "{run:#?}"
    );
    let empty = tempfile::tempdir().unwrap();
    let run = ssh(&lab, &["node-2", "--", "true"], "", empty.path().to_str());
    assert_eq!(
        (run.code, run.stderr.as_str()),
        (2, "zerolab: the OpenSSH client `ssh` was not found on PATH; install it (apt-get install openssh-client)\n"),
        "{run:#?}"
    );
}
