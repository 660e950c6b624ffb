//! What runs on its own once the workshop has started: the timers (a lab's time from
//! its claim, then shelved offloaded and its attendee told; idle labs shelved frozen),
//! the check scripts (an active attendee's every `Options::check_every`, and on
//! request), and the health loop (a lab whose node stopped answering is replaced: a
//! claimed one from the pool, its attendee told; a free one remade by the pool).
//!
//! One loop, ticking every `Options::tick`, decides what is due under the state's lock
//! and does it in tasks, so a slow node never holds the others up; a lab is worked on
//! by one task at a time (`busy`).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use zerolab_sandbox::session::error_chain;

use super::service::{AccessError, ActionError, NodeAccess};
use super::shelf::{self, ShelveMode};
use super::state::{now, AttendeeId, Phase};
use super::{LabStateLabel, Workshop, WorkshopEvent};
use crate::cluster::Cluster;
use crate::keeper::Keeper;
use crate::lab::Lab;
use crate::provider;

/// How long a check script may run.
const CHECK_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a node has to accept a TCP connection on its SSH port.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// What the loop keeps between ticks (not saved: a restart checks everything afresh).
#[derive(Default)]
struct Watch {
    /// When each attendee's checks last ran.
    checked: HashMap<AttendeeId, Instant>,
    /// Failed probes in a row, per lab.
    failures: HashMap<u32, u32>,
    /// When the nodes were last probed.
    probed: Option<Instant>,
}

/// Labs a task is working on (shelving, unshelving): one task per lab.
static BUSY: Mutex<Option<HashSet<(String, u32)>>> = Mutex::new(None);

/// Starts the loop.
pub(super) fn start(ws: &Arc<Workshop>) {
    let ws = ws.clone();
    tokio::spawn(async move {
        let mut watch = Watch::default();
        while !ws.is_closed() {
            tick(&ws, &mut watch).await;
            tokio::time::sleep(ws.options.tick).await;
        }
    });
}

async fn tick(ws: &Arc<Workshop>, watch: &mut Watch) {
    let at = now();
    let idle = ws.file.idle.map(|d| d.as_secs());
    let (expired, idle_labs, active) = ws.read(|state| {
        let mut expired = Vec::new();
        let mut idle_labs = Vec::new();
        let mut active = Vec::new();
        for attendee in &state.attendees {
            let Some(index) = attendee.lab else { continue };
            let Some(lab) = state.labs.get(&index) else { continue };
            let live = matches!(lab.phase, Phase::Ready | Phase::Shelved | Phase::ShelvedOffloaded);
            if live && attendee.expires.is_some_and(|e| e <= at) {
                expired.push((attendee.id, index));
            } else if lab.phase == Phase::Ready && idle.is_some_and(|i| attendee.last_active + i <= at) {
                idle_labs.push(index);
            } else if lab.phase == Phase::Ready {
                active.push(attendee.id);
            }
        }
        (expired, idle_labs, active)
    });
    for (id, index) in expired {
        expire(ws, id, index);
    }
    for index in idle_labs {
        let ws = ws.clone();
        tokio::spawn(async move {
            if let Err(e) = shelve_lab(&ws, index, ShelveMode::Frozen).await {
                tracing::warn!(lab = %ws.file.lab_name(index), "idle lab not shelved: {e}");
            }
        });
    }
    for id in active {
        let due = watch.checked.get(&id).is_none_or(|last| last.elapsed() >= ws.options.check_every);
        if due {
            watch.checked.insert(id, Instant::now());
            let ws = ws.clone();
            tokio::spawn(async move { run_checks(&ws, id).await });
        }
    }
    super::warm::tend(ws, |index| is_busy(ws, index));
    if watch.probed.is_none_or(|last| last.elapsed() >= ws.options.health_every) {
        watch.probed = Some(Instant::now());
        probe(ws, &mut watch.failures).await;
    }
}

