//! The README's examples as tests, on a real 3-node `netns` lab: `examples/wordcount`
//! (three maps and a reduce, channels across the nodes) equals `tr -s ' ' '\n' | sort |
//! uniq -c` on the same input, `examples/wordcount-python` (the same job in CPython
//! inside the jail) gives the same result, and `examples/pipeline` streams 1 GiB through producer,
//! filter and sink, each on its own node, to the checksum the stream defines. Needs
//! root, gcc and a built `zerolab-agent` (as `up`).

use std::fs;
use std::path::Path;
use std::process::Command;

use crate::harness::{prerequisites, LabHarness, Subnet};

const EXAMPLES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples");

#[test]
fn wordcount_and_pipeline_run_across_the_nodes_of_a_lab() {
    let Some(agent) = prerequisites("the examples") else {
        return;
    };
    let built = Command::new(Path::new(EXAMPLES).join("build-guests")).output().unwrap();
    assert!(built.status.success(), "{}", String::from_utf8_lossy(&built.stderr));
    let lab = LabHarness::new(Subnet::Examples, agent);
    assert_eq!(lab.zerolab(&["up"], &[]).code, 0);

    let wordcount = format!("{EXAMPLES}/wordcount/job.yaml");
    let run = lab.zerolab(&["run"], &[&wordcount]);
    assert_eq!(run.code, 0, "{run:#?}");
    let nodes: std::collections::BTreeSet<&str> =
        run.stdout.lines().filter(|l| l.starts_with("map-")).filter_map(|l| l.split_whitespace().nth(1)).collect();
    assert_eq!(nodes.len(), 3, "the maps are spread over the three nodes: {run:#?}");
    let counts = lab.zerolab(&["logs"], &["wordcount", "reduce"]);
    let mut input = Vec::new();
    let mut parts: Vec<_> =
        fs::read_dir(format!("{EXAMPLES}/wordcount/data")).unwrap().flatten().map(|e| e.path()).collect();
    parts.sort();
    for part in parts {
        input.extend(fs::read(part).unwrap());
    }
    let input_file = lab.path("input.txt");
    fs::write(&input_file, &input).unwrap();
    let expected = Command::new("sh")
        .arg("-c")
        .arg(format!("LC_ALL=C tr -s ' ' '\\n' < {} | LC_ALL=C sort | uniq -c", input_file.display()))
        .output()
        .unwrap();
    assert!(!expected.stdout.is_empty());
    assert_eq!(counts.stdout, String::from_utf8(expected.stdout).unwrap());

    // The same job in Python (CPython from python.tar, an `image:` program whose
    // image the agent mounts as the guest's /): the same result as the C wordcount.
    let python = format!("{EXAMPLES}/wordcount-python/job.yaml");
    let run = lab.zerolab(&["run"], &[&python]);
    assert_eq!(run.code, 0, "{run:#?}");
    let nodes: std::collections::BTreeSet<&str> =
        run.stdout.lines().filter(|l| l.starts_with("map-")).filter_map(|l| l.split_whitespace().nth(1)).collect();
    assert_eq!(nodes.len(), 3, "the Python maps are spread over the three nodes too: {run:#?}");
    assert_eq!(lab.zerolab(&["logs"], &["wordcount-python", "reduce"]).stdout, counts.stdout);

    let pipeline = format!("{EXAMPLES}/pipeline/job.yaml");
    let run = lab.zerolab(&["run"], &[&pipeline]);
    assert_eq!(run.code, 0, "{run:#?}");
    let node = |instance: &str| {
        run.stdout.lines().find(|l| l.starts_with(&format!("{instance} "))).and_then(|l| l.split_whitespace().nth(1))
    };
    let placed = [node("producer"), node("filter"), node("sink")];
    assert_eq!(placed, [Some("node-1"), Some("node-2"), Some("node-3")], "{run:#?}");
    let sink = lab.zerolab(&["logs"], &["pipeline", "sink"]);
    assert_eq!(
        sink.stdout, "1073741824 0c7bd719aec7e49e\n",
        "stream.h's checksum of the 1 GiB stream after the filter's XOR"
    );
}
