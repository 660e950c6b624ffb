//! `zerolab`: the orchestrator CLI (cluster files, providers, SSH provisioning, jobs).
//!
//! The commands arrive with the orchestrator issue; until then this binary only
//! reports its version so the workspace builds.

fn main() {
    println!("zerolab {}", env!("CARGO_PKG_VERSION"));
}
