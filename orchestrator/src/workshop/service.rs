//! The workshop as a service: one [`Workshop`] per `serve` process (Arc-shared), whose
//! methods the portal calls for attendees (join, view, touch, terminal, check, SSH key)
//! and for the instructor (overview, reset, extend, shelve, unshelve, remove, CSV), and
//! whose [`events`](Workshop::events) live pages follow.
//!
//! Every change goes through `Workshop::update`: the state is changed under one
//! lock, saved (`workshop.json`, atomically) and the change announced, so what is on
//! disk is always what attendees were told. Nothing slow happens under the lock: making,
//! taking down, shelving labs and running checks happen in tasks ([`super::pool`],
//! [`super::watch`]) that take the lock only to record what they did.
//!
//! Tokens: 128 random bits as 32 hex characters, given to the attendee once and kept
//! only as SHA-256 hashes; the access code and the instructor's password are compared
//! through their SHA-256 hashes in constant time.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use ring::rand::{SecureRandom, SystemRandom};
use tokio::sync::{broadcast, Notify, Semaphore};
use zerolab_agent_api::Sha256;

use super::state::{now, Attendee, AttendeeId, Phase, State, StateError};
use super::view::{self, AttendeeView, LabInfo, LabStateLabel, Overview, OverviewRow, PoolCounts, StepView};
use super::{Options, WorkshopEvent, WorkshopFile};
use crate::cluster::Cluster;
use crate::lab::{private_dir, write_private, Lab, LabError};

/// The longest attendee name.
pub const MAX_NAME: usize = 64;

/// The workshop service.
pub struct Workshop {
    me: Weak<Workshop>,
    pub(super) file: WorkshopFile,
    pub(super) dir: PathBuf,
    pub(super) options: Options,
    state: Mutex<State>,
    pub(super) events: broadcast::Sender<WorkshopEvent>,
    /// Wakes the pool when labs or the queue changed.
    pub(super) wake: Notify,
    /// Labs made at once.
    pub(super) making: Semaphore,
    /// No lab is made before this (after one failed).
    pub(super) paused: Mutex<Option<std::time::Instant>>,
    clusters: Mutex<HashMap<u32, Arc<Cluster>>>,
    steps_html: Vec<String>,
    code_hash: Sha256,
    password_hash: Sha256,
    /// Set by `down`: no one joins any more.
    closed: std::sync::atomic::AtomicBool,
    /// Ready labs' warm terminals.
    pub(super) warm: super::warm::Warm,
}

/// A new attendee: their secret token (their link) and number.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Joined {
    /// 128 random bits, url-safe; shown to the attendee once.
    pub token: String,
    /// Their number.
    pub attendee: AttendeeId,
}

/// How the portal's terminal reaches an attendee's node: SSH with the lab's key,
/// checking the lab's pinned host keys.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeAccess {
    /// The node's address.
    pub address: String,
    /// Its SSH port.
    pub port: u16,
    /// The user to log in as.
    pub user: String,
    /// The lab's private key.
    pub key: PathBuf,
    /// The lab's pinned host keys (zerolab's `known_hosts`, read by `ssh::HostKeys`).
    pub known_hosts: PathBuf,
    /// The node's name (the pins are by name).
    pub node: String,
}

impl NodeAccess {
    /// The SSH target it names.
    pub fn target(&self) -> crate::ssh::Target {
        crate::ssh::Target {
            node: self.node.clone(),
            address: self.address.clone(),
            port: self.port,
            user: self.user.clone(),
            key: self.key.clone(),
        }
    }
}

