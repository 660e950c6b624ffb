//! zerolab's sandbox runtime: ZeroVM's contracts on a modern Linux jail.
//!
//! A guest is one static x86-64 program that may only use six calls (pread,
//! pwrite, jail, unjail, fork, exit) on the channels its manifest declares.
//! This crate parses ZeroVM manifests ([`manifest`]), checks and validates
//! guest images ([`elf`], [`validator`], [`verdict_cache`]), runs them in a
//! jail ([`jail`]) under a supervisor ([`session`]), and reports the result in
//! ZeroVM's format with ZeroVM's return codes ([`report`], [`codes`]).
//!
//! The boundary is the seccomp filter, which lets system calls through only
//! from the trampoline page; the instruction validator is defence in depth.
//!
//! ```no_run
//! use zerolab_sandbox::{manifest, session};
//! let text = std::fs::read("hello.manifest").unwrap();
//! let m = manifest::parse(&text).unwrap();
//! let report = session::run_manifest(&m, &session::Options::default());
//! print!("{report}");
//! std::process::exit(report.return_code.code());
//! ```

pub mod abi;
pub mod channel;
pub mod codes;
pub mod elf;
pub mod image;
pub mod jail;
pub mod manifest;
pub mod program_cache;
pub mod report;
pub mod session;
pub mod validator;
pub mod verdict_cache;
pub mod zvsh;
