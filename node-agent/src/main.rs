//! `zerolab-agent`: the node agent that embeds the sandbox runtime.
//!
//! The daemon arrives with the orchestrator issue; until then this binary only
//! reports its version so the workspace builds and packages it.

fn main() {
    println!("zerolab-agent {}", env!("CARGO_PKG_VERSION"));
}
