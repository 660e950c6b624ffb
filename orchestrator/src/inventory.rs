//! `zerolab inventory`: the lab's nodes for other tools, as an Ansible INI inventory or
//! an OpenSSH client config.
//!
//! Both reach each node where its provider says (address, port, user, and the lab's key
//! or the node's own `key:`) and check host keys strictly against the keys zerolab
//! pinned. The pins file (`known_hosts` in the lab, `node address key` per line) is not
//! in OpenSSH's format, so [`write()`] writes them beside it as `ssh_known_hosts`, one
//! `NODE key` line per node, and the output sets `HostKeyAlias NODE`: the key is looked
//! up by node name, whatever address and port reach it. [`write_ssh_config`] keeps the
//! OpenSSH config in the lab too (`ssh_config`), for `zerolab ssh`.

use std::fmt::Write;
use std::path::{Path, PathBuf};

use crate::cluster::{Cluster, Node};
use crate::lab::{write_private, Lab, LabError};
use crate::lab_handle::OpenError;
use crate::provider::{Provider, ProviderError};
use crate::ssh::{self, HostKeys};

/// The file in the lab directory holding the pinned host keys in OpenSSH's format.
pub const SSH_KNOWN_HOSTS: &str = "ssh_known_hosts";
/// The file in the lab directory holding the OpenSSH client config of its nodes.
pub const SSH_CONFIG: &str = "ssh_config";

/// What to print.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// An Ansible INI inventory: every node under `[all]`, a group per label.
    Ansible,
    /// An OpenSSH client config (`ssh -F FILE NODE`).
    SshConfig,
}

