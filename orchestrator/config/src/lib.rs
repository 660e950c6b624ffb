//! `zerolab-config`: zerolab's documents, read, checked and located, as data. No async
//! runtime, SSH or system calls: what reads and checks a cluster or job file lives here,
//! what acts on machines lives in the orchestrator (`zerolab`), which re-exports
//! [`cluster`] and [`job`].
//!
//! [`document`] is what every document shares (the one parse, its source map, reading
//! into a schema, the checker, diagnostics); [`cluster`] (a lab: nodes, providers'
//! settings, addresses) and [`job`] (guest groups wired by channels) are siblings over
//! it, as [`workshop`] is (a lab per attendee of a workshop, from a template). The providers are not known here: a
//! cluster is read with a [`cluster::Registry`] of [`cluster::ProviderConfig`]s that
//! the orchestrator passes in.

pub mod cluster;
pub mod document;
pub mod job;
pub mod workshop;
