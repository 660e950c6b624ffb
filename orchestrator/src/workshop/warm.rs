//! Warm terminals: the expensive part of a browser terminal (an SSH login to the node
//! and a login shell on a pty) done before anyone asks, so that 100 attendees opening
//! their terminals at once cost the machine a window resize each, not 100 logins.
//!
//! What it holds: per lab index, at most one [`Terminal`] to the lab's first node (the
//! one the portal's terminal opens by default): an SSH connection authenticated with the
//! lab's key against its pinned host keys, and a login shell on an 80x24 pty whose first
//! output (the prompt) is kept until a browser attaches and is then replayed, the pty
//! resized to the browser's size.
//!
//! Lifetime:
//! 1. made by the pool together with the lab ([`open`]), and recorded in the same
//!    state change that records the lab ready (`Warm::put`); labs ready without one
//!    (a `serve` restarted, an unshelved lab, a dead one dropped) get one from
//!    `tend`, which the watch loop calls every tick;
//! 2. taken once ([`Workshop::open_terminal`]): a second tab or a reload connects
//!    afresh, and no new warm one is made for the lab until it leaves `ready`;
//! 3. closed when the lab leaves `ready` (reset, replaced, removed, expired, shelved,
//!    taken down), when its connection or shell ends (found by `tend`), and by
//!    `Warm::close_all` when the service stops (`workshop down`).
//!
//! Why it is never someone else's terminal: it is keyed by the lab's index and exists
//! only while that lab is continuously `ready`. Every state change goes through
//! `Workshop::update`, which ends with `Warm::sweep` under the state's lock: a lab
//! not `ready` loses its entry. One made in the background is kept only when, under the
//! state's lock, its lab is still `ready` and nothing replaced its entry meanwhile (the
//! entry's epoch), so a lab index reused by a new lab never inherits an old connection.
//! It is handed out under the same lock, only to the attendee the state says holds that
//! lab. Lock order: the state, then the entries.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use russh::ChannelMsg;
use tokio::sync::Semaphore;

use super::service::{AccessError, NodeAccess};
use super::state::{Phase, State};
use super::Workshop;
use crate::cluster::Cluster;
use crate::lab::Lab;
use crate::ssh::{self, ConnectOptions, HostKeys, Session, Shell};

/// The terminal type the shell is told.
pub const TERM: &str = "xterm-256color";
/// A warm terminal's size until a browser says its own.
const WARM_SIZE: (u32, u32) = (80, 24);
/// Warm terminals made at once in the background (each is an SSH login).
const MAKING: usize = 4;
/// How long after a failed try a lab's warm terminal is tried again.
const RETRY: Duration = Duration::from_secs(30);
/// The most output kept from a warm shell before a browser attaches.
const EARLY_MAX: usize = 64 * 1024;

/// A login shell on a pty of a node, over its own SSH connection.
pub struct Terminal {
    /// The node it reaches.
    pub node: String,
    /// Its connection (closed with [`Terminal::close`]).
    pub session: Session,
    /// The shell's channel.
    pub shell: Shell,
    /// What the shell wrote before anyone read it (a warm shell's prompt).
    pub early: Vec<u8>,
    /// Whether it was made ahead (the warm path).
    pub warm: bool,
}

impl Terminal {
    /// Closes the connection.
    pub async fn close(self) {
        let _ = self.session.close().await;
    }

    /// Moves what the shell has written so far into `early`; false when the shell or
    /// its connection has ended.
    fn drain(&mut self) -> bool {
        if self.session.is_closed() {
            return false;
        }
        while let Some(message) = self.shell.wait().now_or_never() {
            match message {
                Some(ChannelMsg::Data { data }) | Some(ChannelMsg::ExtendedData { data, .. }) => {
                    if self.early.len() + data.len() > EARLY_MAX {
                        return false;
                    }
                    self.early.extend_from_slice(&data);
                }
                Some(ChannelMsg::Eof) | Some(ChannelMsg::Close) | Some(ChannelMsg::ExitStatus { .. }) | None => {
                    return false
                }
                Some(_) => {}
            }
        }
        true
    }
}

/// Connects to the node `access` describes and opens a login shell of `cols` x `rows`.
pub async fn open(access: &NodeAccess, cols: u32, rows: u32) -> Result<Terminal, ssh::Error> {
    let host_keys = HostKeys::open(&access.known_hosts)?;
    let session = Session::connect(&access.target(), &host_keys, &ConnectOptions::known_up()).await?;
    let shell = session.open_shell(TERM, cols, rows).await?;
    Ok(Terminal { node: access.node.clone(), session, shell, early: Vec::new(), warm: false })
}

