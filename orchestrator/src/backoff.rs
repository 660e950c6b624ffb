//! The one retry pace of the orchestrator: how long to wait before trying again, and when
//! to give up.
//!
//! Every loop that waits for something to come about uses a [`Backoff`]: the TCP connect
//! to a booting node (`ssh`, doubling waits, a number of retries), the agent's health
//! after a start (`install`), a new keeper's socket and an old keeper's exit
//! (`keeper`), a netns node's sshd and the removal of a lab's namespaces
//! (`provider/netns`), a lab lock held by another command (`lab::lock`), and a keeper
//! service that died (`keeper::service`, doubling waits between restarts).
//!
//! Design: the loop keeps its own logic (what an attempt is, which failures are worth
//! another one) and asks the backoff only "wait, or give up?" ([`Backoff::wait`] in async
//! code, [`Backoff::wait_blocking`] on a thread of its own), so each caller's error
//! still says what it was waiting for.

use std::time::{Duration, Instant};

/// A retry pace: waits that start at one length and grow (or stay), bounded by a number
/// of retries or by a deadline.
#[derive(Debug, Clone)]
pub struct Backoff {
    next: Duration,
    max: Duration,
    retries_left: Option<u32>,
    deadline: Option<Instant>,
    waits: u32,
}

impl Backoff {
    /// The same wait `every` time, until `within` has passed from now.
    pub fn steady(every: Duration, within: Duration) -> Backoff {
        Backoff { next: every, max: every, retries_left: None, deadline: Some(Instant::now() + within), waits: 0 }
    }

    /// `first`, then twice as long each time up to `max`, for at most `retries` retries.
    pub fn doubling(first: Duration, max: Duration, retries: u32) -> Backoff {
        Backoff { next: first, max, retries_left: Some(retries), deadline: None, waits: 0 }
    }

    /// The wait before the next try, or `None` when it is time to give up. Counts a retry.
    pub fn next_wait(&mut self) -> Option<Duration> {
        if let Some(left) = &mut self.retries_left {
            *left = left.checked_sub(1)?;
        }
        if self.deadline.is_some_and(|deadline| Instant::now() >= deadline) {
            return None;
        }
        let wait = self.next;
        self.next = (self.next * 2).min(self.max);
        self.waits += 1;
        Some(wait)
    }

    /// How many times this backoff has said to try again.
    pub fn retries(&self) -> u32 {
        self.waits
    }

    /// Waits before the next try (`true`), or says to give up (`false`) without waiting.
    pub async fn wait(&mut self) -> bool {
        match self.next_wait() {
            Some(wait) => {
                tokio::time::sleep(wait).await;
                true
            }
            None => false,
        }
    }

    /// [`wait`](Self::wait) for a thread that may block (never in async code).
    pub fn wait_blocking(&mut self) -> bool {
        match self.next_wait() {
            Some(wait) => {
                std::thread::sleep(wait);
                true
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubling_waits_grow_to_the_cap_and_stop_after_the_retries() {
        let mut backoff = Backoff::doubling(Duration::from_millis(200), Duration::from_secs(2), 5);
        let waits: Vec<u128> = std::iter::from_fn(|| backoff.next_wait()).map(|w| w.as_millis()).collect();
        assert_eq!(waits, [200, 400, 800, 1600, 2000]);
        assert_eq!(backoff.retries(), 5);
        assert_eq!(backoff.next_wait(), None);
    }

    #[test]
    fn steady_waits_stop_at_the_deadline() {
        let mut backoff = Backoff::steady(Duration::from_millis(5), Duration::from_millis(50));
        let started = Instant::now();
        while backoff.wait_blocking() {}
        assert!(started.elapsed() >= Duration::from_millis(50), "{:?}", started.elapsed());
        assert!(backoff.retries() >= 5 && backoff.retries() <= 11, "{}", backoff.retries());
        assert!(!backoff.wait_blocking());
    }

    #[tokio::test]
    async fn async_wait_sleeps_the_wait() {
        let mut backoff = Backoff::doubling(Duration::from_millis(20), Duration::from_millis(20), 1);
        let started = Instant::now();
        assert!(backoff.wait().await);
        assert!(started.elapsed() >= Duration::from_millis(20));
        assert!(!backoff.wait().await);
    }
}
