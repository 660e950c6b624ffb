//! The `pxe` provider's lifecycle ([`Provider`] for [`Pxe`]): making is `create.rs`;
//! here are taking a lab down, power, reinstalling, rendering and what `status` shows;
//! shelving is `shelve.rs` (power off and on).
//!
//! `down`, in this order: what zerolab installed is removed from machines that boot from
//! their disks (live machines keep nothing); every machine with power control is
//! switched off; the boot server (and its dnsmasq) is stopped; the host's changes (the
//! boot address zerolab added, the NAT rules) are undone; `LAB/pxe` goes.

use std::path::{Path, PathBuf};

use super::boot::plan::PLAN_FILE;
use super::boot::{render, serve, state};
use super::plan::{self, lab_settings, pxe_dir, settings, Files};
use super::power::{PowerAction, PowerSpec, PowerState};
use super::{create, host, Boot, PowerConfig, Pxe, PxeError, KIND};
use crate::lab::{Lab, NodeState};
use crate::provider::teardown::{Left, LeftNode};
use crate::provider::{
    BoxFuture, CreateProgress, Created, Provider, ProviderError, ProviderKind, ShelveMode, Teardown,
};
use zerolab_config::cluster::{Cluster, Node};

impl Provider for Pxe {
    fn kind(&self) -> ProviderKind {
        KIND
    }

    fn check(&self, cluster: &Cluster) -> Result<(), ProviderError> {
        Ok(plan::check(cluster)?)
    }

    /// Up while the lab's boot plan exists: `up` writes it, `down` removes it.
    fn is_up(&self, lab: &Lab) -> Result<bool, ProviderError> {
        Ok(pxe_dir(lab).join(PLAN_FILE).exists())
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
        Box::pin(teardown(lab, cluster))
    }

    fn node_ready(&self, lab_dir: &Path, node: &str) {
        let dir = lab_dir.join("pxe");
        if let Err(e) = super::boot::events::record(&dir, node, "ready", None) {
            tracing::warn!("node {node}: cannot record its ready event in {}: {e}", dir.display());
        }
    }

    fn machine_states<'a>(&'a self, lab: &'a Lab, cluster: &'a Cluster) -> BoxFuture<'a, Option<Vec<String>>> {
        Box::pin(async move {
            let steps = create::boot_steps(lab, cluster);
            let ready = lab.load_state().ok();
            let states = cluster
                .nodes()
                .iter()
                .map(|node| {
                    let recorded = ready.as_ref().and_then(|s| s.nodes.get(&node.name)).map(|r| &r.state);
                    if recorded == Some(&NodeState::ShelvedOffloaded) {
                        return "off (shelved)".to_owned();
                    }
                    match (recorded == Some(&NodeState::Ready), steps.get(&node.name)) {
                        (true, _) => "ready".to_owned(),
                        (false, Some(step)) => step.clone(),
                        (false, None) => "no boot seen".to_owned(),
                    }
                })
                .collect();
            Some(states)
        })
    }

    fn power<'a>(
        &'a self,
        lab: &'a Lab,
        cluster: &'a Cluster,
        node: &'a Node,
        action: PowerAction,
    ) -> BoxFuture<'a, Result<(), ProviderError>> {
        Box::pin(async move {
            let spec = power_spec(lab, cluster, node)?.ok_or_else(|| no_power(node))?;
            Ok(super::power::apply(&spec, &node.name, action).await?)
        })
    }

    fn power_state<'a>(
        &'a self,
        lab: &'a Lab,
        cluster: &'a Cluster,
        node: &'a Node,
    ) -> BoxFuture<'a, Result<PowerState, ProviderError>> {
        Box::pin(async move {
            let spec = power_spec(lab, cluster, node)?.ok_or_else(|| no_power(node))?;
            Ok(super::power::state(&spec, &node.name).await?)
        })
    }

    fn shelve<'a>(
        &'a self,
        lab: &'a Lab,
        cluster: &'a Cluster,
        node: &'a Node,
        mode: ShelveMode,
    ) -> BoxFuture<'a, Result<(), ProviderError>> {
        Box::pin(super::shelve::shelve(lab, cluster, node, mode))
    }

    fn unshelve<'a>(
        &'a self,
        lab: &'a Lab,
        cluster: &'a Cluster,
        node: &'a Node,
    ) -> BoxFuture<'a, Result<(), ProviderError>> {
        Box::pin(super::shelve::unshelve(lab, cluster, node))
    }

    fn reinstall<'a>(
        &'a self,
        lab: &'a Lab,
        cluster: &'a Cluster,
        node: &'a Node,
    ) -> BoxFuture<'a, Result<(), ProviderError>> {
        Box::pin(async move {
            if !matches!(settings(node).boot, Boot::Install { .. }) {
                let message =
                    format!("node {} does not install (its boot is not `install`); nothing to reinstall", node.name);
                return Err(PxeError::Plan(message).into());
            }
            let dir = pxe_dir(lab);
            if !dir.join(PLAN_FILE).exists() {
                return Err(PxeError::Plan(format!(
                    "lab {} is not up; `zerolab up` installs its machines",
                    lab.name()
                ))
                .into());
            }
            state::set_installed(&dir, &node.name, false).map_err(|e| PxeError::Plan(e.to_string()))?;
            let mut lab_state = lab.load_state()?;
            if let Some(record) = lab_state.nodes.get_mut(&node.name) {
                record.state = NodeState::Provisioning;
            }
            lab.save_state(&lab_state)?;
            let spec = power_spec(lab, cluster, node)?.ok_or_else(|| {
                PxeError::Plan(format!(
                    "node {} installs again on its next network boot; it has no power control: restart it by hand",
                    node.name
                ))
            })?;
            Ok(super::power::apply(&spec, &node.name, PowerAction::Cycle).await?)
        })
    }

    fn render(&self, lab: &Lab, cluster: &Cluster, out: &Path) -> Result<Vec<PathBuf>, ProviderError> {
        let plan = plan::make(lab, cluster, out, Files::Named)?;
        let files = render::render_all(&plan).map_err(|e| PxeError::Plan(e.to_string()))?;
        let mut written = Vec::new();
        for (relative, text) in files {
            let path = out.join(relative);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).map_err(super::error::io(parent))?;
            }
            // Scripts and preseeds carry the nodes' tokens: for root's eyes only.
            super::keys::write_private(&path, &text)?;
            written.push(path);
        }
        Ok(written)
    }
}

