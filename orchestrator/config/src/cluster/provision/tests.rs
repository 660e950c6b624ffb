//! Checks of `provision:` steps: what reads, and each refusal placed at its line and column.

use super::*;
use crate::cluster::testing::REGISTRY;
use crate::cluster::Cluster;

const HEAD: &str = "apiVersion: zerolab/v1\nkind: Cluster\nname: demo\nnodes:\n  - {name: node, count: 3, labels: {role: db}}\nprovision:\n";

fn read(steps: &str) -> Result<Cluster, String> {
    Cluster::from_str(&format!("{HEAD}{steps}"), "demo.yaml", &REGISTRY).map_err(|e| e.to_string())
}

#[test]
fn reads_steps_with_their_nodes_order_and_defaults() {
    let cluster = read(
        "  - {name: bootstrap, nodes: node-1, script: 'touch /tmp/b', ready: 'test -e /tmp/b'}\n  \
         - {name: join, nodes: 'node-*,role=x', after: [bootstrap], script: 'true', ready: 'true', timeout: 5}\n  \
         - {name: stamp, script: date, always: true}\n",
    )
    .unwrap();
    let steps = cluster.provision();
    assert_eq!(steps.len(), 3);
    assert_eq!(steps[0].nodes, ["node-1"]);
    assert_eq!(steps[0].ready.as_ref().unwrap().timeout, READY_TIMEOUT);
    assert_eq!(steps[1].nodes, ["node-1", "node-2", "node-3"]);
    assert_eq!(steps[1].after, ["bootstrap"]);
    assert_eq!(steps[1].ready.as_ref().unwrap().timeout, Duration::from_secs(5));
    assert!(steps[2].always && steps[2].action == Action::Script("date".into()));
}

#[test]
fn an_unknown_step_is_located_with_a_suggestion() {
    let err = read("  - {name: bootstrap, script: 'true'}\n  - {name: join, after: [bootstrp], script: 'true'}\n")
        .unwrap_err();
    assert_eq!(
        err,
        "demo.yaml:8:26: unknown step `bootstrp` (did you mean `bootstrap`?); expected the name of an earlier step"
    );
}

#[test]
fn naming_a_later_step_or_itself_is_a_cycle() {
    let err =
        read("  - {name: a, after: [b], script: 'true'}\n  - {name: b, after: [b], script: 'true'}\n").unwrap_err();
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 2);
    assert!(
        lines[0].starts_with("demo.yaml:7:23: step `b` does not come before this step (that would be a cycle)"),
        "{err}"
    );
    assert!(lines[1].starts_with("demo.yaml:8:23: step `b` does not come before"));
}

#[test]
fn an_unreadable_script_file_is_located() {
    let err = read("  - name: s\n    script_file: no-such.sh\n").unwrap_err();
    assert!(err.starts_with("demo.yaml:8:18: cannot read ./no-such.sh ("), "{err}");
    assert!(err.ends_with("expected a readable file, relative to the cluster file's directory"), "{err}");
}

#[test]
fn script_files_and_uploads_are_read_next_to_the_cluster_file() {
    let dir = std::env::temp_dir().join(format!("zerolab-provision-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("boot.sh"), "echo hi\n").unwrap();
    std::fs::write(dir.join("app.conf"), "x=1\n").unwrap();
    let text = format!(
        "{HEAD}  - {{name: s, script_file: boot.sh}}\n  - name: f\n    files:\n      - {{src: app.conf, dest: /etc/app.conf, \
         mode: 0600}}\n"
    );
    let file = dir.join("demo.yaml");
    let cluster = Cluster::from_str(&text, &file.display().to_string(), &REGISTRY).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(cluster.provision()[0].action, Action::Script("echo hi\n".into()));
    let Action::Files(files) = &cluster.provision()[1].action else { panic!() };
    assert_eq!(
        (files[0].contents.as_slice(), files[0].mode, files[0].dest.as_str()),
        (&b"x=1\n"[..], 0o600, "/etc/app.conf")
    );
}

#[test]
fn a_step_name_must_be_a_file_name() {
    let err = read("  - {name: ../x, script: 'true'}\n").unwrap_err();
    assert!(err.starts_with("demo.yaml:7:12: invalid step name `../x`: "), "{err}");
}

#[test]
fn a_selector_matching_no_node_is_located() {
    let err = read("  - {name: s, nodes: web-*, script: 'true'}\n").unwrap_err();
    assert!(err.starts_with("demo.yaml:7:22: node selector `web-*` matches no node; expected"), "{err}");
}

#[test]
fn each_bad_field_is_reported_together() {
    let err = read(
        "  - {name: a}\n  - {name: b, script: x, script_file: y}\n  - {name: a, script: x, timeout: 0}\n  \
         - name: f\n    files: [{src: /dev/null, dest: rel, mode: 999}]\n",
    )
    .unwrap_err();
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(
        lines[0],
        "demo.yaml:7:12: step `a` has nothing to do; expected one of `script`, `script_file` or `files`"
    );
    assert!(lines[1].starts_with("demo.yaml:8:5: step `b` has more than one of"), "{err}");
    assert_eq!(lines[2], "demo.yaml:9:12: duplicate step name `a`; expected unique step names");
    assert!(lines[3].starts_with("demo.yaml:9:26: timeout without ready"), "{err}");
    assert!(lines[4].starts_with("demo.yaml:9:35: timeout is 0"), "{err}");
    assert!(lines[5].starts_with("demo.yaml:11:36: dest `rel` is not absolute"), "{err}");
    assert!(lines[6].starts_with("demo.yaml:11:47: invalid mode `999`"), "{err}");
    assert_eq!(lines.len(), 7, "{err}");
}
