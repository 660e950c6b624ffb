//! The `ssh` provider for real: a `netns` lab's hosts stand in for machines that already
//! exist, and an `ssh` cluster file points at them (their addresses, user root, the netns
//! lab's key). `up`, `status`, `exec` and `down` run through the binary on that file,
//! in a lab root of its own (the agents are then the ssh lab's: the netns lab's own `up`
//! is refused there). Needs root and a built `zerolab-agent` (as `up`);
//! without either the test says it was skipped.

use std::fs;
use std::path::{Path, PathBuf};

use crate::harness::{alive, prerequisites, wait_dead, zerolab, LabHarness, Run, Subnet};

/// An `ssh` cluster file (lab `<netns lab>-ssh`) naming hosts of `nodes`, and its lab root.
struct SshLab<'a> {
    nodes: &'a LabHarness,
    name: String,
    file: PathBuf,
    root: PathBuf,
    agent: PathBuf,
}

impl<'a> SshLab<'a> {
    fn new(nodes: &'a LabHarness, agent: &Path) -> SshLab<'a> {
        let name = format!("{}-ssh", nodes.cluster.name());
        SshLab {
            nodes,
            file: nodes.path(&format!("{name}.yaml")),
            root: nodes.path("ssh-labs"),
            name,
            agent: agent.into(),
        }
    }

    /// Writes the cluster file: each `(name, netns node, port)` becomes an ssh node at
    /// that netns node's address.
    fn write(&self, hosts: &[(&str, &str, u16)]) {
        let key = self.nodes.lab().private_key();
        let mut text = format!(
            "apiVersion: zerolab/v1\nkind: Cluster\nname: {}\nprovider: ssh\n\
             defaults:\n  user: root\n  key: {}\n  labels: {{site: lab}}\nnodes:\n",
            self.name,
            key.display()
        );
        for (name, node, port) in hosts {
            let address = &self.nodes.cluster.node(node).unwrap().address;
            text.push_str(&format!("  - {{name: {name}, address: {address}, port: {port}}}\n"));
        }
        fs::write(&self.file, text).unwrap();
    }

    fn zerolab(&self, command: &[&str], args: &[&str]) -> Run {
        zerolab(command, &self.file, &self.root, &self.agent, args)
    }

    fn lab_dir(&self) -> PathBuf {
        self.root.join(&self.name)
    }
}

/// A pid file of a netns `node`'s agent, read from the host through its private /run.
fn pid(nodes: &LabHarness, node: &str, file: &str) -> Option<i32> {
    let path = nodes.lab().nodes_dir().join(node).join("run/zerolab").join(file);
    fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// The status table's rows as (node, provider, state, agent version).
fn status_rows(run: &Run) -> Vec<[String; 4]> {
    run.stdout
        .lines()
        .skip(1)
        .map(|line| {
            let cells: Vec<&str> = line.split_whitespace().collect();
            [cells[0], cells[1], cells[3], cells[4]].map(str::to_owned)
        })
        .collect()
}

#[test]
fn ssh_lab_installs_the_agent_changes_nothing_twice_and_removes_only_zerolab() {
    let Some(agent) = prerequisites("the ssh provider") else {
        return;
    };
    let nodes = LabHarness::new(Subnet::SshProviderUp, agent.clone());
    nodes.create_nodes();
    let ssh = SshLab::new(&nodes, &agent);
    ssh.write(&[("web-1", "node-1", 22), ("web-2", "node-2", 22), ("web-3", "node-3", 22)]);

    // The machines exist; up installs and starts the agent on each.
    let run = ssh.zerolab(&["up"], &[]);
    assert_eq!(run.code, 0, "{run:#?}");
    for node in ["web-1", "web-2", "web-3"] {
        let line = format!("{node}: ready (agent uploaded, started, healthy)");
        assert!(run.stdout.lines().any(|l| l == line), "{run:#?}");
    }
    assert!(
        run.stdout.contains(&format!("lab {}-ssh: 3 of 3 nodes ready in ", Subnet::SshProviderUp.name())),
        "{run:#?}"
    );
    let version = env!("CARGO_PKG_VERSION");
    let ready = |node: &str| [node, "ssh", "ready", version].map(str::to_owned);
    let run = ssh.zerolab(&["status"], &[]);
    assert_eq!((run.code, status_rows(&run)), (0, vec![ready("web-1"), ready("web-2"), ready("web-3")]), "{run:#?}");

    // Again: nothing to do, the same supervisor.
    let supervisor = pid(&nodes, "node-1", "supervisor.pid").unwrap();
    let run = ssh.zerolab(&["up"], &[]);
    assert_eq!(run.code, 0, "{run:#?}");
    assert_eq!(run.stdout.matches("ready (agent unchanged, already running, healthy)").count(), 3, "{run:#?}");
    assert_eq!(pid(&nodes, "node-1", "supervisor.pid"), Some(supervisor));

    let run = ssh.zerolab(&["exec"], &["--", "hostname"]);
    assert_eq!(run.code, 0, "{run:#?}");
    let mut lines: Vec<&str> = run.stdout.lines().filter(|l| !l.starts_with("exit ")).collect();
    lines.sort_unstable();
    assert_eq!(lines, ["web-1: node-1", "web-2: node-2", "web-3: node-3"], "{run:#?}");

    // The agents are the ssh lab's: the netns lab's own up is refused on its hosts, and
    // changes nothing there.
    let run = nodes.zerolab(&["up"], &[]);
    assert_eq!(run.code, 1, "{run:#?}");
    let owner = format!("is provisioned by lab {}-ssh ({} on ", Subnet::SshProviderUp.name(), ssh.lab_dir().display());
    assert_eq!(run.stdout.matches(&owner).count(), 3, "{run:#?}");
    assert_eq!(pid(&nodes, "node-1", "supervisor.pid"), Some(supervisor));

    // down removes zerolab from the machines, and the ssh lab; the machines stay up.
    let pids: Vec<i32> = ["node-1", "node-2", "node-3"]
        .iter()
        .flat_map(|node| [pid(&nodes, node, "supervisor.pid").unwrap(), pid(&nodes, node, "agent.pid").unwrap()])
        .collect();
    let run = ssh.zerolab(&["down"], &[]);
    assert_eq!(
        (run.code, run.stdout.as_str(), run.stderr.as_str()),
        (0, format!("lab {}-ssh: down\n", Subnet::SshProviderUp.name()).as_str(), ""),
        "{run:#?}"
    );
    for pid in pids {
        wait_dead(pid);
    }
    assert!(!ssh.lab_dir().exists());
    // Nothing of zerolab is left on the machines (read from the host through each node's
    // private directories: /var/lib's overlay layer, where a removal leaves at most a
    // whiteout, and /run), and they are free: the netns lab's own up now installs there.
    for node in ["node-1", "node-2", "node-3"] {
        let private = nodes.lab().nodes_dir().join(node);
        assert!(!private.join("var-lib/zerolab").is_dir() && !private.join("run/zerolab").exists(), "{node}");
    }
    let run = nodes.zerolab(&["up"], &[]);
    assert_eq!(run.code, 0, "{run:#?}");
    assert_eq!(run.stdout.matches("ready (agent uploaded, started, healthy)").count(), 3, "{run:#?}");

    // Idempotent.
    let run = ssh.zerolab(&["down"], &[]);
    assert_eq!(run.code, 0, "{run:#?}");
}

#[test]
fn unreachable_ssh_nodes_are_reported_per_node_and_listed_by_a_down_that_finishes() {
    let Some(agent) = prerequisites("the ssh provider") else {
        return;
    };
    let nodes = LabHarness::new(Subnet::SshProviderPartial, agent.clone());
    nodes.create_nodes();
    let ssh = SshLab::new(&nodes, &agent);
    let b = nodes.cluster.node("node-2").unwrap().address.to_string();

    // Nothing listens on port 2: b is unreachable, a becomes ready all the same.
    ssh.write(&[("a", "node-1", 22), ("b", "node-2", 2)]);
    let run = ssh.zerolab(&["up"], &[]);
    assert_eq!(run.code, 1, "{run:#?}");
    assert!(run.stdout.contains("a: ready (agent uploaded, started, healthy)\n"), "{run:#?}");
    let unreachable = format!("b: unreachable: unreachable at {b}:2 after 6 attempts (");
    assert!(run.stdout.lines().any(|l| l.starts_with(&unreachable)), "{run:#?}");
    assert!(
        run.stdout
            .contains(&format!("lab {}-ssh: 1 of 2 nodes ready, 1 not ready in ", Subnet::SshProviderPartial.name())),
        "{run:#?}"
    );
    let run = ssh.zerolab(&["status"], &[]);
    assert_eq!(run.code, 1, "{run:#?}");
    let states: Vec<String> =
        status_rows(&run).into_iter().map(|[node, _, state, _]| format!("{node} {state}")).collect();
    assert_eq!(states, ["a ready", "b unreachable"], "{run:#?}");

    // b was never reached, so nothing of zerolab can be on it: down does not need it.
    let agent_a = pid(&nodes, "node-1", "agent.pid").unwrap();
    let run = ssh.zerolab(&["down"], &[]);
    assert_eq!(run.code, 0, "{run:#?}");
    wait_dead(agent_a);
    assert!(!ssh.lab_dir().exists());

    // Installed on both, then b unreachable at down: down lists it, with what to remove
    // there by hand, and finishes.
    ssh.write(&[("a", "node-1", 22), ("b", "node-2", 22)]);
    assert_eq!(ssh.zerolab(&["up"], &[]).code, 0);
    let agent_b = pid(&nodes, "node-2", "agent.pid").unwrap();
    ssh.write(&[("a", "node-1", 22), ("b", "node-2", 2)]);
    let run = ssh.zerolab(&["down"], &[]);
    let down = format!("lab {}-ssh: down\n", Subnet::SshProviderPartial.name());
    assert_eq!((run.code, run.stdout.as_str(), run.stderr.lines().count()), (0, down.as_str(), 1), "{run:#?}");
    let expected = format!("warning: not cleaned: b: unreachable at {b}:2 after 2 attempts (");
    assert!(run.stderr.starts_with(&expected) && run.stderr.contains("; to clean it by hand, as root"), "{run:#?}");
    let lab = ssh.lab_dir();
    assert!(!lab.exists() && alive(agent_b));
    // b back: up finds its agent this lab's (its owner file), and down removes it.
    ssh.write(&[("a", "node-1", 22), ("b", "node-2", 22)]);
    let run = ssh.zerolab(&["up"], &[]);
    assert_eq!(run.code, 0, "{run:#?}");
    assert!(run.stdout.contains("b: ready (agent unchanged, already running, healthy)\n"), "{run:#?}");
    ssh.zerolab(&["down"], &[]).expect(0, &down, "");
    wait_dead(agent_b);
    assert!(!lab.exists());
}