fn no_power(node: &Node) -> ProviderError {
    PxeError::Plan(format!("node {} has no power control; give it `power:` (qmp, ipmi, wol or command)", node.name))
        .into()
}

/// `node`'s power control, its paths resolved against the cluster file's directory.
pub(super) fn power_spec(lab: &Lab, cluster: &Cluster, node: &Node) -> Result<Option<PowerSpec>, ProviderError> {
    let base =
        lab.identity()?.and_then(|identity| identity.cluster_file).and_then(|file| file.parent().map(Path::to_owned));
    let resolve = |path: &Path| match (&base, path.is_relative()) {
        (Some(base), true) => base.join(path),
        _ => path.to_owned(),
    };
    let settings = settings(node);
    Ok(settings.power.as_ref().map(|power| match power {
        PowerConfig::Qmp { socket } => PowerSpec::Qmp { socket: resolve(socket) },
        PowerConfig::Ipmi { host, port, user, password_file, cipher_suite } => PowerSpec::Ipmi {
            host: host.clone(),
            port: *port,
            user: user.clone(),
            password_file: resolve(password_file),
            cipher_suite: *cipher_suite,
        },
        PowerConfig::Wol { interface } => PowerSpec::Wol {
            mac: settings.mac,
            interface: interface.clone().unwrap_or_else(|| lab_settings(cluster).interface.clone()),
        },
        PowerConfig::Command { on, off, status } => {
            PowerSpec::Command { on: on.clone(), off: off.clone(), status: status.clone(), mac: Some(settings.mac) }
        }
    }))
}

/// Takes the lab down (see the module doc); idempotent. Machines that could not be
/// cleaned or switched off are in the [`Teardown`].
pub(super) async fn teardown(lab: &Lab, cluster: &Cluster) -> Result<Teardown, ProviderError> {
    let dir = pxe_dir(lab);
    let from_disk: Vec<&Node> =
        cluster.nodes().iter().filter(|node| !matches!(settings(node).boot, Boot::Live)).collect();
    let mut teardown = if from_disk.is_empty() || !dir.join(PLAN_FILE).exists() {
        Teardown::default()
    } else {
        crate::provider::ssh::remove_agents(lab, from_disk, |node| Pxe.address(lab, node)).await?
    };
    for node in cluster.nodes() {
        let Some(spec) = power_spec(lab, cluster, node)? else { continue };
        if matches!(spec, PowerSpec::Wol { .. }) {
            continue;
        }
        if let Err(e) = super::power::apply(&spec, &node.name, PowerAction::Off).await {
            let cause = zerolab_sandbox::session::error_chain(&e);
            let by_hand = "switch the machine off by hand".to_owned();
            teardown.left.push(LeftNode { node: node.name.clone(), why: Left::Failed { cause, by_hand } });
        }
    }
    let stop_dir = dir.clone();
    let _ = tokio::task::spawn_blocking(move || serve::stop(&stop_dir)).await;
    for left in host::undo(&dir).await? {
        tracing::warn!("lab {}: {left}", lab.name());
    }
    match std::fs::remove_dir_all(&dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(super::error::io(&dir)(e).into()),
        _ => {}
    }
    Ok(teardown)
}
