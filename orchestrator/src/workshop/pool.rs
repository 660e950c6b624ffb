//! The pool: labs made before anyone arrives (`pool.warm`), `pool.reserve` kept free
//! while attendees claim, a lab made for every queued attendee while there is room
//! (`capacity`), labs made `Options::make_parallel` at a time; labs taken down in the
//! background; the instructor's reset and remove; the queue's estimate.
//!
//! A lab is an ordinary lab under the workshop's `labs/` root, made by [`crate::up`]
//! and taken down by [`crate::down`] as `zerolab up|down` would. How many labs to make is decided under the
//! state's lock (`plan`), so two wakes never make one lab twice; a lab is recorded
//! `warming` before it is made, so a `serve` killed meanwhile finds it and makes it
//! again (`up` carries on with what exists).

use std::sync::Arc;
use std::time::{Duration, Instant};

use zerolab_sandbox::session::error_chain;

use super::service::ActionError;
use super::state::{now, AttendeeId, LabRecord, Phase, State};
use super::{Options, Workshop, WorkshopEvent, WorkshopFile};
use crate::down::{down, DownOptions};
use crate::lab::NodeState;
use crate::up::{up, UpOptions};

/// How long the pool waits after a lab failed to come up before making another.
const FAILURE_PAUSE: Duration = Duration::from_secs(10);

/// Starts the pool's loop, after taking up what a previous process left in the middle:
/// labs being made are made again, labs being taken down taken down.
pub(super) fn start(ws: &Arc<Workshop>) {
    let (warming, leaving) = ws.read(|state| {
        let of = |phase| state.labs.iter().filter(|(_, l)| l.phase == phase).map(|(i, _)| *i).collect::<Vec<_>>();
        let mut leaving = of(Phase::Destroying);
        leaving.extend(of(Phase::Broken));
        (of(Phase::Warming), leaving)
    });
    for index in warming {
        tokio::spawn(make(ws.clone(), index));
    }
    for index in leaving {
        tokio::spawn(destroy(ws.clone(), index));
    }
    let ws = ws.clone();
    tokio::spawn(async move {
        while !ws.is_closed() {
            plan(&ws);
            // Woken by claims and finished labs; the timeout is a safety net.
            let _ = tokio::time::timeout(Duration::from_secs(2), ws.wake.notified()).await;
        }
    });
}

/// How many free labs the pool keeps now: `warm` before anyone claims, down to `reserve`.
fn spare_target(file: &WorkshopFile, claimed: usize) -> usize {
    (file.warm as usize).saturating_sub(claimed).max(file.reserve as usize)
}

/// Starts making the labs that are missing: one per queued attendee and up to the
/// spare target, within capacity.
pub(super) fn plan(ws: &Arc<Workshop>) {
    let paused = ws.paused.lock().unwrap_or_else(|e| e.into_inner()).is_some_and(|until| Instant::now() < until);
    if paused || ws.is_closed() {
        return;
    }
    let made = ws.update(|state| {
        let claimed = state.labs.values().filter(|l| l.attendee.is_some()).count();
        let wanted = state.queue().len() + spare_target(&ws.file, claimed);
        let missing = wanted.saturating_sub(state.spare_labs());
        let room = (ws.file.capacity as usize).saturating_sub(state.live_labs());
        let mut made = Vec::new();
        for _ in 0..missing.min(room) {
            let Some(index) = (1..=ws.file.max_index()).find(|i| !state.labs.contains_key(i)) else { break };
            state.labs.insert(index, LabRecord { phase: Phase::Warming, attendee: None });
            made.push(index);
        }
        let events = if made.is_empty() { vec![] } else { vec![WorkshopEvent::Pool] };
        (made, events)
    });
    match made {
        Ok(made) => made.into_iter().for_each(|index| drop(tokio::spawn(make(ws.clone(), index)))),
        Err(e) => tracing::warn!("workshop state: {}", error_chain(&e)),
    }
}

