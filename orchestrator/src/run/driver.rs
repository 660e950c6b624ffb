//! The one loop that drives a run: every instance's [`Life`] moved through its states
//! ([`super::life`]) by [`Driver::drive`], with the agents asked through
//! [`super::steps`] and retries decided by a [`RetryPolicy`].
//!
//! First every instance is launched (`Placed` → `Uploaded` → `Started`: each node gets
//! its blobs once, then all sessions start at once; a start refused ends the run).
//! Then each round, every [`POLL`]:
//! 1. placements on other nodes that finished are taken (`Retrying` → `Started`, or
//!    the next node, or `Ended` when the run stopped first);
//! 2. one `GET /v1/sessions` per node with live instances: `Started` → `Running`; a
//!    session done is collected (`Ended`), or its attempt saved and the instance
//!    placed again (`Retrying`) when the policy has a node for it; a session the
//!    agent no longer knows, or a node silent for [`NODE_LOSS`], ends its instances
//!    the same way (and the node is never chosen again);
//! 3. followed instances' new output is read ([`Follower`]);
//! 4. the first failure for good stops the others (fail fast, in `ending.rs` with the
//!    end of the run): nothing more is placed, live sessions are killed, and those that
//!    have not ended after `STOP_WAIT` end as stopped. `zerolab cancel` (its marker
//!    in the run's directory) and an interrupt (Ctrl-C, SIGTERM) stop the run the
//!    same way, recorded as `cancelled` or `interrupted` rather than as a failure.
//!
//! A node's silence counts from the first listing it did not answer, and a listing
//! waits no longer than the node has left, so a node is lost [`NODE_LOSS`] after it
//! stopped answering. A listing that fails because the lab's keeper is gone (killed, or
//! crashed) is not the node's silence: the keeper is started again (`Keeper::open`)
//! and the same sessions are followed on; their guests kept running, their leases
//! ([`super::lease`]) outlasting the restart.
//!
//! The run's record is saved when the sessions started, whenever an instance starts
//! again (before the `cancel` marker is looked at, so `zerolab cancel` always reaches
//! the newest session), at the end of each round in which an instance ended, and at the
//! end with the run's state; a step that fails records the run as failed with the
//! cause, its live sessions killed. A run left behind is taken up again by
//! [`Driver::resume`] (`zerolab wait`): its sessions are followed from where they are.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio::task::{Id, JoinSet};
use zerolab_agent_api::{Report, SessionState};

mod ending;

use super::follow::{FollowError, Follower, Hook};
use super::lease::{Leases, LEASE};
use super::life::{count, Life, State};
use super::plan::Plan;
use super::policy::{Choice, RetryPolicy};
use super::record::{Attempt, JobRecord, Outcome, RunState, CANCELLED};
use super::steps::{self, Placed, Targets};
use super::{Counts, InstanceResult, RunError, LIST_TIMEOUT, NODE_LOSS, POLL};
use crate::agent_client::{self, AgentError, Link};
use crate::keeper::{Keeper, KeeperError};
use zerolab_sandbox::session::error_chain as cause;

/// What a run is given to drive.
pub struct Setup<'a> {
    /// The lab's keeper.
    pub mux: Keeper,
    /// The nodes it may use.
    pub targets: Targets,
    /// What goes where.
    pub plan: Plan,
    /// The results directory.
    pub dir: PathBuf,
    /// The run's record, saved in `dir`.
    pub record: JobRecord,
    /// When and where failed instances go again.
    pub policy: &'a dyn RetryPolicy,
    /// Where followed output goes, when the caller follows it.
    pub follow: Option<Hook<'a>>,
    /// When the run began: the step timings (`ZEROLAB_LOG=zerolab::run=debug`) count from it.
    pub begun: Instant,
    /// The lab's directory and the `zerolab` executable: what starts the keeper again.
    pub keeper_start: (PathBuf, PathBuf),
    /// Becomes true on an interrupt (Ctrl-C, SIGTERM): the run stops as `interrupted`.
    pub interrupt: Option<watch::Receiver<bool>>,
    /// Start the guests and return, leaving them running (`zerolab run --detach`): their
    /// sessions carry no lease. Otherwise every session is leased and the driver renews.
    pub detach: bool,
}

