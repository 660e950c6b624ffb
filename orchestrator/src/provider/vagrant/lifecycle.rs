//! The `vagrant` provider's lifecycle ([`Provider`] for [`Vagrant`]) and what can go wrong
//! in it ([`VagrantError`]). Making is `create.rs`, removing `teardown.rs`.

use std::path::PathBuf;

use super::{create, teardown, virsh, Names, Vagrant, KIND};
use crate::lab::Lab;
use crate::provider::{BoxFuture, CreateProgress, Created, Provider, ProviderError, ProviderKind, Teardown};
use crate::templates::TemplateError;
use zerolab_config::cluster::Cluster;

/// What can go wrong making, reaching or removing a `vagrant` lab.
#[derive(Debug, thiserror::Error)]
pub enum VagrantError {
    /// A program the provider runs is not installed.
    #[error("{program} not found: run `sudo vagrant/setup` (it installs Vagrant, vagrant-libvirt and libvirt)")]
    Missing {
        /// The program.
        program: &'static str,
    },
    /// A node's box is not in Vagrant.
    #[error(
        "box `{name}` is not added to Vagrant (looked in {}): build it with `sudo vagrant/build-box`, or `vagrant box \
         add` a libvirt box of that name",
        home.display()
    )]
    NoBox {
        /// The box.
        name: String,
        /// The Vagrant home searched.
        home: PathBuf,
    },
    /// libvirt refused or failed.
    #[error("`virsh {command}` failed: {detail}; is libvirtd running? (`sudo vagrant/setup` starts it)")]
    Virsh {
        /// The virsh arguments.
        command: String,
        /// virsh's message.
        detail: String,
    },
    /// Vagrant failed.
    #[error("`{command}` failed: {tail}{}", log.as_ref().map(|l| format!(" (its whole output: {})", l.display())).unwrap_or_default())]
    Vagrant {
        /// The command.
        command: String,
        /// The last lines it printed.
        tail: String,
        /// Where all of its output is.
        log: Option<PathBuf>,
    },
    /// A machine's host key was not on its console: it cannot be pinned.
    #[error(
        "node {node}: its SSH host key did not appear on its serial console ({}); zerolab pins the key from there \
         before logging in, so the box must print it (boxes from vagrant/build-box do)",
        console.display()
    )]
    NoHostKey {
        /// The node.
        node: String,
        /// Its console log.
        console: PathBuf,
    },
    /// Vagrant reaches a machine otherwise than the cluster file says.
    #[error("node {node}: Vagrant reaches it with {what} {found}, but the cluster file says {expected}; {fix}")]
    Mismatch {
        /// The node.
        node: String,
        /// What differs (`address`, `user`).
        what: &'static str,
        /// What the cluster file says.
        expected: String,
        /// What Vagrant said.
        found: String,
        /// What to do.
        fix: &'static str,
    },
    /// `down` could not remove everything.
    #[error("lab `{lab}` not fully removed: {left} is still there; remove it with `virsh -c qemu:///system` (undefine, vol-delete, net-undefine)")]
    Leftover {
        /// The lab.
        lab: String,
        /// What is left.
        left: String,
    },
    /// A lab file.
    #[error("cannot write {}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The lab's pinned host keys could not be read or written, or a machine's key is
    /// not the one pinned. Boxed: SSH errors are large and this one is rare.
    #[error(transparent)]
    HostKeys(Box<crate::ssh::Error>),
    /// A template (a zerolab bug).
    #[error(transparent)]
    Template(#[from] TemplateError),
}

impl From<crate::ssh::Error> for VagrantError {
    fn from(error: crate::ssh::Error) -> VagrantError {
        VagrantError::HostKeys(Box::new(error))
    }
}

/// The lab's Vagrant directory: its Vagrantfile, network, console logs and Vagrant's state.
pub(super) fn vagrant_dir(lab: &Lab) -> PathBuf {
    lab.dir().join("vagrant")
}

impl Provider for Vagrant {
    fn kind(&self) -> ProviderKind {
        KIND
    }

    /// Up while the lab's Vagrantfile exists: `up` writes it first, `down` removes it last.
    fn is_up(&self, lab: &Lab) -> Result<bool, ProviderError> {
        Ok(vagrant_dir(lab).join("Vagrantfile").exists())
    }

    fn create<'a>(
        &'a self,
        lab: &'a Lab,
        cluster: &'a Cluster,
        progress: CreateProgress,
    ) -> BoxFuture<'a, Result<Created, ProviderError>> {
        Box::pin(create::create(lab, cluster, progress))
    }

    fn destroy<'a>(&'a self, lab: &'a Lab, cluster: &'a Cluster) -> BoxFuture<'a, Result<Teardown, ProviderError>> {
        Box::pin(async move { Ok(teardown::destroy(lab, cluster).await?) })
    }

    fn removes_nodes(&self) -> bool {
        true
    }

    fn machine_states<'a>(&'a self, lab: &'a Lab, cluster: &'a Cluster) -> BoxFuture<'a, Option<Vec<String>>> {
        Box::pin(async move {
            let names = Names::new(lab.name());
            let mut states = Vec::new();
            for node in cluster.nodes() {
                let state = match virsh::domain_state(&names.domain(&node.name)).await {
                    Ok(Some(state)) => state,
                    Ok(None) => "missing".to_owned(),
                    Err(_) => "unknown".to_owned(),
                };
                states.push(state);
            }
            Some(states)
        })
    }
}
