//! The agent's table of channel ends waiting for their other end.
//!
//! Two tables, both keyed by (job, channel):
//! - **listen**: a session's reading end of a channel across nodes. The
//!   listener looks the key up when a hello names the channel, and hands the
//!   socket over through the slot's one-shot sender once the handshake is
//!   done. Registering wakes every handshake held for a channel not yet known.
//! - **local**: a channel between two sessions of this agent. The first
//!   session to ask makes the pipe, keeps its end and leaves the other here;
//!   the second takes it and tells the first through a one-shot sender.
//!
//! Every slot carries a registration number; a session removes only its own
//! slots (when it gives up), and the listener delivers only to the slot it
//! checked the proof against, so a slot registered again after a session
//! gave up can never receive the older connection.

use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use tokio::sync::{oneshot, Notify};

use super::wire::ChannelKey;
use crate::api::ChannelDirection;

/// A channel within a job.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ChannelId {
    /// Job id.
    pub job: String,
    /// Channel id.
    pub channel: String,
}

impl std::fmt::Display for ChannelId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "channel {} of job {}", self.channel, self.job)
    }
}

/// Why a slot could not be registered.
#[derive(Debug, thiserror::Error)]
pub enum Conflict {
    /// Another session already reads this channel across nodes here.
    #[error("{id} already has a reader waiting on this node (session {owner}); give each channel one reader")]
    Listening {
        /// The channel.
        id: ChannelId,
        /// The session waiting for it.
        owner: String,
    },
    /// Both local sessions want the same direction.
    #[error("{id}: sessions {owner} and this one both {verb} it; one end must read and the other write")]
    SameDirection {
        /// The channel.
        id: ChannelId,
        /// The other session.
        owner: String,
        /// `read` or `write`.
        verb: &'static str,
    },
    /// The two local sessions were given different keys.
    #[error("{id}: session {owner} has a different key for it; give both ends the same key")]
    Key {
        /// The channel.
        id: ChannelId,
        /// The other session.
        owner: String,
    },
}

struct ListenSlot {
    reg: u64,
    owner: String,
    key: ChannelKey,
    tx: oneshot::Sender<std::net::TcpStream>,
    refused: Option<String>,
}

struct LocalSlot {
    reg: u64,
    owner: String,
    key: ChannelKey,
    direction: ChannelDirection,
    end: OwnedFd,
    tx: oneshot::Sender<()>,
}

#[derive(Default)]
struct Tables {
    listen: HashMap<ChannelId, ListenSlot>,
    local: HashMap<ChannelId, LocalSlot>,
}

/// What a local channel gave the asking session.
#[derive(Debug)]
pub enum LocalEnd {
    /// The other session asked first: here is our end; it is connected.
    Connected(OwnedFd),
    /// We asked first: our end, usable once `claimed` fires; slot `reg`.
    Waiting {
        /// Our end of the pipe.
        end: OwnedFd,
        /// Fires when the other session takes its end.
        claimed: oneshot::Receiver<()>,
        /// Our registration.
        reg: u64,
    },
}

/// The tables, shared by the sessions and the listener.
#[derive(Default)]
pub struct Registry {
    tables: Mutex<Tables>,
    next: AtomicU64,
    /// Woken whenever a listen slot is added.
    pub registered: Notify,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let t = self.lock();
        f.debug_struct("Registry").field("listen", &t.listen.len()).field("local", &t.local.len()).finish()
    }
}

