//! The boot plan of a cluster: what `up` hands the boot services ([`BootPlan`]), made
//! from the cluster file, the lab's keys and tokens, and the built artifacts. The same
//! function serves `render`, which needs the plan's shape but no built files.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use super::boot::plan::{BootNode, BootPlan, LiveArtifacts, Route};
use super::error::PxeError;
use super::{artifacts, keys, mirror, Boot, PxeLab, Settings};
use crate::lab::Lab;
use zerolab_config::cluster::{Cluster, NodeAddress};

/// The lab's `pxe:` settings (a valid pxe cluster always has them).
pub fn lab_settings(cluster: &Cluster) -> &PxeLab {
    cluster.lab_settings::<PxeLab>().expect("a valid pxe cluster has its pxe section")
}

/// A node's settings.
pub fn settings(node: &zerolab_config::cluster::Node) -> &Settings {
    node.settings.get::<Settings>().expect("a pxe cluster's nodes have pxe settings")
}

/// `LAB/pxe`.
pub fn pxe_dir(lab: &Lab) -> PathBuf {
    lab.dir().join("pxe")
}

/// What the plan's files are: built now, or only named (`render`).
pub enum Files {
    /// Built (`up`).
    Built {
        /// The live system.
        live: LiveArtifacts,
        /// The disk image, when some node installs by image.
        image: Option<PathBuf>,
    },
    /// Placeholders under the cache (`render`: nothing is built).
    Named,
}

/// Whether some node of `cluster` boots `boot`.
pub fn any(cluster: &Cluster, want: impl Fn(Boot) -> bool) -> bool {
    cluster.nodes().iter().any(|node| want(settings(node).boot))
}

/// The plan of `cluster` in `dir` (`LAB/pxe` for `up`), with every node's token (made
/// unless it exists, kept in the lab's `pxe/keys`).
pub fn make(lab: &Lab, cluster: &Cluster, dir: &Path, files: Files) -> Result<BootPlan, PxeError> {
    let pxe = lab_settings(cluster);
    let subnet = cluster.subnet().expect("a pxe cluster has a lab subnet");
    let (live, image) = match files {
        Files::Built { live, image } => (live, image),
        Files::Named => {
            let cache = artifacts::cache_dir();
            let live = LiveArtifacts { kernel: cache.join("live/vmlinuz"), initrd: cache.join("live/initrd.img") };
            let image =
                any(cluster, |b| b == Boot::Install { route: Route::Image }).then(|| cache.join("image/disk.img.gz"));
            (live, image)
        }
    };
    let installer = if any(cluster, |b| b == Boot::Install { route: Route::Preseed }) {
        let mirror = pxe.mirror.clone().or_else(mirror::host_mirror).ok_or_else(|| {
            PxeError::Plan("no http Debian mirror for bookworm in this host's apt sources; set pxe.mirror".into())
        })?;
        Some(artifacts::installer(mirror, pxe.proxy.clone())?)
    } else {
        None
    };
    let authorized_key = std::fs::read_to_string(lab.public_key())
        .map_err(|source| PxeError::Io { path: lab.public_key(), source })?
        .trim()
        .to_owned();
    let keys_dir = pxe_dir(lab);
    let mut nodes = Vec::new();
    for node in cluster.nodes() {
        let settings = settings(node);
        let NodeAddress::Ip(std::net::IpAddr::V4(address)) = node.address else {
            return Err(PxeError::Plan(format!("node {}: a pxe node's address must be an IPv4 address", node.name)));
        };
        nodes.push(BootNode {
            name: node.name.clone(),
            mac: settings.mac,
            address,
            token: keys::token(&keys_dir, &node.name)?,
            boot: settings.boot,
            disk: settings.disk.clone(),
        });
    }
    Ok(BootPlan {
        lab: lab.name().to_owned(),
        dir: dir.to_owned(),
        interface: pxe.interface.clone(),
        server: pxe.server,
        prefix: subnet.prefix(),
        subnet: subnet.network(),
        http_port: pxe.http_port,
        dhcp: pxe.dhcp,
        loader: pxe.loader,
        authorized_key,
        live,
        image,
        installer,
        agent: beside_zerolab("zerolab-agent"),
        nodes,
    })
}

/// A program installed beside the running zerolab (the agent `up` installs by default):
/// served as a second initrd, it is on a live machine before the first login, so `up`
/// finds it by its sha256 and uploads nothing (another `--agent` is uploaded as usual).
fn beside_zerolab(name: &str) -> Option<PathBuf> {
    let path = std::env::current_exe().ok()?.parent()?.join(name);
    path.is_file().then_some(path)
}

/// Refuses a cluster whose server address is a node's.
pub fn check(cluster: &Cluster) -> Result<(), PxeError> {
    let server = lab_settings(cluster).server;
    for node in cluster.nodes() {
        if node.address.to_string() == server.to_string() {
            return Err(PxeError::Plan(format!(
                "node {} has the boot server's address {server} (pxe.server); give one of them another address",
                node.name
            )));
        }
    }
    if server == Ipv4Addr::UNSPECIFIED {
        return Err(PxeError::Plan("pxe.server is not set and the lab has no subnet to take it from".into()));
    }
    Ok(())
}
