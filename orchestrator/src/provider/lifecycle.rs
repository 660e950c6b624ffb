//! The provider lifecycle: how a lab's nodes come to exist, are reached, and go away.
//!
//! [`Provider`] is the one interface every kind implements (`netns`, `ssh`, `vagrant`,
//! `pxe`, one module each); the [`registry`] maps a cluster's
//! provider to its implementation, and [`of`] is how commands get it.
//! What a command does with it, in order: [`Provider::check`] before anything is touched,
//! [`Provider::create`] (idempotent: an existing node is kept), [`Provider::address`] of
//! each node to provision it over SSH, [`Provider::destroy`] on `zerolab down`. Power off
//! and on are optional: the default says the provider does not support them.
//!
//! Design: a trait object, not generics, so the registry is a plain list and a command
//! holds `&dyn Provider` whatever the kind. The steps that run over the network return
//! boxed futures (`BoxFuture`), which keeps the trait object-safe; the rest are plain calls.

use std::future::Future;
use std::pin::Pin;

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

/// What a provider could not do.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// The provider is in the cluster file's list, but zerolab cannot bring it up yet.
    #[error("the {provider} provider's bring-up is not implemented yet (netns, ssh and vagrant are)")]
    NotImplemented {
        /// The provider.
        provider: ProviderKind,
    },
    /// The operation makes no sense for this provider.
    #[error("{operation} is not supported by the {provider} provider: {reason}")]
    NotSupported {
        /// The provider.
        provider: ProviderKind,
        /// What was asked (`power off`, `power on`).
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

    /// Each node's machine as its hypervisor sees it (`running`, `shut off`, `missing`),
    /// in file order, for providers whose nodes are machines they run; `None` otherwise.
    fn machine_states<'a>(&'a self, _lab: &'a Lab, _cluster: &'a Cluster) -> BoxFuture<'a, Option<Vec<String>>> {
        Box::pin(async { None })
    }

    /// Switches `node` off, keeping it. Not supported unless the provider says so.
    fn power_off<'a>(&'a self, _lab: &'a Lab, _node: &'a Node) -> BoxFuture<'a, Result<(), ProviderError>> {
        let error = ProviderError::NotSupported {
            provider: self.kind(),
            operation: "power off",
            reason: "it cannot switch its nodes off and on",
        };
        Box::pin(async move { Err(error) })
    }

    /// Switches `node` back on. Not supported unless the provider says so.
    fn power_on<'a>(&'a self, _lab: &'a Lab, _node: &'a Node) -> BoxFuture<'a, Result<(), ProviderError>> {
        let error = ProviderError::NotSupported {
            provider: self.kind(),
            operation: "power on",
            reason: "it cannot switch its nodes off and on",
        };
        Box::pin(async move { Err(error) })
    }
}

/// The provider of `cluster`, once it has passed [`Provider::check`].
pub fn of(cluster: &Cluster) -> Result<&'static dyn Provider, ProviderError> {
    let provider = registry::definition(cluster.provider()).lifecycle;
    provider.check(cluster)?;
    Ok(provider)
}

/// What the providers that zerolab cannot bring up yet answer to everything.
pub(super) struct NotImplemented(pub ProviderKind);

impl Provider for NotImplemented {
    fn kind(&self) -> ProviderKind {
        self.0
    }

    fn check(&self, _cluster: &Cluster) -> Result<(), ProviderError> {
        Err(ProviderError::NotImplemented { provider: self.0 })
    }

    fn is_up(&self, _lab: &Lab) -> Result<bool, ProviderError> {
        Err(ProviderError::NotImplemented { provider: self.0 })
    }

    fn create<'a>(
        &'a self,
        _lab: &'a Lab,
        _cluster: &'a Cluster,
        _progress: CreateProgress,
    ) -> BoxFuture<'a, Result<Created, ProviderError>> {
        Box::pin(async move { Err(ProviderError::NotImplemented { provider: self.0 }) })
    }

    fn address(&self, _lab: &Lab, _node: &Node) -> Result<Target, ProviderError> {
        Err(ProviderError::NotImplemented { provider: self.0 })
    }

    fn destroy<'a>(&'a self, _lab: &'a Lab, _cluster: &'a Cluster) -> BoxFuture<'a, Result<Teardown, ProviderError>> {
        Box::pin(async move { Err(ProviderError::NotImplemented { provider: self.0 }) })
    }

    fn power_off<'a>(&'a self, _lab: &'a Lab, _node: &'a Node) -> BoxFuture<'a, Result<(), ProviderError>> {
        Box::pin(async move { Err(ProviderError::NotImplemented { provider: self.0 }) })
    }

    fn power_on<'a>(&'a self, _lab: &'a Lab, _node: &'a Node) -> BoxFuture<'a, Result<(), ProviderError>> {
        Box::pin(async move { Err(ProviderError::NotImplemented { provider: self.0 }) })
    }
}