impl Registry {
    fn lock(&self) -> MutexGuard<'_, Tables> {
        // Plain data: a panic elsewhere cannot leave it inconsistent.
        self.tables.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn next_reg(&self) -> u64 {
        self.next.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Registers a reading end that another agent will connect to.
    pub fn listen(
        &self,
        owner: &str,
        id: ChannelId,
        key: ChannelKey,
    ) -> Result<(u64, oneshot::Receiver<std::net::TcpStream>), Conflict> {
        let mut t = self.lock();
        if let Some(slot) = t.listen.get(&id) {
            return Err(Conflict::Listening { id, owner: slot.owner.clone() });
        }
        let (tx, rx) = oneshot::channel();
        let reg = self.next_reg();
        t.listen.insert(id, ListenSlot { reg, owner: owner.into(), key, tx, refused: None });
        drop(t);
        self.registered.notify_waiters();
        Ok((reg, rx))
    }

    /// The key and registration of a waiting reading end.
    pub fn listen_key(&self, id: &ChannelId) -> Option<(u64, ChannelKey)> {
        self.lock().listen.get(id).map(|s| (s.reg, s.key.clone()))
    }

    /// Remembers why the latest connection for slot `reg` was refused.
    pub fn note_refusal(&self, id: &ChannelId, reg: u64, why: String) {
        if let Some(slot) = self.lock().listen.get_mut(id).filter(|s| s.reg == reg) {
            slot.refused = Some(why);
        }
    }

    /// Hands `stream` to slot `reg` and removes it. The stream comes back when
    /// the slot is gone or its session stopped waiting.
    pub fn deliver(&self, id: &ChannelId, reg: u64, stream: std::net::TcpStream) -> Result<(), std::net::TcpStream> {
        let slot = {
            let mut t = self.lock();
            match t.listen.get(id) {
                Some(s) if s.reg == reg => t.listen.remove(id),
                _ => None,
            }
        };
        match slot {
            Some(slot) => slot.tx.send(stream),
            None => Err(stream),
        }
    }

    /// Asks for one end of a local channel (see [`LocalEnd`]).
    pub fn local(
        &self,
        owner: &str,
        id: ChannelId,
        key: ChannelKey,
        direction: ChannelDirection,
    ) -> Result<LocalEnd, LocalError> {
        let mut t = self.lock();
        if let Some(slot) = t.local.get(&id) {
            if slot.direction == direction {
                let verb = if direction == ChannelDirection::In { "read" } else { "write" };
                return Err(Conflict::SameDirection { id, owner: slot.owner.clone(), verb }.into());
            }
            if slot.key != key {
                return Err(Conflict::Key { id, owner: slot.owner.clone() }.into());
            }
            let slot = t.local.remove(&id).ok_or(LocalError::Gone)?;
            // The first session may have given up just now; it then closes its end.
            let _ = slot.tx.send(());
            return Ok(LocalEnd::Connected(slot.end));
        }
        let (read, write) = super::pipe().map_err(LocalError::Pipe)?;
        let (mine, theirs) = match direction {
            ChannelDirection::In => (read, write),
            ChannelDirection::Out => (write, read),
        };
        let (tx, claimed) = oneshot::channel();
        let reg = self.next_reg();
        t.local.insert(id, LocalSlot { reg, owner: owner.into(), key, direction, end: theirs, tx });
        Ok(LocalEnd::Waiting { end: mine, claimed, reg })
    }

    /// Removes the slots `regs` that are still waiting (a session gives up).
    pub fn unregister(&self, regs: &[(ChannelId, u64)]) {
        let mut t = self.lock();
        for (id, reg) in regs {
            if t.listen.get(id).is_some_and(|s| s.reg == *reg) {
                t.listen.remove(id);
            }
            if t.local.get(id).is_some_and(|s| s.reg == *reg) {
                t.local.remove(id);
            }
        }
    }

    /// The refusal noted on a listen slot, if it is still registered.
    pub fn refusal(&self, id: &ChannelId, reg: u64) -> Option<String> {
        self.lock().listen.get(id).filter(|s| s.reg == reg).and_then(|s| s.refused.clone())
    }

    /// Whether no slot waits, in either table.
    #[cfg(test)]
    fn is_empty(&self) -> bool {
        let t = self.lock();
        t.listen.is_empty() && t.local.is_empty()
    }
}

/// Why a local channel end could not be given.
#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    /// The two sessions do not fit together.
    #[error(transparent)]
    Conflict(#[from] Conflict),
    /// No pipe.
    #[error("cannot make a pipe; the agent is out of descriptors, retry later")]
    Pipe(#[source] std::io::Error),
    /// The slot vanished under the lock (cannot happen).
    #[error("the other end vanished; retry")]
    Gone,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(c: &str) -> ChannelId {
        ChannelId { job: "j".into(), channel: c.into() }
    }

    fn key(b: &str) -> ChannelKey {
        ChannelKey::from_hex(&b.repeat(32)).unwrap()
    }

    #[test]
    fn one_reader_per_channel() {
        let r = Registry::default();
        let _a = r.listen("s1", id("c"), key("aa")).unwrap();
        let err = r.listen("s2", id("c"), key("aa")).unwrap_err();
        assert!(err.to_string().contains("session s1"), "{err}");
        assert!(r.listen("s2", id("d"), key("aa")).is_ok());
    }

    #[test]
    fn delivers_only_to_the_slot_it_checked() {
        let r = Registry::default();
        let (old, _rx) = r.listen("s1", id("c"), key("aa")).unwrap();
        r.unregister(&[(id("c"), old)]);
        let (new, mut rx) = r.listen("s2", id("c"), key("aa")).unwrap();
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let s = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let s = r.deliver(&id("c"), old, s).unwrap_err();
        assert!(rx.try_recv().is_err());
        r.deliver(&id("c"), new, s).unwrap();
        assert!(rx.try_recv().is_ok());
        assert!(r.is_empty());
    }

    #[test]
    fn local_pairs_opposite_ends_with_the_same_key() {
        let r = Registry::default();
        let LocalEnd::Waiting { mut claimed, .. } = r.local("s1", id("c"), key("aa"), ChannelDirection::In).unwrap()
        else {
            panic!("the first asker waits")
        };
        let same = r.local("s2", id("c"), key("aa"), ChannelDirection::In).unwrap_err();
        assert!(same.to_string().contains("both read"), "{same}");
        let other_key = r.local("s2", id("c"), key("bb"), ChannelDirection::Out).unwrap_err();
        assert!(other_key.to_string().contains("different key"), "{other_key}");
        assert!(claimed.try_recv().is_err());
        assert!(matches!(r.local("s2", id("c"), key("aa"), ChannelDirection::Out), Ok(LocalEnd::Connected(_))));
        assert!(claimed.try_recv().is_ok());
        assert!(r.is_empty());
    }

    #[test]
    fn remembers_the_last_refusal_until_unregistered() {
        let r = Registry::default();
        let (reg, _rx) = r.listen("s1", id("c"), key("aa")).unwrap();
        r.note_refusal(&id("c"), reg, "10.0.0.9:4000: wrong key".into());
        assert_eq!(r.refusal(&id("c"), reg).as_deref(), Some("10.0.0.9:4000: wrong key"));
        r.unregister(&[(id("c"), reg)]);
        assert!(r.is_empty());
        assert_eq!(r.refusal(&id("c"), reg), None);
    }
}
