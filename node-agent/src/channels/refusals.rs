//! Bounded logging of refused channel connections.
//!
//! Anyone who can reach the channel port can open connections that fail the
//! handshake, as fast as the network allows; one warning each would let a
//! stranger fill the node's disk through the agent's log. So refusals are
//! counted ([`Refusals::total`], served as `refused_channel_connections` by
//! `GET /v1/health`) and logged in a bounded way: within each
//! [`Refusals::INTERVAL`], the first refusal of each [`Kind`] is logged in
//! full (so an operator sees every distinct failure at once), the others are
//! only counted, and [`Refusals::flush`] (called once per interval by the
//! listener) writes one summarising line for them with the last one's peer
//! and reason. At most `Kind::COUNT + 1` lines per interval, whatever the
//! flood.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// What went wrong, coarsely: each kind gets one full line per interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A frame could not be read or written (garbage, silence, a closed socket).
    Wire,
    /// A message out of turn.
    Unexpected,
    /// The proof did not verify.
    Key,
    /// The channel was connected meanwhile or no longer waited for.
    Taken,
    /// A local failure (no nonce, socket options).
    Local,
    /// Too many handshakes in progress: closed unanswered.
    Busy,
}

impl Kind {
    /// How many kinds there are.
    pub const COUNT: usize = 6;
}

/// The refusal counter and the rate-limited log; shared by the listener's tasks.
#[derive(Debug, Default)]
pub struct Refusals {
    total: AtomicU64,
    window: Mutex<Window>,
}

/// The current interval: which kinds were logged, what was only counted.
#[derive(Debug, Default)]
struct Window {
    logged: [bool; Kind::COUNT],
    suppressed: u64,
    last: Option<(SocketAddr, String)>,
}

impl Refusals {
    /// Length of one logging interval.
    pub const INTERVAL: Duration = Duration::from_secs(60);

    /// Counts one refused connection from `peer`, and logs it if it is the
    /// first of its kind in this interval.
    pub fn refused(&self, peer: SocketAddr, kind: Kind, reason: &str) {
        self.total.fetch_add(1, Ordering::Relaxed);
        let mut w = self.window.lock().unwrap_or_else(|p| p.into_inner());
        if std::mem::replace(&mut w.logged[kind as usize], true) {
            w.suppressed += 1;
            w.last = Some((peer, reason.to_owned()));
            return;
        }
        drop(w);
        tracing::warn!(
            %peer,
            "channel connection refused: {reason} (more like it within {} s are only counted)",
            Self::INTERVAL.as_secs()
        );
    }

    /// Ends the interval: one line for what was only counted, if anything.
    pub fn flush(&self) {
        let w = std::mem::take(&mut *self.window.lock().unwrap_or_else(|p| p.into_inner()));
        if let (n @ 1.., Some((peer, reason))) = (w.suppressed, w.last) {
            tracing::warn!(
                "refused {n} more channel connections in the last {} s; last from {peer}: {reason}",
                Self::INTERVAL.as_secs()
            );
        }
    }

    /// Connections refused since the agent started.
    pub fn total(&self) -> u64 {
        self.total.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_every_refusal_and_logs_one_of_each_kind_per_interval() {
        let r = Refusals::default();
        let peer: SocketAddr = "10.0.0.9:4000".parse().unwrap();
        for _ in 0..1000 {
            r.refused(peer, Kind::Wire, "hello: garbage");
        }
        r.refused(peer, Kind::Key, "wrong key");
        assert_eq!(r.total(), 1001);
        {
            let w = r.window.lock().unwrap();
            assert_eq!(w.suppressed, 999);
            assert_eq!(w.last.as_ref().map(|(_, why)| why.as_str()), Some("hello: garbage"));
        }
        r.flush();
        let w = r.window.lock().unwrap();
        assert_eq!((w.suppressed, w.logged), (0, [false; Kind::COUNT]), "a new interval starts clean");
    }
}
