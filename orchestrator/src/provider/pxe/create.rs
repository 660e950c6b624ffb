//! Bringing a `pxe` lab's machines up, in this order:
//! 1. the cluster is checked against what the lab can do (the server's address is no node's);
//! 2. the live system (and the disk image, when a node installs by image) is built unless
//!    cached;
//! 3. every node's host key and metadata token exist (made now for new nodes) and the
//!    host keys are pinned: the first SSH contact is already checked;
//! 4. the host's side: the server's address on the boot interface, the NAT rules;
//! 5. the boot plan is written and the boot server (re)started when the plan changed or
//!    none runs;
//! 6. the machines that are not up yet are switched on (one that is on in a new lab runs
//!    something else: it is power-cycled into the network boot; without power control,
//!    the user is asked to switch it on);
//! 7. each is followed through the boot server's events until it answers SSH (an
//!    installing machine: installed, rebooted from its disk, answering); one that sits at
//!    a step longer than `pxe.deadline`, or reports a failure, stops `up` with that step;
//! 8. the started nodes are recorded `provisioning`: `up` installs the agent next.
//!
//! A new lab that fails is taken down again whole (boot server, host changes, files).

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use super::boot::events::{self, step};
use super::boot::plan::{BootPlan, PLAN_FILE};
use super::boot::{serve, state};
use super::error::{io, PxeError};
use super::host::{self, Nat};
use super::plan::{self, lab_settings, pxe_dir, settings, Files};
use super::power::{PowerAction, PowerState};
use super::{artifacts, keys, Boot, Route};
use crate::lab::{Lab, NodeRecord, NodeState};
use crate::provider::{CreateProgress, CreateStep, Created, ProviderError};
use crate::ssh::HostKeys;
use zerolab_config::cluster::{Cluster, Node};

/// How often a booting machine's progress is looked at.
const POLL: Duration = Duration::from_millis(500);

/// Makes (or keeps, or repairs) every machine of `cluster`; see the module doc.
pub async fn create(lab: &Lab, cluster: &Cluster, progress: CreateProgress) -> Result<Created, ProviderError> {
    plan::check(cluster)?;
    let dir = pxe_dir(lab);
    let fresh = !dir.join(PLAN_FILE).exists();
    std::fs::create_dir_all(&dir).map_err(io(&dir))?;
    let made = bring_up(lab, cluster, &progress, fresh).await;
    if made.is_err() && fresh {
        // Fail closed: no half-made lab. The first error is the one worth reporting.
        let _ = super::lifecycle::teardown(lab, cluster).await;
    }
    made
}