/// Makes lab `index` (recorded `warming`); when every node is ready it is `ready` and
/// handed to the first queued attendee, else it is taken down.
pub(super) async fn make(ws: Arc<Workshop>, index: u32) {
    let Ok(_permit) = ws.making.acquire().await else { return };
    if ws.is_closed() {
        return;
    }
    let started = Instant::now();
    let result = make_lab(&ws, index).await;
    let elapsed = started.elapsed();
    let terminal = match result {
        Ok(()) => super::warm::open_for(&ws, index).await,
        Err(_) => None,
    };
    let ok = match &result {
        Ok(()) => true,
        Err(cause) => {
            tracing::warn!(lab = %ws.file.lab_name(index), "lab not made: {cause}");
            false
        }
    };
    let updated = ws.update(|state| {
        match state.labs.get_mut(&index) {
            Some(lab) if lab.phase == Phase::Warming && ok => {
                lab.phase = Phase::Ready;
                state.record_make(u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX));
                // Recorded with the lab's `ready`, so the same change keeps it.
                if let Some(terminal) = terminal {
                    ws.warm.put(index, terminal);
                }
            }
            Some(lab) if lab.phase == Phase::Warming => lab.phase = Phase::Destroying,
            _ => {}
        }
        let mut events = ws.assign(state);
        events.push(WorkshopEvent::Pool);
        ((), events)
    });
    if let Err(e) = updated {
        tracing::warn!("workshop state: {}", error_chain(&e));
    }
    if !ok {
        // A lab that fails is likely to fail again (a name taken, the machine full):
        // no new lab for a while, rather than a storm of failing ones.
        *ws.paused.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now() + FAILURE_PAUSE);
        tokio::spawn(destroy(ws.clone(), index));
    }
    ws.wake.notify_one();
}

async fn make_lab(ws: &Workshop, index: u32) -> Result<(), String> {
    let cluster = ws.cluster(index)?;
    let root = ws.labs_root();
    let options = UpOptions::quiet(ws.options.agent.clone(), ws.options.program.clone());
    let reports = up(&root, &cluster, &options, |_| {}).await.map_err(|e| error_chain(&e))?;
    match reports.iter().find(|r| r.state != NodeState::Ready) {
        Some(report) => Err(format!("node {}: {}", report.node, report.detail)),
        None => Ok(()),
    }
}

/// Takes lab `index` down and forgets it.
pub(super) async fn destroy(ws: Arc<Workshop>, index: u32) {
    if let Err(cause) = destroy_lab(&ws, index).await {
        tracing::warn!(lab = %ws.file.lab_name(index), "lab not taken down: {cause}");
    }
    let updated = ws.update(|state| {
        state.labs.remove(&index);
        ((), vec![WorkshopEvent::Pool])
    });
    if let Err(e) = updated {
        tracing::warn!("workshop state: {}", error_chain(&e));
    }
    ws.wake.notify_one();
}

/// `down` of lab `index`, with its SSH rules removed first.
pub(super) async fn destroy_lab(ws: &Workshop, index: u32) -> Result<(), String> {
    let cluster = ws.cluster(index)?;
    let options = DownOptions { force: true, purge: true, ..DownOptions::default() };
    down(&ws.labs_root(), &cluster, &options).await.map_err(|e| error_chain(&e))?;
    Ok(())
}

/// Moves attendee `id` off lab `old` (taken down in the background) onto a free lab,
/// or to the queue's head when there is none, telling them `notice`.
pub(super) fn replace(ws: &Arc<Workshop>, id: AttendeeId, old: u32, notice: &str) -> Result<(), ActionError> {
    let failed = |e: super::state::StateError| ActionError::Failed { cause: error_chain(&e) };
    let grant = ws
        .update(|state| {
            if let Some(lab) = state.labs.get_mut(&old) {
                lab.phase = Phase::Destroying;
                lab.attendee = None;
            }
            let Some(attendee) = state.attendee_mut(id) else { return (None, vec![]) };
            attendee.lab = None;
            attendee.expires = None;
            attendee.notice = Some(notice.to_owned());
            attendee.done.iter_mut().for_each(|d| *d = false);
            let grant = attendee.ssh.take();
            let mut events = vec![WorkshopEvent::Attendee(id), WorkshopEvent::Pool];
            events.extend(take_free_lab(ws, state, id));
            (grant, events)
        })
        .map_err(failed)?;
    let ws = ws.clone();
    tokio::spawn(async move {
        if let Some(grant) = grant {
            super::sshport::remove_rules(&ws.file.name, &[grant]).await;
        }
        destroy(ws, old).await;
    });
    Ok(())
}

