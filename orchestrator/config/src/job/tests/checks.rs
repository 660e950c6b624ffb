//! Each check of a job file as one case: its exact message and location.

use super::{one, Fixture, HEAD, NAME_RULE};
use crate::job::Program;

#[test]
fn reports_reading_problems_at_their_place() {
    let fx = Fixture::new();
    let cases: Vec<(&str, String, &str)> = vec![
        ("empty", String::new(), "1:1: the file is empty; expected a job file starting with `apiVersion: zerolab/v1`"),
        (
            "a cluster file",
            "apiVersion: zerolab/v1\nkind: Cluster\nname: t\nnodes: []\n".into(),
            "2:7: unsupported kind `Cluster`; expected `Job`",
        ),
        (
            "missing kind",
            "apiVersion: zerolab/v1\nname: t\n".into(),
            "1:1: missing field `kind` in the job file; expected `kind: Job`",
        ),
        (
            "missing groups",
            "apiVersion: zerolab/v1\nkind: Job\nname: t\n".into(),
            "1:1: missing field `groups` in the job file; expected a `groups:` list with at least one group",
        ),
        (
            "unknown group field",
            one("    conect: [b]\n"),
            "7:5: unknown field `conect` in groups[0]; did you mean `connect`?",
        ),
        (
            "unknown device",
            one("    devices:\n      stdn: in.txt\n"),
            "8:7: unknown field `stdn` in groups[0].devices; did you mean `stdin`?",
        ),
        (
            "unknown device field",
            one("    devices:\n      stdin: {path: in.txt, sha265: x}\n"),
            "8:29: unknown field `sha265` in groups[0].devices.stdin; did you mean `sha256`?",
        ),
        (
            "args as one string",
            one("    args: --chunk 512\n"),
            "7:11: groups[0].args: invalid type: string \"--chunk 512\"; expected a list of arguments such as \
             [--chunk, \"512\"] (a single string is not split)",
        ),
        (
            "unknown strategy",
            one("    placement: {strategy: spred}\n"),
            "7:27: unknown strategy `spred`; expected one of `spread`, `pack` (did you mean `spread`?)",
        ),
        (
            "missing program",
            format!("{HEAD}  - name: a\n"),
            "5:5: missing field `program` in groups[0]; expected `program:` here",
        ),
    ];
    for (what, text, want) in cases {
        assert_eq!(fx.diagnose(&text), [want], "{what}");
    }
}

#[test]
fn reports_each_group_problem_at_its_place() {
    let fx = Fixture::new();
    let long = "a".repeat(62);
    let cases: Vec<(&str, String, Vec<String>)> = vec![
        (
            "bad job name",
            "apiVersion: zerolab/v1\nkind: Job\nname: Word_Count\ngroups: [{name: a, program: map}]\n".into(),
            vec![format!("3:7: invalid job name `Word_Count`: 'W' is not allowed; {NAME_RULE}")],
        ),
        ("no groups", format!("{HEAD}  []\n"), vec!["5:3: no groups; expected at least one group".into()]),
        (
            "bad group name",
            format!("{HEAD}  - name: Map\n    program: map\n"),
            vec![format!("5:11: invalid group name `Map`: 'M' is not allowed; {NAME_RULE}")],
        ),
        (
            "instance names too long",
            format!("{HEAD}  - name: {long}\n    program: map\n    count: 10\n"),
            vec![format!(
                "5:11: instance name `{long}-10` is 65 characters long; expected at most 63 (shorten the group name)"
            )],
        ),
        (
            "duplicate group",
            format!("{HEAD}  - {{name: a, program: map}}\n  - {{name: a, program: map}}\n"),
            vec!["6:12: duplicate group name `a` (first at line 5); expected unique group names".into()],
        ),
        (
            "duplicate instance",
            format!("{HEAD}  - {{name: a, program: map, count: 2}}\n  - {{name: a-2, program: map}}\n"),
            vec!["6:12: instance name `a-2` of group `a-2` is also made by group `a`; expected unique instance names \
                  (rename one of the groups)"
                .into()],
        ),
        (
            "count 0",
            one("    count: 0\n"),
            vec!["7:12: count is 0; expected at least 1 (omit count for a single instance)".into()],
        ),
        (
            "count too large",
            one("    count: 5000\n"),
            vec!["7:12: count 5000 is too large; expected at most 4096".into()],
        ),
        (
            "memory in MB",
            one("    memory: 64MB\n"),
            vec!["7:13: invalid memory `64MB`: `MB` is not a unit here (units are KiB, MiB and GiB); expected a size \
                  from 1 byte to 4GiB, such as 64MiB, 1GiB or 1048576 (bytes)"
                .into()],
        ),
        (
            "timeout 0",
            one("    timeout: 0s\n"),
            vec![
                "7:14: invalid timeout `0s`: it is zero; expected whole seconds, at least 1, such as 30s, 2m, 1h or 30"
                    .into(),
            ],
        ),
        (
            "bad environment name",
            one("    env: {\"A=B\": x}\n"),
            vec!["7:11: invalid environment variable name `A=B`; expected a non-empty name without `=` or NUL".into()],
        ),
        (
            "NUL in an argument",
            one("    args: [ok, \"a\\0b\"]\n"),
            vec!["7:16: argument 2 contains a NUL byte; expected text without one (the guest gets C strings)".into()],
        ),
        (
            "NUL in an environment value",
            one("    env: {K: \"a\\0b\"}\n"),
            vec!["7:14: environment variable `K` contains a NUL byte; expected text without one (the guest gets C \
                  strings)"
                .into()],
        ),
        (
            "bad selector",
            one("    placement: {nodes: \"=a\"}\n"),
            vec!["7:24: invalid label term `=a`; expected label=value with a non-empty label".into()],
        ),
        (
            "retries too large",
            one("    retries: 11\n"),
            vec!["7:14: retries 11 is too many; expected at most 10".into()],
        ),
    ];
    for (what, text, want) in cases {
        assert_eq!(fx.diagnose(&text), want, "{what}");
    }
}

