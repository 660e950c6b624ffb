//! One instance's life in a run, as an explicit state machine.
//!
//! ```text
//!  Placed ──upload──▶ Uploaded ──start──▶ Started ──listed running──▶ Running
//!                        │                  │  ▲                         │
//!                        │ (start refused)  │  └─────── started ─────┐   │
//!                        ▼                  ▼                        │   ▼
//!                      Ended ◀────────── ended/lost ──────────▶ Retrying ◀─┘
//!                        ▲                                        │  │ (not taken:
//!                        └────── stopped first, or no node left ──┘  └ next node)
//! ```
//!
//! [`State`] is where an instance is; [`Life`] holds it with the instance's current
//! session and earlier attempts, and [`Life::advance`] is the one way to change it,
//! refusing a move the diagram does not have (a bug in the driver, said in its panic).
//! The driver ([`super::driver`]) decides *when* to move; this module says *where to*
//! is allowed, so each state's successors are tested without a lab. A later mode adds a
//! state here, with its successors, and one arm in the driver.

use super::record::Attempt;
use super::{Counts, InstanceResult};

/// Where an instance is in its run.
#[derive(Debug, Clone, PartialEq)]
pub enum State {
    /// The plan gave it a node; nothing was sent yet.
    Placed {
        /// Its node.
        node: String,
    },
    /// Its node stores its program and local inputs.
    Uploaded {
        /// Its node.
        node: String,
    },
    /// Its session was started; its agent prepares devices or waits for channels.
    Started {
        /// Its node.
        node: String,
    },
    /// Its guest runs.
    Running {
        /// Its node.
        node: String,
    },
    /// Its attempt failed and it is being placed on `to` (a task uploads its blobs and
    /// starts it there); `failed` is that attempt's result, its result again should the
    /// run stop before the new attempt starts.
    Retrying {
        /// The node it goes to.
        to: String,
        /// The failed attempt.
        failed: Box<InstanceResult>,
    },
    /// It ended for good.
    Ended(Box<InstanceResult>),
}

/// A [`State`] without its data: what the successor table is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// [`State::Placed`].
    Placed,
    /// [`State::Uploaded`].
    Uploaded,
    /// [`State::Started`].
    Started,
    /// [`State::Running`].
    Running,
    /// [`State::Retrying`].
    Retrying,
    /// [`State::Ended`].
    Ended,
}

impl Kind {
    /// The states an instance may move to from this one.
    pub fn successors(self) -> &'static [Kind] {
        use Kind::*;
        match self {
            Placed => &[Uploaded],
            // A start the agent refuses ends the run (the others are stopped).
            Uploaded => &[Started, Ended],
            // Its session ended, it was stopped, its node lost or its agent restarted.
            Started => &[Running, Ended, Retrying],
            Running => &[Ended, Retrying],
            // Started on the new node; not taken there (placed on the next one); the
            // run stopped first, or no node is left to try.
            Retrying => &[Started, Retrying, Ended],
            Ended => &[],
        }
    }
}

impl State {
    /// Its kind.
    pub fn kind(&self) -> Kind {
        match self {
            State::Placed { .. } => Kind::Placed,
            State::Uploaded { .. } => Kind::Uploaded,
            State::Started { .. } => Kind::Started,
            State::Running { .. } => Kind::Running,
            State::Retrying { .. } => Kind::Retrying,
            State::Ended(_) => Kind::Ended,
        }
    }

    /// The node its guest is on or goes to, unless it ended.
    pub fn node(&self) -> Option<&str> {
        match self {
            State::Placed { node } | State::Uploaded { node } | State::Started { node } | State::Running { node } => {
                Some(node)
            }
            State::Retrying { to, .. } => Some(to),
            State::Ended(_) => None,
        }
    }
}

/// One instance's life: its state, its current session and its earlier attempts.
#[derive(Debug, Clone)]
pub struct Life {
    state: State,
    /// Its session on its node's agent, once one was started for the current attempt.
    pub session: Option<String>,
    /// Its ended attempts, oldest first (the current one not included).
    pub attempts: Vec<Attempt>,
}

impl Life {
    /// An instance the plan put on `node`.
    pub fn placed(node: &str) -> Life {
        Life { state: State::Placed { node: node.to_owned() }, session: None, attempts: Vec::new() }
    }

    /// An instance of a run taken up by another process (`zerolab wait`): ended as
    /// `result` when it has one, else started on `node` in `session`.
    pub fn resumed(node: &str, session: Option<String>, result: Option<InstanceResult>) -> Life {
        let state = match result {
            Some(result) => State::Ended(Box::new(result)),
            None => State::Started { node: node.to_owned() },
        };
        Life { state, session, attempts: Vec::new() }
    }

    /// Where it is.
    pub fn state(&self) -> &State {
        &self.state
    }

    /// Moves it to `next`, which must be a successor of its state.
    ///
    /// # Panics
    /// On a move [`Kind::successors`] does not allow: the driver lost track.
    pub fn advance(&mut self, next: State) {
        let (from, to) = (self.state.kind(), next.kind());
        assert!(from.successors().contains(&to), "an instance cannot go from {from:?} to {to:?}");
        self.state = next;
    }

    /// Its session, when it has a guest that may still run (started or running).
    pub fn live_session(&self) -> Option<&str> {
        match self.state {
            State::Started { .. } | State::Running { .. } => self.session.as_deref(),
            _ => None,
        }
    }

