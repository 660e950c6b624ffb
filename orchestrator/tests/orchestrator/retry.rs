//! `retries` in `zerolab run` for real on a 3-node `netns` lab: a guest that always fails
//! is tried on distinct nodes, then fails the run, every attempt kept; a guest killed
//! under it, or whose node's agent dies, runs again on another node (which gets the
//! program and input it lacks) and the run succeeds with that attempt's outputs;
//! `retries: 0` fails at once as before; a failure elsewhere and `cancel` stop instances
//! that could have been retried without retrying them, and leave no session running.
//! Needs root, gcc and a built `zerolab-agent` (as `up`).

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::harness::{guest, job, prerequisites, row, run_in_background, zvm_gcc, LabHarness, Run, Subnet};
use zerolab::run::{history, JobRecord};

/// `spin MILLIONS CODE`: spins MILLIONS million rounds, copies stdin to stdout, exits CODE.
const SPIN: &str = r#"#include <zvm.h>
static char buf[65536];
int main(int argc, char **argv)
{
    int64_t rounds = argc > 1 ? zvm_parse_u64(argv[1]) * 1000000 : 0;
    for (int64_t i = 0; i < rounds; i++)
        __asm__ volatile("");
    for (;;) {
        int64_t n = zvm_pread(0, buf, sizeof buf, 0);
        if (n <= 0 || zvm_write_all(1, buf, n) != n)
            break;
    }
    return argc > 2 ? (int)zvm_parse_u64(argv[2]) : 0;
}
"#;

/// Millions of rounds a guest spins for while the test kills it: seconds on this
/// machine, so the kill lands long before the guest would end by itself.
const LONG: &str = "5000";

