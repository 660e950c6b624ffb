//! A run is a record, not a process: unique ids for concurrent runs of one job, the run's
//! state in `jobs`, `cancel` recorded as such, `logs -f`, output directories checked up
//! front; Ctrl-C, a killed `zerolab run` (its guests stopped by their leases) and
//! `--detach`, each collected by `zerolab wait`; the lab's keeper killed mid-run; a node
//! whose agent stops answering lost in the 3 s docs/job.md states. Real netns labs
//! (`rl170`-`rl173`); needs root, gcc and a built `zerolab-agent` (as `up`).

use std::fs;
use std::path::Path;
use std::process::{Child, Output};
use std::time::{Duration, Instant};

use crate::harness::{guest, job, pid, prerequisites, row, run_in_background, zvm_gcc, LabHarness, Run, Subnet};

/// Builds the guests the tests share into the lab's directory and brings the lab up.
fn lab_with_guests(subnet: Subnet, test: &str) -> Option<LabHarness> {
    let agent = prerequisites(test)?;
    let lab = LabHarness::new(subnet, agent);
    zvm_gcc(Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../sandbox/tests/guests/loop.c")), &lab.path("loop"));
    let examples = concat!(env!("CARGO_MANIFEST_DIR"), "/../sandbox/guest/examples");
    zvm_gcc(&Path::new(examples).join("hello.c"), &lab.path("hello"));
    let up = lab.zerolab(&["up"], &[]);
    assert_eq!(up.code, 0, "{up:#?}");
    Some(lab)
}

/// `spin`: `count` guests spinning until their 60 s timeout.
fn spin_job(lab: &LabHarness, count: u32) -> String {
    let text = format!(
        "apiVersion: zerolab/v1\nkind: Job\nname: spin\ngroups:\n  - {{name: spin, count: {count}, program: loop, \
         timeout: 60s}}\n"
    );
    job(lab, "spin", &text)
}

/// `jobs`' rows: (run, job, state, ended/total).
fn jobs(lab: &LabHarness) -> Vec<(String, String, String, String)> {
    let run = lab.zerolab(&["jobs"], &[]);
    assert_eq!(run.code, 0, "{run:#?}");
    let mut lines = run.stdout.lines();
    assert_eq!(
        lines.next().map(|l| l.split_whitespace().collect::<Vec<_>>()),
        Some(vec!["RUN", "JOB", "STARTED", "STATE", "ENDED"])
    );
    lines
        .map(|line| {
            let cells: Vec<&str> = line.split_whitespace().collect();
            // STARTED is two words (`3s ago`).
            (cells[0].into(), cells[1].into(), cells[4].into(), cells[5].into())
        })
        .collect()
}

/// The latest run of job `name` in `jobs`: (run id, state, ended/total).
fn latest(lab: &LabHarness, name: &str) -> (String, String, String) {
    let rows = jobs(lab);
    let (id, _, state, ended) = rows.iter().rev().find(|r| r.1 == name).unwrap_or_else(|| panic!("{rows:?}")).clone();
    (id, state, ended)
}

/// Waits until the latest run of `name` has every one of its `count` instances running
/// (their sessions recorded, and given a moment to start spinning).
fn until_started(lab: &LabHarness, name: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let rows = jobs(lab);
        if let Some(row) = rows.iter().rev().find(|r| r.1 == name && r.2 == "running") {
            let record = fs::read_to_string(lab.lab().dir().join("jobs").join(&row.0).join("job.json")).unwrap();
            if !record.contains("\"session\": null") {
                std::thread::sleep(Duration::from_millis(300));
                return row.0.clone();
            }
        }
        assert!(Instant::now() < deadline, "{name} never ran: {rows:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn output(child: Child) -> (Output, String) {
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    (output, stdout)
}

fn signal(child: &Child, signal: i32) {
    // SAFETY: kill(2) with a pid of our own child and a valid signal number.
    assert_eq!(unsafe { libc::kill(child.id() as i32, signal) }, 0);
}

/// The summary rows of a run's stdout, as in `harness::row`.
fn rows_of(stdout: &str) -> Run {
    Run { code: 0, stdout: stdout.to_owned(), stderr: String::new() }
}

#[test]
fn concurrent_runs_jobs_states_cancel_logs_follow_and_output_directories() {
    let Some(lab) = lab_with_guests(Subnet::RunsRecords, "run records") else {
        return;
    };
    let guests = concat!(env!("CARGO_MANIFEST_DIR"), "/../node-agent/tests/guests");
    zvm_gcc(&Path::new(guests).join("produce.c"), &lab.path("produce"));
    zvm_gcc(&Path::new(guests).join("consume.c"), &lab.path("consume"));

    // Two runs of one channel job at once: two ids, two results, both ok (their
    // channels never meet in the agents).
    let channel = job(
        &lab,
        "chan",
        "apiVersion: zerolab/v1\nkind: Job\nname: chan\ngroups:\n\
         \x20 - {name: producer, program: produce, args: ['20000000'], connect: [consumer]}\n\
         \x20 - {name: consumer, program: consume}\n",
    );
    let (first, second) = (run_in_background(&lab, &channel), run_in_background(&lab, &channel));
    let ((a, a_out), (b, b_out)) = (output(first), output(second));
    assert!(a.status.success() && b.status.success(), "{a_out}\n{b_out}");
    let results = |stdout: &str| stdout.lines().find_map(|l| l.strip_prefix("results in ")).unwrap().to_owned();
    let (a_dir, b_dir) = (results(&a_out), results(&b_out));
    assert_ne!(a_dir, b_dir);
    for dir in [&a_dir, &b_dir] {
        let consumed = fs::read_to_string(Path::new(dir).join("consumer/stdout")).unwrap();
        assert!(consumed.starts_with("bytes=20000000 fnv="), "{dir}: {consumed}");
    }
    let rows = jobs(&lab);
    assert_eq!(rows.iter().filter(|r| r.1 == "chan" && r.2 == "ok" && r.3 == "2/2").count(), 2, "{rows:?}");

    // An output into a directory that does not exist: refused by validate, and by run
    // before anything starts (no run recorded).
    let nodir = job(
        &lab,
        "nodir",
        "apiVersion: zerolab/v1\nkind: Job\nname: nodir\ngroups:\n\
         \x20 - {name: a, program: hello, devices: {stdout: missing/out.txt}}\n",
    );
    let missing = lab.path("missing");
    let expected = format!("stdout output `missing/out.txt`: directory {} does not exist", missing.display());
    let validate = crate::harness::zerolab_in(&lab.path(""), &["validate", &nodir]);
    assert_eq!(validate.code, 1, "{validate:#?}");
    assert!(validate.stderr.contains(&expected), "{validate:#?}");
    let run = lab.zerolab(&["run"], &[&nodir]);
    assert_eq!(run.code, 1, "{run:#?}");
    assert!(run.stderr.contains(&expected), "{run:#?}");
    assert!(!jobs(&lab).iter().any(|r| r.1 == "nodir"));

    // `logs -f` follows an instance that runs, to its end.
    guest(
        &lab,
        "ticker",
        "#include <zvm.h>\nint main(void) {\n  static const char *l[] = {\"tick 1\\n\", \"tick 2\\n\", \"tick 3\\n\", \
         \"tick 4\\n\"};\n  for (int i = 0; i < 4; i++) {\n    zvm_puts(1, l[i]);\n    for (unsigned long j = 0; j < \
         500000000UL; j++) __asm__ volatile(\"\");\n  }\n  return 0;\n}\n",
    );
    let ticker = job(
        &lab,
        "ticker",
        "apiVersion: zerolab/v1\nkind: Job\nname: ticker\ngroups:\n  - {name: t, program: ticker, timeout: 2m}\n",
    );
    let child = run_in_background(&lab, &ticker);
    until_started(&lab, "ticker");
    let follow = lab.zerolab(&["logs"], &["-f", "ticker", "t"]);
    assert_eq!((follow.code, follow.stdout.as_str()), (0, "tick 1\ntick 2\ntick 3\ntick 4\n"), "{follow:#?}");
    let all = lab.zerolab(&["logs"], &["--follow", "ticker"]);
    assert_eq!(all.stdout, "t: tick 1\nt: tick 2\nt: tick 3\nt: tick 4\n", "{all:#?}");
    let (status, stdout) = output(child);
    assert!(status.status.success(), "{stdout}");

    // `cancel`: the run reads cancelled, in its summary and in `jobs`, not a failure of
    // one instance stopping the others.
    let spin = spin_job(&lab, 3);
    let child = run_in_background(&lab, &spin);
    until_started(&lab, "spin");
    let cancel = lab.zerolab(&["cancel"], &["spin"]);
    assert_eq!(cancel.code, 0, "{cancel:#?}");
    let (status, stdout) = output(child);
    assert_eq!(status.status.code(), Some(1), "{stdout}");
    let summary = rows_of(&stdout);
    for instance in ["spin-1", "spin-2", "spin-3"] {
        let cells = row(&summary, instance);
        assert_eq!(cells[2], "killed", "{stdout}");
        assert!(stdout.lines().any(|l| l == format!("{instance}: cancelled")), "{stdout}");
    }
    assert!(stdout.ends_with(": cancelled, 0 of 3 instances exited 0\n"), "{stdout}");
    assert!(!stdout.contains("stopped:"), "{stdout}");
    assert_eq!(latest(&lab, "spin").1, "cancelled");
}

#[test]
fn interrupted_killed_and_detached_runs_are_stopped_or_collected_by_wait() {
    let Some(lab) = lab_with_guests(Subnet::RunsInterrupted, "interrupted runs") else {
        return;
    };
    let spin = spin_job(&lab, 3);

    // Ctrl-C: every guest killed, reports collected, the run recorded interrupted.
    let child = run_in_background(&lab, &spin);
    until_started(&lab, "spin");
    let interrupted = Instant::now();
    signal(&child, libc::SIGINT);
    let (status, stdout) = output(child);
    assert!(interrupted.elapsed() < Duration::from_secs(5), "took {:?}", interrupted.elapsed());
    assert_eq!(status.status.code(), Some(130), "{stdout}");
    for instance in ["spin-1", "spin-2", "spin-3"] {
        let summary = rows_of(&stdout);
        let cells = row(&summary, instance);
        assert_eq!(cells[2], "killed", "{stdout}");
        assert!(stdout.lines().any(|l| l == format!("{instance}: interrupted")), "{stdout}");
    }
    assert_eq!(latest(&lab, "spin").1, "interrupted");
    assert_eq!(latest(&lab, "spin").2, "3/3");

    // A killed `zerolab run`: the run reads interrupted at once (nobody drives it), its
    // guests stop by themselves when their leases run out, and `wait` collects them.
    let child = run_in_background(&lab, &spin);
    let id = until_started(&lab, "spin");
    signal(&child, libc::SIGKILL);
    let _ = output(child);
    assert_eq!(latest(&lab, "spin"), (id.clone(), "interrupted".into(), "0/3".into()));
    std::thread::sleep(Duration::from_secs(12));
    let wait = lab.zerolab(&["wait"], &[&id]);
    assert_eq!(wait.code, 130, "{wait:#?}");
    for instance in ["spin-1", "spin-2", "spin-3"] {
        let cells = row(&wait, instance);
        assert_eq!(cells[2..4], ["lease", "expired"], "{wait:#?}");
    }
    assert_eq!(latest(&lab, "spin"), (id.clone(), "interrupted".into(), "3/3".into()));
    let record = fs::read_to_string(lab.lab().dir().join("jobs").join(&id).join("job.json")).unwrap();
    assert!(record.contains("\"state\": \"interrupted\"") && record.contains("nobody renewed"), "{record}");

    // --detach: the guests start and run on, without anyone following; `wait` collects.
    let hello = job(
        &lab,
        "hello",
        "apiVersion: zerolab/v1\nkind: Job\nname: hello\ngroups:\n  - {name: hello, count: 3, program: hello}\n",
    );
    let detached = lab.zerolab(&["run"], &["--detach", &hello]);
    assert_eq!(detached.code, 0, "{detached:#?}");
    let id = detached.stdout.split_whitespace().nth(1).unwrap().to_owned();
    assert!(detached.stdout.starts_with(&format!("run {id} started, detached")), "{detached:#?}");
    assert_eq!(latest(&lab, "hello"), (id.clone(), "detached".into(), "0/3".into()));
    let wait = lab.zerolab(&["wait"], &[&id]);
    assert_eq!(wait.code, 0, "{wait:#?}");
    assert_eq!(row(&wait, "hello-2")[2..5], ["ok", "0", "0"]);
    let results = wait.stdout.lines().find_map(|l| l.strip_prefix("results in ")).unwrap();
    assert_eq!(fs::read_to_string(Path::new(results).join("hello-3/stdout")).unwrap(), "Hello, World!\n");
    assert_eq!(latest(&lab, "hello"), (id.clone(), "ok".into(), "3/3".into()));
    // Over: `wait` again only reads the record back.
    let again = lab.zerolab(&["wait"], &[&id]);
    assert_eq!((again.code, row(&again, "hello-1")[2]), (0, "ok"), "{again:#?}");
}

/// The pid of the lab's keeper (`zerolab keeper LAB_DIR`), when one runs.
fn keeper_pid(lab: &LabHarness) -> Option<i32> {
    let dir = lab.lab().dir().to_path_buf();
    fs::read_dir("/proc").unwrap().flatten().find_map(|entry| {
        let pid: i32 = entry.file_name().to_str()?.parse().ok()?;
        let cmdline = fs::read(entry.path().join("cmdline")).ok()?;
        let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
        let is_keeper =
            args.get(1) == Some(&&b"keeper"[..]) && args.get(2) == Some(&dir.as_os_str().as_encoded_bytes());
        (is_keeper && crate::harness::alive(pid)).then_some(pid)
    })
}

#[test]
fn a_keeper_killed_mid_run_is_started_again_and_the_run_finishes_ok() {
    let Some(lab) = lab_with_guests(Subnet::RunsKeeper, "keeper killed mid-run") else {
        return;
    };
    guest(
        &lab,
        "busy",
        "#include <zvm.h>\nint main(void) {\n  for (unsigned long j = 0; j < 5000000000UL; j++) __asm__ volatile(\"\");\n  \
         return zvm_puts(1, \"done\\n\") < 0;\n}\n",
    );
    let busy = job(
        &lab,
        "busy",
        "apiVersion: zerolab/v1\nkind: Job\nname: busy\ngroups:\n  - {name: busy, count: 3, program: busy, timeout: 5m}\n",
    );
    let child = run_in_background(&lab, &busy);
    until_started(&lab, "busy");
    let keeper = keeper_pid(&lab).expect("a keeper runs");
    // SAFETY: kill(2) with the keeper's pid, read from /proc just now.
    assert_eq!(unsafe { libc::kill(keeper, libc::SIGKILL) }, 0);
    crate::harness::wait_dead(keeper);
    let (status, stdout) = output(child);
    assert!(status.status.success(), "{stdout}");
    assert!(stdout.ends_with("all 3 instances exited 0\n"), "{stdout}");
    assert!(keeper_pid(&lab).is_some_and(|pid| pid != keeper), "a new keeper runs");
}

#[test]
fn a_node_whose_agent_stops_answering_is_lost_within_3_seconds() {
    let Some(lab) = lab_with_guests(Subnet::RunsNodeLoss, "node loss time") else {
        return;
    };
    let spin = spin_job(&lab, 3);
    let child = run_in_background(&lab, &spin);
    until_started(&lab, "spin");
    let agent = pid(&lab, "node-2", "agent.pid");
    // SAFETY: kill(2) with the agent's pid from its pid file.
    assert_eq!(unsafe { libc::kill(agent, libc::SIGSTOP) }, 0);
    let stopped = Instant::now();
    let (status, stdout) = output(child);
    let took = stopped.elapsed();
    // SAFETY: as above.
    assert_eq!(unsafe { libc::kill(agent, libc::SIGCONT) }, 0);
    eprintln!("a node whose agent stopped answering ended the run after {took:?}");
    assert_eq!(status.status.code(), Some(1), "{stdout}");
    assert!(stdout.lines().any(|l| l.starts_with("spin-2: ") && l.contains("node node-2 lost")), "{stdout}");
    assert!(took >= Duration::from_millis(2900) && took < Duration::from_millis(4500), "took {took:?}: {stdout}");
}
