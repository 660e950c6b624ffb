//! How a run stops and ends: a `cancel` marker or an interrupt taken as the run's
//! ending, fail fast (live sessions killed, those that do not end in [`STOP_WAIT`]
//! ended as stopped), and the end ([`Driver::finish`]): every result with its cause and
//! earlier attempts, the run's [`RunState`], the record saved.

use std::time::Instant;

use super::super::record::{Attempt, Outcome, RunState};
use super::super::steps::{self, Placed};
use super::super::{InstanceResult, RunError, LEASE_EXPIRED, STOP_WAIT};
use super::{Driven, Driver};
use crate::run::life::State;

impl Driver<'_> {
    /// A `cancel` marker, or an interrupt, stops the run (unless it stops already) as
    /// cancelled or interrupted: the reason replaces any failure seen this round, since
    /// `cancel` marks the run before it kills its sessions.
    pub(super) fn cancelled_or_interrupted(&mut self, failure: &mut Option<String>) {
        if self.stopping.is_some() {
            return;
        }
        let interrupted = self.interrupt.as_ref().is_some_and(|i| *i.borrow());
        let ending = match (self.cancelled(), interrupted) {
            (true, _) => RunState::Cancelled,
            (false, true) => RunState::Interrupted,
            (false, false) => return,
        };
        self.ending = Some(ending);
        *failure = Some(ending.name().to_owned());
    }

    /// Why an instance killed by the stop ended: the cancel or interrupt itself, or
    /// `stopped:` and the failure that stopped the run.
    pub(super) fn stop_note(&self, why: &str) -> String {
        match self.ending {
            Some(_) => why.to_owned(),
            None => format!("stopped: {why}"),
        }
    }

    /// Fail fast: on the first failure for good nothing more is placed and the live
    /// sessions are killed; those still live after [`STOP_WAIT`] end as stopped.
    pub(super) async fn fail_fast(&mut self, failure: Option<String>) {
        if let (Some(why), None) = (failure, &self.stopping) {
            self.stop.send_replace(true);
            steps::kill_all(&self.mux, &self.targets, self.live_sessions()).await;
            self.stopping = Some((why, Instant::now()));
        }
        let Some((why, since)) = self.stopping.clone() else { return };
        if since.elapsed() < STOP_WAIT {
            return;
        }
        // Instances stopped because another failed carry that reason, not their own.
        for index in 0..self.lives.len() {
            if self.lives[index].live_session().is_some() {
                let result = self.ended(index, None, Some(format!("{}; it did not end", self.stop_note(&why))));
                self.end_life(index, result);
            }
        }
    }

    /// The end: placements still under way are waited for (what they started is
    /// killed), the instances killed by the stop say why, each result gets its earlier
    /// attempts, and the record is saved with every outcome and the run's state.
    pub(super) async fn finish(mut self) -> Result<Driven, RunError> {
        self.stop.send_replace(true);
        while let Some(joined) = self.placing.join_next().await {
            if let Ok((index, Placed::Started(session))) = joined {
                if let State::Retrying { to, .. } = self.lives[index].state().clone() {
                    steps::kill_all(&self.mux, &self.targets, vec![(to, session)]).await;
                }
            }
        }
        let why = self.stopping.take().map(|(why, _)| why);
        let mut results = Vec::with_capacity(self.lives.len());
        for index in 0..self.lives.len() {
            let mut result = match self.lives[index].result() {
                Some(result) => result.clone(),
                None => self.ended(index, None, None),
            };
            if let (Some(why), Some(report)) = (&why, &result.report) {
                if report.exit_state == "killed" && result.cause.is_none() {
                    result.cause = Some(self.stop_note(why));
                }
            }
            results.push(result);
        }
        for (index, result) in results.iter_mut().enumerate() {
            let life = &mut self.lives[index];
            let entry = &mut self.record.instances[index];
            if !life.attempts.is_empty() {
                result.attempts = std::mem::take(&mut life.attempts);
                entry.node = result.node.clone();
                entry.session = life.session.clone();
                entry.attempts = result.attempts.clone();
                entry.attempts.push(Attempt::of(result, life.session.as_deref()));
            }
            entry.outcome = Some(Outcome::of(result));
        }
        let expired = results.iter().any(|r| r.report.as_ref().is_some_and(|r| r.exit_state == LEASE_EXPIRED));
        let (state, cause) = match self.ending {
            Some(ending) => (ending, why),
            None if expired => (
                RunState::Interrupted,
                Some("its guests were stopped: nobody renewed their leases (their zerolab run was gone)".into()),
            ),
            None if results.iter().all(InstanceResult::success) => (RunState::Ok, None),
            None => (RunState::Failed, why),
        };
        self.record.end(state, cause);
        self.record.save(&self.dir)?;
        Ok((results, state))
    }
}