/// Waits up to 20 s until `check` gives something.
fn wait_for<T>(what: &str, check: impl Fn() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(found) = check() {
            return found;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The record of the latest run of job `name`, once its sessions started.
fn record(lab: &LabHarness, name: &str) -> Option<JobRecord> {
    history::find(&lab.lab(), name).ok().map(|(record, _)| record)
}

/// The node and session of `instance` in the latest run of job `name`, once started.
fn session_of(lab: &LabHarness, name: &str, instance: &str) -> (String, String) {
    wait_for(&format!("{instance}'s session"), || {
        let record = record(lab, name)?;
        let entry = record.instances.iter().find(|i| i.name == instance)?;
        Some((entry.node.clone(), entry.session.clone()?))
    })
}

/// `curl` on `node`'s agent socket, through `zerolab exec`.
fn agent(lab: &LabHarness, nodes: &str, request: &str) -> Run {
    let command = format!("curl -sSf --unix-socket /run/zerolab/agent.sock {request}");
    let run = lab.zerolab(&["exec"], &["--nodes", nodes, "--", &command]);
    assert_eq!(run.code, 0, "{run:#?}");
    run
}

/// Every node's sessions still running or waiting for their channels.
fn live_sessions(lab: &LabHarness) -> Vec<String> {
    let run = agent(lab, "node-*", "http://agent/v1/sessions");
    let live = |s: &&str| s.contains(r#""state":"running""#) || s.contains(r#""state":"waiting""#);
    run.stdout.split('{').filter(live).map(str::to_owned).collect()
}

/// A background run's outcome, once it ended (within `limit`).
fn finished(child: std::process::Child, limit: Duration) -> Run {
    let started = Instant::now();
    let output = child.wait_with_output().unwrap();
    let run = Run {
        code: output.status.code().expect("an exit code"),
        stdout: String::from_utf8(output.stdout).unwrap(),
        stderr: String::new(),
    };
    assert!(started.elapsed() < limit, "took {:?}: {run:#?}", started.elapsed());
    run
}

/// The line of `instance` in the summary.
/// The line under the summary table that says more about `instance` (its cause, its
/// attempts).
fn note<'a>(run: &'a Run, instance: &str) -> &'a str {
    row(run, instance);
    run.stdout.lines().find(|l| l.starts_with(&format!("{instance}: "))).unwrap_or_else(|| panic!("no note: {run:#?}"))
}

fn results(run: &Run) -> PathBuf {
    PathBuf::from(run.stdout.lines().find_map(|l| l.strip_prefix("results in ")).expect("a results line"))
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn retries_place_failed_instances_again_on_other_nodes() {
    let Some(agent_binary) = prerequisites("zerolab run with retries") else {
        return;
    };
    let lab = LabHarness::new(Subnet::Retry, agent_binary);
    guest(&lab, "fail", "#include <zvm.h>\nint main(void) { zvm_puts(2, \"no luck\\n\"); return 3; }\n");
    guest(&lab, "spin", SPIN);
    zvm_gcc(Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../sandbox/tests/guests/loop.c")), &lab.path("loop"));
    let input: String = (1..=2000).map(|i| format!("line {i}\n")).collect();
    fs::write(lab.path("input.txt"), &input).unwrap();
    assert_eq!(lab.zerolab(&["up"], &[]).code, 0);
    let job_file = |name: &str, groups: &str| {
        job(&lab, name, &format!("apiVersion: zerolab/v1\nkind: Job\nname: {name}\ngroups:\n{groups}"))
    };

    // Retries spent: `bad` fails on node-1, then on the least loaded node it has not
    // failed on (node-3: `idle` is on node-2), then on node-2; the run then fails and
    // stops `idle` without retrying it.
    let exhaust = job_file(
        "exhaust",
        "  - {name: bad, program: fail, retries: 2, devices: {stdin: input.txt}}\n\
         \x20 - {name: idle, program: loop, retries: 2, timeout: 60s}\n",
    );
    let run = lab.zerolab(&["run"], &[&exhaust]);
    assert_eq!(run.code, 1, "{run:#?}");
    assert_eq!(&row(&run, "bad")[1..5], ["node-2", "ok", "0", "3"], "{run:#?}");
    assert!(note(&run, "bad").contains(" failed after 3 attempts (node-1: exited 3, node-3: exited 3)"), "{run:#?}");
    assert_eq!(&row(&run, "idle")[1..3], ["node-2", "killed"], "{run:#?}");
    assert!(note(&run, "idle").ends_with(" stopped: bad exited 3 after 3 attempts"), "{run:#?}");
    assert!(run.stdout.lines().any(|l| l.ends_with(" failed, 2 retried")), "progress shows retries: {run:#?}");
    assert!(run.stdout.ends_with("2 of 2 instances failed\n"), "{run:#?}");
    let record = record(&lab, "exhaust").unwrap();
    let attempts = &record.instances[0].attempts;
    let nodes: Vec<&str> = attempts.iter().map(|a| a.node.as_str()).collect();
    assert_eq!(nodes, ["node-1", "node-3", "node-2"], "{record:#?}");
    assert!(attempts.iter().all(|a| a.exit_state.as_deref() == Some("ok") && a.user_code == Some(3)), "{record:#?}");
    assert!(attempts.iter().all(|a| a.return_code == Some(0) && a.session.is_some()), "{record:#?}");
    assert_eq!((record.instances[0].node.as_str(), &record.instances[0].session), ("node-2", &attempts[2].session));
    assert!(record.instances[1].attempts.is_empty(), "{record:#?}");
    let dir = results(&run).join("bad");
    for attempt in ["attempt-1/", "attempt-2/", ""] {
        assert_eq!(read(&dir.join(format!("{attempt}stderr"))), "no luck\n");
        assert_eq!(read(&dir.join(format!("{attempt}report"))).lines().count(), 6);
    }
    assert!(!dir.join("attempt-3").exists());
    assert_eq!(live_sessions(&lab), Vec::<String>::new());

    // A guest killed under it runs again on node-2, which gets its program and input;
    // the run succeeds with the second attempt's outputs.
    let flaky = job_file(
        "flaky",
        &format!(
            "  - {{name: work, program: spin, args: ['{LONG}', '0'], retries: 1, timeout: 120s, \
             devices: {{stdin: input.txt, stdout: work.out}}}}\n"
        ),
    );
    let started = Instant::now();
    let child = run_in_background(&lab, &flaky);
    let (node, session) = session_of(&lab, "flaky", "work");
    assert_eq!(node, "node-1");
    agent(&lab, &node, &format!("-X DELETE http://agent/v1/sessions/{session}"));
    let run = finished(child, Duration::from_secs(120));
    eprintln!("a run killed once and retried took {:?}", started.elapsed());
    assert_eq!(run.code, 0, "{run:#?}");
    assert_eq!(&row(&run, "work")[1..5], ["node-2", "ok", "0", "0"], "{run:#?}");
    assert!(note(&run, "work").contains(" ok after 2 attempts (node-1: killed)"), "{run:#?}");
    assert!(run.stdout.ends_with("all 1 instances exited 0\n"), "{run:#?}");
    assert_eq!(read(&lab.path("work.out")), input);
    assert_eq!(read(&results(&run).join("work/stdout")), input);
    assert_eq!(read(&results(&run).join("work/attempt-1/stdout")), "");
    let record = self::record(&lab, "flaky").unwrap();
    let attempts: Vec<(&str, Option<&str>)> =
        record.instances[0].attempts.iter().map(|a| (a.node.as_str(), a.exit_state.as_deref())).collect();
    assert_eq!(attempts, [("node-1", Some("killed")), ("node-2", Some("ok"))], "{record:#?}");
    assert_eq!(record.instances[0].attempts[0].session.as_deref(), Some(session.as_str()));

    // The agent of its node dies: after the node counts as lost it runs on the other
    // node its group may use, never on the lost one.
    let lost = job_file(
        "lost",
        &format!(
            "  - {{name: work, program: spin, args: ['{LONG}', '0'], retries: 3, timeout: 120s, \
             placement: {{nodes: 'node-2, node-3'}}}}\n"
        ),
    );
    let child = run_in_background(&lab, &lost);
    assert_eq!(session_of(&lab, "lost", "work").0, "node-2");
    let kill = lab.zerolab(&["exec"], &["--nodes", "node-2", "--", "kill -9 $(cat /run/zerolab/agent.pid)"]);
    assert_eq!(kill.code, 0, "{kill:#?}");
    let run = finished(child, Duration::from_secs(120));
    assert_eq!(run.code, 0, "{run:#?}");
    assert_eq!(&row(&run, "work")[1..5], ["node-3", "ok", "0", "0"], "{run:#?}");
    let note = note(&run, "work");
    assert!(note.contains(" ok after 2 attempts (node-2: "), "{run:#?}");
    assert!(note.contains("node node-2 lost") || note.contains("the agent on node-2 restarted"), "{run:#?}");
    assert_eq!(lab.zerolab(&["up"], &[]).code, 0, "node-2's agent is back");

    // `retries: 0`: the first failure fails the run, as ever.
    let once = job_file("once", "  - {name: bad, program: fail, devices: {stdin: input.txt}}\n");
    let run = lab.zerolab(&["run"], &[&once]);
    assert_eq!(run.code, 1, "{run:#?}");
    assert_eq!(&row(&run, "bad")[1..5], ["node-1", "ok", "0", "3"], "{run:#?}");
    assert!(!run.stdout.contains("attempts"), "{run:#?}");
    assert!(!run.stdout.contains("retried"), "{run:#?}");
    assert!(self::record(&lab, "once").unwrap().instances[0].attempts.is_empty());
    assert_eq!(read(&results(&run).join("bad/stderr")), "no luck\n");
    assert!(!results(&run).join("bad/attempt-1").exists());

    // `cancel` while an instance is being retried: the run ends at once, nothing is
    // retried after it, and no session is left running.
    let cancel = job_file(
        "cancelme",
        "  - {name: flaky, program: spin, args: ['1000', '3'], retries: 10}\n\
         \x20 - {name: idle, program: loop, retries: 10, timeout: 60s}\n",
    );
    let child = run_in_background(&lab, &cancel);
    wait_for("a retry", || self::record(&lab, "cancelme").filter(|r| !r.instances[0].attempts.is_empty()));
    let stopped = lab.zerolab(&["cancel"], &["cancelme"]);
    assert_eq!(stopped.code, 0, "{stopped:#?}");
    let run = finished(child, Duration::from_secs(15));
    assert_eq!(run.code, 1, "{run:#?}");
    assert_eq!(row(&run, "idle")[2], "killed", "{run:#?}");
    let retried = |l: &str| l.starts_with("idle: ") && l.contains(" attempts (");
    assert!(!run.stdout.lines().any(retried), "idle is not retried: {run:#?}");
    let record = self::record(&lab, "cancelme").unwrap();
    assert!((2..=11).contains(&record.instances[0].attempts.len()), "{record:#?}");
    assert!(record.instances[1].attempts.is_empty(), "{record:#?}");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(live_sessions(&lab), Vec::<String>::new());
    assert_eq!(
        self::record(&lab, "cancelme").unwrap().instances[0].attempts.len(),
        record.instances[0].attempts.len(),
        "nothing was retried after the run ended"
    );
}