#[test]
fn checks_programs_on_disk() {
    let fx = Fixture::new();
    let cases: Vec<(&str, String, String)> = vec![
        (
            "missing program",
            format!("{HEAD}  - {{name: a, program: mapp}}\n"),
            format!(
                "5:24: program `mapp` not found at {}; expected the guest binary there (paths are relative to the job \
                 file's directory)",
                fx.shown("mapp")
            ),
        ),
        (
            "a directory",
            format!("{HEAD}  - {{name: a, program: bin}}\n"),
            format!("5:24: program `bin` at {} is not a regular file; expected the guest binary", fx.shown("bin")),
        ),
        (
            "a node path",
            format!("{HEAD}  - {{name: a, program: \"node:/bin/map\"}}\n"),
            "5:24: program `node:/bin/map` is not a local file; expected a local path (relative to the job file's \
             directory) or image:PATH (a path inside the group's image device)"
                .into(),
        ),
        (
            "an object-store path",
            format!("{HEAD}  - {{name: a, program: \"swift://~/apps/map\"}}\n"),
            "5:24: invalid program `swift://~/apps/map`: swift:// is ZeroCloud's object store, which zerolab does not \
             have; expected file://PATH or a local path (relative to the job file's directory)"
                .into(),
        ),
        (
            "an image program without an image",
            format!("{HEAD}  - {{name: a, program: \"image:bin/map\"}}\n"),
            "5:24: program `image:bin/map` is inside an image, but the group has no `image` device; expected an \
             `image` device (the tar image) or a local program path"
                .into(),
        ),
    ];
    for (what, text, want) in cases {
        assert_eq!(fx.diagnose(&text), [want], "{what}");
    }
    let image = format!("{HEAD}  - {{name: a, program: \"image:bin/map\", devices: {{image: in.txt}}}}\n");
    let job = fx.job(&image).expect("image program with an image");
    assert_eq!(job.groups()[0].program, Program::Image("bin/map".to_owned()));
    let absolute = format!("{HEAD}  - {{name: a, program: \"file://{}\"}}\n", fx.shown("map"));
    assert_eq!(fx.job(&absolute).expect("absolute").groups()[0].program, Program::Local(fx.path("map")));
}