/// Gives attendee `id` the first free ready lab, ahead of the queue.
fn take_free_lab(ws: &Workshop, state: &mut State, id: AttendeeId) -> Vec<WorkshopEvent> {
    let Some(index) = state.free_lab() else { return vec![] };
    if let Some(lab) = state.labs.get_mut(&index) {
        lab.attendee = Some(id);
    }
    if let Some(attendee) = state.attendee_mut(id) {
        attendee.lab = Some(index);
        attendee.expires = Some(now() + ws.file.duration.as_secs());
        attendee.last_active = now();
    }
    vec![WorkshopEvent::Attendee(id)]
}

/// The wait of the attendee at `position` of the queue (1 = next): labs being made
/// finish within a lab-making time; beyond capacity, labs free up as others expire.
pub(super) fn estimate(file: &WorkshopFile, options: &Options, state: &State, position: usize) -> Duration {
    let make = Duration::from_millis(state.make_ms().unwrap_or(5_000));
    let room = (file.capacity as usize).saturating_sub(state.live_labs()) + state.spare_labs();
    if position <= room {
        let rounds = position.div_ceil(options.make_parallel.max(1)) as u32;
        return make * rounds.max(1);
    }
    // The (position - room)th soonest expiry frees a slot, then a lab is made.
    let mut expiries: Vec<u64> = state.attendees.iter().filter(|a| a.lab.is_some()).filter_map(|a| a.expires).collect();
    expiries.sort_unstable();
    let at = now();
    match expiries.get(position - room - 1) {
        Some(expiry) => Duration::from_secs(expiry.saturating_sub(at)) + make,
        None => file.duration + make,
    }
}

impl Workshop {
    /// Gives attendee `id` a fresh lab at once (from the pool; queued first when none is
    /// free); the old one is taken down in the background.
    pub async fn reset(self: &Arc<Self>, id: AttendeeId) -> Result<(), ActionError> {
        let (index, _) = self.lab_of(id)?;
        replace(self, id, index, "Your lab was reset: this is a fresh one.")?;
        self.wake.notify_one();
        Ok(())
    }

    /// Removes attendee `id` (their link stops working); their lab is taken down and
    /// its place goes to the queue.
    pub async fn remove(self: &Arc<Self>, id: AttendeeId) -> Result<(), ActionError> {
        let failed = |e: super::state::StateError| ActionError::Failed { cause: error_chain(&e) };
        let (lab, grant) = self
            .update(|state| {
                let Some(position) = state.attendees.iter().position(|a| a.id == id) else {
                    return (Err(ActionError::UnknownAttendee { id }), vec![]);
                };
                let attendee = state.attendees.remove(position);
                if let Some(lab) = attendee.lab.and_then(|i| state.labs.get_mut(&i)) {
                    lab.phase = Phase::Destroying;
                    lab.attendee = None;
                }
                (Ok((attendee.lab, attendee.ssh)), vec![WorkshopEvent::Attendee(id), WorkshopEvent::Pool])
            })
            .map_err(failed)??;
        let ws = self.clone();
        tokio::spawn(async move {
            if let Some(grant) = grant {
                super::sshport::remove_rules(&ws.file.name, &[grant]).await;
            }
            if let Some(index) = lab {
                destroy(ws, index).await;
            }
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_warm_labs_then_the_reserve() {
        let text = "apiVersion: zerolab/v1\nkind: Workshop\nname: wc0\nlab: {nodes: [{name: n}]}\n\
                    access_code: x\ncapacity: 10\npool: {warm: 4, reserve: 2}\nsteps: [{title: a}]\n";
        let file =
            WorkshopFile::from_str(text, "w.yaml", std::path::Path::new("."), &crate::provider::REGISTRY).unwrap();
        assert_eq!([0, 1, 2, 3, 8].map(|claimed| spare_target(&file, claimed)), [4, 3, 2, 2, 2]);
    }
}