/// Why the inventory could not be made.
#[derive(Debug, thiserror::Error)]
pub enum InventoryError {
    /// The lab has not been brought up (no keys, no pins), or its provider failed.
    #[error(transparent)]
    Open(#[from] OpenError),
    /// A lab file.
    #[error(transparent)]
    Lab(#[from] LabError),
    /// The pins could not be read.
    #[error(transparent)]
    HostKeys(#[from] ssh::Error),
    /// The provider cannot say where its nodes are.
    #[error(transparent)]
    Provider(#[from] ProviderError),
}

/// Where a tool reaches one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    /// The node's name.
    pub node: String,
    /// Its address.
    pub address: String,
    /// Its sshd's port.
    pub port: u16,
    /// The login user.
    pub user: String,
    /// The private key (absolute).
    pub key: PathBuf,
    /// Its labels, as `key=value`.
    pub labels: Vec<(String, String)>,
}

/// Writes the lab's pins as [`SSH_KNOWN_HOSTS`] and returns the inventory of `cluster`'s
/// lab under `root` in `format`.
pub fn write(root: &Path, cluster: &Cluster, format: Format) -> Result<String, InventoryError> {
    let lab = Lab::open(root, cluster)?;
    let (hosts, known_hosts) = hosts(lab.lab(), cluster, lab.provider())?;
    Ok(match format {
        Format::Ansible => ansible(&hosts, &known_hosts),
        Format::SshConfig => ssh_config(&hosts, &known_hosts),
    })
}

/// Writes the lab's pins as [`SSH_KNOWN_HOSTS`] and its OpenSSH client config as
/// [`SSH_CONFIG`] (both 0600) in the directory of `lab`, which must exist; returns the
/// config's path.
pub fn write_ssh_config(lab: &Lab, cluster: &Cluster, provider: &dyn Provider) -> Result<PathBuf, InventoryError> {
    let (hosts, known_hosts) = hosts(lab, cluster, provider)?;
    let path = lab.dir().join(SSH_CONFIG);
    write_private(&path, ssh_config(&hosts, &known_hosts).as_bytes())?;
    Ok(path)
}

/// Every node of `cluster` as a [`Host`], and the [`SSH_KNOWN_HOSTS`] file just written.
fn hosts(lab: &Lab, cluster: &Cluster, provider: &dyn Provider) -> Result<(Vec<Host>, PathBuf), InventoryError> {
    let known_hosts = absolute(&lab.dir().join(SSH_KNOWN_HOSTS));
    let pins = HostKeys::open(lab.known_hosts())?.pins();
    let text: String = pins.iter().map(|(node, key)| format!("{node} {key}\n")).collect();
    write_private(&known_hosts, text.as_bytes())?;
    let hosts = cluster.nodes().iter().map(|node| host(lab, node, provider)).collect::<Result<_, _>>()?;
    Ok((hosts, known_hosts))
}

fn host(lab: &Lab, node: &Node, provider: &dyn Provider) -> Result<Host, ProviderError> {
    let target = provider.address(lab, node)?;
    Ok(Host {
        node: target.node,
        address: target.address,
        port: target.port,
        user: target.user,
        key: absolute(&target.key),
        labels: node.labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
    })
}

/// `path` made absolute (the tools may run elsewhere); left as it is when that fails.
fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

/// An Ansible group name for a label: `KEY_VALUE`, every character Ansible does not
/// allow in a group name (letters, digits, `_`) replaced by `_`.
fn group(key: &str, value: &str) -> String {
    format!("{key}_{value}").chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' }).collect()
}

/// The Ansible INI inventory of `hosts`, checking host keys against `known_hosts`.
pub fn ansible(hosts: &[Host], known_hosts: &Path) -> String {
    let mut out = String::from("[all]\n");
    for h in hosts {
        let _ = writeln!(
            out,
            "{} ansible_host={} ansible_port={} ansible_user={} ansible_ssh_private_key_file={} \
             ansible_ssh_extra_args='-o HostKeyAlias={}'",
            h.node,
            h.address,
            h.port,
            h.user,
            h.key.display(),
            h.node
        );
    }
    let _ = write!(
        out,
        "\n[all:vars]\nansible_ssh_common_args='-o UserKnownHostsFile={} -o StrictHostKeyChecking=yes'\n",
        known_hosts.display()
    );
    let mut groups: std::collections::BTreeMap<String, Vec<&str>> = Default::default();
    for h in hosts {
        for (key, value) in &h.labels {
            groups.entry(group(key, value)).or_default().push(&h.node);
        }
    }
    for (group, nodes) in groups {
        let _ = write!(out, "\n[{group}]\n{}\n", nodes.join("\n"));
    }
    out
}

/// The OpenSSH client config of `hosts`, checking host keys against `known_hosts`.
pub fn ssh_config(hosts: &[Host], known_hosts: &Path) -> String {
    let mut out = String::new();
    for h in hosts {
        let _ = write!(
            out,
            "Host {}\n  HostName {}\n  Port {}\n  User {}\n  IdentityFile {}\n  IdentitiesOnly yes\n  \
             HostKeyAlias {}\n  UserKnownHostsFile {}\n  StrictHostKeyChecking yes\n\n",
            h.node,
            h.address,
            h.port,
            h.user,
            h.key.display(),
            h.node,
            known_hosts.display()
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts() -> Vec<Host> {
        let host = |node: &str, address: &str, labels: &[(&str, &str)]| Host {
            node: node.into(),
            address: address.into(),
            port: 22,
            user: "root".into(),
            key: "/lab/id_ed25519".into(),
            labels: labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        };
        vec![
            host("node-1", "10.77.0.2", &[("pool", "workers"), ("zone", "eu-1")]),
            host("edge", "10.77.0.50", &[("pool", "workers")]),
        ]
    }

    #[test]
    fn ansible_lists_every_host_and_a_group_per_label() {
        assert_eq!(
            ansible(&hosts(), Path::new("/lab/ssh_known_hosts")),
            "[all]\n\
             node-1 ansible_host=10.77.0.2 ansible_port=22 ansible_user=root \
             ansible_ssh_private_key_file=/lab/id_ed25519 ansible_ssh_extra_args='-o HostKeyAlias=node-1'\n\
             edge ansible_host=10.77.0.50 ansible_port=22 ansible_user=root \
             ansible_ssh_private_key_file=/lab/id_ed25519 ansible_ssh_extra_args='-o HostKeyAlias=edge'\n\
             \n[all:vars]\n\
             ansible_ssh_common_args='-o UserKnownHostsFile=/lab/ssh_known_hosts -o StrictHostKeyChecking=yes'\n\
             \n[pool_workers]\nnode-1\nedge\n\
             \n[zone_eu_1]\nnode-1\n"
        );
    }

    #[test]
    fn ssh_config_has_one_strict_host_block_per_node() {
        let text = ssh_config(&hosts()[..1], Path::new("/lab/ssh_known_hosts"));
        assert_eq!(
            text,
            "Host node-1\n  HostName 10.77.0.2\n  Port 22\n  User root\n  IdentityFile /lab/id_ed25519\n  \
             IdentitiesOnly yes\n  HostKeyAlias node-1\n  UserKnownHostsFile /lab/ssh_known_hosts\n  \
             StrictHostKeyChecking yes\n\n"
        );
    }
}