async fn bring_up(
    lab: &Lab,
    cluster: &Cluster,
    progress: &CreateProgress,
    fresh: bool,
) -> Result<Created, ProviderError> {
    let dir = pxe_dir(lab);
    let pxe = lab_settings(cluster);
    for interface in std::iter::once(&pxe.interface).chain(pxe.nat.as_ref()) {
        if !std::path::Path::new("/sys/class/net").join(interface).exists() {
            return Err(PxeError::NoInterface { interface: interface.clone() }.into());
        }
    }
    let all = |step: &str| cluster.nodes().iter().for_each(|n| progress(&n.name, CreateStep::Step(step.to_owned())));
    let notice = |line: &str| all(line);
    let live = artifacts::live(&dir, &notice).await?;
    let image = match plan::any(cluster, |b| b == Boot::Install { route: Route::Image }) {
        true => Some(artifacts::image(&dir, &notice).await?),
        false => None,
    };
    let plan = plan::make(lab, cluster, &dir, Files::Built { live, image })?;

    if fresh {
        // A new lab: pins of an earlier lab of this name are void.
        std::fs::write(lab.known_hosts(), "").map_err(io(&lab.known_hosts()))?;
    }
    let host_keys = HostKeys::open(lab.known_hosts())?;
    for node in cluster.nodes() {
        let key = keys::host_key(&dir, &node.name).await?;
        host_keys.check(&node.name, &node.address.to_string(), &key)?;
    }

    let subnet = cluster.subnet().expect("a pxe cluster has a lab subnet");
    let nat = pxe.nat.as_ref().map(|uplink| Nat {
        subnet: subnet.to_string(),
        interface: pxe.interface.clone(),
        uplink: uplink.clone(),
        comment: format!("zerolab:{}", lab.name()),
    });
    host::apply(&dir, &pxe.interface, pxe.server, subnet.prefix(), nat).await?;
    start_server(&dir, &plan).await?;

    let mut state = lab.load_state()?;
    let mut to_boot = Vec::new();
    for node in cluster.nodes() {
        let ready = state.nodes.get(&node.name).is_some_and(|r| r.state == NodeState::Ready);
        if !(ready && reachable(address(node)).await) {
            to_boot.push(node);
        }
    }
    if to_boot.is_empty() {
        return Ok(Created::Existing);
    }
    let started = events::now_ms();
    for &node in &to_boot {
        switch_on(lab, cluster, node, fresh, progress).await?;
    }
    let waits = to_boot.iter().map(|&node| follow_to_ssh(&dir, node, pxe.deadline, started, progress));
    for result in futures_util::future::join_all(waits).await {
        result?;
    }
    for node in &to_boot {
        let address = node.address.to_string();
        let record =
            state.nodes.entry(node.name.clone()).or_insert_with(|| NodeRecord::new(address, NodeState::Declared));
        record.state = NodeState::Provisioning;
        progress(&node.name, CreateStep::Made);
    }
    lab.save_state(&state)?;
    Ok(Created::Made)
}

/// Writes the plan and (re)starts the boot server unless one serves this very plan.
async fn start_server(dir: &std::path::Path, plan: &BootPlan) -> Result<(), PxeError> {
    let path = dir.join(PLAN_FILE);
    let same = BootPlan::load(&path).is_ok_and(|old| old == *plan);
    if same && serve::running(dir) {
        return Ok(());
    }
    plan.save(&path).map_err(|e| PxeError::Plan(e.to_string()))?;
    tokio::task::spawn_blocking(move || serve::start(&path))
        .await
        .map_err(|e| PxeError::Plan(format!("the boot server's start panicked: {e}")))?
        .map(drop)
        .map_err(|e| PxeError::Plan(e.to_string()))
}

/// Switches `node` on for its network boot (see step 6; also what unshelve does).
pub(super) async fn switch_on(
    lab: &Lab,
    cluster: &Cluster,
    node: &Node,
    fresh: bool,
    progress: &CreateProgress,
) -> Result<(), ProviderError> {
    let Some(spec) = super::lifecycle::power_spec(lab, cluster, node)? else {
        progress(
            &node.name,
            CreateStep::Step("switch it on (it has no power control); waiting for its network boot".into()),
        );
        return Ok(());
    };
    let power = super::power::state(&spec, &node.name).await?;
    let action = match power {
        PowerState::On if fresh => PowerAction::Cycle,
        PowerState::On => return Ok(()),
        PowerState::Off | PowerState::Unknown => PowerAction::On,
    };
    progress(
        &node.name,
        CreateStep::Step(if action == PowerAction::Cycle { "power-cycling" } else { "switching on" }.into()),
    );
    Ok(super::power::apply(&spec, &node.name, action).await?)
}

