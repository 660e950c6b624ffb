//! Removing a `vagrant` lab: every domain, volume and network with the lab's prefix
//! (`zl-<lab>_`, which no other lab's names start with: see [`Names`]), through libvirt,
//! whatever Vagrant's own state says (so a machine undefined behind Vagrant's back, or a
//! Vagrant directory lost, never keeps the rest from going); then the lab's Vagrant
//! directory. libvirt removes its firewall rules for the network with it. The box's base
//! volume is shared by every lab using the box and stays. Afterwards nothing with the
//! prefix may be left in `virsh list --all`, `net-list --all` or `vol-list`.

use std::path::Path;

use super::lifecycle::vagrant_dir;
use super::{virsh, Names, VagrantError};
use crate::lab::Lab;
use crate::provider::{Left, LeftNode, Teardown};
use zerolab_config::cluster::Cluster;

/// Removes everything of the lab; what libvirt could not remove is listed per node with
/// the commands that remove it by hand.
pub async fn destroy(lab: &Lab, cluster: &Cluster) -> Result<Teardown, VagrantError> {
    let names = Names::new(lab.name());
    match remove_all(&names).await {
        Ok(()) => {}
        Err(e) => {
            let cause = e.to_string();
            let left = cluster
                .nodes()
                .iter()
                .map(|node| LeftNode {
                    node: node.name.clone(),
                    why: Left::Failed { cause: cause.clone(), by_hand: by_hand(&names, &node.name) },
                })
                .collect();
            return Ok(Teardown { left });
        }
    }
    let dir = vagrant_dir(lab);
    match std::fs::remove_dir_all(&dir) {
        Ok(()) => Ok(Teardown::default()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Teardown::default()),
        Err(source) => Err(VagrantError::Io { path: dir, source }),
    }
}

async fn remove_all(names: &Names) -> Result<(), VagrantError> {
    for domain in virsh::domains().await?.into_iter().filter(|d| names.is_ours(d)) {
        virsh::remove_domain(&domain).await?;
    }
    for volume in virsh::volumes().await?.into_iter().filter(|v| names.is_ours(v)) {
        virsh::remove_volume(&volume).await?;
    }
    for network in virsh::networks().await?.into_iter().filter(|n| names.is_ours(n)) {
        virsh::remove_network(&network).await?;
    }
    let mut left: Vec<String> = virsh::domains().await?.into_iter().filter(|d| names.is_ours(d)).collect();
    left.extend(virsh::networks().await?.into_iter().filter(|n| names.is_ours(n)).map(|n| format!("network {n}")));
    left.extend(virsh::volumes().await?.into_iter().filter(|v| names.is_ours(v)).map(|v| format!("volume {v}")));
    match left.is_empty() {
        true => Ok(()),
        false => Err(VagrantError::Leftover { lab: names.prefix(), left: left.join(", ") }),
    }
}

/// Removes one node's machine: its domain, its volume, Vagrant's state of it and its
/// console log. What is not there is fine.
pub async fn remove_machine(names: &Names, dir: &Path, node: &str) -> Result<(), VagrantError> {
    virsh::remove_domain(&names.domain(node)).await?;
    virsh::remove_volume(&names.volume(node)).await?;
    for path in [dir.join(".vagrant/machines").join(node), dir.join("console").join(format!("{node}.log"))] {
        let removed = if path.is_dir() { std::fs::remove_dir_all(&path) } else { std::fs::remove_file(&path) };
        match removed {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(VagrantError::Io { path, source }),
        }
    }
    Ok(())
}

/// The commands that remove node `node`'s machine and the lab network by hand.
fn by_hand(names: &Names, node: &str) -> String {
    format!(
        "as root: `virsh -c qemu:///system destroy {domain}; virsh -c qemu:///system undefine {domain} \
         --remove-all-storage; virsh -c qemu:///system net-destroy {network}; virsh -c qemu:///system net-undefine \
         {network}`",
        domain = names.domain(node),
        network = names.network()
    )
}
