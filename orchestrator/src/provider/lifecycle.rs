//! The provider lifecycle: how a lab's nodes come to exist, are reached, and go away.
//!
//! [`Provider`] is the one interface every kind implements (`netns`, `ssh`, `vagrant`,
//! `pxe`, one module each); the [`registry`] maps a cluster's
//! provider to its implementation, and [`of`] is how commands get it.
//! What a command does with it, in order: [`Provider::check`] before anything is touched,
//! [`Provider::create`] (idempotent: an existing node is kept), [`Provider::address`] of
//! each node to provision it over SSH, [`Provider::destroy`] on `zerolab down`. Power off
//! and on, and shelving ([`Provider::shelve`], [`Provider::unshelve`], in a [`ShelveMode`]),
//! are optional: the default says the provider does not support them, and why.
//!
//! Design: a trait object, not generics, so the registry is a plain list and a command
//! holds `&dyn Provider` whatever the kind. The steps that run over the network return
//! boxed futures (`BoxFuture`), which keeps the trait object-safe; the rest are plain calls.

use std::future::Future;
use std::pin::Pin;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::pxe::power::{PowerAction, PowerState};
use super::{netns, registry, CreateProgress, ProviderKind, Teardown};
use crate::lab::{Lab, LabError};
use crate::ssh::Target;
use zerolab_config::cluster::{Cluster, Node};

/// A future that can be held by a trait object and sent between threads.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What [`Provider::create`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Created {
    /// The nodes were made now (new machines: new host keys).
    Made,
    /// The nodes existed already and were kept.
    Existing,
}

/// How a node is shelved (Nova's states).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ShelveMode {
    /// SHELVED: memory kept, processes stopped (netns: frozen; vagrant: suspend).
    Frozen,
    /// SHELVED_OFFLOADED: processes gone, state kept on disk, memory freed
    /// (netns: processes killed, files/keys/address kept; vagrant: halt; pxe: power off).
    Offloaded,
}

impl ShelveMode {
    /// The command that shelves in this mode, as a user types it (`shelve --offload`).
    pub fn command(self) -> &'static str {
        match self {
            ShelveMode::Frozen => "shelve",
            ShelveMode::Offloaded => "shelve --offload",
        }
    }
}

