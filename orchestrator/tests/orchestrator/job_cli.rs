//! `zerolab validate` on job files, run for real: the examples (copied into a temp dir
//! beside dummy programs, so nothing is built), broken jobs in YAML and JSON, and
//! placement on a cluster with `--cluster`; output and exit codes (0 valid, 1 invalid
//! or unplaceable, 2 usage error).

use std::path::{Path, PathBuf};

use crate::harness::{zerolab_in, Run};

/// A temp dir holding the examples' job files and inputs, dummy programs, and whatever
/// a test writes; `zerolab` runs in it, so diagnostics name files as written.
struct Harness {
    dir: tempfile::TempDir,
}

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples").join(name)
}

impl Harness {
    fn new() -> Harness {
        let harness = Harness { dir: tempfile::tempdir().expect("temp dir") };
        for file in [
            "wordcount/job.yaml",
            "wordcount/job.json",
            "wordcount/data/part-1.txt",
            "wordcount/data/part-2.txt",
            "wordcount/data/part-3.txt",
            "pipeline/job.yaml",
            "netns-3.yaml",
        ] {
            harness.write(file, &std::fs::read_to_string(example(file)).expect("read example"));
        }
        for program in ["wordcount/map", "wordcount/reduce", "pipeline/producer", "pipeline/filter", "pipeline/sink"] {
            harness.write(program, "a guest");
        }
        harness
    }

    fn write(&self, name: &str, text: &str) {
        let path = self.dir.path().join(name);
        std::fs::create_dir_all(path.parent().expect("a parent")).expect("make dir");
        std::fs::write(path, text).expect("write file");
    }

    fn zerolab(&self, args: &[&str]) -> Run {
        zerolab_in(self.dir.path(), args)
    }
}

#[test]
fn validates_the_example_jobs_with_a_summary() {
    let harness = Harness::new();
    let cases = [
        ("wordcount/job.yaml", "job wordcount: 2 groups, 4 instances, 3 channels"),
        ("wordcount/job.json", "job wordcount: 2 groups, 4 instances, 3 channels"),
        ("pipeline/job.yaml", "job pipeline: 3 groups, 3 instances, 2 channels"),
    ];
    for (file, summary) in cases {
        harness.zerolab(&["validate", file]).expect(0, &format!("{file}: valid: {summary}\n"), "");
    }
}

#[test]
fn places_a_job_on_a_cluster() {
    let harness = Harness::new();
    harness.zerolab(&["validate", "wordcount/job.yaml", "--cluster", "netns-3.yaml"]).expect(
        0,
        "wordcount/job.yaml: valid: job wordcount: 2 groups, 4 instances, 3 channels, placed on lab netns-3: \
         node-1 (2), node-2 (1), node-3 (1)\n",
        "",
    );
    harness.zerolab(&["validate", "pipeline/job.yaml", "--cluster", "netns-3.yaml"]).expect(
        0,
        "pipeline/job.yaml: valid: job pipeline: 3 groups, 3 instances, 2 channels, placed on lab netns-3: \
         node-1 (1), node-2 (1), node-3 (1)\n",
        "",
    );
}

#[test]
fn reports_a_group_that_cannot_be_placed() {
    let harness = Harness::new();
    let job = "\
apiVersion: zerolab/v1
kind: Job
name: wide
groups:
  - name: map
    program: wordcount/map
    count: 3
    placement: {nodes: \"node-1, edge\"}
";
    harness.write("wide.yaml", job);
    harness.zerolab(&["validate", "wide.yaml", "--cluster", "netns-3.yaml"]).expect(
        1,
        "",
        "wide.yaml:8:24: group `map`: no node named `edge`; expected one of `node-1`, `node-2`, `node-3`\n",
    );
}

#[test]
fn reports_every_problem_of_a_job_file_located() {
    let harness = Harness::new();
    let job = "\
apiVersion: zerolab/v1
kind: Job
name: broken
groups:
  - name: map
    program: wordcount/mapp
    count: 2
    devices:
      stdout: out.txt
    connect: [reduse]
  - name: reduce
    program: wordcount/reduce
    connect: [map]
";
    harness.write("broken.yaml", job);
    let mapp = harness.dir.path().join("wordcount/mapp");
    let want = format!(
        "broken.yaml:6:14: program `wordcount/mapp` not found at {}; expected the guest binary there (paths are \
         relative to the job file's directory)\n\
         broken.yaml:9:15: stdout `out.txt` would be written by all 2 instances; expected a `*` where each instance's \
         name goes (out/map-*.txt)\n\
         broken.yaml:10:15: connect names unknown group `reduse`; expected one of `map`, `reduce` (did you mean \
         `reduce`?)\n",
        mapp.display()
    );
    harness.zerolab(&["validate", "broken.yaml"]).expect(1, "", &want);
}

#[test]
fn reports_a_cycle() {
    let harness = Harness::new();
    let job = "\
apiVersion: zerolab/v1
kind: Job
name: loop
groups:
  - {name: a, program: wordcount/map, connect: [b]}
  - {name: b, program: wordcount/map, connect: [a]}
";
    harness.write("loop.yaml", job);
    harness.zerolab(&["validate", "loop.yaml"]).expect(
        1,
        "",
        "loop.yaml:5:49: connect cycle a -> b -> a: one-way blocking channels in a cycle can only deadlock; expected \
         connections that flow one way (a pipeline or a tree)\n",
    );
}

#[test]
fn locates_zerocloud_json_errors() {
    let harness = Harness::new();
    harness.write("syntax.json", "[{\"name\": \"map\"\n  \"exec\": {}}]\n");
    harness.zerolab(&["validate", "syntax.json"]).expect(
        1,
        "",
        "syntax.json:2:3: malformed JSON: expected `,` or `}`; expected a ZeroCloud job description (a JSON list of \
         groups)\n",
    );
    harness.write("swift.json", "[{\"name\": \"map\",\n  \"exec\": {\"path\": \"swift://~/apps/map\"}}]\n");
    harness.zerolab(&["validate", "swift.json"]).expect(
        1,
        "",
        "swift.json:2:20: invalid program `swift://~/apps/map`: swift:// is ZeroCloud's object store, which zerolab \
         does not have; expected file://PATH or a local path (relative to the job file's directory)\n",
    );
}

#[test]
fn cluster_option_needs_a_job_file() {
    let harness = Harness::new();
    harness.zerolab(&["validate", "netns-3.yaml", "--cluster", "netns-3.yaml"]).expect(
        2,
        "",
        "zerolab: --cluster goes with a job file, and netns-3.yaml is not one\n",
    );
    harness.zerolab(&["validate", "wordcount/job.yaml", "--cluster", "missing.yaml"]).expect(
        2,
        "",
        "zerolab: cannot read missing.yaml: No such file or directory (os error 2)\n",
    );
}