/// One lab's entry.
enum Slot {
    /// Being made by the task of this epoch.
    Making(u64),
    /// Ready for the lab's attendee.
    Ready(Box<Terminal>),
    /// Handed out since the lab became ready.
    Taken,
    /// The last try failed then; tried again after [`RETRY`].
    Failed(Instant),
}

/// Terminals handed out, warm and made on demand.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TerminalCounts {
    /// Taken warm.
    pub warm: u64,
    /// Connected when asked.
    pub cold: u64,
}

/// The warm terminals of one workshop.
pub struct Warm {
    slots: Mutex<HashMap<u32, Slot>>,
    epoch: AtomicU64,
    making: Arc<Semaphore>,
    warm: AtomicU64,
    cold: AtomicU64,
}

impl Default for Warm {
    fn default() -> Warm {
        Warm {
            slots: Mutex::new(HashMap::new()),
            epoch: AtomicU64::new(0),
            making: Arc::new(Semaphore::new(MAKING)),
            warm: AtomicU64::new(0),
            cold: AtomicU64::new(0),
        }
    }
}

impl Warm {
    fn slots(&self) -> std::sync::MutexGuard<'_, HashMap<u32, Slot>> {
        self.slots.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records `terminal` as lab `index`'s; called under the state's lock in the change
    /// that records the lab ready.
    pub(super) fn put(&self, index: u32, mut terminal: Terminal) {
        terminal.warm = true;
        if let Some(Slot::Ready(old)) = self.slots().insert(index, Slot::Ready(Box::new(terminal))) {
            close_later(*old);
        }
    }

    /// Drops the entries of labs `state` does not record `ready`; called under the
    /// state's lock after every change.
    pub(super) fn sweep(&self, state: &State) {
        let mut slots = self.slots();
        let gone: Vec<u32> = slots
            .keys()
            .filter(|index| state.labs.get(index).is_none_or(|lab| lab.phase != Phase::Ready))
            .copied()
            .collect();
        for index in gone {
            if let Some(Slot::Ready(terminal)) = slots.remove(&index) {
                close_later(*terminal);
            }
        }
    }

    /// Drops lab `index`'s entry (before it is shelved).
    pub(super) fn forget(&self, index: u32) {
        if let Some(Slot::Ready(terminal)) = self.slots().remove(&index) {
            close_later(*terminal);
        }
    }

    /// Lab `index`'s warm terminal to `node`, once; `None` when there is none or it has
    /// ended (then dropped, and made again by `tend`).
    fn take(&self, index: u32, node: &str) -> Option<Terminal> {
        let mut slots = self.slots();
        let alive = match slots.get_mut(&index) {
            Some(Slot::Ready(terminal)) if terminal.node == node => terminal.drain(),
            _ => return None,
        };
        let Some(Slot::Ready(terminal)) = slots.remove(&index) else { return None };
        if !alive {
            close_later(*terminal);
            return None;
        }
        slots.insert(index, Slot::Taken);
        Some(*terminal)
    }

    /// How many terminals were handed out, warm and cold.
    pub fn counts(&self) -> TerminalCounts {
        TerminalCounts { warm: self.warm.load(Ordering::Relaxed), cold: self.cold.load(Ordering::Relaxed) }
    }

    /// Closes every warm terminal (the service stops); none is made afterwards.
    pub(super) async fn close_all(&self) {
        // Every permit: none is being made; closed: none will be.
        let all = self.making.acquire_many(MAKING as u32).await;
        self.making.close();
        drop(all);
        let terminals: Vec<Terminal> = self
            .slots()
            .drain()
            .filter_map(|(_, slot)| match slot {
                Slot::Ready(terminal) => Some(*terminal),
                _ => None,
            })
            .collect();
        futures_util::future::join_all(terminals.into_iter().map(Terminal::close)).await;
    }
}

/// Closes `terminal` in the background (its connection ends with the task).
fn close_later(terminal: Terminal) {
    match tokio::runtime::Handle::try_current() {
        Ok(runtime) => drop(runtime.spawn(terminal.close())),
        // Dropped: the connection ends when its session task sees the handle gone.
        Err(_) => drop(terminal),
    }
}

