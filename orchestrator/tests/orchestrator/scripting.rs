//! The CLI for scripts and habits, through the real binary: `--output json` on
//! `validate`, `status`, `jobs` and `run` (one document on stdout, the text's exit
//! codes), `zerolab completions`, node names with a did-you-mean and selectors that
//! match nothing listing what exists, and the run table with a long failure under it.
//! The lab test needs root, gcc and a built agent (as `run`); the others need nothing.

use std::fs;
use std::path::Path;

use serde_json::Value;

use crate::harness::{prerequisites, row, zerolab_in, zvm_gcc, LabHarness, Run, Subnet};

/// A temp dir holding a 3-node cluster file `lab.yaml` (lab gr199, never brought up; nodes `node-1`, `node-2` with
/// label zone=a, `edge` with zone=b and role=gw), a job `job.yaml` and stand-in programs.
fn files() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| fs::write(dir.path().join(name), text).unwrap();
    write(
        "lab.yaml",
        "apiVersion: zerolab/v1\nkind: Cluster\nname: gr199\nprovider: netns\nnetwork: {subnet: 10.77.199.0/24}\n\
         nodes:\n  - {name: node, count: 2, labels: {zone: a}}\n  - {name: edge, labels: {zone: b, role: gw}}\n",
    );
    write(
        "job.yaml",
        "apiVersion: zerolab/v1\nkind: Job\nname: wc\ngroups:\n  - {name: map, count: 3, program: map, connect: \
         [reduce]}\n  - {name: reduce, program: reduce}\n",
    );
    write("map", "");
    write("reduce", "");
    dir
}

fn json(run: &Run) -> Value {
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("not one JSON document ({e}): {run:#?}"))
}

