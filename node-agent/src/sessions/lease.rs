//! Leases: a session asked for with `lease_secs` lives only while someone renews it.
//!
//! An orchestrator running a job gives each session a lease and renews the leases of
//! the sessions it still cares about (`POST /v1/leases`). When one is not renewed within
//! its length of the session's start or last renewal, [`Sessions::expire_leases`]
//! (called by the server a few times a second) kills the session, wherever it is:
//! preparing its devices, waiting for its channels or running; its report's exit state
//! is [`LEASE_EXPIRED`] (return code 4). So guests whose orchestrator died, was
//! interrupted or lost the node stop by themselves.
//!
//! The leases are one table under one lock, apart from the sessions': a renewal takes
//! that lock once for all its ids and does no I/O, so renewing often costs the agent
//! nothing. A lease is granted before the session's thread starts and ended by that
//! thread before its report is recorded, so a renewal never answers `renewed` for a
//! session whose guest is known to have ended.

use std::collections::HashMap;
use std::sync::MutexGuard;
use std::time::{Duration, Instant};

use super::{Sessions, SessionsError};
use crate::api;

/// The exit state of a session killed because its lease was not renewed.
pub const LEASE_EXPIRED: &str = "lease expired";

/// The longest `lease_secs` accepted (an hour): a lease is a heartbeat, not a timeout.
pub const MAX_LEASE_SECS: u64 = 3600;

/// How often the server looks for expired leases: a session is killed at most this
/// long after its lease ran out.
pub const LEASE_CHECK_PERIOD: Duration = Duration::from_millis(200);

/// A `lease_secs` within 1 to [`MAX_LEASE_SECS`], or none.
pub(super) fn check(lease_secs: Option<u64>) -> Result<(), SessionsError> {
    match lease_secs {
        Some(secs) if !(1..=MAX_LEASE_SECS).contains(&secs) => Err(SessionsError::BadRequest(format!(
            "lease_secs {secs} is out of range; give 1 to {MAX_LEASE_SECS} seconds, or leave it out for no lease"
        ))),
        _ => Ok(()),
    }
}

#[derive(Debug, Clone, Copy)]
struct Lease {
    length: Duration,
    until: Instant,
}

/// The leases of the sessions that have one and have not ended.
#[derive(Debug, Default)]
pub(super) struct Leases {
    by_id: HashMap<String, Lease>,
    /// Leases that ran out since the agent started.
    expired: u64,
}

impl Leases {
    /// Gives session `id` a lease of `length` from `now`.
    pub(super) fn grant(&mut self, id: &str, length: Duration, now: Instant) {
        self.by_id.insert(id.to_owned(), Lease { length, until: now + length });
    }

    /// Forgets session `id`'s lease (its guest ended, or it never started).
    pub(super) fn end(&mut self, id: &str) {
        self.by_id.remove(id);
    }

    /// Renews each of `ids` that has a lease for its length from `now`.
    fn renew(&mut self, ids: &[String], now: Instant) -> api::LeasesRenewed {
        let (mut renewed, mut not_renewed) = (Vec::new(), Vec::new());
        for id in ids {
            match self.by_id.get_mut(id) {
                Some(lease) => {
                    lease.until = now + lease.length;
                    renewed.push(id.clone());
                }
                None => not_renewed.push(id.chars().take(80).collect()),
            }
        }
        api::LeasesRenewed { renewed, not_renewed }
    }

    /// Takes out the leases that ran out by `now`; their session ids.
    fn take_expired(&mut self, now: Instant) -> Vec<String> {
        let due: Vec<String> =
            self.by_id.iter().filter(|(_, lease)| lease.until <= now).map(|(id, _)| id.clone()).collect();
        for id in &due {
            self.by_id.remove(id);
        }
        self.expired += due.len() as u64;
        due
    }
}

impl Sessions {
    fn leases(&self) -> MutexGuard<'_, Leases> {
        self.shared.leases()
    }

    /// Renews the leases of `renewal.sessions` (`POST /v1/leases`): one lock, no I/O.
    pub fn renew_leases(&self, renewal: &api::LeaseRenewal) -> api::LeasesRenewed {
        self.leases().renew(&renewal.sessions, Instant::now())
    }

    /// Kills the sessions whose lease ran out by `now` (exit state [`LEASE_EXPIRED`]);
    /// returns how many.
    pub fn expire_leases(&self, now: Instant) -> usize {
        let due = self.leases().take_expired(now);
        for id in &due {
            match self.get(id) {
                Ok(entry) => {
                    tracing::warn!(session = %id, "lease not renewed in time; killing the session");
                    entry.kill(LEASE_EXPIRED);
                }
                Err(e) => tracing::warn!(session = %id, "lease expired: {e}"),
            }
        }
        due.len()
    }

    /// Leases that ran out (their sessions killed) since the agent started.
    pub fn leases_expired(&self) -> u64 {
        self.leases().expired
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_runs_out_unless_renewed_and_only_leased_sessions_are_renewed() {
        let start = Instant::now();
        let mut leases = Leases::default();
        leases.grant("a", Duration::from_secs(2), start);
        leases.grant("b", Duration::from_secs(2), start);
        let one = Duration::from_secs(1);
        let answer = leases.renew(&["a".into(), "nope".into()], start + one);
        assert_eq!(answer, api::LeasesRenewed { renewed: vec!["a".into()], not_renewed: vec!["nope".into()] });
        assert!(leases.take_expired(start + one).is_empty());
        assert_eq!(leases.take_expired(start + 2 * one), ["b"], "b was not renewed");
        assert!(leases.take_expired(start + 2 * one).is_empty(), "taken once");
        assert_eq!(leases.take_expired(start + 3 * one), ["a"], "a lasts 2 s from its renewal");
        assert_eq!(leases.expired, 2);
        let answer = leases.renew(&["a".into()], start + 3 * one);
        assert_eq!(answer.not_renewed, ["a"], "an expired lease is not renewed");
        leases.grant("c", one, start);
        leases.end("c");
        assert_eq!(leases.renew(&["c".into()], start).not_renewed, ["c"], "an ended session is not renewed");
    }

    #[test]
    fn lease_secs_is_one_second_to_an_hour() {
        assert!(check(None).is_ok());
        assert!(check(Some(1)).is_ok());
        assert!(check(Some(MAX_LEASE_SECS)).is_ok());
        for bad in [0, MAX_LEASE_SECS + 1, u64::MAX] {
            let e = check(Some(bad)).unwrap_err().to_string();
            assert_eq!(
                e,
                format!("lease_secs {bad} is out of range; give 1 to 3600 seconds, or leave it out for no lease")
            );
        }
    }
}
