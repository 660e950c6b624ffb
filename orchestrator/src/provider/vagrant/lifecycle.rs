//! The `vagrant` provider's lifecycle ([`Provider`] for [`Vagrant`]) and what can go wrong
//! in it ([`VagrantError`]). Making is `create.rs`, removing `teardown.rs`, shelving
//! `shelve.rs`.

use std::path::{Path, PathBuf};

use super::{create, render, shelve, teardown, virsh, Names, Vagrant, KIND};
use crate::lab::Lab;
use crate::provider::{
    BoxFuture, CreateProgress, Created, Provider, ProviderError, ProviderKind, ShelveMode, Teardown,
};
use crate::templates::TemplateError;
use zerolab_config::cluster::{Cluster, Node};

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
    /// A machine is not in the state a shelving command should have left it in.
    #[error("node {node}: after `{command}` libvirt says the machine is {found}; Vagrant's output is in {}", log.display())]
    Shelve {
        /// The node.
        node: String,
        /// The command run (`vagrant suspend n1`).
        command: String,
        /// What libvirt says, and what was expected.
        found: String,
        /// Where Vagrant's output is.
        log: PathBuf,
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

    fn shelve<'a>(
        &'a self,
        lab: &'a Lab,
        _cluster: &'a Cluster,
        node: &'a Node,
        mode: ShelveMode,
    ) -> BoxFuture<'a, Result<(), ProviderError>> {
        Box::pin(async move { Ok(shelve::shelve(lab, node, mode).await?) })
    }

    fn unshelve<'a>(
        &'a self,
        lab: &'a Lab,
        _cluster: &'a Cluster,
        node: &'a Node,
    ) -> BoxFuture<'a, Result<(), ProviderError>> {
        Box::pin(async move { Ok(shelve::unshelve(lab, node).await?) })
    }

    fn render(&self, lab: &Lab, cluster: &Cluster, out: &Path) -> Result<Vec<PathBuf>, ProviderError> {
        let names = Names::new(lab.name());
        let public_key = std::fs::read_to_string(lab.public_key())
            .map_err(|source| VagrantError::Io { path: lab.public_key(), source })?;
        let consoles = vagrant_dir(lab).join("console");
        let files = [
            ("Vagrantfile", render::vagrantfile(cluster, &names, &consoles, &public_key).map_err(VagrantError::from)?),
            ("network.xml", render::network(cluster, &names).map_err(VagrantError::from)?),
        ];
        std::fs::create_dir_all(out).map_err(|source| VagrantError::Io { path: out.to_owned(), source })?;
        let mut written = Vec::new();
        for (name, text) in files {
            let path = out.join(name);
            std::fs::write(&path, text).map_err(|source| VagrantError::Io { path: path.clone(), source })?;
            written.push(path);
        }
        Ok(written)
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
