//! `zerolab sandbox run` follows a guest's output at the cost of its size: a guest
//! writes 64 MiB to stdout on node-2 of a real `netns` lab, and its agent reads about
//! 64 MiB in all to serve it (the agent's `rchar` in `/proc/PID/io`: the output files
//! it streams, the requests, and its reaped guests' reads, which are a few kilobytes
//! here), not a multiple of it, while the output arrives byte-identical on our stdout
//! and in the run's results directory. (`wchar` would count the guest's own 64 MiB
//! too: a reaped child's I/O is added to its parent's.) Needs root, gcc and a built `zerolab-agent`; without them the test says
//! it was skipped.

use std::fs;
use std::process::Command;
use std::time::Instant;

use crate::harness::{pid, prerequisites, zvm_gcc, LabHarness, Subnet};

/// What the guest writes: byte `i` is `i % 251`, 64 MiB of it.
const SIZE: usize = 64 << 20;

const GUEST: &str = r#"#include <zvm.h>
#define SIZE (64 * 1024 * 1024)
#define CHUNK (1024 * 1024)
static unsigned char buf[CHUNK];
int main(void) {
    for (int64_t off = 0; off < SIZE; off += CHUNK) {
        for (int64_t j = 0; j < CHUNK; j++)
            buf[j] = (unsigned char)((off + j) % 251);
        if (zvm_write_all(1, buf, CHUNK) != CHUNK)
            return 2;
    }
    return 0;
}
"#;

/// The bytes a process (and its reaped children) has read and written so far
/// (`rchar`, `wchar`: files and sockets alike).
fn io_of(pid: i32) -> (u64, u64) {
    let io = fs::read_to_string(format!("/proc/{pid}/io")).unwrap();
    let count =
        |key: &str| -> u64 { io.lines().find_map(|line| line.strip_prefix(key)).unwrap().trim().parse().unwrap() };
    (count("rchar: "), count("wchar: "))
}

#[test]
fn sandbox_run_follows_64_mib_of_stdout_reading_each_byte_once() {
    let Some(agent) = prerequisites("zerolab sandbox run, 64 MiB followed") else {
        return;
    };
    let lab = LabHarness::new(Subnet::SandboxFollow, agent);
    let source = lab.path("big.c");
    fs::write(&source, GUEST).unwrap();
    let big = lab.path("big");
    zvm_gcc(&source, &big);
    let run = lab.zerolab(&["up"], &[]);
    assert_eq!(run.code, 0, "{run:#?}");

    let agent = pid(&lab, "node-2", "agent.pid");
    let before = io_of(agent);
    let started = Instant::now();
    let output = Command::new(env!("CARGO_BIN_EXE_zerolab"))
        .args(["sandbox", "run"])
        .arg(&lab.file)
        .arg("node-2")
        .arg(&big)
        .arg("--lab-root")
        .arg(lab.root())
        .output()
        .unwrap();
    let took = started.elapsed();
    let after = io_of(agent);
    let (served, written) = (after.0 - before.0, after.1 - before.1);
    eprintln!(
        "sandbox run, 64 MiB of stdout: {took:?}; the agent read {served} bytes ({:.3}x the output), \
         wrote {written} with its guest's ({:.3}x)",
        served as f64 / SIZE as f64,
        written as f64 / SIZE as f64,
    );
    assert_eq!(output.status.code(), Some(0), "{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(String::from_utf8_lossy(&output.stderr), "");
    let expected: Vec<u8> = (0..SIZE).map(|i| (i % 251) as u8).collect();
    assert_eq!(output.stdout.len(), SIZE);
    assert!(output.stdout == expected, "stdout differs from what the guest wrote");
    // Each byte crossed once; requests, listings and the report are a few kilobytes.
    assert!(served >= SIZE as u64, "{served}");
    assert!(served < SIZE as u64 + (1 << 20), "the agent read {served} bytes to serve a {SIZE}-byte output");

    // The run is a job: its results directory holds the same bytes.
    let jobs = lab.lab().dir().join("jobs");
    let runs: Vec<_> = fs::read_dir(&jobs).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert!(runs[0].file_name().unwrap().to_str().unwrap().starts_with("sandbox-"), "{runs:?}");
    assert!(fs::read(runs[0].join("big/stdout")).unwrap() == expected, "the collected stdout differs");
    assert_eq!(fs::read(runs[0].join("big/stderr")).unwrap(), b"");
    assert_eq!(fs::read_to_string(runs[0].join("big/report")).unwrap().lines().count(), 6);
}
