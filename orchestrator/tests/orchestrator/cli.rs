//! The `zerolab` binary, run for real: `validate` on the examples and on broken files in
//! a temp dir, output and exit codes (0 valid, 1 invalid, 2 usage or unreadable file).

use std::path::{Path, PathBuf};

use crate::harness::{zerolab_in, Run};

/// A temp dir to write cluster files into and run `zerolab` in (so diagnostics name
/// files as written: `bad.yaml:3:7: ...`).
struct Harness {
    dir: tempfile::TempDir,
}

impl Harness {
    fn new() -> Harness {
        Harness { dir: tempfile::tempdir().expect("temp dir") }
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).expect("write cluster file");
        path
    }

    fn zerolab(&self, args: &[&str]) -> Run {
        zerolab_in(self.dir.path(), args)
    }
}

fn example(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples").join(name);
    path.to_str().expect("utf-8 path").to_owned()
}

const HEAD: &str = "apiVersion: zerolab/v1\nkind: Cluster\nname: demo\nprovider: netns\n";

#[test]
fn validates_every_example_with_a_summary() {
    let harness = Harness::new();
    let cases = [
        ("netns-3.yaml", "lab netns-3, provider netns, 3 nodes: node-1, node-2, node-3"),
        ("ssh.yaml", "lab office, provider ssh, 3 nodes: build, runner-a, runner-b"),
        ("vagrant.yaml", "lab vms, provider vagrant, 3 nodes: vm-1, vm-2, big"),
        ("pxe.yaml", "lab rack, provider pxe, 3 nodes: r1-n1, r1-n2, r1-n3"),
    ];
    for (name, summary) in cases {
        let path = example(name);
        harness.zerolab(&["validate", &path]).expect(0, &format!("{path}: valid: {summary}\n"), "");
    }
}

#[test]
fn a_single_node_is_not_plural() {
    let harness = Harness::new();
    harness.write("one.yaml", &format!("{HEAD}nodes:\n  - name: solo\n"));
    harness.zerolab(&["validate", "one.yaml"]).expect(
        0,
        "one.yaml: valid: lab demo, provider netns, 1 node: solo\n",
        "",
    );
}

#[test]
fn malformed_yaml_is_one_located_error() {
    let harness = Harness::new();
    harness.write("bad.yaml", &format!("{HEAD}nodes:\n  - name: [a\n"));
    harness.zerolab(&["validate", "bad.yaml"]).expect(
        1,
        "",
        "bad.yaml:7:1: malformed YAML: did not find expected ',' or ']'; expected well-formed YAML (check \
         indentation, `:` and quotes)\n",
    );
}

#[test]
fn unknown_field_suggests_the_close_one() {
    let harness = Harness::new();
    harness.write("typo.yaml", &format!("{HEAD}nodes:\n  - nmae: a\n    count: 2\n"));
    harness.zerolab(&["validate", "typo.yaml"]).expect(
        1,
        "",
        "typo.yaml:6:5: unknown field `nmae` in nodes[0]; did you mean `name`?\n",
    );
}

#[test]
fn wrong_api_version_names_the_supported_one() {
    let harness = Harness::new();
    harness.write("v2.yaml", "apiVersion: zerolab/v2\nkind: Cluster\nname: demo\nnodes: []\nextra: 1\n");
    harness.zerolab(&["validate", "v2.yaml"]).expect(
        1,
        "",
        "v2.yaml:1:13: unsupported apiVersion `zerolab/v2`; expected `zerolab/v1`\n",
    );
}

