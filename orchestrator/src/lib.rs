//! `zerolab`, the orchestrator: reads a cluster file, brings up labs of many machines,
//! provisions them over SSH and runs the node agent on each.
//!
//! [`cluster`] reads, checks and expands the cluster file with this build's providers;
//! [`job::Job`] does the same for job files (guest groups wired by channels, and
//! ZeroCloud's JSON); both come from the `zerolab-config` crate, which holds no async
//! code. [`provider`] holds the one registry of providers, what each reads from the file
//! and its lifecycle ([`provider::Provider`]: create, address of a node, destroy); [`lab`]
//! is the lab directory, its state, its handle and its lock; [`ssh`] reaches nodes, and
//! [`keeper`] keeps one connection per node for the lab's commands and runs the lab's
//! services; [`backoff`] is the one retry pace; [`install`] is what zerolab puts on them (the agent and
//! its service, from the scripts in [`templates`]); [`agent_client`] talks to their
//! agents; [`up`], [`down`], [`status`], [`exec`], [`sandbox_run`], [`inventory`] and [`login`] are
//! the `up`, `down`, `status`, `exec`, `sandbox run`, `inventory` and `ssh` commands;
//! [`graph`] draws a lab and a job placed on it (`zerolab graph`).
//!
//! ```
//! use zerolab::cluster::NodeSelector;
//!
//! let cluster = zerolab::cluster::from_str(
//!     "apiVersion: zerolab/v1\nkind: Cluster\nname: demo\nprovider: netns\n\
//!      nodes:\n  - {name: node, count: 3, labels: {zone: a}}\n  - {name: edge, address: 10.77.0.50}\n",
//!     "demo.yaml",
//! )?;
//! let selector: NodeSelector = "zone=a,edge".parse()?;
//! let addresses: Vec<String> = cluster.select(&selector)?.iter().map(|n| n.address.to_string()).collect();
//! assert_eq!(addresses, ["10.77.0.2", "10.77.0.3", "10.77.0.4", "10.77.0.50"]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Layering: the library never prints and never exits; the `zerolab` binary parses the
//! command line, calls the library and maps the result to an exit code.

pub mod agent_client;
pub mod backoff;
pub mod cluster;
pub mod down;
pub mod exec;
pub mod graph;
pub mod install;
pub mod inventory;
pub use zerolab_config::job;
pub mod keeper;
pub mod lab;
pub mod lab_handle;
pub mod login;
pub mod machines;
pub mod provider;
pub mod provision;
pub mod run;
pub mod sandbox_run;
pub mod ssh;
pub mod status;
pub mod templates;
pub mod up;
pub mod workshop;