/// Makes warm terminals for ready labs without one (in the background, [`MAKING`] at a
/// time; a lab whose last try failed waits [`RETRY`]) and drops those whose shell or
/// connection ended; `busy` tells labs another task is changing (shelving), which are
/// left alone.
pub(super) fn tend(ws: &Arc<Workshop>, busy: impl Fn(u32) -> bool) {
    if ws.warm.making.is_closed() {
        return;
    }
    let wanted: Vec<(u32, u64)> = ws.read(|state| {
        let mut slots = ws.warm.slots();
        let mut wanted = Vec::new();
        for (index, lab) in &state.labs {
            if lab.phase != Phase::Ready || busy(*index) {
                continue;
            }
            let stale = match slots.get_mut(index) {
                Some(Slot::Ready(terminal)) => !terminal.drain(),
                Some(Slot::Failed(at)) => at.elapsed() >= RETRY,
                _ => false,
            };
            if stale {
                if let Some(Slot::Ready(terminal)) = slots.remove(index) {
                    close_later(*terminal);
                }
            }
            if !slots.contains_key(index) {
                let epoch = ws.warm.epoch.fetch_add(1, Ordering::Relaxed) + 1;
                slots.insert(*index, Slot::Making(epoch));
                wanted.push((*index, epoch));
            }
        }
        wanted
    });
    for (index, epoch) in wanted {
        let ws = ws.clone();
        tokio::spawn(async move {
            let Ok(_permit) = ws.warm.making.clone().acquire_owned().await else { return };
            let made = match ws.access(index, None) {
                Ok(access) => open(&access, WARM_SIZE.0, WARM_SIZE.1).await.map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            ws.read(|state| {
                let mut slots = ws.warm.slots();
                let current = matches!(slots.get(&index), Some(Slot::Making(e)) if *e == epoch);
                let ready = state.labs.get(&index).is_some_and(|lab| lab.phase == Phase::Ready);
                match made {
                    Ok(mut terminal) if current && ready => {
                        terminal.warm = true;
                        slots.insert(index, Slot::Ready(Box::new(terminal)));
                    }
                    Ok(terminal) => close_later(terminal),
                    Err(cause) => {
                        tracing::warn!(lab = %ws.file.lab_name(index), "no warm terminal: {cause}");
                        if current {
                            slots.insert(index, Slot::Failed(Instant::now()));
                        }
                    }
                }
            });
        });
    }
}

/// Lab `index`'s warm terminal, made with the lab (logged and `None` when it fails:
/// `tend` tries again once the lab is ready).
pub(super) async fn open_for(ws: &Workshop, index: u32) -> Option<Terminal> {
    let access = ws.access(index, None).ok()?;
    match open(&access, WARM_SIZE.0, WARM_SIZE.1).await {
        Ok(terminal) => Some(terminal),
        Err(e) => {
            tracing::warn!(lab = %ws.file.lab_name(index), "no warm terminal: {e}");
            None
        }
    }
}

/// A warm terminal to the first node of lab `cluster` under `root` (as the pool makes
/// one), for `workshop plan` to measure a lab with it.
pub(super) async fn open_for_lab(root: &std::path::Path, cluster: &Cluster) -> Result<Terminal, String> {
    let lab = Lab::at(root, cluster.name()).map_err(|e| e.to_string())?;
    let access = super::watch::node_access(&lab, cluster, None).map_err(|e| e.to_string())?;
    open(&access, WARM_SIZE.0, WARM_SIZE.1).await.map_err(|e| format!("no terminal on node {}: {e}", access.node))
}

impl Workshop {
    /// A login shell on node `node` (default: the first) of the lab of the attendee
    /// holding `token`, sized `cols` x `rows`: the lab's warm terminal when it has one
    /// (resized, its early output kept for the caller to show), else a new connection
    /// (a shelved lab is unshelved first).
    pub async fn open_terminal(
        &self,
        token: &str,
        node: Option<&str>,
        cols: u32,
        rows: u32,
    ) -> Result<Terminal, AccessError> {
        let warm = self.take_warm(token, node);
        if let Some(terminal) = warm {
            let _ = terminal.shell.window_change(cols, rows, 0, 0).await;
            self.warm.warm.fetch_add(1, Ordering::Relaxed);
            return Ok(terminal);
        }
        let access = self.terminal(token, node).await?;
        let terminal = open(&access, cols, rows)
            .await
            .map_err(|e| AccessError::Failed { cause: format!("cannot reach node {}: {e}", access.node) })?;
        self.warm.cold.fetch_add(1, Ordering::Relaxed);
        Ok(terminal)
    }

    /// The warm terminal of `token`'s attendee's lab, taken under the state's lock only
    /// when the state says that ready lab is theirs.
    fn take_warm(&self, token: &str, node: Option<&str>) -> Option<Terminal> {
        let id = self.attendee_of(token)?;
        self.read(|state| {
            let index = state.attendee(id)?.lab?;
            let lab = state.labs.get(&index)?;
            if lab.phase != Phase::Ready || lab.attendee != Some(id) {
                return None;
            }
            let cluster = self.cluster(index).ok()?;
            let first = &cluster.nodes()[0].name;
            let node = node.unwrap_or(first);
            self.warm.take(index, node)
        })
    }

    /// How many terminals were handed out warm and made on demand.
    pub fn terminal_counts(&self) -> TerminalCounts {
        self.warm.counts()
    }
}
