//! Workshops end to end, as one test binary: the [`Workshop`](zerolab::workshop::Workshop)
//! service in-process and the `zerolab workshop` commands, on real `netns` labs. Each
//! test has a workshop of its own (`wc<N>`, network `10.212.<16N>.0/20`, SSH ports
//! `23000 + 10N ...`, portal port `18100 + N`: the [`harness::Case`] table), so tests
//! running in parallel never meet. Labs are one small node each; pools are 1–3 labs.
//!
//! They need root, OpenSSH, iptables and a built agent beside the test binary
//! (`cargo build --release -p zerolab-agent`); each test says on stderr why it is
//! skipped otherwise. All of it: `cargo test --release -p zerolab --test workshop`.

mod api;
mod harness;
