//! `zerolab run`, `jobs`, `logs` and `cancel` for real on a 3-node `netns` lab: guests
//! built with `zvm-gcc`, placed over the nodes, their programs and inputs uploaded once
//! per node, outputs collected; a failing guest stops the others at once; a node whose
//! agent dies is reported with its node; bad jobs are refused before anything runs.
//! Needs root, gcc and a built `zerolab-agent` (as `up`).

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::harness::{guest, job, prerequisites, row, run_in_background, zvm_gcc, LabHarness, Subnet};

#[test]
fn run_places_uploads_collects_fails_fast_and_reports_lost_nodes() {
    let Some(agent) = prerequisites("zerolab run") else {
        return;
    };
    let lab = LabHarness::new(Subnet::Run, agent);
    let examples = concat!(env!("CARGO_MANIFEST_DIR"), "/../sandbox/guest/examples");
    zvm_gcc(&Path::new(examples).join("hello.c"), &lab.path("hello"));
    zvm_gcc(&Path::new(examples).join("cat.c"), &lab.path("cat"));
    zvm_gcc(Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../sandbox/tests/guests/loop.c")), &lab.path("loop"));
    guest(&lab, "fail", "#include <zvm.h>\nint main(void) { zvm_puts(2, \"no luck\\n\"); return 3; }\n");
    let input: String = (1..=50_000).map(|i| format!("line {i}\n")).collect();
    fs::write(lab.path("input.txt"), &input).unwrap();

    let smoke = job(
        &lab,
        "smoke",
        "apiVersion: zerolab/v1\nkind: Job\nname: smoke\ngroups:\n\
         \x20 - {name: hello, count: 3, program: hello}\n\
         \x20 - {name: cat, program: cat, devices: {stdin: input.txt, stdout: out.txt}}\n",
    );

    // Not up: one line, nothing made.
    let run = lab.zerolab(&["run"], &[&smoke]);
    assert_eq!(
        (run.code, run.stderr.as_str()),
        (2, format!("zerolab: lab {} is not up; run `zerolab up` first\n", Subnet::Run.name()).as_str())
    );
    assert_eq!(lab.zerolab(&["up"], &[]).code, 0);

    // Spread over the three nodes, outputs collected, stdout copied where the job says.
    let run = lab.zerolab(&["run"], &[&smoke]);
    assert_eq!(run.code, 0, "{run:#?}");
    let nodes: Vec<&str> = ["hello-1", "hello-2", "hello-3", "cat"].iter().map(|i| row(&run, i)[1]).collect();
    assert_eq!(nodes, ["node-1", "node-2", "node-3", "node-1"], "{run:#?}");
    assert_eq!(&row(&run, "hello-2")[2..5], ["ok", "0", "0"]);
    assert_eq!(fs::read_to_string(lab.path("out.txt")).unwrap(), input);
    let results = run.stdout.lines().find_map(|l| l.strip_prefix("results in ")).unwrap();
    assert_eq!(fs::read_to_string(Path::new(results).join("hello-3/stdout")).unwrap(), "Hello, World!\n");
    assert!(fs::read_to_string(Path::new(results).join("cat/report")).unwrap().lines().count() == 6);
    assert!(run.stdout.ends_with("all 4 instances exited 0\n"), "{run:#?}");

    // Again: the programs are on the nodes already. `ZEROLAB_LOG` shows each step's
    // timing (what `scripts/bench lab` reads).
    let started = Instant::now();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_zerolab"))
        .args(["run".as_ref(), lab.file.as_os_str(), "--lab-root".as_ref(), lab.root().as_os_str(), smoke.as_ref()])
        .env("ZEROLAB_LOG", "zerolab::run=debug")
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:#?}");
    let log = String::from_utf8_lossy(&output.stderr);
    for step in ["planned", "uploaded", "all sessions started", "all instances ended, outputs collected"] {
        let marked = format!("zerolab::run: {step} elapsed=");
        assert!(log.lines().any(|line| line.contains(&marked)), "no `{marked}` in:\n{log}");
    }
    eprintln!("a cached 4-instance run took {:?}", started.elapsed());

    // `jobs` lists both runs, `logs` prefixes each instance's lines.
    let run = lab.zerolab(&["jobs"], &[]);
    assert_eq!(run.stdout.lines().filter(|l| l.contains(" smoke ") && l.ends_with("4/4")).count(), 2, "{run:#?}");
    let run = lab.zerolab(&["logs"], &["smoke"]);
    assert_eq!(run.stdout.lines().filter(|l| l.ends_with(": Hello, World!")).count(), 3, "{run:#?}");
    let run = lab.zerolab(&["logs"], &["smoke", "cat"]);
    assert_eq!(run.stdout, input);
    let run = lab.zerolab(&["logs"], &["smoke", "nope"]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("has no instance `nope`; it has hello-1, hello-2, hello-3, cat"), "{run:#?}");

    // Channels: a producer feeds a consumer on another node (authenticated TCP between
    // the agents) and on the same node (a pipe); both see the same bytes, then EOF.
    let guests = concat!(env!("CARGO_MANIFEST_DIR"), "/../node-agent/tests/guests");
    zvm_gcc(&Path::new(guests).join("produce.c"), &lab.path("produce"));
    zvm_gcc(&Path::new(guests).join("consume.c"), &lab.path("consume"));
    let mut seen = Vec::new();
    for strategy in ["spread", "pack"] {
        let channel = job(
            &lab,
            &format!("chan-{strategy}"),
            &format!(
                "apiVersion: zerolab/v1\nkind: Job\nname: chan-{strategy}\ngroups:\n\
                 \x20 - {{name: producer, program: produce, args: ['50000000'], connect: [consumer], \
                 placement: {{strategy: {strategy}}}}}\n\
                 \x20 - {{name: consumer, program: consume, placement: {{strategy: {strategy}}}}}\n"
            ),
        );
        let run = lab.zerolab(&["run"], &[&channel]);
        assert_eq!(run.code, 0, "{run:#?}");
        let same_node = row(&run, "producer")[1] == row(&run, "consumer")[1];
        assert_eq!(same_node, strategy == "pack", "{run:#?}");
        let logs = lab.zerolab(&["logs"], &[&format!("chan-{strategy}"), "consumer"]);
        assert!(logs.stdout.starts_with("bytes=50000000 fnv="), "{logs:#?}");
        seen.push(logs.stdout);
    }
    assert_eq!(seen[0], seen[1]);

    // A failing guest stops the spinning ones at once.
    let failing = job(
        &lab,
        "failing",
        "apiVersion: zerolab/v1\nkind: Job\nname: failing\ngroups:\n\
         \x20 - {name: spin, count: 2, program: loop, timeout: 60s}\n\
         \x20 - {name: fail, program: fail}\n",
    );
    let started = Instant::now();
    let run = lab.zerolab(&["run"], &[&failing]);
    assert!(started.elapsed() < Duration::from_secs(10), "fail fast took {:?}", started.elapsed());
    assert_eq!(run.code, 1, "{run:#?}");
    assert_eq!(&row(&run, "fail")[2..5], ["ok", "0", "3"]);
    assert_eq!(row(&run, "spin-1")[2], "killed");
    assert!(run.stdout.contains("stopped: fail exited 3"), "{run:#?}");
    assert!(run.stdout.ends_with("3 of 3 instances failed\n"), "{run:#?}");

    // node-2's agent dies under its guest: the run ends, naming node-2.
    let spin = job(
        &lab,
        "spin",
        "apiVersion: zerolab/v1\nkind: Job\nname: spin\ngroups:\n  - {name: spin, count: 3, program: loop, timeout: 60s}\n",
    );
    let child = run_in_background(&lab, &spin);
    std::thread::sleep(Duration::from_millis(700));
    let kill = lab.zerolab(&["exec"], &["--nodes", "node-2", "--", "kill -9 $(cat /run/zerolab/agent.pid)"]);
    assert_eq!(kill.code, 0, "{kill:#?}");
    let started = Instant::now();
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(started.elapsed() < Duration::from_secs(10), "took {:?}: {stdout}", started.elapsed());
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("node-2"), "{stdout}");
    let lost = |l: &str| l.contains("the agent on node-2 restarted") || l.contains("node node-2 lost");
    assert!(stdout.lines().any(|l| l.starts_with("spin-2: ") && lost(l)), "{stdout}");
    let stopped = |l: &str| l.contains("stopped: spin-2 lost") || l.contains("stopped: node node-2 lost");
    assert!(stdout.lines().any(|l| l.starts_with("spin-1: ") && stopped(l)), "{stdout}");

    // `cancel` stops a run that is still going.
    assert_eq!(lab.zerolab(&["up"], &[]).code, 0, "the agent is healthy again");
    let child = run_in_background(&lab, &spin);
    let deadline = Instant::now() + Duration::from_secs(10);
    let run = loop {
        let run = lab.zerolab(&["cancel"], &["spin"]);
        if run.stdout.lines().filter(|l| l.ends_with(": stopped")).count() == 3 || Instant::now() > deadline {
            break run;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(run.code, 0, "{run:#?}");
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(1));

    // Bad jobs: refused before anything runs, in one line or located diagnostics.
    let nowhere = job(
        &lab,
        "nowhere",
        "apiVersion: zerolab/v1\nkind: Job\nname: nowhere\ngroups:\n\
         \x20 - {name: a, program: hello, placement: {nodes: gpu=yes}}\n",
    );
    let run = lab.zerolab(&["run"], &[&nowhere]);
    assert_eq!(run.code, 2, "{run:#?}");
    assert!(
        run.stderr.starts_with(&format!("zerolab: the job cannot be placed on lab {}:", Subnet::Run.name())),
        "{run:#?}"
    );
    let broken =
        job(&lab, "broken", "apiVersion: zerolab/v1\nkind: Job\nname: broken\ngroups:\n  - {name: a, programm: x}\n");
    let run = lab.zerolab(&["run"], &[&broken]);
    assert_eq!(run.code, 1, "{run:#?}");
    assert!(run.stderr.contains("broken.yaml:5:"), "{run:#?}");
}