/// Attendee `id`'s lab `index` is out of time: shelved offloaded, they are told; when
/// someone waits for a lab, it is taken down instead and its place is theirs.
fn expire(ws: &Arc<Workshop>, id: AttendeeId, index: u32) {
    let queued = ws.read(|state| !state.queue().is_empty());
    let notice = "Your lab's time is up; ask the instructor to extend it.";
    let updated = ws.update(|state| {
        if let Some(attendee) = state.attendee_mut(id) {
            attendee.notice = Some(notice.to_owned());
        }
        if let Some(lab) = state.labs.get_mut(&index) {
            lab.phase = if queued { Phase::Destroying } else { Phase::Expired };
        }
        if queued {
            if let Some(attendee) = state.attendee_mut(id) {
                attendee.lab = None;
                attendee.expires = None;
            }
            if let Some(lab) = state.labs.get_mut(&index) {
                lab.attendee = None;
            }
        }
        ((), vec![WorkshopEvent::Attendee(id), WorkshopEvent::Pool])
    });
    if let Err(e) = updated {
        tracing::warn!("workshop state: {}", error_chain(&e));
        return;
    }
    let ws = ws.clone();
    tokio::spawn(async move {
        if queued {
            super::pool::destroy(ws, index).await;
        } else if let Err(e) = shelve_lab(&ws, index, ShelveMode::Offloaded).await {
            tracing::warn!(lab = %ws.file.lab_name(index), "expired lab not shelved: {e}");
        }
    });
}

/// Probes every ready lab's nodes (their SSH port); a lab failing
/// `Options::health_failures` times in a row is replaced.
async fn probe(ws: &Arc<Workshop>, failures: &mut HashMap<u32, u32>) {
    let labs: Vec<(u32, Option<AttendeeId>)> = ws.read(|state| {
        state.labs.iter().filter(|(_, l)| l.phase == Phase::Ready).map(|(i, l)| (*i, l.attendee)).collect()
    });
    let probes = labs.iter().map(|(index, _)| {
        let ws = ws.clone();
        let index = *index;
        async move { (index, answers(&ws, index).await) }
    });
    let results = futures_util::future::join_all(probes).await;
    failures.retain(|index, _| labs.iter().any(|(i, _)| i == index));
    for (index, ok) in results {
        let count = failures.entry(index).or_insert(0);
        *count = if ok { 0 } else { *count + 1 };
        if *count < ws.options.health_failures {
            continue;
        }
        failures.remove(&index);
        let holder = labs.iter().find(|(i, _)| *i == index).and_then(|(_, a)| *a);
        tracing::warn!(lab = %ws.file.lab_name(index), "a node stopped answering: replacing the lab");
        match holder {
            Some(id) => {
                let notice = "Your lab stopped answering and was replaced by a fresh one; \
                              what you had on it is gone, sorry.";
                if let Err(e) = super::pool::replace(ws, id, index, notice) {
                    tracing::warn!("replacing a lab: {e}");
                }
            }
            None => {
                let marked = ws.update(|state| {
                    if let Some(lab) = state.labs.get_mut(&index) {
                        lab.phase = Phase::Broken;
                    }
                    ((), vec![WorkshopEvent::Pool])
                });
                if marked.is_ok() {
                    tokio::spawn(super::pool::destroy(ws.clone(), index));
                }
            }
        }
        ws.wake.notify_one();
    }
}

/// Whether every node of lab `index` accepts a connection on its SSH port.
async fn answers(ws: &Workshop, index: u32) -> bool {
    let (Ok(cluster), Ok(lab)) = (ws.cluster(index), ws.lab(index)) else { return false };
    let Ok(provider) = provider::of(&cluster) else { return false };
    for node in cluster.nodes() {
        let Ok(target) = provider.address(&lab, node) else { return false };
        let connect = tokio::net::TcpStream::connect((target.address.as_str(), target.port));
        if !matches!(tokio::time::timeout(PROBE_TIMEOUT, connect).await, Ok(Ok(_))) {
            return false;
        }
    }
    true
}

