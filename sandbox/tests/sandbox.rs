//! zerolab-sandbox's integration tests: the real `zvsh` and the library API
//! running real guests (`tests/guests/*.c`, `guest/examples/*.c`, and the example
//! jobs' guests in `examples/`) in the jail.
//!
//! One binary; the harness (`sandbox/harness.rs`) builds each guest once per
//! run and gives every test its own temp dir and a `zvsh` command builder.
//! Each module covers one contract from `docs/manifest.md` (ZeroVM's manifest, channels,
//! report and return codes); tests are named for the behaviour.
//! Tests that need root print `SKIPPED ...` on stderr when run without it.

#[path = "sandbox/calls.rs"]
mod calls;
#[path = "sandbox/channels.rs"]
mod channels;
#[path = "sandbox/daemon.rs"]
mod daemon;
#[path = "sandbox/escapes.rs"]
mod escapes;
#[path = "sandbox/examples.rs"]
mod examples;
#[path = "sandbox/fifos.rs"]
mod fifos;
#[path = "sandbox/harness/mod.rs"]
mod harness;
#[path = "sandbox/isolation.rs"]
mod isolation;
#[path = "sandbox/jail_bounds.rs"]
mod jail_bounds;
#[path = "sandbox/jit.rs"]
mod jit;
#[path = "sandbox/leaks.rs"]
mod leaks;
#[path = "sandbox/library.rs"]
mod library;
#[path = "sandbox/limits.rs"]
mod limits;
#[path = "sandbox/planted.rs"]
mod planted;
#[path = "sandbox/positional.rs"]
mod positional;
#[path = "sandbox/posix.rs"]
mod posix;
#[path = "sandbox/reach.rs"]
mod reach;
#[path = "sandbox/return_codes.rs"]
mod return_codes;
#[path = "sandbox/security_doc.rs"]
mod security_doc;
#[path = "sandbox/sources.rs"]
mod sources;
#[path = "sandbox/static_zvsh.rs"]
mod static_zvsh;
#[path = "sandbox/stdio_redirects.rs"]
mod stdio_redirects;
#[path = "sandbox/tools.rs"]
mod tools;
#[path = "sandbox/traps.rs"]
mod traps;
#[path = "sandbox/unprivileged.rs"]
mod unprivileged;
#[path = "sandbox/zvsh_cli.rs"]
mod zvsh_cli;
