//! Shelving a `pxe` machine: its power control is all zerolab has of it.
//! - SHELVED ([`ShelveMode::Frozen`]) is refused: keeping a machine's memory while it
//!   stops running needs a suspend its power control cannot ask for (QMP could pause a
//!   QEMU machine, IPMI, wake-on-LAN and commands cannot), and mapping it to power off
//!   would lose the memory the user asked to keep. `--offload` is what a pxe node does.
//! - SHELVED_OFFLOADED ([`ShelveMode::Offloaded`]): power off, as `zerolab power off`
//!   does (a cut, not a shutdown: an installed machine's disk recovers by its journal).
//!   The boot server stays, for the next boot.
//! - Unshelve: power on, then the boot is followed to SSH as `up` follows it (`create.rs`):
//!   a live machine boots the live system from the network again (same address, same
//!   host key, which zerolab made and pinned; its files were in RAM and are gone), an
//!   installed one is told to boot its disk (its files kept). `up` then starts the agent.

use super::create::{follow_to_ssh, switch_on};
use super::lifecycle::power_spec;
use super::plan::{lab_settings, pxe_dir};
use super::power::PowerAction;
use super::PxeError;
use crate::lab::Lab;
use crate::provider::{no_progress, ProviderError, ShelveMode};
use zerolab_config::cluster::{Cluster, Node};

/// Switches `node` off (`Offloaded`); `Frozen` is refused (see the module doc).
pub async fn shelve(lab: &Lab, cluster: &Cluster, node: &Node, mode: ShelveMode) -> Result<(), ProviderError> {
    if mode == ShelveMode::Frozen {
        return Err(ProviderError::NotSupported {
            provider: super::KIND,
            operation: "shelve",
            reason: "its power control cannot suspend a machine and keep its memory; use `shelve --offload` \
                     (power off)",
        });
    }
    let spec = power_spec(lab, cluster, node)?.ok_or_else(|| no_power(node))?;
    Ok(super::power::apply(&spec, &node.name, PowerAction::Off).await?)
}

/// Switches `node` on and follows its boot until it answers SSH.
pub async fn unshelve(lab: &Lab, cluster: &Cluster, node: &Node) -> Result<(), ProviderError> {
    if power_spec(lab, cluster, node)?.is_none() {
        return Err(no_power(node));
    }
    let started = super::boot::events::now_ms();
    let progress = no_progress();
    switch_on(lab, cluster, node, false, &progress).await?;
    Ok(follow_to_ssh(&pxe_dir(lab), node, lab_settings(cluster).deadline, started, &progress).await?)
}

fn no_power(node: &Node) -> ProviderError {
    PxeError::Plan(format!(
        "node {} has no power control, so zerolab cannot switch it off and on; give it `power:` (qmp, ipmi, wol \
         or command)",
        node.name
    ))
    .into()
}