#[test]
fn validate_prints_one_json_document_valid_or_with_every_problem() {
    let dir = files();
    let zerolab = |args: &[&str]| zerolab_in(dir.path(), args);

    let run = zerolab(&["validate", "-o", "json", "lab.yaml"]);
    assert_eq!((run.code, run.stderr.as_str()), (0, ""), "{run:#?}");
    let doc = json(&run);
    assert_eq!(
        (&doc["valid"], &doc["kind"], &doc["lab"], &doc["provider"]),
        (&true.into(), &"cluster".into(), &"gr199".into(), &"netns".into())
    );
    let nodes: Vec<(&str, &str)> = doc["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| (n["name"].as_str().unwrap(), n["address"].as_str().unwrap()))
        .collect();
    assert_eq!(nodes, [("node-1", "10.77.199.2"), ("node-2", "10.77.199.3"), ("edge", "10.77.199.4")]);
    assert_eq!(doc["nodes"][2]["labels"], serde_json::json!({"role": "gw", "zone": "b"}));

    let run = zerolab(&["validate", "--output", "json", "job.yaml", "--cluster", "lab.yaml"]);
    assert_eq!(run.code, 0, "{run:#?}");
    let doc = json(&run);
    assert_eq!((&doc["valid"], &doc["kind"], &doc["job"]), (&true.into(), &"job".into(), &"wc".into()));
    assert_eq!(doc["channels"][1], serde_json::json!({"from": "map-2", "to": "reduce"}));
    assert_eq!(doc["placement"][0], serde_json::json!({"node": "node-1", "instances": ["map-1", "reduce"]}));
    assert_eq!(json(&zerolab(&["validate", "-o", "json", "job.yaml"]))["placement"], Value::Null);

    // Invalid: exit 1, every problem located, nothing on stderr.
    fs::write(dir.path().join("bad.yaml"), "apiVersion: zerolab/v1\nkind: Cluster\nname: Bad\nnodes: []\n").unwrap();
    let run = zerolab(&["validate", "-o", "json", "bad.yaml"]);
    assert_eq!((run.code, run.stderr.as_str()), (1, ""), "{run:#?}");
    let doc = json(&run);
    assert_eq!(doc["valid"], false);
    let problems: Vec<(&str, u64, u64)> = doc["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["file"].as_str().unwrap(), p["line"].as_u64().unwrap(), p["column"].as_u64().unwrap()))
        .collect();
    assert_eq!(problems, [("bad.yaml", 3, 7), ("bad.yaml", 4, 8)]);
    assert!(doc["problems"][0]["message"].as_str().unwrap().starts_with("invalid lab name `Bad`"), "{doc}");

    // A job that cannot be placed is invalid the same way.
    fs::write(dir.path().join("wide.yaml"), "apiVersion: zerolab/v1\nkind: Job\nname: w\ngroups:\n  - {name: m, program: map, placement: {nodes: zone=c}}\n").unwrap();
    let run = zerolab(&["validate", "-o", "json", "wide.yaml", "--cluster", "lab.yaml"]);
    assert_eq!(run.code, 1, "{run:#?}");
    assert_eq!(json(&run)["problems"][0]["line"], 5);

    // Unreadable: a usage error, on stderr, as in text.
    let run = zerolab(&["validate", "-o", "json", "missing.yaml"]);
    assert_eq!((run.code, run.stdout.as_str()), (2, ""), "{run:#?}");
    assert_eq!(zerolab(&["validate", "-o", "yaml", "lab.yaml"]).code, 2);
}

#[test]
fn status_and_jobs_print_json_for_a_lab_that_is_not_up() {
    let dir = files();
    let zerolab = |args: &[&str]| zerolab_in(dir.path(), args);
    let run = zerolab(&["status", "-o", "json", "lab.yaml", "--lab-root", "labs"]);
    assert_eq!((run.code, run.stderr.as_str()), (1, ""), "not ready is exit 1, as in text: {run:#?}");
    let doc = json(&run);
    assert_eq!((&doc["lab"], &doc["ready"]), (&"gr199".into(), &false.into()));
    assert_eq!(
        doc["nodes"][0],
        serde_json::json!({"node": "node-1", "provider": "netns", "address": "10.77.199.2", "state": "declared",
                           "machine": null, "agent_version": null, "store": null, "cause": null})
    );
    assert_eq!(doc["services"], serde_json::json!([]));
    let run = zerolab(&["jobs", "-o", "json", "lab.yaml", "--lab-root", "labs"]);
    assert_eq!(run.code, 0, "{run:#?}");
    assert_eq!(json(&run), serde_json::json!({"lab": "gr199", "runs": []}));
}

#[test]
fn completions_cover_every_command_for_each_shell() {
    let dir = tempfile::tempdir().unwrap();
    let run = zerolab_in(dir.path(), &["completions", "bash"]);
    assert_eq!((run.code, run.stderr.as_str()), (0, ""), "{run:#?}");
    assert!(run.stdout.contains("complete -F _zerolab"), "a bash completion script: {}", run.stdout);
    let commands = [
        "validate",
        "up",
        "down",
        "status",
        "exec",
        "run",
        "jobs",
        "logs",
        "cancel",
        "sandbox",
        "ssh",
        "inventory",
        "graph",
        "completions",
    ];
    for command in commands {
        assert!(run.stdout.contains(&format!("zerolab__subcmd__{command})")), "bash completes `{command}`");
    }
    assert!(run.stdout.contains("--output") && run.stdout.contains("mermaid"), "options and their values too");
    for shell in ["zsh", "fish"] {
        let run = zerolab_in(dir.path(), &["completions", shell]);
        assert_eq!(run.code, 0, "{run:#?}");
        assert!(run.stdout.contains("graph") && run.stdout.contains("inventory"), "{shell}: {}", run.stdout);
    }
    assert_eq!(zerolab_in(dir.path(), &["completions", "tcsh"]).code, 2);
}

#[test]
fn unknown_nodes_get_a_did_you_mean_and_empty_selectors_list_what_exists() {
    let dir = files();
    let zerolab = |args: &[&str]| zerolab_in(dir.path(), args);
    let known = "expected one of `node-1`, `node-2`, `edge`";
    let cases: &[(&[&str], String)] = &[
        (
            &["exec", "lab.yaml", "--nodes", "node-01", "--", "true"],
            format!("no node named `node-01`; {known} (did you mean `node-1`?)"),
        ),
        (&["ssh", "lab.yaml", "node-01"], format!("no node named `node-01`; {known} (did you mean `node-1`?)")),
        (&["sandbox", "run", "lab.yaml", "edg", "map"], format!("no node named `edg`; {known} (did you mean `edge`?)")),
        (&["ssh", "lab.yaml", "database"], format!("no node named `database`; {known}")),
        (
            &["exec", "lab.yaml", "--nodes", "zone=c,db-*", "--", "true"],
            "node selector `zone=c,db-*` matches no node; expected names or patterns over the lab's nodes (`node-1`, \
             `node-2`, `edge`) or label=value with one of its labels (`role=gw`, `zone=a`, `zone=b`)"
                .to_owned(),
        ),
    ];
    for (args, message) in cases {
        zerolab(args).expect(2, "", &format!("zerolab: {message}\n"));
    }
}

/// A guest whose exit state is long: a program the validator refuses.
const HELLO_AND_INVALID: &str = "apiVersion: zerolab/v1\nkind: Job\nname: mixed\ngroups:\n  - {name: hello, program: \
                                 hello}\n  - {name: invalid, program: invalid}\n";

#[test]
fn run_jobs_status_and_graph_on_a_lab_that_is_up() {
    let Some(agent) = prerequisites("zerolab run -o json") else {
        return;
    };
    let lab = LabHarness::new(Subnet::Scripting, agent.clone());
    let examples = concat!(env!("CARGO_MANIFEST_DIR"), "/../sandbox/guest/examples");
    zvm_gcc(&Path::new(examples).join("hello.c"), &lab.path("hello"));
    fs::copy(&agent, lab.path("invalid")).unwrap();
    let hello = crate::harness::job(
        &lab,
        "hello",
        "apiVersion: zerolab/v1\nkind: Job\nname: hi\ngroups:\n  - {name: hello, count: 2, program: hello}\n",
    );
    let mixed = crate::harness::job(&lab, "mixed", HELLO_AND_INVALID);
    assert_eq!(lab.zerolab(&["up"], &[]).code, 0);

    let run = lab.zerolab(&["status"], &["-o", "json"]);
    assert_eq!(run.code, 0, "{run:#?}");
    let doc = json(&run);
    assert_eq!(doc["ready"], true);
    for node in doc["nodes"].as_array().unwrap() {
        assert_eq!(node["state"], "ready", "{doc}");
        assert_eq!(node["agent_version"], env!("CARGO_PKG_VERSION"), "{doc}");
        assert!(node["store"]["blob_limit_bytes"].as_u64().unwrap() > 0, "{doc}");
    }

    // JSON: no progress, the document only, every instance with its accounting.
    let run = lab.zerolab(&["run"], &[&hello, "-o", "json"]);
    assert_eq!((run.code, run.stderr.as_str()), (0, ""), "{run:#?}");
    let doc = json(&run);
    assert_eq!((&doc["job"], &doc["success"]), (&"hi".into(), &true.into()), "{doc}");
    assert!(Path::new(doc["results"].as_str().unwrap()).join("hello-2/stdout").is_file(), "{doc}");
    let first = &doc["instances"][0];
    assert_eq!(
        (&first["instance"], &first["node"], &first["exit_state"]),
        (&"hello-1".into(), &"node-1".into(), &"ok".into())
    );
    assert_eq!((&first["return_code"], &first["user_code"], &first["cause"]), (&0.into(), &0.into(), &Value::Null));
    assert!(first["accounting"]["local"]["put_bytes"].as_u64().unwrap() >= 14, "wrote its greeting: {doc}");
    assert_eq!(first["attempts"], serde_json::json!([]));

    // A failure whose exit state is a sentence: the same exit code, its row aligned
    // ("failed" in EXIT), the sentence under the table.
    let run = lab.zerolab(&["run"], &[&mixed]);
    assert_eq!(run.code, 1, "{run:#?}");
    assert_eq!(&row(&run, "invalid")[2..4], ["failed", "8"], "{run:#?}");
    let header = run.stdout.lines().find(|l| l.starts_with("INSTANCE ")).unwrap();
    let code_column = header.find("CODE").unwrap();
    for instance in ["hello", "invalid"] {
        let line = run.stdout.lines().find(|l| l.starts_with(&format!("{instance} "))).unwrap();
        assert!(line.len() > code_column && line.as_bytes()[code_column - 1] == b' ', "aligned: {run:#?}");
    }
    let note = run.stdout.lines().find(|l| l.starts_with("invalid: ")).unwrap_or_else(|| panic!("{run:#?}"));
    assert!(note.len() > 40, "the whole failure is under the table: {run:#?}");
    let run = lab.zerolab(&["run"], &[&mixed, "-o", "json"]);
    assert_eq!(run.code, 1, "{run:#?}");
    let doc = json(&run);
    assert_eq!(doc["success"], false);
    let invalid = doc["instances"].as_array().unwrap().iter().find(|i| i["instance"] == "invalid").unwrap();
    assert_eq!(invalid["return_code"], 8, "{doc}");
    assert_eq!(Some(invalid["exit_state"].as_str().unwrap()), note.strip_prefix("invalid: "), "{doc}");

    // `jobs`: every run with its counts.
    let run = lab.zerolab(&["jobs"], &["-o", "json"]);
    assert_eq!(run.code, 0, "{run:#?}");
    let runs: Vec<(String, u64, u64, String)> = json(&run)["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let text = |key: &str| r[key].as_str().unwrap().to_owned();
            (text("job"), r["done"].as_u64().unwrap(), r["total"].as_u64().unwrap(), text("state"))
        })
        .collect();
    assert_eq!(runs.len(), 3, "{run:#?}");
    assert_eq!(runs[0], ("hi".to_owned(), 2, 2, "ok".to_owned()), "{run:#?}");

    // `graph` of a lab that is up shows each node's state.
    let run = lab.zerolab(&["graph"], &[&hello]);
    assert_eq!(run.code, 0, "{run:#?}");
    assert_eq!(run.stdout.matches("<br/>state: ready\"]").count(), 3, "{run:#?}");
}

#[test]
fn run_help_explains_the_accounting_columns() {
    let dir = tempfile::tempdir().unwrap();
    let help = zerolab_in(dir.path(), &["run", "--help"]);
    assert_eq!(help.code, 0, "{help:#?}");
    for column in ["SYS USER", "L-GETS L-GET-BYTES L-PUTS L-PUT-BYTES", "N-GETS N-GET-BYTES N-PUTS N-PUT-BYTES"] {
        assert!(help.stdout.contains(column), "{column}: {}", help.stdout);
    }
    assert!(help.stdout.contains("their calls count as local"), "TCP channels' calls: {}", help.stdout);
}