    /// Its result, once ended.
    pub fn result(&self) -> Option<&InstanceResult> {
        match &self.state {
            State::Ended(result) => Some(result),
            _ => None,
        }
    }

    /// ` after N attempts` for an instance placed again, else nothing: for messages.
    pub fn after(&self) -> String {
        match self.attempts.len() {
            0 => String::new(),
            n => format!(" after {} attempts", n + 1),
        }
    }
}

/// How many instances of `lives` are where; `retried` placements were made.
pub fn count(lives: &[Life], retried: usize) -> Counts {
    let mut counts = Counts { retried, ..Counts::default() };
    for life in lives {
        match life.state() {
            State::Placed { .. } | State::Uploaded { .. } | State::Started { .. } | State::Retrying { .. } => {
                counts.pending += 1
            }
            State::Running { .. } => counts.running += 1,
            State::Ended(result) if result.success() => counts.done += 1,
            State::Ended(_) => counts.failed += 1,
        }
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::*;
    use zerolab_agent_api::Report;

    fn result(user_code: Option<i64>) -> Box<InstanceResult> {
        let report = user_code.map(|user_code| Report {
            text: String::new(),
            validator: 0,
            user_code,
            exit_state: "ok".into(),
            return_code: 0,
            sys_s: 0.0,
            user_s: 0.0,
            local: [0; 4],
            net: [0; 4],
        });
        Box::new(InstanceResult { name: "a".into(), node: "n1".into(), report, cause: None, attempts: Vec::new() })
    }

    fn state(kind: Kind) -> State {
        let node = "n1".to_owned();
        match kind {
            Kind::Placed => State::Placed { node },
            Kind::Uploaded => State::Uploaded { node },
            Kind::Started => State::Started { node },
            Kind::Running => State::Running { node },
            Kind::Retrying => State::Retrying { to: node, failed: result(Some(1)) },
            Kind::Ended => State::Ended(result(Some(0))),
        }
    }

    const ALL: [Kind; 6] = [Kind::Placed, Kind::Uploaded, Kind::Started, Kind::Running, Kind::Retrying, Kind::Ended];

    #[test]
    fn each_state_has_exactly_the_successors_of_the_diagram() {
        use Kind::*;
        let table: Vec<(Kind, Vec<Kind>)> = ALL.iter().map(|k| (*k, k.successors().to_vec())).collect();
        assert_eq!(
            table,
            vec![
                (Placed, vec![Uploaded]),
                (Uploaded, vec![Started, Ended]),
                (Started, vec![Running, Ended, Retrying]),
                (Running, vec![Ended, Retrying]),
                (Retrying, vec![Started, Retrying, Ended]),
                (Ended, vec![]),
            ]
        );
        // Every state but the first is reached, and every life can end.
        for kind in ALL.into_iter().skip(1) {
            assert!(ALL.iter().any(|k| k.successors().contains(&kind)), "{kind:?} unreachable");
        }
        for kind in ALL {
            let mut reached = vec![kind];
            let mut next = 0;
            while let Some(k) = reached.get(next).copied() {
                reached.extend(k.successors().iter().filter(|s| !reached.contains(s)).collect::<Vec<_>>());
                next += 1;
            }
            assert!(reached.contains(&Ended), "no end from {kind:?}");
        }
    }

    #[test]
    fn advance_takes_every_allowed_move_and_refuses_the_others() {
        for from in ALL {
            for to in ALL {
                let mut life = Life { state: state(from), session: None, attempts: Vec::new() };
                let moved = std::panic::catch_unwind(move || {
                    life.advance(state(to));
                    life.state().kind()
                });
                match from.successors().contains(&to) {
                    true => assert_eq!(moved.ok(), Some(to), "{from:?} -> {to:?}"),
                    false => assert!(moved.is_err(), "{from:?} -> {to:?} taken"),
                }
            }
        }
    }

    #[test]
    fn a_life_runs_places_again_and_ends_with_its_attempts() {
        let mut life = Life::placed("n1");
        assert_eq!(life.state().node(), Some("n1"));
        life.advance(State::Uploaded { node: "n1".into() });
        life.advance(State::Started { node: "n1".into() });
        life.session = Some("7".into());
        assert_eq!(life.live_session(), Some("7"));
        life.advance(State::Running { node: "n1".into() });
        life.attempts.push(Attempt::of(&result(Some(3)), Some("7")));
        life.advance(State::Retrying { to: "n2".into(), failed: result(Some(3)) });
        assert_eq!((life.state().node(), life.live_session()), (Some("n2"), None));
        assert_eq!(life.after(), " after 2 attempts");
        life.advance(State::Started { node: "n2".into() });
        life.advance(State::Ended(result(Some(0))));
        assert!(life.result().is_some_and(InstanceResult::success));
        assert_eq!(life.state().node(), None);
    }

    #[test]
    fn counts_say_pending_until_seen_running_and_split_ended_by_success() {
        let lives: Vec<Life> = ALL
            .into_iter()
            .chain([Kind::Ended])
            .enumerate()
            .map(|(i, kind)| {
                let mut life = Life::placed("n1");
                life.state = match (i, state(kind)) {
                    (6, State::Ended(_)) => State::Ended(result(Some(2))),
                    (_, s) => s,
                };
                life
            })
            .collect();
        assert_eq!(count(&lives, 1), Counts { pending: 4, running: 1, done: 1, failed: 1, retried: 1 });
    }
}