/// A run under way (see the module doc).
pub struct Driver<'a> {
    mux: Keeper,
    targets: Targets,
    plan: Plan,
    dir: PathBuf,
    record: JobRecord,
    policy: &'a dyn RetryPolicy,
    follower: Option<Follower<'a>>,
    begun: Instant,
    lives: Vec<Life>,
    /// Nodes lost, or whose agent restarted, during the run.
    lost: BTreeSet<String>,
    /// Since when each node's agent has not answered its listing.
    silent_since: BTreeMap<String, Instant>,
    /// Placements on other nodes under way.
    placing: JoinSet<(usize, Placed)>,
    task_of: HashMap<Id, usize>,
    stop: watch::Sender<bool>,
    /// Why the run stops, and since when.
    stopping: Option<(String, Instant)>,
    /// How many times instances were placed again.
    retried: usize,
    keeper_start: (PathBuf, PathBuf),
    interrupt: Option<watch::Receiver<bool>>,
    leases: Option<Leases>,
    detach: bool,
    /// Taken up from a run left behind: its sessions were started by another process.
    resumed: bool,
    /// The run stops as cancelled or interrupted, not as failed.
    ending: Option<RunState>,
    /// An instance ended since the record was last saved.
    dirty: bool,
}

/// How a drive ended: every instance's result in the plan's order, and the run's state.
pub type Driven = (Vec<InstanceResult>, RunState);

