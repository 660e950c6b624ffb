//! Shelving a `vagrant` machine, through Vagrant (`machines.rs`), checked with libvirt:
//! - SHELVED ([`ShelveMode::Frozen`]): `vagrant suspend`. vagrant-libvirt 0.11 pauses the
//!   domain by default (`suspend_mode = "pause"`): its memory stays in this host's RAM and
//!   `resume` is instant. (Its other mode, `managedsave`, writes the memory to disk and
//!   frees it, but costs a write and a read of all of it, slow under emulation; zerolab
//!   keeps the default, which is Nova's SHELVED: the host still holds the machine.)
//!   libvirt then says `paused`.
//! - SHELVED_OFFLOADED ([`ShelveMode::Offloaded`]): `vagrant halt` (a graceful shutdown;
//!   a paused machine is resumed first by Vagrant itself). libvirt then says `shut off`;
//!   the disk (and with it the host key, the files, the agent's binary) stays.
//! - Unshelve: by libvirt's word on the domain, `paused` → `vagrant resume`, `shut off` →
//!   `vagrant up` of that machine (its provisioner ran on its first up and does not run
//!   again), `running` → nothing. The address is the network's reservation for the
//!   machine's fixed MAC, the host key the one pinned (the next SSH login checks it).

use std::path::PathBuf;

use super::lifecycle::vagrant_dir;
use super::{machines, virsh, Names, VagrantError};
use crate::lab::Lab;
use crate::provider::{no_progress, ShelveMode};
use zerolab_config::cluster::Node;

/// Where the shelving commands' output goes.
fn log(lab: &Lab) -> PathBuf {
    vagrant_dir(lab).join("shelve.log")
}

/// Suspends (`Frozen`) or halts (`Offloaded`) `node`'s machine; done when libvirt says so.
pub async fn shelve(lab: &Lab, node: &Node, mode: ShelveMode) -> Result<(), VagrantError> {
    let (verb, expected) = match mode {
        ShelveMode::Frozen => ("suspend", "paused"),
        ShelveMode::Offloaded => ("halt", "shut off"),
    };
    let domain = Names::new(lab.name()).domain(&node.name);
    if virsh::domain_state(&domain).await?.as_deref() == Some(expected) {
        return Ok(());
    }
    machines::on_machines(&vagrant_dir(lab), verb, std::slice::from_ref(&node.name), &log(lab)).await?;
    expect_state(lab, node, verb, expected).await
}

/// Brings `node`'s machine back from whichever shelved state libvirt reports.
pub async fn unshelve(lab: &Lab, node: &Node) -> Result<(), VagrantError> {
    let domain = Names::new(lab.name()).domain(&node.name);
    let (dir, nodes) = (vagrant_dir(lab), std::slice::from_ref(&node.name));
    let verb = match virsh::domain_state(&domain).await?.as_deref() {
        Some("running") => return Ok(()),
        None => return expect_state(lab, node, "unshelve", "running").await,
        Some("paused") => {
            machines::on_machines(&dir, "resume", nodes, &log(lab)).await?;
            "resume"
        }
        Some(_) => {
            machines::up(&dir, nodes, &log(lab), &no_progress()).await?;
            "up"
        }
    };
    expect_state(lab, node, verb, "running").await
}

/// Checks that libvirt reports `node`'s machine `expected` after `vagrant VERB`.
async fn expect_state(lab: &Lab, node: &Node, verb: &str, expected: &str) -> Result<(), VagrantError> {
    let found = virsh::domain_state(&Names::new(lab.name()).domain(&node.name)).await?;
    let found = found.unwrap_or_else(|| "missing".to_owned());
    if found == expected {
        return Ok(());
    }
    Err(VagrantError::Shelve {
        node: node.name.clone(),
        command: format!("vagrant {verb} {}", node.name),
        found: format!("{found}, not {expected}"),
        log: log(lab),
    })
}