/// Why someone could not join.
#[derive(Debug, thiserror::Error)]
pub enum JoinError {
    /// The access code is not the workshop's.
    #[error("wrong access code; ask the instructor for it")]
    BadCode,
    /// The name is empty, too long or has control characters.
    #[error("a name is 1 to {MAX_NAME} characters, without control characters")]
    NameInvalid,
    /// The workshop is being taken down.
    #[error("the workshop is closed")]
    Closed,
    /// The state could not be saved.
    #[error(transparent)]
    State(#[from] StateError),
}

/// Why an attendee's request on their lab could not be done.
#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    /// No attendee has this token.
    #[error("unknown link; join again with the access code")]
    UnknownToken,
    /// The attendee is queued for a lab.
    #[error("no lab yet: you are in the queue")]
    NoLab,
    /// The lab is not ready (being made or replaced).
    #[error("your lab is {}; try again in a few seconds", state.as_str())]
    NotReady { state: LabStateLabel },
    /// The lab's time is up.
    #[error("your lab's time is up; ask the instructor to extend it")]
    Expired,
    /// No such node in the lab.
    #[error("no node `{node}` in your lab")]
    UnknownNode { node: String },
    /// The public key is not one key line of a known type.
    #[error("not an SSH public key: {reason}; paste one line such as `ssh-ed25519 AAAA... you@laptop`")]
    BadKey { reason: String },
    /// Every SSH port of the workshop is taken.
    #[error("no SSH port left in the workshop's range; ask the instructor")]
    NoPort,
    /// Something failed on this machine or the node.
    #[error("{cause}")]
    Failed { cause: String },
}