/// Follows `node`'s boot through the server's events until it answers SSH (step 7; also
/// what unshelve waits for).
pub(super) async fn follow_to_ssh(
    dir: &std::path::Path,
    node: &Node,
    deadline: Duration,
    started_ms: u64,
    progress: &CreateProgress,
) -> Result<(), PxeError> {
    let boot = settings(node).boot;
    let waiting_since = Instant::now();
    let mut shown = String::new();
    loop {
        let mine: Vec<events::Event> = events::read(dir)
            .map_err(io(dir))?
            .into_iter()
            .filter(|e| e.node == node.name && e.ms >= started_ms)
            .collect();
        let last = events::progress(dir, &[node.name.as_str()]).map_err(io(dir))?.pop();
        let (step, since) = match last.as_ref().and_then(|p| p.step.clone().zip(p.since)) {
            Some((step, since)) if since >= started_ms => (Some(step), since),
            _ => (None, started_ms),
        };
        if let Some(step) = &step {
            if *step != shown {
                progress(&node.name, CreateStep::Step(step.clone()));
                shown = step.clone();
            }
            if step == "failed" {
                let detail =
                    mine.iter().rev().find(|e| e.step == "failed").and_then(|e| e.detail.clone()).unwrap_or_default();
                return Err(PxeError::Plan(format!("node {}: its boot failed: {detail}; see its console", node.name)));
            }
        }
        let up = match boot {
            Boot::Install { .. } => {
                let installed = state::load(dir).map(|s| s.installed(&node.name)).unwrap_or(false);
                // Installed, and booted since from its disk: the last step is the
                // reboot's network boot (told to boot locally), not the installer's.
                let rebooted = matches!(step.as_deref(), Some(step::OFFERED | step::FIRST_STAGE | step::SCRIPT) | None);
                installed && rebooted && reachable(address(node)).await
            }
            Boot::Live | Boot::Local => {
                let booted = boot == Boot::Local || mine.iter().any(|e| e.step == "live");
                booted && reachable(address(node)).await
            }
        };
        if up {
            return Ok(());
        }
        let idle = Duration::from_millis(events::now_ms().saturating_sub(since));
        if idle > deadline && waiting_since.elapsed() > deadline {
            let step = step.unwrap_or_else(|| "nothing yet (no DHCP request seen)".into());
            let hint = match step.as_str() {
                "nothing yet (no DHCP request seen)" => {
                    "is it on, cabled to the boot interface, and set to boot from the network first?"
                }
                step::OFFERED | step::FIRST_STAGE => {
                    "its firmware got an address but no boot program; see LAB/pxe/dnsmasq.log"
                }
                _ => "see its console and LAB/pxe/serve.log",
            };
            return Err(PxeError::Stuck { node: node.name.clone(), step, secs: deadline.as_secs(), hint: hint.into() });
        }
        tokio::time::sleep(POLL).await;
    }
}

fn address(node: &Node) -> SocketAddr {
    let ip: Ipv4Addr = node.address.to_string().parse().unwrap_or(Ipv4Addr::UNSPECIFIED);
    SocketAddr::from((ip, node.ssh_port()))
}

/// Whether something accepts connections at `address` within a second.
async fn reachable(address: SocketAddr) -> bool {
    matches!(tokio::time::timeout(Duration::from_secs(1), tokio::net::TcpStream::connect(address)).await, Ok(Ok(_)))
}

/// The nodes' last boot steps, for `status` (`kernel`, `installed`, `stuck at kernel for
/// 412 s`), by node name.
pub fn boot_steps(lab: &Lab, cluster: &Cluster) -> BTreeMap<String, String> {
    let dir = pxe_dir(lab);
    let deadline = lab_settings(cluster).deadline;
    let names: Vec<&str> = cluster.nodes().iter().map(|n| n.name.as_str()).collect();
    let now = events::now_ms();
    events::progress(&dir, &names)
        .unwrap_or_default()
        .into_iter()
        .map(|p| {
            let text = match (p.step, p.since) {
                (Some(step), Some(since)) if step != "live" && step != "installed" => {
                    let idle = now.saturating_sub(since) / 1000;
                    if idle > deadline.as_secs() {
                        format!("stuck at {step} for {idle} s")
                    } else {
                        step
                    }
                }
                (Some(step), _) => step,
                (None, _) => "no boot seen".to_owned(),
            };
            (p.node, text)
        })
        .collect()
}