impl<'a> Driver<'a> {
    /// A run of `setup`, nothing sent yet.
    pub fn new(mut setup: Setup<'a>) -> Driver<'a> {
        let lives = setup.plan.instances.iter().map(|i| Life::placed(&i.node)).collect();
        let lease_secs = (!setup.detach).then_some(LEASE.as_secs());
        for instance in &mut setup.plan.instances {
            instance.request.lease_secs = lease_secs;
        }
        let leases = (!setup.detach).then(|| Leases::start(setup.mux.clone(), setup.targets.clone()));
        Driver {
            mux: setup.mux,
            targets: setup.targets,
            plan: setup.plan,
            dir: setup.dir,
            record: setup.record,
            policy: setup.policy,
            follower: setup.follow.map(Follower::new),
            begun: setup.begun,
            lives,
            lost: BTreeSet::new(),
            silent_since: BTreeMap::new(),
            placing: JoinSet::new(),
            task_of: HashMap::new(),
            stop: watch::channel(false).0,
            stopping: None,
            retried: 0,
            keeper_start: setup.keeper_start,
            interrupt: setup.interrupt,
            leases,
            detach: setup.detach,
            resumed: false,
            ending: None,
            dirty: false,
        }
    }

    /// A run left behind, taken up where its record says it is: each instance started
    /// in the session the record names, or ended as its outcome says (`results`, by
    /// index); one never started ends as such.
    pub fn resume(setup: Setup<'a>, results: Vec<Option<InstanceResult>>) -> Driver<'a> {
        let mut driver = Driver::new(setup);
        driver.resumed = true;
        for (index, result) in results.into_iter().enumerate() {
            let node = driver.plan.instances[index].node.clone();
            let session = driver.record.instances[index].session.clone();
            let result = match (result, &session) {
                (Some(result), _) => Some(result),
                (None, Some(_)) => None,
                (None, None) => Some(driver.ended(index, None, Some("never started".into()))),
            };
            driver.lives[index] = Life::resumed(&node, session, result);
        }
        driver
    }

    /// Runs every instance until all have ended (with `detach`, until all started);
    /// `progress` gets the counts whenever they change. A step that fails kills the
    /// live sessions and records the run as failed with its cause.
    pub async fn drive(mut self, progress: impl Fn(&Counts)) -> Result<Driven, RunError> {
        if let Err(error) = self.rounds(progress).await {
            steps::kill_all(&self.mux, &self.targets, self.live_sessions()).await;
            self.record.end(RunState::Failed, Some(cause(&error)));
            // The run's error is the one to report; a record that cannot be written adds nothing.
            let _ = self.record.save(&self.dir);
            return Err(error);
        }
        if self.detach {
            return Ok((Vec::new(), RunState::Detached));
        }
        self.finish().await
    }

    /// The launch (unless resumed), then rounds until every instance ended.
    async fn rounds(&mut self, progress: impl Fn(&Counts)) -> Result<(), RunError> {
        if !self.resumed {
            self.launch().await?;
        }
        if self.detach {
            self.record.state = RunState::Detached;
            return self.record.save(&self.dir);
        }
        let mut shown = None;
        loop {
            if let Some(leases) = &self.leases {
                leases.set(self.live_sessions());
            }
            let mut failure = self.take_placements().await?;
            let counts = count(&self.lives, self.retried);
            if shown != Some(counts) {
                progress(&counts);
                shown = Some(counts);
            }
            if counts.running + counts.pending == 0 {
                break;
            }
            self.watch(&mut failure).await?;
            self.follow(&mut failure).await?;
            self.cancelled_or_interrupted(&mut failure);
            self.fail_fast(failure).await;
            if std::mem::take(&mut self.dirty) {
                self.record.save(&self.dir)?;
            }
            tokio::time::sleep(POLL).await;
        }
        Ok(())
    }

    /// Instance `index` ended for good as `result`: its outcome goes into the record
    /// (saved at the end of the round).
    fn end_life(&mut self, index: usize, result: InstanceResult) {
        self.record.instances[index].outcome = Some(Outcome::of(&result));
        self.dirty = true;
        self.lives[index].advance(State::Ended(Box::new(result)));
    }

    /// `Placed` → `Uploaded` → `Started`, every instance; the record saved with the
    /// sessions. A start refused stops those started and ends the run.
    async fn launch(&mut self) -> Result<(), RunError> {
        steps::upload(&self.mux, &self.targets, &self.plan.blobs).await?;
        tracing::debug!(target: "zerolab::run", elapsed = ?self.begun.elapsed(), "uploaded");
        for (life, instance) in self.lives.iter_mut().zip(&self.plan.instances) {
            life.advance(State::Uploaded { node: instance.node.clone() });
        }
        let sessions = steps::start(&self.mux, &self.targets, &self.plan.instances).await;
        let mut refused = None;
        for (index, session) in sessions.into_iter().enumerate() {
            let node = self.plan.instances[index].node.clone();
            self.record.instances[index].session = session.as_ref().ok().cloned();
            match session {
                Ok(id) => {
                    self.lives[index].session = Some(id);
                    self.lives[index].advance(State::Started { node });
                }
                Err(why) => {
                    let result = self.ended(index, None, Some(why.clone()));
                    self.end_life(index, result);
                    refused.get_or_insert((index, why));
                }
            }
        }
        self.record.save(&self.dir)?;
        let Some((index, cause)) = refused else {
            tracing::debug!(target: "zerolab::run", elapsed = ?self.begun.elapsed(), "all sessions started");
            return Ok(());
        };
        steps::kill_all(&self.mux, &self.targets, self.live_sessions()).await;
        let instance = &self.plan.instances[index];
        Err(RunError::Start { instance: instance.name.clone(), node: instance.node.clone(), cause })
    }

    /// Every live session, as `(node, session id)`.
    fn live_sessions(&self) -> Vec<(String, String)> {
        let live = self.lives.iter().filter_map(|life| Some((life.state().node()?, life.live_session()?)));
        live.map(|(node, id)| (node.to_owned(), id.to_owned())).collect()
    }

    /// One listing per node with live instances, each instance moved by what it says.
    async fn watch(&mut self, failure: &mut Option<String>) -> Result<(), RunError> {
        let mut live_on: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        for (index, life) in self.lives.iter().enumerate() {
            if let (Some(node), Some(_)) = (life.state().node(), life.live_session()) {
                live_on.entry(node.to_owned()).or_default().push(index);
            }
        }
        let mut listings = JoinSet::new();
        let asked = Instant::now();
        for node in live_on.keys().cloned() {
            let (mux, targets) = (self.mux.clone(), self.targets.clone());
            // A silent node is given only what it has left before it counts as lost.
            let silent = self.silent_since.get(&node).map_or(Duration::ZERO, |since| since.elapsed());
            let timeout = LIST_TIMEOUT.min(NODE_LOSS.saturating_sub(silent)).max(POLL);
            listings.spawn(async move {
                let listed = agent_client::sessions(Link::Keeper(&mux, &targets[&node]), timeout).await;
                (node, listed)
            });
        }
        let mut keeper_gone = false;
        while let Some(Ok((node, listed))) = listings.join_next().await {
            let list = match listed {
                Ok(list) => {
                    self.silent_since.remove(&node);
                    list
                }
                Err(AgentError::Keeper(KeeperError::Io { .. })) => {
                    keeper_gone = true;
                    continue;
                }
                Err(e) => {
                    let since = *self.silent_since.entry(node.clone()).or_insert(asked);
                    if since.elapsed() >= NODE_LOSS {
                        let lost = format!("node {node} lost: {}", cause(&e));
                        for &index in &live_on[&node] {
                            let result = self.ended(index, None, Some(lost.clone()));
                            if !self.retry_or_end(index, result, true) {
                                failure.get_or_insert(lost.clone());
                            }
                        }
                    }
                    continue;
                }
            };
            let listed: HashMap<&str, SessionState> = list.sessions.iter().map(|s| (s.id.as_str(), s.state)).collect();
            for &index in &live_on[&node] {
                let session = self.lives[index].live_session().unwrap_or_default();
                match listed.get(session) {
                    Some(SessionState::Waiting) => {}
                    Some(SessionState::Running) => {
                        if let State::Started { node } = self.lives[index].state().clone() {
                            self.lives[index].advance(State::Running { node });
                        }
                    }
                    Some(SessionState::Done) => {
                        if let Some(why) = self.on_done(index).await? {
                            failure.get_or_insert(why);
                        }
                    }
                    // The agent restarted (it died, and its guests with it), or nobody
                    // renewed the session's lease and its record expired.
                    None => {
                        let gone = format!("the agent on {node} restarted and its guest is gone");
                        let result = self.ended(index, None, Some(gone.clone()));
                        if !self.retry_or_end(index, result, true) {
                            let name = &self.plan.instances[index].name;
                            failure.get_or_insert(format!("{name} lost: {gone}{}", self.lives[index].after()));
                        }
                    }
                }
            }
        }
        if keeper_gone {
            self.revive_keeper().await?;
        }
        Ok(())
    }

    /// The lab's keeper is gone: starts it again. What failed through the dead keeper
    /// in the rounds before said nothing about the nodes, so their silence starts over.
    async fn revive_keeper(&mut self) -> Result<(), RunError> {
        let (lab_dir, program) = &self.keeper_start;
        tracing::warn!("the lab's connection keeper is gone; starting it again");
        self.mux = Keeper::open(lab_dir, program).await?;
        self.silent_since.clear();
        Ok(())
    }

    /// Reads what is new of the followed instances that run; one whose session ended
    /// before the read is done with. A node whose agent stops answering ends the run.
    async fn follow(&mut self, failure: &mut Option<String>) -> Result<(), RunError> {
        if self.follower.is_none() {
            return Ok(());
        }
        for index in 0..self.lives.len() {
            if !matches!(self.lives[index].state(), State::Running { .. }) {
                continue;
            }
            if self.read_followed(index).await? {
                if let Some(why) = self.on_done(index).await? {
                    failure.get_or_insert(why);
                }
            }
        }
        Ok(())
    }

    /// Reads what is new of instance `index`'s output when it is followed; true when
    /// its session had ended before the read.
    async fn read_followed(&mut self, index: usize) -> Result<bool, RunError> {
        let (Some(follower), Some(node), Some(id)) =
            (self.follower.as_mut(), self.lives[index].state().node(), self.lives[index].session.as_deref())
        else {
            return Ok(false);
        };
        let instance = &self.plan.instances[index];
        let streams: Vec<&str> = instance.collect.iter().map(|c| c.stream).collect();
        let out = self.dir.join(&instance.name);
        match follower.read(Link::Keeper(&self.mux, &self.targets[node]), index, id, &streams, &out).await {
            Ok(ended) => Ok(ended),
            Err(FollowError::Run(e)) => Err(e),
            Err(FollowError::Agent(source)) => {
                let error =
                    RunError::Follow { node: node.to_owned(), session: id.to_owned(), source: Box::new(source) };
                steps::kill_all(&self.mux, &self.targets, self.live_sessions()).await;
                Err(error)
            }
        }
    }

    /// Instance `index`'s session ended: collected (`Ended`), or, when it failed and
    /// the policy has a node for it, its attempt saved and the instance placed again.
    /// Why the run must stop, when it failed for good.
    async fn on_done(&mut self, index: usize) -> Result<Option<String>, RunError> {
        let node = self.lives[index].state().node().unwrap_or_default().to_owned();
        let session = self.lives[index].session.clone().unwrap_or_default();
        let followed = self.follower.is_some();
        if followed {
            // The listing said done before this read: it reads the last bytes.
            self.read_followed(index).await?;
        }
        let (mux, targets) = (self.mux.clone(), self.targets.clone());
        let link = Link::Keeper(&mux, &targets[&node]);
        let instance = self.plan.instances[index].clone();
        let out = self.dir.join(&instance.name);
        if self.may_retry(index) {
            if let Some(report) = steps::report(link, &session).await {
                let failed = self.ended(index, report, None);
                if !failed.success() && self.next_node(index, &failed).is_some() {
                    let attempt = out.join(format!("attempt-{}", self.lives[index].attempts.len() + 1));
                    steps::save_attempt(link, &instance, &session, failed.report.as_ref(), &attempt).await?;
                    if self.retry_or_end(index, failed, false) {
                        return Ok(None);
                    }
                    return Ok(self.failed_for_good(index));
                }
            }
        }
        let followed: Vec<&str> = match followed {
            true => instance.collect.iter().map(|c| c.stream).filter(|s| *s != "output").collect(),
            false => Vec::new(),
        };
        let (report, why) = steps::collect(link, &instance, &session, &out, &followed).await?;
        let result = self.ended(index, report, why);
        self.end_life(index, result);
        Ok(self.failed_for_good(index))
    }

    /// Why the run stops because instance `index` ended as it did, unless it succeeded
    /// or the run stops already.
    fn failed_for_good(&self, index: usize) -> Option<String> {
        let result = self.lives[index].result()?;
        if result.success() || self.stopping.is_some() {
            return None;
        }
        let how = match &result.report {
            Some(r) if r.exit_state == "ok" => format!("exited {}", r.user_code),
            Some(r) => r.exit_state.clone(),
            None => "failed".to_owned(),
        };
        Some(format!("{} {how}{}", result.name, self.lives[index].after()))
    }

    fn stopped(&self) -> bool {
        *self.stop.borrow()
    }

    fn cancelled(&self) -> bool {
        self.dir.join(CANCELLED).exists()
    }

    /// Whether instance `index` has retries left and the run lets it use them.
    fn may_retry(&self, index: usize) -> bool {
        self.lives[index].attempts.len() < self.policy.retries(index) && !self.stopped() && !self.cancelled()
    }

    /// The node the policy sends instance `index` to after its attempt ended as
    /// `failed`, when it may go again.
    fn next_node(&self, index: usize, failed: &InstanceResult) -> Option<String> {
        if !self.may_retry(index) {
            return None;
        }
        let mut attempts = self.lives[index].attempts.clone();
        attempts.push(Attempt::of(failed, self.lives[index].session.as_deref()));
        let mut load: HashMap<String, usize> = HashMap::new();
        for (i, life) in self.lives.iter().enumerate() {
            if let (true, Some(node)) = (i != index, life.state().node()) {
                *load.entry(node.to_owned()).or_default() += 1;
            }
        }
        self.policy.next_node(&Choice { instance: index, attempts: &attempts, lost: &self.lost, load: &load })
    }

    /// Instance `index`'s attempt ended as `failed` (`node_lost`: its node was lost or
    /// its agent restarted, which rules the node out for the rest of the run). Places
    /// it again when the policy has a node for it (true); ends it otherwise.
    fn retry_or_end(&mut self, index: usize, failed: InstanceResult, node_lost: bool) -> bool {
        if node_lost {
            self.lost.insert(failed.node.clone());
        }
        let Some(to) = self.next_node(index, &failed) else {
            self.end_life(index, failed);
            return false;
        };
        let session = self.lives[index].session.take();
        self.lives[index].attempts.push(Attempt::of(&failed, session.as_deref()));
        let old = match (node_lost, session) {
            (true, Some(id)) => Some((self.targets[&failed.node].clone(), id)),
            _ => None,
        };
        let task = steps::place(
            self.mux.clone(),
            self.targets[&to].clone(),
            self.plan.instance_blobs[index].clone(),
            self.plan.instances[index].request.clone(),
            self.stop.subscribe(),
            old,
        );
        let handle = self.placing.spawn(async move { (index, task.await) });
        self.task_of.insert(handle.id(), index);
        self.lives[index].advance(State::Retrying { to, failed: Box::new(failed) });
        self.retried += 1;
        true
    }

    /// Takes the placements that finished. Why the run must stop, when an instance
    /// could not be started anywhere.
    async fn take_placements(&mut self) -> Result<Option<String>, RunError> {
        let mut failure = None;
        while let Some(joined) = self.placing.try_join_next_with_id() {
            let (index, placed) = match joined {
                Ok((id, (index, placed))) => {
                    self.task_of.remove(&id);
                    (index, placed)
                }
                Err(error) => match self.task_of.remove(&error.id()) {
                    Some(index) => (index, Placed::Failed(format!("its start was lost: {error}"))),
                    None => continue,
                },
            };
            let State::Retrying { to, failed } = self.lives[index].state().clone() else { continue };
            match placed {
                Placed::Started(session) => {
                    self.plan.instances[index].node = to.clone();
                    self.lives[index].session = Some(session.clone());
                    self.lives[index].advance(State::Started { node: to.clone() });
                    let entry = &mut self.record.instances[index];
                    entry.node = to.clone();
                    entry.session = Some(session.clone());
                    entry.attempts = self.lives[index].attempts.clone();
                    self.record.save(&self.dir)?;
                    // Saved before looking: a `cancel` that came later reads the new session.
                    if self.stopped() || self.cancelled() {
                        steps::kill_all(&self.mux, &self.targets, vec![(to, session)]).await;
                    }
                }
                Placed::Stopped => {
                    // Its last attempt is its result again, outputs and session included.
                    let last = self.lives[index].attempts.pop();
                    self.lives[index].session = last.and_then(|attempt| attempt.session);
                    self.retried -= 1;
                    let instance = &self.plan.instances[index];
                    let out = self.dir.join(&instance.name);
                    let saved = out.join(format!("attempt-{}", self.lives[index].attempts.len() + 1));
                    steps::restore(instance, &out, &saved).await?;
                    self.end_life(index, *failed);
                }
                Placed::Failed(why) => {
                    self.plan.instances[index].node = to.clone();
                    let failed = self.ended(index, None, Some(format!("could not be started on {to}: {why}")));
                    if !self.retry_or_end(index, failed, false) {
                        let name = &self.plan.instances[index].name;
                        let after = self.lives[index].after();
                        failure.get_or_insert(format!("{name} could not be started{after}"));
                    }
                }
            }
        }
        Ok(failure)
    }

    /// Instance `index`'s result on its current node.
    fn ended(&self, index: usize, report: Option<Report>, cause: Option<String>) -> InstanceResult {
        let instance = &self.plan.instances[index];
        InstanceResult { name: instance.name.clone(), node: instance.node.clone(), report, cause, attempts: Vec::new() }
    }
}
