//! The workshop file's checks: every field's problem placed where it is, a template's
//! own problems placed in its own file, and lab N made from the template.

use super::*;
use crate::cluster::testing::REGISTRY;

const HEAD: &str = "apiVersion: zerolab/v1\nkind: Workshop\nname: wc1\n";

fn load(text: &str, dir: &Path) -> Result<Workshop, LoadError> {
    Workshop::from_str(text, "ws.yaml", dir, &REGISTRY)
}

fn errors(text: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    match load(text, dir.path()) {
        Ok(_) => "ok".to_owned(),
        Err(e) => e.to_string(),
    }
}

const OK: &str = "lab: {nodes: [{name: node, count: 2}]}\naccess_code: sesame\nsteps:\n  - {title: One, text: hi}\n";

#[test]
fn makes_lab_n_from_the_template() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!("{HEAD}{OK}network: 10.212.0.0/16\nidle: 15m\nextend: 1h30m\n");
    let workshop = load(&text, dir.path()).unwrap();
    let lab = workshop.lab(7, &REGISTRY).unwrap();
    assert_eq!(lab.name(), "wc1-007");
    let nodes: Vec<String> = lab.nodes().iter().map(|n| format!("{} {}", n.name, n.address)).collect();
    assert_eq!(nodes, ["node-1 10.212.7.2", "node-2 10.212.7.3"]);
    assert_eq!((workshop.duration.as_secs(), workshop.extend.as_secs()), (5400, 5400));
    assert_eq!(workshop.idle, Some(Duration::from_secs(900)));
    assert_eq!(workshop.max_index(), 255);
    assert_eq!(workshop.steps[0].node, "node-1");
    assert_eq!((workshop.capacity, workshop.warm, workshop.reserve), (20, 5, 2));
}

#[test]
fn places_every_fields_problem() {
    let text = format!(
        "{HEAD}lab: {{nodes: [{{name: node, count: 0}}]}}\naccess_code: two words\nduration: 90\nnetwork: 8.8.0.0/16\n\
         capacity: 40\npool: {{warm: 50}}\nportal: {{listen: nowhere, ssh_ports: 23000-23009}}\n\
         steps:\n  - {{title: '', check: ' '}}\n"
    );
    let want = [
        "ws.yaml:4:35: count is 0; expected at least 1 (omit count for a single node)",
        "ws.yaml:5:14: the access code is empty or has spaces or control characters; expected a word attendees can type",
        "ws.yaml:6:11: invalid duration `90`: `90` has no unit (h, m or s); expected e.g. `90m`, `1h30m` or `45s`",
        "ws.yaml:7:10: invalid network `8.8.0.0/16`: it is not inside 10/8, 172.16/12 or 192.168/16; expected a private \
         IPv4 block such as 10.200.0.0/16",
        "ws.yaml:9:14: pool.warm is 50, above capacity 40; expected at most 40",
        "ws.yaml:10:18: invalid listen address `nowhere`; expected ADDRESS:PORT such as 0.0.0.0:8080",
        "ws.yaml:10:38: ssh_ports holds 10 ports, fewer than capacity 40; expected a range of at least 40",
    ];
    assert_eq!(errors(&text), want.join("\n"));
}

#[test]
fn steps_name_nodes_of_the_template() {
    let text = format!(
        "{HEAD}lab: {{nodes: [{{name: node, count: 2}}]}}\naccess_code: x\nsteps:\n  - {{title: a, check: 'true', node: node-3}}\n  - {{title: ''}}\n"
    );
    assert_eq!(
        errors(&text),
        "ws.yaml:7:37: no node `node-3` in the lab template; expected one of `node-1`, `node-2`\n\
         ws.yaml:8:13: the step's title is empty; expected a title"
    );
    assert_eq!(
        errors(&format!("{HEAD}lab: {{nodes: [{{name: n}}]}}\naccess_code: x\nsteps: []\n")),
        "ws.yaml:6:8: no steps; expected at least one step with a title"
    );
}

#[test]
fn a_template_files_problems_are_placed_in_it() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("lab.yaml"),
        "apiVersion: zerolab/v1\nkind: Cluster\nname: t\nnodes:\n  - {name: Node}\n",
    )
    .unwrap();
    let text = format!("{HEAD}lab: lab.yaml\naccess_code: x\nsteps: [{{title: a}}]\n");
    let err = load(&text, dir.path()).unwrap_err().to_string();
    let lab = dir.path().join("lab.yaml").display().to_string();
    assert!(err.starts_with(&format!("{lab}:5:12: invalid node name `Node`")), "{err}");
    let err = load(&text.replace("lab.yaml", "missing.yaml"), dir.path()).unwrap_err().to_string();
    assert!(err.starts_with("ws.yaml:4:6: cannot read missing.yaml: No such file"), "{err}");
    std::fs::write(dir.path().join("lab.yaml"), "apiVersion: zerolab/v1\nkind: Cluster\nname: t\nnodes: [{name: n}]\n")
        .unwrap();
    let workshop = load(&text, dir.path()).unwrap();
    assert_eq!(workshop.lab(2, &REGISTRY).unwrap().name(), "wc1-002");
}

#[test]
fn names_codes_and_reads_of_the_file() {
    let long = "a".repeat(29);
    let text = format!("apiVersion: zerolab/v1\nkind: Workshop\nname: {long}\n{OK}");
    assert_eq!(
        errors(&text),
        format!("ws.yaml:3:7: invalid workshop name `{long}`: it is 29 characters long, over 28; its labs are named `{long}-NNN`")
    );
    assert_eq!(
        errors(&format!("{HEAD}lab: {{nodes: [{{name: n}}]}}\nsteps: [{{title: a}}]\n")),
        "ws.yaml:1:1: no access code; expected `access_code: CODE` or `access_code_file: FILE`"
    );
    assert_eq!(
        errors(&format!("{HEAD}{OK}capcity: 3\n")),
        "ws.yaml:8:1: unknown field `capcity` in the workshop file; did you mean `capacity`?"
    );
    assert_eq!(
        errors(&format!("{HEAD}lab: {{nodes: [{{name: n, cuont: 2}}]}}\naccess_code: x\nsteps: [{{title: a}}]\n")),
        "ws.yaml:4:25: unknown field `cuont` in lab.nodes[0]; did you mean `count`?"
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("code.txt"), "open-sesame\n").unwrap();
    let text = format!("{HEAD}lab: {{nodes: [{{name: n}}]}}\naccess_code_file: code.txt\nsteps: [{{title: a}}]\n");
    assert_eq!(load(&text, dir.path()).unwrap().access_code, "open-sesame");
}
