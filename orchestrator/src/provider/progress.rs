//! Per-node progress of [`Provider::create`](super::Provider::create): making a node can
//! take minutes (a Vagrant box boots, a PXE machine installs), so a provider says where
//! each node is as it goes, and the UI shows it per node.
//!
//! The sink is shared with the threads and tasks a provider makes nodes on, hence an
//! `Arc` of a thread-safe callback; a provider calls it from wherever it works.

use std::sync::Arc;

/// Where one node is in its making.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CreateStep {
    /// Being made (netns: its namespace, link and files).
    Making,
    /// Made, now starting (netns: its sshd, until it listens).
    Booting,
    /// A step of its own making the provider names (pxe: `kernel`, `installing`).
    Step(String),
    /// Made and reachable: ready for provisioning.
    Made,
}

/// Gets each node's steps from `create`, as `(node, step)`.
pub type CreateProgress = Arc<dyn Fn(&str, CreateStep) + Send + Sync>;

/// A sink that shows nothing (for callers with no one to tell).
pub fn no_progress() -> CreateProgress {
    Arc::new(|_: &str, _: CreateStep| {})
}
