//! `zerolab-agent`: the node agent. It runs sandboxed guests on its node
//! behind a small HTTP/1.1 JSON API served on a Unix socket.
//!
//! - [`api`]: the request and response types, re-exported from the
//!   `zerolab-agent-api` crate, which the orchestrator depends on instead of
//!   this one (the daemon is this crate; the vocabulary is that one).
//! - [`server`] (axum router, socket, node facts), [`state`] (the state
//!   directory and its private subdirectories), [`blobs`] (content-addressed
//!   uploads, collected past a size), [`sessions`] (one guest per
//!   `std::thread`, outputs in files, kill handles, expiry once finished),
//!   [`devices`] (a session's stdin … image from blobs, node files or URLs,
//!   which [`fetch`] downloads) and [`channels`] (channels between guests:
//!   local pipes, and authenticated TCP connections between agents handed to
//!   the guests as descriptors); [`warm`] keeps warm daemons for `warm: true`
//!   sessions (ZeroVM's daemon mode).
//!
//! **How the orchestrator reaches it, and why that is secure.** The API is
//! served only on a Unix socket (default `/run/zerolab/agent.sock`, mode
//! 0600 in a 0700 directory, owned by the agent's user). The one TCP port
//! (`--channel-port`, default 7700) carries channel data between agents and
//! nothing else: a connection reaches a guest only after proving it holds
//! that job's and channel's key (see [`channels`]). The orchestrator
//! already holds an SSH connection to every node and
//! opens a `direct-streamlocal@openssh.com` channel to the socket over it.
//! So a request needs either the lab's SSH key (authenticated and encrypted
//! by sshd) or the agent's own user (root) on the node — the same people who
//! could run anything there anyway. No second credential, no TLS to manage.
//! See `docs/agent.md`.
//!
//! ```no_run
//! # async fn run() -> Result<(), zerolab_agent::server::ServeError> {
//! use std::path::Path;
//! use zerolab_agent::state::Retention;
//! zerolab_agent::server::serve(
//!     Path::new("/run/zerolab/agent.sock"),
//!     Path::new("/var/lib/zerolab"),
//!     "0.0.0.0:7700".parse().unwrap(),
//!     Retention::default(),
//!     std::future::pending(),
//! )
//! .await
//! # }
//! ```

pub use zerolab_agent_api as api;

pub mod blobs;
pub mod channels;
pub mod devices;
pub mod fetch;
pub mod server;
pub mod sessions;
pub mod state;
pub mod warm;
