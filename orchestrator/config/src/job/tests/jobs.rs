//! Valid jobs: the expansion into instances and channels, ZeroCloud's JSON, placement
//! on a cluster, and the examples.

use std::path::{Path, PathBuf};

use super::{Fixture, HEAD};
use crate::cluster::testing::REGISTRY;
use crate::cluster::Cluster;
use crate::job::*;

const WORDCOUNT: &str = "\
apiVersion: zerolab/v1
kind: Job
name: wordcount
groups:
  - name: map
    program: map
    args: [--chunk, 512]
    env: {LANG: C, DEPTH: 2}
    memory: 64MiB
    timeout: 2m
    devices:
      stdin: data/part-*
      stderr: node:/var/log/*.err
      output: out/*.counts
    connect: [reduce]
  - name: reduce
    program: reduce
    memory: 1048576
    devices:
      input: {path: \"https://example.org/words\", sha256: ABABABABABABABABABABABABABABABABABABABABABABABABABABABABABABABAB}
";

#[test]
fn expands_groups_into_instances_and_channels() {
    let fx = Fixture::new();
    let job = fx.job(WORDCOUNT).expect("valid");
    assert_eq!((job.name(), job.format()), ("wordcount", Format::Yaml));
    assert_eq!(job.summary(), "job wordcount: 2 groups, 4 instances, 3 channels");

    let map = job.group("map").unwrap();
    assert_eq!((map.count, map.memory, map.timeout), (3, 64 << 20, 120));
    assert_eq!(map.args, ["--chunk", "512"]);
    assert_eq!(map.env.get("DEPTH").map(String::as_str), Some("2"));
    let reduce = job.group("reduce").unwrap();
    assert_eq!((reduce.memory, reduce.timeout), (1 << 20, zerolab_agent_api::DEFAULT_TIMEOUT_SECS));
    assert_eq!(job.group("map").unwrap().memory, 64 << 20);
    assert_eq!(reduce.devices[0].sha256.map(|s| s.to_string()), Some("ab".repeat(32)));
    assert_eq!(reduce.placement, PlacementRule { nodes: None, strategy: Strategy::Spread });

    let names: Vec<&str> = job.instances().iter().map(|i| i.name.as_str()).collect();
    assert_eq!(names, ["map-1", "map-2", "map-3", "reduce"]);
    let map_2 = job.instance("map-2").unwrap();
    assert_eq!((map_2.group, map_2.number), (0, 2));
    let files: Vec<String> = map_2.devices.iter().map(|d| format!("{}={}", d.name, d.file)).collect();
    assert_eq!(
        files,
        [
            format!("stdin={}", fx.shown("data/part-2")),
            "stderr=node:/var/log/map-2.err".to_owned(),
            format!("output={}", fx.shown("out/map-2.counts")),
        ]
    );

    let edges: Vec<(&str, &str)> = job.edges().iter().map(|e| (names[e.from], names[e.to])).collect();
    assert_eq!(edges, [("map-1", "reduce"), ("map-2", "reduce"), ("map-3", "reduce")]);
    let ends = |name: &str| -> Vec<(String, Direction, &str)> {
        let instance = job.instance(name).unwrap();
        instance.channels.iter().map(|c| (c.alias.clone(), c.direction, names[c.peer])).collect()
    };
    assert_eq!(ends("map-3"), [("/dev/out/reduce".to_owned(), Direction::Out, "reduce")]);
    assert_eq!(
        ends("reduce"),
        [
            ("/dev/in/map-1".to_owned(), Direction::In, "map-1"),
            ("/dev/in/map-2".to_owned(), Direction::In, "map-2"),
            ("/dev/in/map-3".to_owned(), Direction::In, "map-3"),
        ]
    );
    for (index, end) in job.instance("reduce").unwrap().channels.iter().enumerate() {
        assert_eq!(job.edges()[end.edge], Edge { from: index, to: 3 });
    }
}

#[test]
fn names_a_group_of_one_by_its_bare_name() {
    let fx = Fixture::new();
    let text = format!(
        "{HEAD}  - {{name: a, program: map, count: 1, connect: [b]}}\n  - {{name: b, program: map, count: 2}}\n"
    );
    let job = fx.job(&text).unwrap();
    let names: Vec<&str> = job.instances().iter().map(|i| i.name.as_str()).collect();
    assert_eq!(names, ["a", "b-1", "b-2"]);
    let aliases: Vec<&str> = job.instances()[0].channels.iter().map(|c| c.alias.as_str()).collect();
    assert_eq!(aliases, ["/dev/out/b-1", "/dev/out/b-2"]);
}

#[test]
fn warm_is_off_unless_a_group_asks_for_it() {
    let fx = Fixture::new();
    let text = format!("{HEAD}  - {{name: a, program: map, warm: true}}\n  - {{name: b, program: map}}\n");
    let job = fx.job(&text).unwrap();
    let warm: Vec<bool> = job.groups().iter().map(|g| g.warm).collect();
    assert_eq!(warm, [true, false]);
}

/// The reference's example (zerovm-reference.md, section 5) with `file://` paths for
/// its object-store paths, and 4 parts for its 4 instances.
const REFERENCE: &str = r#"[{"name": "map", "count": 4,
  "exec": {"path": "file://wordcount-map", "args": "--chunk 512", "env": {"K": "V"}},
  "devices": [{"name": "stdin", "path": "file://data/part-*"}],
  "connect": ["reduce"]},
 {"name": "reduce",
  "exec": {"path": "file://wordcount-reduce"},
  "devices": [{"name": "stdout", "path": "file://out/result.txt"}]}]
"#;

#[test]
fn accepts_the_reference_zerocloud_example() {
    let fx = Fixture::new();
    for file in ["wordcount-map", "wordcount-reduce", "data/part-4"] {
        std::fs::write(fx.path(file), "x").unwrap();
    }
    let job = Job::from_str(REFERENCE, &fx.shown("wordcount.json")).expect("valid");
    assert_eq!((job.name(), job.format()), ("wordcount", Format::ZeroCloud));
    assert_eq!(job.summary(), "job wordcount: 2 groups, 5 instances, 4 channels");
    let map = job.group("map").unwrap();
    assert_eq!(map.program, Program::Local(fx.path("wordcount-map")));
    assert_eq!(map.args, ["--chunk", "512"]);
    assert_eq!(map.env.get("K").map(String::as_str), Some("V"));
    let reduce = job.instance("reduce").unwrap();
    assert_eq!(reduce.devices[0].file, FileRef::Local(fx.path("out/result.txt")));
    let aliases: Vec<&str> = reduce.channels.iter().map(|c| c.alias.as_str()).collect();
    assert_eq!(aliases, ["/dev/in/map-1", "/dev/in/map-2", "/dev/in/map-3", "/dev/in/map-4"]);
    assert_eq!(job.instance("map-4").unwrap().devices[0].file, FileRef::Local(fx.path("data/part-4")));
}

#[test]
fn runs_zerocloud_image_programs_from_the_named_device() {
    let fx = Fixture::new();
    std::fs::write(fx.path("wordcount.tar"), "x").unwrap();
    let text = r#"[{"name": "map", "exec": {"path": "file://wordcount:bin/map"},
  "devices": [{"name": "wordcount", "path": "file://wordcount.tar"}, {"name": "stdin", "path": "in.txt"}]},
 {"name": "sum", "exec": {"path": "file://tools:sum"}, "file_list": [{"device": "tools", "path": "wordcount.tar"}]}]"#;
    let job = Job::from_str(text, &fx.shown("job.json")).expect("valid");
    let map = job.group("map").unwrap();
    assert_eq!(map.program, Program::Image("bin/map".into()));
    let devices: Vec<String> = map.devices.iter().map(|d| format!("{}={}", d.name, d.file)).collect();
    assert_eq!(devices, [format!("image={}", fx.shown("wordcount.tar")), format!("stdin={}", fx.shown("in.txt"))]);
    assert_eq!(job.group("sum").unwrap().program, Program::Image("sum".into()));
    assert_eq!(job.group("sum").unwrap().devices[0].name, DeviceName::Image);
}

#[test]
fn reads_the_legacy_spelling_and_paths_without_a_scheme() {
    let fx = Fixture::new();
    let text = r#"[{"name": "map", "exec": {"path": "map"}, "file_list": [{"device": "stdin", "path": "in.txt"}],
  "connect": ["reduce"]}, {"name": "reduce", "exec": {"path": "reduce"}, "file_list": [{"device": "stderr"}]}]"#;
    let job = Job::from_str(text, &fx.shown("job.json")).expect("valid");
    assert_eq!(job.instance("map").unwrap().devices[0].file, FileRef::Local(fx.path("in.txt")));
    assert!(job.instance("reduce").unwrap().devices.is_empty(), "stderr without a path is collected");
}

#[test]
fn reports_zerocloud_problems_at_their_place() {
    let fx = Fixture::new();
    let diagnose = |text: &str| -> Vec<String> {
        match Job::from_str(text, "job.json") {
            Ok(_) => vec!["ok".to_owned()],
            Err(diagnostics) => diagnostics.iter().map(|d| format!("{}: {}", d.location, d.problem)).collect(),
        }
    };
    let map = format!("\"exec\": {{\"path\": \"file://{}\"}}", fx.shown("map"));
    let cases: Vec<(&str, String, Vec<&str>)> = vec![
        (
            "malformed",
            "[{\"name\": \"map\",\n  }]".into(),
            vec!["2:3: malformed JSON: trailing comma; expected a ZeroCloud job description (a JSON list of groups)"],
        ),
        ("empty list", "[]".into(), vec!["1:1: no groups; expected at least one group"]),
        (
            "unknown field",
            format!("[{{\"name\": \"map\", {map},\n  \"replicate\": 3}}]"),
            vec![
                "2:3: unknown field `replicate` in [0]; expected one of `name`, `exec`, `count`, `devices`, \
                  `file_list`, `connect`",
            ],
        ),
        (
            "unknown device",
            format!("[{{\"name\": \"map\", {map},\n  \"devices\": [{{\"name\": \"stdn\", \"path\": \"x\"}}]}}]"),
            vec![
                "2:24: unknown device `stdn`; expected one of `stdin`, `stdout`, `stderr`, `input`, `output`, \
                  `image` (did you mean `stdin`?)",
            ],
        ),
        (
            "duplicate device",
            format!(
                "[{{\"name\": \"map\", {map},\n  \"devices\": [{{\"name\": \"stdout\"}}, {{\"name\": \"stdout\"}}]}}]"
            ),
            vec!["2:44: duplicate device `stdout` (first at line 2); expected each device once"],
        ),
        (
            "both lists",
            format!("[{{\"name\": \"map\", {map},\n  \"devices\": [], \"file_list\": []}}]"),
            vec![
                "2:18: both `devices` and `file_list` are given; expected one of them (`file_list` is the legacy \
                  spelling)",
            ],
        ),
        (
            "input without a path",
            format!("[{{\"name\": \"map\", {map},\n  \"devices\": [{{\"name\": \"stdin\"}}]}}]"),
            vec![
                "2:15: device stdin has no path; expected a path (only stdout and stderr may omit it: zerolab then \
                  collects them)",
            ],
        ),
        (
            "object store",
            "[{\"name\": \"map\",\n  \"exec\": {\"path\": \"swift://~/apps/map\"}}]".into(),
            vec![
                "2:20: invalid program `swift://~/apps/map`: swift:// is ZeroCloud's object store, which zerolab does \
                  not have; expected file://PATH or a local path (relative to the job file's directory)",
            ],
        ),
        (
            "system image",
            "[{\"name\": \"map\",\n  \"exec\": {\"path\": \"file://python:bin/python\"}}]".into(),
            vec![
                "2:20: program `file://python:bin/python` is PATH inside ZeroCloud image `python`, which is not a \
                  device of this group; expected a device {\"name\": \"python\", \"path\": \"file://python.tar\"} \
                  (ZeroCloud's system images do not exist here)",
            ],
        ),
        (
            "unknown connect",
            format!("[{{\"name\": \"map\", {map},\n  \"connect\": [\"reduce\"]}}]"),
            vec!["2:15: connect names unknown group `reduce`; expected one of `map`"],
        ),
    ];
    for (what, text, want) in cases {
        assert_eq!(diagnose(&text), want, "{what}");
    }
}

fn lab(nodes: &str) -> Cluster {
    let text = format!("apiVersion: zerolab/v1\nkind: Cluster\nname: lab\nnodes:\n{nodes}");
    Cluster::from_str(&text, "lab.yaml", &REGISTRY).expect("valid cluster")
}

/// Each instance's node, as `instance@node`.
fn placed(job: &Job, placement: &Placement) -> Vec<String> {
    placement.iter().map(|(i, node)| format!("{}@{node}", job.instances()[i].name)).collect()
}

#[test]
fn spreads_round_robin_and_packs_up_to_capacity() {
    let fx = Fixture::new();
    let job = fx.job(&format!(
        "{HEAD}  - {{name: map, program: map, count: 3, connect: [reduce]}}\n  - {{name: reduce, program: reduce}}\n"
    ));
    let job = job.unwrap();
    let three = lab("  - {name: node, count: 3}\n");
    let spread = job.check_placement(&three).unwrap();
    assert_eq!(placed(&job, &spread), ["map-1@node-1", "map-2@node-2", "map-3@node-3", "reduce@node-1"]);
    assert_eq!(spread.nodes(), ["node-1", "node-2", "node-3"]);
    assert_eq!(spread.instances_on("node-1"), [0, 3]);
    let local: Vec<bool> = job.edges().iter().map(|edge| spread.is_local(edge)).collect();
    assert_eq!(local, [true, false, false]);

    let packed = fx.job(&format!(
        "{HEAD}  - {{name: map, program: map, count: 3, placement: {{strategy: pack}}}}\n  - {{name: reduce, program: \
         reduce, placement: {{strategy: pack}}}}\n"
    ));
    let packed = packed.unwrap();
    let placement = packed.check_placement_with(&three, 2).unwrap();
    assert_eq!(placed(&packed, &placement), ["map-1@node-1", "map-2@node-1", "map-3@node-2", "reduce@node-2"]);
}

#[test]
fn spreads_a_pipeline_over_different_nodes() {
    let fx = Fixture::new();
    let text = std::fs::read_to_string(example("pipeline/job.yaml")).unwrap();
    for program in ["producer", "filter", "sink"] {
        std::fs::write(fx.path(program), "x").unwrap();
    }
    let job = fx.job(&text).expect("valid");
    // The example's provider is the orchestrator's; this crate's tests have their own.
    let text = std::fs::read_to_string(example("netns-3.yaml")).unwrap().replace("provider: netns", "provider: local");
    let cluster = Cluster::from_str(&text, "netns-3.yaml", &REGISTRY).unwrap();
    let placement = job.check_placement(&cluster).unwrap();
    assert_eq!(placed(&job, &placement), ["producer@node-1", "filter@node-2", "sink@node-3"]);
    assert!(job.edges().iter().all(|edge| !placement.is_local(edge)), "both channels cross nodes");
}

#[test]
fn reports_groups_that_cannot_be_placed() {
    let fx = Fixture::new();
    let text = format!(
        "{HEAD}  - name: map\n    program: map\n    count: 3\n    placement: {{nodes: \"zone=b\"}}\n  - name: reduce\n    \
         program: reduce\n    count: 7\n    placement: {{nodes: \"edge, node-1\", strategy: pack}}\n"
    );
    let job = fx.job(&text).unwrap();
    let cluster = lab("  - {name: node, count: 2, labels: {zone: a}}\n  - {name: edge}\n");
    let err = job.check_placement_with(&cluster, 3).unwrap_err();
    let lines: Vec<String> = err.iter().map(|d| format!("{}: {}", d.location, d.problem)).collect();
    assert_eq!(
        lines,
        [
            "8:24: group `map`: node selector `zone=b` matches no node; expected names or patterns over the lab's \
             nodes (`node-1`, `node-2`, `edge`) or label=value with one of its labels (`zone=a`)",
            "9:5: group `reduce` has 7 instances to place, but its nodes (node-1, edge) have room for 6 more; expected \
             at most 3 guests per node (select more nodes or lower the count)",
        ]
    );
}

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples").join(name)
}

#[test]
fn the_examples_are_valid() {
    let fx = Fixture::new();
    std::fs::create_dir_all(fx.path("wordcount/data")).unwrap();
    for part in ["part-1.txt", "part-2.txt", "part-3.txt"] {
        std::fs::copy(example("wordcount/data").join(part), fx.path("wordcount/data").join(part)).unwrap();
    }
    for program in ["wordcount/map", "wordcount/reduce", "producer", "filter", "sink"] {
        std::fs::write(fx.path(program), "x").unwrap();
    }
    let cases = [
        ("wordcount/job.yaml", "job wordcount: 2 groups, 4 instances, 3 channels"),
        ("wordcount/job.json", "job wordcount: 2 groups, 4 instances, 3 channels"),
        ("pipeline/job.yaml", "job pipeline: 3 groups, 3 instances, 2 channels"),
    ];
    for (name, summary) in cases {
        let text = std::fs::read_to_string(example(name)).unwrap();
        let file = if name.starts_with("wordcount") { fx.path(name) } else { fx.path("job.yaml") };
        let job = Job::from_str(&text, &file.display().to_string()).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(job.summary(), summary, "{name}");
    }
}
