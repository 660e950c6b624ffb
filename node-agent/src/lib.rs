//! `zerolab-agent`: the node agent. It runs sandboxed guests on its node
//! behind a small HTTP/1.1 JSON API served on a Unix socket.
//!
//! - [`api`]: the request and response types. Always compiled, serde only:
//!   the orchestrator depends on this crate with `default-features = false`
//!   and gets nothing else.
//! - With the default `server` feature: [`server`] (axum router, socket,
//!   node facts), [`blobs`] (content-addressed uploads), [`sessions`]
//!   (one guest per `std::thread`, outputs in files, kill handles),
//!   [`devices`] (a session's stdin … image from blobs, node files or URLs,
//!   which [`fetch`] downloads) and
//!   [`channels`] (channels between guests: local pipes, and authenticated
//!   TCP connections between agents handed to the guests as descriptors).
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
//! # #[cfg(feature = "server")]
//! # async fn run() -> Result<(), zerolab_agent::server::ServeError> {
//! use std::path::Path;
//! zerolab_agent::server::serve(
//!     Path::new("/run/zerolab/agent.sock"),
//!     Path::new("/var/lib/zerolab"),
//!     "0.0.0.0:7700".parse().unwrap(),
//!     std::future::pending(),
//! )
//! .await
//! # }
//! ```

pub mod api;

#[cfg(feature = "server")]
pub mod blobs;
#[cfg(feature = "server")]
pub mod channels;
#[cfg(feature = "server")]
pub mod devices;
#[cfg(feature = "server")]
pub mod fetch;
#[cfg(feature = "server")]
pub mod server;
#[cfg(feature = "server")]
pub mod sessions;
