//! `zerolab exec` for real on a 3-node `netns` lab: per-node prefixed output, stderr
//! marked, exit codes summed up, `--nodes`, `exec -- true` timed, and the `inventory`
//! ssh-config used by the real `ssh -F`. Needs root and a
//! built `zerolab-agent` (as `up`); without either the test says it was skipped.

use std::fs;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::harness::{prerequisites, LabHarness, Subnet};

fn sorted_lines(text: &str) -> Vec<&str> {
    let mut lines: Vec<&str> = text.lines().collect();
    lines.sort_unstable();
    lines
}

#[test]
fn exec_fans_out_prefixes_output_and_sums_up_exit_codes() {
    let Some(agent) = prerequisites("zerolab exec") else {
        return;
    };
    let lab = LabHarness::new(Subnet::Exec, agent.clone());

    // Before `up`: nothing to run on, said in one line.
    for command in ["exec", "inventory"] {
        let args: &[&str] = if command == "exec" { &["--", "true"] } else { &["--format", "ansible"] };
        let run = lab.zerolab(&[command], args);
        assert_eq!((run.code, run.stdout.as_str()), (2, ""), "{run:#?}");
        assert_eq!(run.stderr, format!("zerolab: lab {} is not up; run `zerolab up` first\n", Subnet::Exec.name()));
    }

    let run = lab.zerolab(&["up"], &[]);
    assert_eq!(run.code, 0, "{run:#?}");

    // Every line prefixed with its node (output order across nodes is not fixed).
    let run = lab.zerolab(&["exec"], &["--", "echo", "out; echo err >&2; hostname -I | tr -d ' '"]);
    assert_eq!(run.code, 0, "{run:#?}");
    let mut out = sorted_lines(&run.stdout);
    let summary = out.iter().position(|l| l.starts_with("exit 0: ")).expect("a summary");
    let summary = out.remove(summary);
    assert_eq!(
        out,
        [
            format!("node-1: {}", Subnet::Exec.address(2)),
            "node-1: out".into(),
            format!("node-2: {}", Subnet::Exec.address(3)),
            "node-2: out".into(),
            format!("node-3: {}", Subnet::Exec.address(4)),
            "node-3: out".into()
        ],
        "{run:#?}"
    );
    assert!(summary.starts_with("exit 0: node-1, node-2, node-3 (3 nodes in "), "{run:#?}");
    assert_eq!(sorted_lines(&run.stderr), ["node-1 (stderr): err", "node-2 (stderr): err", "node-3 (stderr): err"]);

    // One node fails: exit 1, and the summary says which code came from where.
    let run = lab.zerolab(&["exec"], &["--", "case $(hostname -I) in *.3*) exit 7;; esac"]);
    assert_eq!(run.code, 1, "{run:#?}");
    assert!(run.stdout.starts_with("exit 0: node-1, node-3; exit 7: node-2 (3 nodes in "), "{run:#?}");

    // --nodes narrows the fan-out; an unknown node is a usage error naming the close one.
    let run = lab.zerolab(&["exec"], &["--nodes", "node-3", "--", "echo", "hi"]);
    assert_eq!(run.code, 0, "{run:#?}");
    assert_eq!(run.stdout.lines().next(), Some("node-3: hi"), "{run:#?}");
    assert!(run.stdout.lines().nth(1).unwrap().starts_with("exit 0: node-3 (1 node in "), "{run:#?}");
    let run = lab.zerolab(&["exec"], &["--nodes", "node-9", "--", "true"]);
    assert_eq!(run.code, 2, "{run:#?}");
    assert!(run.stderr.starts_with("zerolab: no node named `node-9`"), "{run:#?}");

    // The ssh-config inventory works with the real OpenSSH client, host keys checked
    // strictly against zerolab's pins.
    let run = lab.zerolab(&["inventory"], &["--format", "ssh-config"]);
    assert_eq!(run.code, 0, "{run:#?}");
    let config = lab.path("ssh_config");
    fs::write(&config, &run.stdout).unwrap();
    let ssh = Command::new("ssh")
        .arg("-F")
        .arg(&config)
        .args(["-o", "BatchMode=yes", "node-2", "hostname -I"])
        .output()
        .unwrap();
    assert!(ssh.status.success(), "{}\n{}", String::from_utf8_lossy(&ssh.stderr), run.stdout);
    assert_eq!(String::from_utf8_lossy(&ssh.stdout).trim(), Subnet::Exec.address(3));
    let run = lab.zerolab(&["inventory"], &["--format", "ansible"]);
    assert_eq!(run.code, 0, "{run:#?}");
    assert!(run.stdout.contains("\n[pool_workers]\nnode-1\nnode-2\nnode-3\n"), "{run:#?}");

    // `exec -- true` over the 3 nodes, timed through the binary (median of 5).
    let mut times: Vec<Duration> = (0..5)
        .map(|_| {
            let started = Instant::now();
            let run = lab.zerolab(&["exec"], &["--", "true"]);
            assert_eq!(run.code, 0, "{run:#?}");
            started.elapsed()
        })
        .collect();
    times.sort();
    eprintln!("exec -- true, 3 nodes, median of 5: {:?}", times[2]);
}
