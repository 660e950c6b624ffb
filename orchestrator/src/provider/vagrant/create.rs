//! Making a `vagrant` lab's machines, or bringing an existing lab back to its cluster
//! file, in this order:
//! 1. every node's box is in Vagrant (a missing one is named with the command that makes it);
//! 2. nodes no longer in the cluster file: their domain, volume and Vagrant state go;
//! 3. each node's domain is asked for (libvirt, not Vagrant): running ones are kept;
//!    stopped ones are started by `vagrant up`; a missing one whose Vagrant state or
//!    volume remains was removed behind Vagrant's back (`virsh undefine`): its remains go,
//!    its pin and its provisioning records are forgotten (a new machine has a new key
//!    and none of the steps done), and it is made again;
//! 4. nothing to start and the Vagrantfile unchanged: done, without running Vagrant;
//! 5. the Vagrantfile and network are written, the network defined and started (a new
//!    lab's subnet must be free), reservations added for nodes new to it;
//! 6. `vagrant up` of the machines to start, under a machine-wide lock while the box's
//!    base volume is not yet in the pool (two labs uploading it at once corrupt it);
//!    once more when it failed on another lab's network vanishing meanwhile (Vagrant's
//!    libvirt provider reads every network while it makes a domain);
//!    a new lab that fails here is removed again, whole;
//! 7. each started machine's host key, from its console, is pinned; `vagrant ssh-config`,
//!    read once, must reach it at its address (Vagrant logs in as its own user with its
//!    own key; zerolab as the node's user with the lab's key, authorized by the
//!    Vagrantfile's provisioner);
//! 8. the started nodes are recorded `provisioning`: `up` installs the agent next.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::fcntl::{Flock, FlockArg};

use super::lifecycle::vagrant_dir;
use super::{console, machines, render, teardown, virsh, Names, Settings, VagrantError};
use crate::lab::{Lab, NodeRecord, NodeState};
use crate::provider::{netns, CreateProgress, CreateStep, Created, ProviderError};
use crate::ssh::HostKeys;
use zerolab_config::cluster::Cluster;

/// How long a started machine has to show its host key on its console after Vagrant
/// says it is up (it is printed before sshd starts, so at once in practice).
const HOST_KEY_WAIT: Duration = Duration::from_secs(60);
/// The machine-wide lock held while a box's base volume is uploaded.
const BOX_LOCK: &str = "/run/zerolab/vagrant-box.lock";

/// Makes (or repairs, or starts) every machine of `cluster`; see the module doc.
pub async fn create(lab: &Lab, cluster: &Cluster, progress: CreateProgress) -> Result<Created, ProviderError> {
    let names = Names::new(lab.name());
    let dir = vagrant_dir(lab);
    let consoles = dir.join("console");
    check_boxes(cluster)?;
    let fresh = !dir.join("Vagrantfile").exists();
    let mut state = lab.load_state()?;

    let removed: Vec<String> = state.nodes.keys().filter(|n| cluster.node(n).is_none()).cloned().collect();
    for node in &removed {
        teardown::remove_machine(&names, &dir, node).await?;
        state.nodes.remove(node);
    }

    let mut start = Vec::new();
    let mut remade = Vec::new();
    for node in cluster.nodes() {
        match virsh::domain_state(&names.domain(&node.name)).await? {
            Some(state) if state == "running" => {}
            Some(_) => start.push(node.name.clone()),
            None => {
                let remains = dir.join(".vagrant/machines").join(&node.name).exists();
                if remains {
                    tracing::warn!(
                        "node {}: its machine {} is gone (undefined outside zerolab?); making it again",
                        node.name,
                        names.domain(&node.name)
                    );
                }
                teardown::remove_machine(&names, &dir, &node.name).await?;
                let steps = lab.dir().join("provision").join(&node.name);
                crate::provision::record::forget(lab.dir(), &node.name).map_err(io(&steps))?;
                start.push(node.name.clone());
                remade.push(node.name.clone());
            }
        }
    }

    let public_key = std::fs::read_to_string(lab.public_key()).map_err(io(&lab.public_key()))?;
    let vagrantfile = render::vagrantfile(cluster, &names, &consoles, &public_key).map_err(VagrantError::from)?;
    let network = render::network(cluster, &names).map_err(VagrantError::from)?;
    let vagrantfile_path = dir.join("Vagrantfile");
    let unchanged = std::fs::read_to_string(&vagrantfile_path).is_ok_and(|text| text == vagrantfile);
    if start.is_empty() && unchanged && removed.is_empty() {
        return Ok(Created::Existing);
    }

    if fresh {
        if virsh::network_state(&names.network()).await?.is_none() {
            let subnet = cluster.subnet().expect("a vagrant cluster has a lab subnet");
            netns::check_subnet_free(subnet)?;
        }
        // New machines, new host keys: pins of an earlier lab of this name are void.
        write(&lab.known_hosts(), "")?;
    }
    HostKeys::open(lab.known_hosts()).and_then(|keys| keys.forget(&remade)).map_err(VagrantError::from)?;
    std::fs::create_dir_all(&consoles).map_err(io(&consoles))?;
    let network_path = dir.join("network.xml");
    write(&network_path, &network)?;
    write(&vagrantfile_path, &vagrantfile)?;
    virsh::start_network(&names.network(), &network_path).await?;
    reserve(cluster, &names).await?;
    if start.is_empty() {
        lab.save_state(&state)?;
        return Ok(Created::Existing);
    }

    let made = bring_up(lab, cluster, &dir, &start, &progress).await;
    if let Err(e) = made {
        if fresh {
            // Fail closed: no half-made lab. The first error is the one worth reporting.
            let _ = teardown::destroy(lab, cluster).await;
        }
        return Err(e.into());
    }
    for node in &start {
        let address = cluster.node(node).map(|n| n.address.to_string()).unwrap_or_default();
        let record = state.nodes.entry(node.clone()).or_insert_with(|| NodeRecord::new(address, NodeState::Declared));
        record.state = NodeState::Provisioning;
        progress(node, CreateStep::Made);
    }
    lab.save_state(&state)?;
    Ok(Created::Made)
}