/// Why an instructor's action could not be done.
#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    /// No attendee of this number.
    #[error("no attendee {id}")]
    UnknownAttendee { id: AttendeeId },
    /// The attendee has no lab.
    #[error("attendee {id} has no lab yet")]
    NoLab { id: AttendeeId },
    /// The action does not apply to the lab's state.
    #[error("attendee {id}'s lab is {}", state.as_str())]
    State { id: AttendeeId, state: LabStateLabel },
    /// Something failed on this machine or the node.
    #[error("{cause}")]
    Failed { cause: String },
}

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum WorkshopError {
    /// The state file.
    #[error(transparent)]
    State(#[from] StateError),
    /// The workshop directory or the password file.
    #[error(transparent)]
    Lab(#[from] LabError),
    /// The instructor's password file could not be read.
    #[error("cannot read the instructor's password file {}: {source}", path.display())]
    Password { path: PathBuf, source: std::io::Error },
}

/// The instructor's password file generated in the workshop directory.
pub const PASSWORD_FILE: &str = "instructor.txt";
/// The state file in the workshop directory.
pub const STATE_FILE: &str = "workshop.json";

impl Workshop {
    /// Opens workshop `file`'s service on its directory `dir` (made 0700 if missing),
    /// with its state as the last process left it. Nothing runs until [`Workshop::start`].
    pub fn open(file: WorkshopFile, dir: PathBuf, options: Options) -> Result<Arc<Workshop>, WorkshopError> {
        private_dir(&dir)?;
        private_dir(&dir.join("labs"))?;
        let state = State::load(&dir.join(STATE_FILE))?;
        let password = password(&file, &dir)?;
        let steps_html = file.steps.iter().map(|step| view::markdown(&step.text)).collect();
        let making = Semaphore::new(options.make_parallel.max(1));
        Ok(Arc::new_cyclic(|me| Workshop {
            me: me.clone(),
            code_hash: Sha256::of_bytes(file.access_code.as_bytes()),
            password_hash: Sha256::of_bytes(password.as_bytes()),
            file,
            dir,
            options,
            state: Mutex::new(state),
            events: broadcast::channel(1024).0,
            wake: Notify::new(),
            making,
            paused: Mutex::new(None),
            clusters: Mutex::new(HashMap::new()),
            steps_html,
            closed: std::sync::atomic::AtomicBool::new(false),
            warm: super::warm::Warm::default(),
        }))
    }

    /// Starts the pool and the timers: labs are made, checked and watched from now on.
    pub fn start(self: &Arc<Workshop>) {
        super::pool::start(self);
        super::watch::start(self);
    }

    /// This service, shared (for tasks started from `&self`).
    pub(super) fn self_arc(&self) -> Option<Arc<Workshop>> {
        self.me.upgrade()
    }

    /// The workshop file.
    pub fn file(&self) -> &WorkshopFile {
        &self.file
    }

    /// The workshop directory.
    pub fn dir(&self) -> &std::path::Path {
        &self.dir
    }

    /// The lab root of the workshop's labs.
    pub fn labs_root(&self) -> PathBuf {
        self.dir.join("labs")
    }

    /// Reads the state.
    pub(super) fn read<R>(&self, f: impl FnOnce(&State) -> R) -> R {
        f(&self.state.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Changes the state, saves it, and announces `events`.
    pub(super) fn update<R>(&self, f: impl FnOnce(&mut State) -> (R, Vec<WorkshopEvent>)) -> Result<R, StateError> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let (result, events) = f(&mut state);
        // A lab that left `ready` loses its warm terminal in the same change.
        self.warm.sweep(&state);
        if !events.is_empty() {
            state.save(&self.dir.join(STATE_FILE))?;
        }
        drop(state);
        for event in events {
            let _ = self.events.send(event);
        }
        Ok(result)
    }

    /// Lab `index`'s cluster (the template with its name and subnet).
    pub(super) fn cluster(&self, index: u32) -> Result<Arc<Cluster>, String> {
        let mut clusters = self.clusters.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(cluster) = clusters.get(&index) {
            return Ok(cluster.clone());
        }
        let cluster = Arc::new(self.file.lab(index, &crate::provider::REGISTRY).map_err(|e| e.to_string())?);
        clusters.insert(index, cluster.clone());
        Ok(cluster)
    }

    /// Lab `index`'s directory handle.
    pub(super) fn lab(&self, index: u32) -> Result<Lab, String> {
        Lab::at(self.labs_root(), &self.file.lab_name(index)).map_err(|e| e.to_string())
    }

    /// Joins attendee `name` with the access code `code`: a lab at once when one is free
    /// and no one waits, else a place in the queue.
    pub async fn join(&self, code: &str, name: &str) -> Result<Joined, JoinError> {
        if !same(&Sha256::of_bytes(code.trim().as_bytes()), &self.code_hash) {
            return Err(JoinError::BadCode);
        }
        let name = name.trim();
        if name.is_empty() || name.chars().count() > MAX_NAME || name.chars().any(char::is_control) {
            return Err(JoinError::NameInvalid);
        }
        if self.is_closed() {
            return Err(JoinError::Closed);
        }
        let token = token();
        let hash = Sha256::of_bytes(token.as_bytes()).to_string();
        let id = self.update(|state| {
            let id = state.attendees.iter().map(|a| a.id).max().unwrap_or(0) + 1;
            let at = now();
            state.attendees.push(Attendee {
                id,
                name: name.to_owned(),
                token_sha256: hash,
                joined: at,
                lab: None,
                expires: None,
                last_active: at,
                done: vec![false; self.file.steps.len()],
                notice: None,
                ssh: None,
            });
            let mut events = vec![WorkshopEvent::Attendee(id), WorkshopEvent::Pool];
            events.extend(self.assign(state));
            (id, events)
        })?;
        self.wake.notify_one();
        Ok(Joined { token, attendee: id })
    }

    /// Hands free ready labs to queued attendees, in join order; returns the events.
    pub(super) fn assign(&self, state: &mut State) -> Vec<WorkshopEvent> {
        let mut events = Vec::new();
        for id in state.queue() {
            let Some(index) = state.free_lab() else { break };
            let at = now();
            let duration = self.file.duration.as_secs();
            if let Some(lab) = state.labs.get_mut(&index) {
                lab.attendee = Some(id);
            }
            if let Some(attendee) = state.attendee_mut(id) {
                attendee.lab = Some(index);
                attendee.expires = Some(at + duration);
                attendee.last_active = at;
            }
            events.push(WorkshopEvent::Attendee(id));
        }
        if !events.is_empty() {
            events.push(WorkshopEvent::Pool);
        }
        events
    }

    /// The attendee holding `token`.
    pub(super) fn attendee_of(&self, token: &str) -> Option<AttendeeId> {
        let hash = Sha256::of_bytes(token.as_bytes()).to_string();
        self.read(|state| state.attendees.iter().find(|a| same_text(&a.token_sha256, &hash)).map(|a| a.id))
    }

    /// What the attendee holding `token` sees; `None` for an unknown token.
    pub async fn view(&self, token: &str) -> Option<AttendeeView> {
        let id = self.attendee_of(token)?;
        self.view_of(id)
    }

    /// Attendee `id`'s view.
    pub(super) fn view_of(&self, id: AttendeeId) -> Option<AttendeeView> {
        let (attendee, phase, queue, estimate) = self.read(|state| {
            let attendee = state.attendee(id)?.clone();
            let phase = attendee.lab.and_then(|i| state.labs.get(&i)).map(|l| l.phase);
            let queue = state.queue().iter().position(|q| *q == id).map(|p| p + 1);
            let estimate = queue.map(|position| super::pool::estimate(&self.file, &self.options, state, position));
            Some((attendee, phase, queue, estimate))
        })?;
        let lab = match (attendee.lab, phase) {
            (Some(index), Some(phase)) => self.cluster(index).ok().map(|cluster| LabInfo {
                name: cluster.name().to_owned(),
                nodes: cluster.nodes().iter().map(|n| n.name.clone()).collect(),
                state: LabStateLabel::of(phase),
            }),
            _ => None,
        };
        let steps: Vec<StepView> = self
            .file
            .steps
            .iter()
            .zip(&self.steps_html)
            .enumerate()
            .map(|(i, (step, html))| StepView {
                title: step.title.clone(),
                html: html.clone(),
                done: attendee.done.get(i).copied().unwrap_or(false),
            })
            .collect();
        let step = steps.iter().position(|s| !s.done).unwrap_or(steps.len());
        let time_left = attendee.expires.map(|at| Duration::from_secs(at.saturating_sub(now())));
        let user = attendee.lab.and_then(|i| self.cluster(i).ok()).map(|c| c.nodes()[0].user.clone());
        let ssh = attendee.ssh.as_ref().zip(user).map(|(grant, user)| super::sshport::access(self, grant.port, &user));
        Some(AttendeeView {
            id,
            name: attendee.name,
            lab,
            queue: queue.zip(estimate),
            step,
            steps,
            time_left: time_left.filter(|_| attendee.lab.is_some()),
            ssh,
            notice: attendee.notice,
        })
    }

    /// Records activity of the attendee holding `token`; a lab shelved for being idle
    /// is brought back (in the background).
    pub async fn touch(&self, token: &str) {
        let Some(id) = self.attendee_of(token) else { return };
        let at = now();
        let _ = self.update(|state| {
            let Some(attendee) = state.attendee_mut(id) else { return ((), vec![]) };
            // Saved at most every few seconds: activity is frequent, its precision is not.
            let events = if at >= attendee.last_active + 5 { vec![WorkshopEvent::Attendee(id)] } else { vec![] };
            attendee.last_active = at;
            ((), events)
        });
        super::watch::wake_lab(self, id);
    }

    /// Checks `token`'s attendee's steps now and returns their view.
    pub async fn check(&self, token: &str) -> Result<AttendeeView, AccessError> {
        let id = self.attendee_of(token).ok_or(AccessError::UnknownToken)?;
        super::watch::run_checks(self, id).await;
        self.view_of(id).ok_or(AccessError::UnknownToken)
    }

    /// The instructor's password, checked in constant time.
    pub fn instructor_login(&self, password: &str) -> bool {
        same(&Sha256::of_bytes(password.as_bytes()), &self.password_hash)
    }

    /// Every attendee and the pool, for the instructor.
    pub async fn overview(&self) -> Overview {
        self.read(|state| overview_of(&self.file, state))
    }

    /// The overview as CSV.
    pub async fn csv(&self) -> String {
        view::csv(&self.overview().await)
    }

    /// Follows what changes.
    pub fn events(&self) -> broadcast::Receiver<WorkshopEvent> {
        self.events.subscribe()
    }

    /// Stops the service (`workshop down`): no one joins, no lab is made or watched
    /// from now on; returns once the labs being made are done and every warm terminal
    /// is closed.
    pub async fn close(&self) {
        self.closed.store(true, std::sync::atomic::Ordering::SeqCst);
        self.wake.notify_one();
        let permits = u32::try_from(self.options.make_parallel.max(1)).unwrap_or(u32::MAX);
        // Every permit free: no lab is being made.
        let _ = self.making.acquire_many(permits).await;
        self.warm.close_all().await;
    }

    /// Whether [`Workshop::close`] was called.
    pub(super) fn is_closed(&self) -> bool {
        self.closed.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Attendee `id`'s lab index and phase, or why there is none.
    pub(super) fn lab_of(&self, id: AttendeeId) -> Result<(u32, Phase), ActionError> {
        self.read(|state| {
            let attendee = state.attendee(id).ok_or(ActionError::UnknownAttendee { id })?;
            let index = attendee.lab.ok_or(ActionError::NoLab { id })?;
            let phase = state.labs.get(&index).map(|l| l.phase).ok_or(ActionError::NoLab { id })?;
            Ok((index, phase))
        })
    }
}

/// The instructor's overview of `state`.
pub fn overview_of(file: &WorkshopFile, state: &State) -> Overview {
    let at = now();
    let queue = state.queue();
    let rows = state
        .attendees
        .iter()
        .map(|a| {
            let record = a.lab.and_then(|i| state.labs.get(&i));
            OverviewRow {
                id: a.id,
                name: a.name.clone(),
                lab: a.lab.map(|i| file.lab_name(i)),
                state: record.map(|l| LabStateLabel::of(l.phase)),
                queued: queue.iter().position(|q| *q == a.id).map(|p| p + 1),
                step: a.done.iter().position(|d| !d).unwrap_or(a.done.len()),
                steps: file.steps.len(),
                idle_for: Duration::from_secs(at.saturating_sub(a.last_active)),
                time_left: a.lab.and(a.expires).map(|e| Duration::from_secs(e.saturating_sub(at))),
                notice: a.notice.clone(),
            }
        })
        .collect();
    Overview { workshop: file.name.clone(), rows, pool: counts(state, file.capacity) }
}

/// The pool's counts.
pub(super) fn counts(state: &State, capacity: u32) -> PoolCounts {
    let mut counts = PoolCounts { capacity, queued: state.queue().len(), ..PoolCounts::default() };
    for lab in state.labs.values() {
        match (lab.phase, lab.attendee) {
            (Phase::Warming, _) => counts.warming += 1,
            (Phase::Ready, None) => counts.free += 1,
            (Phase::Ready, Some(_)) => counts.claimed += 1,
            (Phase::Shelved | Phase::ShelvedOffloaded | Phase::Expired, _) => counts.shelved += 1,
            (Phase::Broken | Phase::Destroying, _) => counts.leaving += 1,
        }
    }
    counts
}

/// A new token: 128 random bits as 32 hex characters.
fn token() -> String {
    let mut bytes = [0u8; 16];
    // The system's random source does not fail on Linux once booted; a zero token
    // would be refused by nothing, so fail loudly instead.
    SystemRandom::new().fill(&mut bytes).expect("the system's random source works");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Equal hashes, compared in constant time.
fn same(a: &Sha256, b: &Sha256) -> bool {
    same_text(&a.to_string(), &b.to_string())
}

/// Equal strings of equal length, compared in constant time.
fn same_text(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The instructor's password: the file's, or one generated once into the directory.
fn password(file: &WorkshopFile, dir: &std::path::Path) -> Result<String, WorkshopError> {
    let path = file.password_file.clone().unwrap_or_else(|| dir.join(PASSWORD_FILE));
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok(text.trim().to_owned()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && file.password_file.is_none() => {
            let password = token();
            write_private(&path, format!("{password}\n").as_bytes())?;
            Ok(password)
        }
        Err(source) => Err(WorkshopError::Password { path, source }),
    }
}