/// What a provider could not do.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// The operation makes no sense for this provider.
    #[error("{operation} is not supported by the {provider} provider: {reason}")]
    NotSupported {
        /// The provider.
        provider: ProviderKind,
        /// What was asked (`power off`, `reinstall`, `render`).
        operation: &'static str,
        /// Why it makes no sense there.
        reason: &'static str,
    },
    /// A node's `key:` could not be made into a path.
    #[error("node {node}: key `{key}`: {reason}")]
    Key {
        /// The node.
        node: String,
        /// The key as written in the cluster file.
        key: String,
        /// What is wrong and what to write instead.
        reason: String,
    },
    /// Making or removing namespace hosts failed.
    #[error(transparent)]
    Netns(#[from] netns::NetnsError),
    /// Making, booting or removing PXE machines failed.
    #[error(transparent)]
    Pxe(#[from] super::pxe::PxeError),
    /// Switching a machine on or off failed.
    #[error(transparent)]
    Power(#[from] super::pxe::power::PowerError),
    /// Making or removing virtual machines failed.
    #[error(transparent)]
    Vagrant(#[from] super::vagrant::VagrantError),
    /// A lab file.
    #[error(transparent)]
    Lab(#[from] LabError),
    /// The pinned host keys could not be read.
    #[error(transparent)]
    HostKeys(#[from] crate::ssh::Error),
}

/// How a provider's nodes come to exist, are reached, and go away.
pub trait Provider: Send + Sync {
    /// Which provider this is.
    fn kind(&self) -> ProviderKind;

    /// Refuses, before anything is touched, what this provider cannot do for `cluster`.
    fn check(&self, _cluster: &Cluster) -> Result<(), ProviderError> {
        Ok(())
    }

    /// Whether the lab's nodes exist (a lab that is not up has no node to reach).
    fn is_up(&self, lab: &Lab) -> Result<bool, ProviderError>;

    /// Makes every node of `cluster` exist; nodes that exist already are kept. Each
    /// node's steps go to `progress` as they happen.
    fn create<'a>(
        &'a self,
        lab: &'a Lab,
        cluster: &'a Cluster,
        progress: CreateProgress,
    ) -> BoxFuture<'a, Result<Created, ProviderError>>;

    /// Where and as whom `node` is reached over SSH. By default: its address from the
    /// cluster file, its port, its user and the lab's own key pair.
    fn address(&self, lab: &Lab, node: &Node) -> Result<Target, ProviderError> {
        Ok(Target {
            node: node.name.clone(),
            address: node.address.to_string(),
            port: node.ssh_port(),
            user: node.user.clone(),
            key: lab.private_key(),
        })
    }

    /// Undoes [`create`](Self::create) and everything zerolab did on the nodes, leaving
    /// the lab directory to the caller. Idempotent. A node it could not clean, or left
    /// alone (another lab's), is in the [`Teardown`], not an error: `down` finishes.
    fn destroy<'a>(&'a self, lab: &'a Lab, cluster: &'a Cluster) -> BoxFuture<'a, Result<Teardown, ProviderError>>;

    /// Whether a node removed from the cluster file is removed from the lab (its host or
    /// machine goes), rather than forgotten (what zerolab installed there stays).
    fn removes_nodes(&self) -> bool {
        false
    }

    /// Hears that `node` of the lab in `lab_dir` is ready (its agent answers), as `up`
    /// finds it; providers that follow their machines' progress record it (pxe).
    fn node_ready(&self, _lab_dir: &Path, _node: &str) {}

    /// Each node's machine as its hypervisor sees it (`running`, `shut off`, `missing`),
    /// in file order, for providers whose nodes are machines they run; `None` otherwise.
    fn machine_states<'a>(&'a self, _lab: &'a Lab, _cluster: &'a Cluster) -> BoxFuture<'a, Option<Vec<String>>> {
        Box::pin(async { None })
    }

    /// Switches `node`'s machine on, off, or resets it. Not supported unless the provider
    /// says so.
    fn power<'a>(
        &'a self,
        _lab: &'a Lab,
        _cluster: &'a Cluster,
        _node: &'a Node,
        action: PowerAction,
    ) -> BoxFuture<'a, Result<(), ProviderError>> {
        unsupported(self.kind(), power_verb(action), "it cannot switch its nodes off and on")
    }

    /// Whether `node`'s machine is on. Not supported unless the provider says so.
    fn power_state<'a>(
        &'a self,
        _lab: &'a Lab,
        _cluster: &'a Cluster,
        _node: &'a Node,
    ) -> BoxFuture<'a, Result<PowerState, ProviderError>> {
        unsupported(self.kind(), "power status", "it cannot switch its nodes off and on")
    }

    /// Shelves `node` in `mode`: stops it running, keeping its address, host key and
    /// files (and with [`ShelveMode::Frozen`] its memory). A node shelved
    /// [`Frozen`](ShelveMode::Frozen) may be asked to go [`Offloaded`](ShelveMode::Offloaded).
    /// The caller records the state. Not supported unless the provider says so.
    fn shelve<'a>(
        &'a self,
        _lab: &'a Lab,
        _cluster: &'a Cluster,
        _node: &'a Node,
        mode: ShelveMode,
    ) -> BoxFuture<'a, Result<(), ProviderError>> {
        unsupported(self.kind(), mode.command(), "it cannot stop its nodes and bring them back")
    }

    /// Brings a shelved `node` back with the same address, host key and files, its sshd
    /// answering; the caller then starts the agent as `up` does and records the state.
    /// Not supported unless the provider says so.
    fn unshelve<'a>(
        &'a self,
        _lab: &'a Lab,
        _cluster: &'a Cluster,
        _node: &'a Node,
    ) -> BoxFuture<'a, Result<(), ProviderError>> {
        unsupported(self.kind(), "unshelve", "it cannot stop its nodes and bring them back")
    }

    /// Installs `node` again from scratch on its next boot and power-cycles it. Not
    /// supported unless the provider installs machines.
    fn reinstall<'a>(
        &'a self,
        _lab: &'a Lab,
        _cluster: &'a Cluster,
        _node: &'a Node,
    ) -> BoxFuture<'a, Result<(), ProviderError>> {
        unsupported(self.kind(), "reinstall", "it does not install machines")
    }

    /// Writes every file the provider renders for `cluster` into `out`, starting nothing;
    /// returns the files written. Not supported by providers that render nothing.
    fn render(&self, _lab: &Lab, _cluster: &Cluster, _out: &Path) -> Result<Vec<PathBuf>, ProviderError> {
        Err(ProviderError::NotSupported {
            provider: self.kind(),
            operation: "render",
            reason: "it renders no files (the vagrant and pxe providers do)",
        })
    }
}

/// A provider's answer to what it cannot do: [`ProviderError::NotSupported`].
fn unsupported<'a, T: 'a>(
    provider: ProviderKind,
    operation: &'static str,
    reason: &'static str,
) -> BoxFuture<'a, Result<T, ProviderError>> {
    Box::pin(async move { Err(ProviderError::NotSupported { provider, operation, reason }) })
}

/// `action` as the command says it (`power on`).
fn power_verb(action: PowerAction) -> &'static str {
    match action {
        PowerAction::On => "power on",
        PowerAction::Off => "power off",
        PowerAction::Cycle => "power cycle",
    }
}

/// The provider of `cluster`, once it has passed [`Provider::check`].
pub fn of(cluster: &Cluster) -> Result<&'static dyn Provider, ProviderError> {
    let provider = registry::definition(cluster.provider()).lifecycle;
    provider.check(cluster)?;
    Ok(provider)
}
