//! The `zerolab` orchestrator end to end, as one test binary: the real `zerolab` binary
//! and the library run against real labs on this machine. Each module covers one
//! command or part (`up`, `run`, `keeper`, `faults`, ...); `harness` is what they share:
//! a `netns` lab in a temp dir with its own name and subnet (one table, [`harness::Subnet`],
//! so the labs of tests running in parallel never meet), a `zerolab` command builder and
//! a guard that takes the lab down when a test ends, also when it fails.
//!
//! The lab tests need root (they make network namespaces; CI runs as root), gcc (guests
//! are built with `sandbox/guest/zvm-gcc`), OpenSSH (client and server) and a built agent
//! beside the test binary: `cargo build --release -p zerolab-agent` first (`scripts/test`
//! does). Without them each test says on stderr why it is skipped. The `validate`, lock
//! and services tests need none of it.
//!
//! All of it: `cargo test --release -p zerolab --test orchestrator`; one module:
//! `cargo test --release -p zerolab --test orchestrator -- run::`.

mod cli;
mod collect;
mod down;
mod examples;
mod exec;
mod faults;
mod graph;
mod harness;
mod isolated;
mod job_cli;
mod job_devices;
mod keeper;
mod lab_lock;
mod labs;
mod login;
mod netns;
mod provision;
mod retry;
mod run;
mod runs;
mod sandbox;
mod sandbox_follow;
mod scripting;
mod services;
mod ssh;
mod ssh_provider;
mod up;