#[test]
fn checks_devices_by_direction() {
    let fx = Fixture::new();
    let sha = "ab".repeat(32);
    let cases: Vec<(&str, String, String)> = vec![
        (
            "missing input",
            one("    devices: {stdin: nope.txt}\n"),
            format!(
                "7:22: stdin input `nope.txt` not found at {}; expected an existing file (paths are relative to the job \
                 file's directory)",
                fx.shown("nope.txt")
            ),
        ),
        (
            "output in a missing directory",
            one("    devices: {stdout: nodir/out.txt}\n"),
            format!(
                "7:23: stdout output `nodir/out.txt`: directory {} does not exist; expected an existing directory \
                 (make it, or fix the path; paths are relative to the job file's directory)",
                fx.shown("nodir")
            ),
        ),
        (
            "output to a URL",
            one("    devices: {stdout: \"https://example.org/out\"}\n"),
            "7:23: stdout is an output and cannot go to a URL (`https://example.org/out`); expected a local path or \
             node:/ABS/PATH (zerolab writes outputs, it does not upload them)"
                .into(),
        ),
        (
            "checksum on an output",
            one(&format!("    devices:\n      output: {{path: out.txt, sha256: {sha}}}\n")),
            "8:31: sha256 on output output; expected a checksum only on inputs (stdin, input, image)".into(),
        ),
        (
            "bad checksum",
            one("    devices:\n      input: {path: \"https://example.org/in\", sha256: abc}\n"),
            "8:55: invalid sha256 `abc`; expected 64 hex digits (sha256sum's output)".into(),
        ),
        (
            "relative node path",
            one("    devices: {input: \"node:data/in\"}\n"),
            "7:22: invalid input path `node:data/in`: a node path must be absolute; expected node:/ABS/PATH".into(),
        ),
        (
            "unsupported scheme",
            one("    devices: {input: \"ftp://host/in\"}\n"),
            "7:22: invalid input path `ftp://host/in`: `ftp://` is not supported; expected a local path, file://PATH, \
             node:/ABS/PATH or an http:// or https:// URL"
                .into(),
        ),
        (
            "wildcard on the node",
            one("    devices: {stdin: \"node:/data/part-*\"}\n"),
            "7:22: wildcard in stdin `node:/data/part-*`, which is not a local path; expected wildcards only in local \
             input paths (zerolab lists the matches on this machine)"
                .into(),
        ),
        (
            "wildcard in a directory",
            one("    devices: {stdin: \"d*/part-1\"}\n"),
            "7:22: wildcard in a directory of `d*/part-1`; expected wildcards only in the file name (data/part-*)"
                .into(),
        ),
        (
            "wildcard matching nothing",
            one("    devices: {stdin: \"data/none-*\"}\n"),
            format!(
                "7:22: `data/none-*` matches no file in {}; expected at least one file to make an instance of",
                fx.shown("data")
            ),
        ),
        (
            "count against matches",
            one("    count: 4\n    devices: {stdin: \"data/part-*\"}\n"),
            "7:12: count 4 does not match the 3 files `data/part-*` matches; expected count: 3 or no count (a \
             wildcard input makes one instance per file)"
                .into(),
        ),
        (
            "two wildcards",
            one("    devices: {stdin: \"data/part-*\", input: \"data/part-?\"}\n"),
            "7:44: a second wildcard input in one group (the first is stdin); expected at most one wildcard input per \
             group"
                .into(),
        ),
        (
            "one output for several instances",
            one("    count: 2\n    devices: {stdout: out.txt}\n"),
            "8:23: stdout `out.txt` would be written by all 2 instances; expected a `*` where each instance's name \
             goes (out/a-*.txt)"
                .into(),
        ),
    ];
    for (what, text, want) in cases {
        assert_eq!(fx.diagnose(&text), [want], "{what}");
    }
    let clash = format!(
        "{HEAD}  - {{name: a, program: map, devices: {{output: out.txt}}}}\n  - {{name: b, program: map, devices: \
         {{stderr: out.txt}}}}\n"
    );
    assert_eq!(
        fx.diagnose(&clash),
        [format!(
            "6:47: output {} is also written by instance `a`; expected each output file written by one instance",
            fx.shown("out.txt")
        )]
    );
}