#[test]
fn reports_several_semantic_errors_together_in_file_order() {
    let harness = Harness::new();
    let text = "\
apiVersion: zerolab/v1
kind: Cluster
name: Demo
provider: netns
network:
  subnet: 10.77.0.0/24
nodes:
  - name: node
    count: 3
  - name: node-2
    address: 10.77.1.9
  - name: gw
    address: 10.77.0.1
    mac: 52:54:00:12:34:56
";
    harness.write("many.yaml", text);
    let want = "\
many.yaml:3:7: invalid lab name `Demo`: 'D' is not allowed; expected 1 to 32 characters of a-z, 0-9 and `-`, not \
starting or ending with `-`
many.yaml:10:11: duplicate node name `node-2` (first at line 8); expected unique node names
many.yaml:11:14: address 10.77.1.9 is outside subnet 10.77.0.0/24; expected an address from 10.77.0.2 to 10.77.0.254
many.yaml:13:14: address 10.77.0.1 is the host side (the lab's own address) of subnet 10.77.0.0/24; expected an \
address from 10.77.0.2 to 10.77.0.254
many.yaml:14:5: field `mac` does not apply to provider netns; expected it only with provider pxe
";
    harness.zerolab(&["validate", "many.yaml"]).expect(1, "", want);
}

#[test]
fn an_unreadable_file_is_a_usage_error() {
    let harness = Harness::new();
    harness.zerolab(&["validate", "missing.yaml"]).expect(
        2,
        "",
        "zerolab: cannot read missing.yaml: No such file or directory (os error 2)\n",
    );
}

#[test]
fn usage_errors_exit_2() {
    let harness = Harness::new();
    for args in [&["validate"][..], &["up"], &["ssh"], &["validate", "a.yaml", "b.yaml"], &[]] {
        let run = harness.zerolab(args);
        assert_eq!((run.code, run.stdout.as_str()), (2, ""), "{args:?}: {run:#?}");
    }
}

#[test]
fn lists_its_commands_and_no_others() {
    let harness = Harness::new();
    let help = harness.zerolab(&["--help"]);
    assert_eq!(help.code, 0, "{help:#?}");
    let commands: Vec<&str> = help
        .stdout
        .split("Commands:\n")
        .nth(1)
        .and_then(|rest| rest.split("\n\n").next())
        .map(|block| block.lines().filter_map(|line| line.split_whitespace().next()).collect())
        .unwrap_or_default();
    assert_eq!(
        commands,
        [
            "validate",
            "up",
            "down",
            "status",
            "exec",
            "run",
            "wait",
            "jobs",
            "logs",
            "cancel",
            "labs",
            "sandbox",
            "workshop",
            "power",
            "shelve",
            "unshelve",
            "reinstall",
            "render",
            "ssh",
            "inventory",
            "graph",
            "completions"
        ],
        "{}",
        help.stdout
    );
    assert!(help.stdout.contains("Exit status: 0"), "exit codes documented: {}", help.stdout);
    for command in [
        &["validate"][..],
        &["up"],
        &["down"],
        &["status"],
        &["exec"],
        &["sandbox", "run"],
        &["ssh"],
        &["inventory"],
        &["graph"],
        &["completions"],
        &["run"],
        &["labs"],
        &["shelve"],
        &["unshelve"],
    ] {
        let help = harness.zerolab(&[command, &["--help"]].concat());
        assert!(help.stdout.contains("Exit status: "), "{command:?}: exit codes documented: {}", help.stdout);
    }
    for command in [&["help"][..], &["sandbox", "list"]] {
        assert_eq!(harness.zerolab(command).code, 2, "{command:?} must not exist yet");
    }
}

#[test]
fn shelving_a_lab_that_is_not_up_is_one_line_and_exit_2() {
    let harness = Harness::new();
    let (file, root) = (example("netns-3.yaml"), harness.dir.path().join("labs"));
    let (file, root) = (file.as_str(), root.to_str().unwrap());
    for args in
        [&["shelve", file, "--lab-root", root][..], &["shelve", "--offload", file, "node-1", "--lab-root", root]]
    {
        harness.zerolab(args).expect(2, "", "zerolab: lab netns-3 is not up; run `zerolab up` first\n");
    }
    let agent = harness.write("zerolab-agent", "");
    let args = ["unshelve", file, "--lab-root", root, "--agent", agent.to_str().unwrap()];
    harness.zerolab(&args).expect(2, "", "zerolab: lab netns-3 is not up; run `zerolab up` first\n");
}

#[test]
fn exec_needs_a_command_after_the_double_dash() {
    let harness = Harness::new();
    let file = harness.write("lab.yaml", &example("netns-3.yaml"));
    let file = file.to_str().unwrap();
    for args in [&["exec", file][..], &["exec", file, "--"], &["exec", file, "true"]] {
        let run = harness.zerolab(args);
        assert_eq!((run.code, run.stdout.as_str()), (2, ""), "{args:?}: {run:#?}");
    }
}

#[test]
fn prints_its_version() {
    let harness = Harness::new();
    harness.zerolab(&["--version"]).expect(0, &format!("zerolab {}\n", env!("CARGO_PKG_VERSION")), "");
}

#[test]
fn agent_script_prints_the_start_script_up_runs_for_the_lab() {
    let harness = Harness::new();
    harness.write(
        "lab.yaml",
        "apiVersion: zerolab/v1\nkind: Cluster\nname: demo\nprovider: ssh\ndefaults: {user: root, key: k}\n\
         nodes:\n  - {name: n1, address: 192.0.2.1}\n",
    );
    harness.write("agent", "an agent binary");
    let sum = zerolab_agent_api::Sha256::of_bytes(b"an agent binary");
    let dir = std::fs::canonicalize(harness.dir.path()).expect("temp dir").join("labs/demo");
    let owner = format!("lab=demo\ndir={}\n", dir.display());

    let before = harness.zerolab(&["agent-script", "lab.yaml", "--lab-root", "labs", "--agent", "agent"]);
    assert_eq!(before.code, 0, "{before:#?}");
    assert!(before.stdout.contains(&owner), "{}", before.stdout);
    assert!(before.stdout.contains(&format!("!= {sum} ]")), "{}", before.stdout);
    assert!(before.stdout.contains("restart=0\n"), "{}", before.stdout);

    let after = harness.zerolab(&["agent-script", "lab.yaml", "--lab-root", "labs", "--uploaded"]);
    assert_eq!(after.code, 0, "{after:#?}");
    assert!(after.stdout.contains(&owner) && after.stdout.contains("restart=1\n"), "{}", after.stdout);
    assert!(!after.stdout.contains("echo upload"), "{}", after.stdout);

    let missing = harness.zerolab(&["agent-script", "lab.yaml", "--lab-root", "labs", "--agent", "none"]);
    assert_eq!(missing.code, 2, "{missing:#?}");
    assert!(missing.stderr.contains("cannot read agent binary none"), "{}", missing.stderr);
}
