//! The harness: guests built once per run, a temp dir per test ([`Lab`]), a
//! command builder for the real `zvsh` ([`Zvsh`]), a manifest builder
//! ([`Manifest`]), and parsers for the six-line report ([`Report`]) and the
//! guests' `key=value` output ([`kv`], [`assert_kv`]).
//!
//! Guests are compiled with `guest/zvm-gcc` on first use, once per run, into
//! `$CARGO_TARGET_TMPDIR/zvm-guests` (world-readable, so the unprivileged
//! tests can run them); a build goes to a private name and is renamed into
//! place, so concurrent test runs never see a half-written guest.
//!
//! Every `zvsh` run gets the test's temp dir as its current directory, `HOME`
//! and `XDG_CACHE_HOME`: verdict caches and `zvsh.cfg` never leak between
//! tests or from the developer's home. Tests that count the process's
//! descriptors or children take the [`Lab::alone`] lock, which waits for every
//! other test to finish its [`Lab`] and keeps new ones out meanwhile.

mod guests;
mod lab;
mod manifest;
mod output;
mod procs;

pub use guests::*;
pub use lab::*;
pub use manifest::*;
pub use output::*;
pub use procs::*;

/// ZeroVM's "no limit" value (4 GiB).
pub const U: u64 = 1 << 32;