/// Runs attendee `id`'s check scripts on their lab and records which steps are done.
pub(super) async fn run_checks(ws: &Workshop, id: AttendeeId) {
    let Ok((index, Phase::Ready)) = ws.lab_of(id) else { return };
    let (Ok(cluster), Ok(lab)) = (ws.cluster(index), ws.lab(index)) else { return };
    let Ok(provider) = provider::of(&cluster) else { return };
    let keeper = match Keeper::open(lab.dir(), &ws.options.program).await {
        Ok(keeper) => keeper,
        Err(e) => return tracing::warn!(lab = %lab.name(), "checks: {}", error_chain(&e)),
    };
    let mut done = Vec::with_capacity(ws.file.steps.len());
    for step in &ws.file.steps {
        let passed = match (&step.check, cluster.node(&step.node)) {
            (Some(check), Some(node)) => match provider.address(&lab, node) {
                Ok(target) => {
                    matches!(keeper.exec(&target, check, CHECK_TIMEOUT).await, Ok(Ok(output)) if output.success())
                }
                Err(_) => false,
            },
            // A step without a check is done once a later step is.
            _ => false,
        };
        done.push(passed);
    }
    // A step without a check counts as done when any later step's check passed.
    let mut later = false;
    for (i, step) in ws.file.steps.iter().enumerate().rev() {
        if step.check.is_none() && later {
            done[i] = true;
        }
        later |= done[i];
    }
    let _ = ws.update(|state| {
        let Some(attendee) = state.attendee_mut(id) else { return ((), vec![]) };
        if attendee.lab != Some(index) || attendee.done == done {
            return ((), vec![]);
        }
        attendee.done = done;
        ((), vec![WorkshopEvent::Attendee(id)])
    });
}

/// Brings attendee `id`'s lab back when it was shelved for being idle (in the background).
pub(super) fn wake_lab(ws: &Workshop, id: AttendeeId) {
    let Ok((index, Phase::Shelved | Phase::ShelvedOffloaded)) = ws.lab_of(id) else { return };
    let Some(ws) = ws.self_arc() else { return };
    tokio::spawn(async move {
        if let Err(e) = unshelve_lab(&ws, index).await {
            tracing::warn!(lab = %ws.file.lab_name(index), "not unshelved: {e}");
        }
    });
}

/// Claims lab `index` for one task; `None` when another works on it.
fn claim(ws: &Workshop, index: u32) -> Option<BusyGuard> {
    let key = (ws.file.name.clone(), index);
    let mut busy = BUSY.lock().unwrap_or_else(|e| e.into_inner());
    busy.get_or_insert_with(HashSet::new).insert(key.clone()).then_some(BusyGuard(key))
}

/// Whether a task works on lab `index`.
fn is_busy(ws: &Workshop, index: u32) -> bool {
    let key = (ws.file.name.clone(), index);
    BUSY.lock().unwrap_or_else(|e| e.into_inner()).as_ref().is_some_and(|busy| busy.contains(&key))
}

struct BusyGuard((String, u32));

impl Drop for BusyGuard {
    fn drop(&mut self) {
        if let Some(busy) = BUSY.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
            busy.remove(&self.0);
        }
    }
}

/// Shelves lab `index` (`mode`) and records it.
pub(super) async fn shelve_lab(ws: &Workshop, index: u32, mode: ShelveMode) -> Result<(), String> {
    let Some(_busy) = claim(ws, index) else { return Ok(()) };
    // Its warm terminal goes first: a frozen or stopped node's connection is no use.
    ws.warm.forget(index);
    let cluster = ws.cluster(index)?;
    shelf::shelve(&ws.labs_root(), &cluster, mode).await?;
    let phase = match mode {
        ShelveMode::Frozen => Phase::Shelved,
        ShelveMode::Offloaded => Phase::ShelvedOffloaded,
    };
    let _ = ws.update(|state| {
        let Some(lab) = state.labs.get_mut(&index) else { return ((), vec![]) };
        // An expired lab stays expired; a lab taken down meanwhile is not revived.
        if matches!(lab.phase, Phase::Ready | Phase::Shelved | Phase::ShelvedOffloaded) {
            lab.phase = phase;
        }
        let events = lab.attendee.map(WorkshopEvent::Attendee).into_iter().chain([WorkshopEvent::Pool]).collect();
        ((), events)
    });
    Ok(())
}

/// Unshelves lab `index` and records it ready.
pub(super) async fn unshelve_lab(ws: &Workshop, index: u32) -> Result<(), String> {
    let Some(_busy) = claim(ws, index) else { return Ok(()) };
    let cluster = ws.cluster(index)?;
    shelf::unshelve(&ws.labs_root(), &cluster, &ws.options.agent).await?;
    let _ = ws.update(|state| {
        let Some(lab) = state.labs.get_mut(&index) else { return ((), vec![]) };
        if matches!(lab.phase, Phase::Shelved | Phase::ShelvedOffloaded | Phase::Expired) {
            lab.phase = Phase::Ready;
        }
        let events = lab.attendee.map(WorkshopEvent::Attendee).into_iter().chain([WorkshopEvent::Pool]).collect();
        ((), events)
    });
    Ok(())
}