#[test]
fn checks_the_connect_graph() {
    let fx = Fixture::new();
    let group = |name: &str, connect: &str| format!("  - {{name: {name}, program: map, connect: [{connect}]}}\n");
    let cases: Vec<(&str, String, Vec<&str>)> = vec![
        (
            "unknown group",
            format!("{HEAD}{}{}", group("map", "reduse"), group("reduce", "")),
            vec!["5:41: connect names unknown group `reduse`; expected one of `map`, `reduce` (did you mean `reduce`?)"],
        ),
        (
            "itself",
            format!("{HEAD}{}", group("a", "a")),
            vec!["5:39: group `a` connects to itself; expected connections to other groups (a cycle can only deadlock)"],
        ),
        (
            "twice",
            format!("{HEAD}{}{}", group("a", "b, b"), group("b", "")),
            vec!["5:42: `b` is connected to twice (first at line 5); expected each group once in connect"],
        ),
        (
            "a cycle",
            format!("{HEAD}{}{}{}", group("a", "b"), group("b", "c"), group("c", "a")),
            vec!["5:39: connect cycle a -> b -> c -> a: one-way blocking channels in a cycle can only deadlock; \
                  expected connections that flow one way (a pipeline or a tree)"],
        ),
        (
            "two cycles, each once",
            format!("{HEAD}{}{}{}{}", group("a", "b"), group("b", "a"), group("c", "d"), group("d", "c")),
            vec![
                "5:39: connect cycle a -> b -> a: one-way blocking channels in a cycle can only deadlock; expected \
                 connections that flow one way (a pipeline or a tree)",
                "7:39: connect cycle c -> d -> c: one-way blocking channels in a cycle can only deadlock; expected \
                 connections that flow one way (a pipeline or a tree)",
            ],
        ),
        (
            "retries on a writer and a reader",
            format!(
                "{HEAD}  - {{name: a, program: map, connect: [b], retries: 2}}\n  - {{name: b, program: map, retries: 1}}\n"
            ),
            vec![
                "5:52: retries need a group without channels, and `a` connects to `b`; expected retries: 0 or no \
                 channels (a re-placed instance cannot replay a channel's data)",
                "6:38: retries need a group without channels, and `a` connects to `b`; expected retries: 0 or no \
                 channels (a re-placed instance cannot replay a channel's data)",
            ],
        ),
    ];
    for (what, text, want) in cases {
        assert_eq!(fx.diagnose(&text), want, "{what}");
    }
    let diamond = format!("{HEAD}{}{}{}{}", group("a", "b, c"), group("b", "d"), group("c", "d"), group("d", ""));
    assert_eq!(fx.diagnose(&diamond), ["ok"], "a diamond is no cycle");
    let retried = one("    retries: 3\n");
    assert_eq!(fx.job(&retried).expect("retries without channels").groups()[0].retries, 3);
}

#[test]
fn refuses_jobs_over_the_limits_without_building_them() {
    let fx = Fixture::new();
    let big = |name: &str, connect: &str| format!("  - {{name: {name}, program: map, count: 4096{connect}}}\n");
    let fan_in = format!(
        "{HEAD}{}{}{}{}",
        big("a", ", connect: [c]"),
        big("b", ", connect: [c]"),
        big("d", ", connect: [c]"),
        big("c", "")
    );
    assert_eq!(
        fx.diagnose(&fan_in),
        [
            "4:1: the job would have 50331648 channels; expected at most 1048576",
            "8:5: each instance of group `c` would have 12291 channels; expected at most 10914 (ZeroVM's limit per \
             guest: lower the counts of the groups it connects with)",
        ]
    );
    let groups: String = (0..17).map(|i| big(&format!("g{i}"), "")).collect();
    assert_eq!(fx.diagnose(&format!("{HEAD}{groups}")), ["4:1: the job has 69632 instances; expected at most 65536"]);
}

#[test]
fn reports_every_problem_in_file_order() {
    let fx = Fixture::new();
    let text = "\
apiVersion: zerolab/v1
kind: Job
name: Bad
groups:
  - name: map
    program: mapp
    count: 0
    connect: [reduse]
  - name: reduce
    program: reduce
    memory: 5GiB
";
    let got = fx.diagnose(text);
    let want = [
        format!("3:7: invalid job name `Bad`: 'B' is not allowed; {NAME_RULE}"),
        format!(
            "6:14: program `mapp` not found at {}; expected the guest binary there (paths are relative to the job \
             file's directory)",
            fx.shown("mapp")
        ),
        "7:12: count is 0; expected at least 1 (omit count for a single instance)".to_owned(),
        "8:15: connect names unknown group `reduse`; expected one of `map`, `reduce` (did you mean `reduce`?)"
            .to_owned(),
        "11:13: invalid memory `5GiB`: it is over 4GiB; expected a size from 1 byte to 4GiB, such as 64MiB, 1GiB or \
         1048576 (bytes)"
            .to_owned(),
    ];
    assert_eq!(got, want);
}
