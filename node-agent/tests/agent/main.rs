//! The `zerolab-agent` binary end to end: each test starts the real daemon
//! (or two of them) on a Unix socket in its own temp dir and talks HTTP/1.1
//! to it over that socket, the way the orchestrator does through an SSH
//! streamlocal channel. Channel tests connect two agents over 127.0.0.1.
//!
//! Guests are built once per run with `sandbox/guest/zvm-gcc`.

mod attacks;
mod channels;
mod cleanup;
mod devices;
mod follow;
mod harness;
mod leases;
mod sessions;
mod sources;
mod throughput;
mod warm;