/// How to reach node `node` (default: the first) of lab `lab` made from `cluster`.
pub(super) fn node_access(lab: &Lab, cluster: &Cluster, node: Option<&str>) -> Result<NodeAccess, AccessError> {
    let node = match node {
        Some(name) => cluster.node(name).ok_or_else(|| AccessError::UnknownNode { node: name.to_owned() })?,
        None => &cluster.nodes()[0],
    };
    let provider = provider::of(cluster).map_err(|e| AccessError::Failed { cause: error_chain(&e) })?;
    let target = provider.address(lab, node).map_err(|e| AccessError::Failed { cause: error_chain(&e) })?;
    Ok(NodeAccess {
        address: target.address,
        port: target.port,
        user: target.user,
        key: target.key,
        known_hosts: lab.known_hosts(),
        node: node.name.clone(),
    })
}

impl Workshop {
    /// How to reach node `node` (default: the first) of the lab of the attendee holding
    /// `token`, for the terminal; a shelved lab is unshelved first.
    pub async fn terminal(&self, token: &str, node: Option<&str>) -> Result<NodeAccess, AccessError> {
        let id = self.attendee_of(token).ok_or(AccessError::UnknownToken)?;
        let (index, phase) = self.lab_of(id).map_err(|_| AccessError::NoLab)?;
        match phase {
            Phase::Ready => {}
            Phase::Shelved | Phase::ShelvedOffloaded => {
                unshelve_lab(self, index).await.map_err(|cause| AccessError::Failed { cause })?
            }
            Phase::Expired => return Err(AccessError::Expired),
            other => return Err(AccessError::NotReady { state: LabStateLabel::of(other) }),
        }
        self.access(index, node)
    }

    /// How to reach node `node` (default: the first) of lab `index`.
    pub(super) fn access(&self, index: u32, node: Option<&str>) -> Result<NodeAccess, AccessError> {
        let cluster = self.cluster(index).map_err(|cause| AccessError::Failed { cause })?;
        let lab = self.lab(index).map_err(|cause| AccessError::Failed { cause })?;
        node_access(&lab, &cluster, node)
    }

    /// Adds `by` (default: the file's `extend`) to attendee `id`'s time; an expired lab
    /// is brought back.
    pub async fn extend(&self, id: AttendeeId, by: Option<Duration>) -> Result<(), ActionError> {
        let (index, phase) = self.lab_of(id)?;
        let by = by.unwrap_or(self.file.extend).as_secs();
        self.update(|state| {
            if let Some(attendee) = state.attendee_mut(id) {
                let from = attendee.expires.unwrap_or(0).max(now());
                attendee.expires = Some(from + by);
                attendee.notice = None;
            }
            ((), vec![WorkshopEvent::Attendee(id)])
        })
        .map_err(|e| ActionError::Failed { cause: error_chain(&e) })?;
        if phase == Phase::Expired {
            unshelve_lab(self, index).await.map_err(|cause| ActionError::Failed { cause })?;
        }
        Ok(())
    }

    /// Shelves attendee `id`'s lab (frozen).
    pub async fn shelve(&self, id: AttendeeId) -> Result<(), ActionError> {
        match self.lab_of(id)? {
            (index, Phase::Ready) => {
                shelve_lab(self, index, ShelveMode::Frozen).await.map_err(|cause| ActionError::Failed { cause })
            }
            (_, phase) => Err(ActionError::State { id, state: LabStateLabel::of(phase) }),
        }
    }

    /// Unshelves attendee `id`'s lab.
    pub async fn unshelve(&self, id: AttendeeId) -> Result<(), ActionError> {
        match self.lab_of(id)? {
            (index, Phase::Shelved | Phase::ShelvedOffloaded) => {
                unshelve_lab(self, index).await.map_err(|cause| ActionError::Failed { cause })
            }
            (_, phase) => Err(ActionError::State { id, state: LabStateLabel::of(phase) }),
        }
    }
}