/// Steps 6 and 7 for the machines in `start`.
async fn bring_up(
    lab: &Lab,
    cluster: &Cluster,
    dir: &Path,
    start: &[String],
    progress: &CreateProgress,
) -> Result<(), VagrantError> {
    let _lock = box_lock(cluster).await?;
    let log = dir.join("up.log");
    match machines::up(dir, start, &log, progress).await {
        // The libvirt provider reads every network on the machine while it makes a
        // domain; another lab's network removed at that moment fails the machine (and
        // Vagrant removes it again). Nothing of this lab was wrong: once more.
        Err(VagrantError::Vagrant { tail, .. }) if tail.contains("Network not found") => {
            tracing::warn!("vagrant up failed on a network removed meanwhile (another lab going down?); once more");
            machines::up(dir, start, &log, progress).await?;
        }
        other => other?,
    }
    drop(_lock);
    let host_keys = HostKeys::open(lab.known_hosts())?;
    for node in start {
        let address = cluster.node(node).map(|n| n.address.to_string()).unwrap_or_default();
        let key = console::wait_host_key(node, &dir.join("console").join(format!("{node}.log")), HOST_KEY_WAIT).await?;
        host_keys.check(node, &address, &key)?;
    }
    let configs = machines::ssh_config(dir, start).await?;
    for name in start {
        let node = cluster.node(name).expect("started nodes are the cluster's");
        let mismatch = |what, expected: String, found: String, fix| VagrantError::Mismatch {
            node: name.clone(),
            what,
            expected,
            found,
            fix,
        };
        let Some(config) = configs.get(name) else {
            let fix = "see vagrant/up.log in the lab directory";
            return Err(mismatch("address", node.address.to_string(), "nothing".into(), fix));
        };
        if config.host != node.address.to_string() {
            let fix = "run `zerolab down` and `zerolab up` to remake the lab";
            return Err(mismatch("address", node.address.to_string(), config.host.clone(), fix));
        }
    }
    Ok(())
}

/// Adds a DHCP reservation to the lab's network for every node it lacks one for (nodes
/// added to a lab that is up).
async fn reserve(cluster: &Cluster, names: &Names) -> Result<(), VagrantError> {
    let network = names.network();
    let xml = virsh::run(&["net-dumpxml", &network]).await?;
    for node in cluster.nodes() {
        let mac = names.mac(&node.name);
        if xml.contains(&mac) {
            continue;
        }
        let host = format!(r#"<host mac="{mac}" name="{}" ip="{}"/>"#, node.name, node.address);
        virsh::run(&["net-update", &network, "add-last", "ip-dhcp-host", &host, "--live", "--config"]).await?;
    }
    Ok(())
}

/// Every node's box must be in Vagrant's home (read from disk: no `vagrant` process).
fn check_boxes(cluster: &Cluster) -> Result<(), VagrantError> {
    let home = vagrant_home();
    let boxes: BTreeSet<&str> =
        cluster.nodes().iter().filter_map(|n| n.settings.get::<Settings>()).map(|s| s.box_name.as_str()).collect();
    for name in boxes {
        if !home.join("boxes").join(name.replace('/', "-VAGRANTSLASH-")).is_dir() {
            return Err(VagrantError::NoBox { name: name.to_owned(), home });
        }
    }
    Ok(())
}

fn vagrant_home() -> PathBuf {
    match std::env::var_os("VAGRANT_HOME") {
        Some(home) => PathBuf::from(home),
        None => std::env::var_os("HOME").map(PathBuf::from).unwrap_or_default().join(".vagrant.d"),
    }
}

/// The machine-wide box lock, held when some box's base volume is not in the pool yet.
async fn box_lock(cluster: &Cluster) -> Result<Option<Flock<std::fs::File>>, VagrantError> {
    let volumes = virsh::volumes().await?;
    let uploaded = |name: &str| {
        let prefix = format!("{}_vagrant_box_image_", name.replace('/', "-VAGRANTSLASH-"));
        volumes.iter().any(|v| v.starts_with(&prefix))
    };
    let all = cluster.nodes().iter().filter_map(|n| n.settings.get::<Settings>()).all(|s| uploaded(&s.box_name));
    if all {
        return Ok(None);
    }
    let path = PathBuf::from(BOX_LOCK);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(io(parent))?;
    }
    let file = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(&path).map_err(io(&path))?;
    // Blocks until the lab uploading the box is done with it: off the runtime.
    let locked = tokio::task::spawn_blocking(move || Flock::lock(file, FlockArg::LockExclusive)).await;
    match locked {
        Ok(result) => result.map(Some).map_err(|(_, errno)| io(&path)(errno.into())),
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

fn write(path: &Path, text: &str) -> Result<(), VagrantError> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(io(parent))?;
    }
    std::fs::write(path, text).map_err(io(path))
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> VagrantError + '_ {
    move |source| VagrantError::Io { path: path.to_owned(), source }
}
