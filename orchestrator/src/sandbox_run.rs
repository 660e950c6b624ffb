//! `zerolab sandbox run`: one guest on one node, through that node's agent.
//!
//! [`run`] reads the local guest program, uploads it to the node's agent as a blob named
//! by its SHA-256 (`PUT /v1/blobs/{sha256}`; the agent keeps blobs, so a second run
//! uploads the same bytes again but stores nothing new), starts a session
//! (`POST /v1/sessions`) and polls it every [`POLL`]: the session's state first, then
//! its stdout and stderr, handing each new piece to a callback. Outputs are read after
//! the state, so the read that follows a `done` state holds everything the guest wrote.
//!
//! Design: the agent's outputs are whole files re-read on each poll (it has no
//! `?follow=true` or offset yet); only the bytes past what was already handed on are
//! new. Every request goes over the node's one SSH connection.
//!
//! An agent that dies while its guest runs takes the guest with it (the guest's
//! parent-death signal); the next poll finds that out (nothing listens on the socket,
//! a dropped connection, or a restarted agent that does not know the session) and the
//! run ends with [`RunError::AgentGone`], in plain words, instead of waiting.

use std::path::{Path, PathBuf};
use std::time::Duration;

use hyper::body::Bytes;
use hyper::StatusCode;
use zerolab_agent_api::{self as api, Report, SessionState, Sha256};

use crate::agent_client::{self, AgentError};
use crate::cluster::Cluster;
use crate::lab::{Lab, NodeState};
use crate::provider;
use crate::ssh::{self, ConnectOptions, HostKeys, Session};
use crate::up::UpError;

/// How often a running session's state and outputs are read.
pub const POLL: Duration = Duration::from_millis(50);
/// Limit for each request but the upload.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Limit for the upload.
const UPLOAD_TIMEOUT: Duration = Duration::from_secs(120);

/// Which of the guest's outputs a piece comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// Its stdout.
    Stdout,
    /// Its stderr.
    Stderr,
}

impl Stream {
    fn path(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// Why the guest could not be run.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The node is not in the cluster file.
    #[error("no node named `{node}`; expected one of: {known}")]
    UnknownNode {
        /// The name as given.
        node: String,
        /// The lab's node names, comma-separated.
        known: String,
    },
    /// The lab does not record the node as ready.
    #[error("node {node} is not ready; run `zerolab up` first")]
    NotReady {
        /// The node.
        node: String,
    },
    /// The local program could not be read.
    #[error("cannot read program {}", path.display())]
    Program {
        /// The program's path.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The node could not be reached.
    #[error(transparent)]
    Ssh(#[from] ssh::Error),
    /// The node's agent went away while the guest ran (killed, crashed, restarted): its
    /// guests stop with it (their parent-death signal), so the session is lost.
    #[error(
        "node {node}: the agent went away while session {session} ran ({what}), and the guest with it; \
         `zerolab status` shows the agent and `zerolab up` restarts it, then run the guest again"
    )]
    AgentGone {
        /// The node.
        node: String,
        /// The lost session.
        session: String,
        /// What showed it, in a few words.
        what: &'static str,
    },
    /// The node's agent refused or failed a request.
    #[error("node {node}: {source}")]
    Agent {
        /// The node.
        node: String,
        /// What the agent said.
        #[source]
        source: AgentError,
    },
    /// The lab or its provider.
    #[error(transparent)]
    Up(#[from] UpError),
}

/// Runs the local guest `program` with `args` on `node` of `cluster` (lab under `root`);
/// `output` gets each new piece of the guest's stdout and stderr as it arrives. Returns
/// the session's report.
pub async fn run(
    root: &Path,
    cluster: &Cluster,
    node: &str,
    program: &Path,
    args: Vec<String>,
    mut output: impl FnMut(Stream, &[u8]),
) -> Result<Report, RunError> {
    let provider = provider::of(cluster).map_err(UpError::from)?;
    let lab = Lab::at(root, cluster.name()).map_err(UpError::from)?;
    let Some(entry) = cluster.node(node) else {
        let known: Vec<&str> = cluster.nodes().iter().map(|n| n.name.as_str()).collect();
        return Err(RunError::UnknownNode { node: node.to_owned(), known: known.join(", ") });
    };
    let target = provider.address(&lab, entry).map_err(UpError::from)?;
    let state = lab.load_state().map_err(UpError::from)?;
    if !state.nodes.get(node).is_some_and(|r| r.state == NodeState::Ready) {
        return Err(RunError::NotReady { node: node.to_owned() });
    }
    let bytes = tokio::fs::read(program).await.map_err(|source| RunError::Program { path: program.into(), source })?;
    let sha256 = Sha256::of_bytes(&bytes);
    let host_keys = HostKeys::open(lab.known_hosts()).map_err(UpError::from)?;
    let session = Session::connect(&target, &host_keys, &ConnectOptions::known_up()).await?;
    let result = run_on(&session, &sha256, Bytes::from(bytes), args, &mut output).await;
    let _ = session.close().await;
    result
}

async fn run_on(
    session: &Session,
    sha256: &Sha256,
    program: Bytes,
    args: Vec<String>,
    output: &mut impl FnMut(Stream, &[u8]),
) -> Result<Report, RunError> {
    let node = session.node();
    let agent = |source| RunError::Agent { node: node.to_owned(), source };
    agent_client::put_blob(session, sha256, program, UPLOAD_TIMEOUT).await.map_err(agent)?;
    let request = api::SessionRequest { args, ..api::SessionRequest::new(*sha256) };
    let id = agent_client::start_session(session, &request, REQUEST_TIMEOUT).await.map_err(agent)?.id;
    let running = |source| during_session(node, &id, source);
    let mut seen = [0usize; 2];
    loop {
        let status: api::SessionStatus =
            agent_client::get(session, &format!("/v1/sessions/{id}"), REQUEST_TIMEOUT).await.map_err(running)?;
        for (stream, seen) in [Stream::Stdout, Stream::Stderr].into_iter().zip(&mut seen) {
            let bytes =
                agent_client::session_output(session, &id, stream.path(), REQUEST_TIMEOUT).await.map_err(running)?;
            if let Some(new) = bytes.get(*seen..).filter(|new| !new.is_empty()) {
                output(stream, new);
                *seen = bytes.len();
            }
        }
        if let (SessionState::Done, Some(report)) = (status.state, status.report) {
            return Ok(report);
        }
        tokio::time::sleep(POLL).await;
    }
}

/// A request about running session `id` failed: the agent went away when nothing
/// listens on its socket, it dropped the connection mid-request, or it no longer knows
/// the session (a new agent, started by its supervisor). Said in plain words, without
/// the transport's own error text.
fn during_session(node: &str, id: &str, source: AgentError) -> RunError {
    let what = match &source {
        AgentError::NotListening => "nothing listens on its socket any more",
        AgentError::Http { .. } => "it dropped the connection in the middle of a request",
        AgentError::Status { status, .. } if *status == StatusCode::NOT_FOUND => {
            "it was restarted and no longer knows the session"
        }
        _ => return RunError::Agent { node: node.to_owned(), source },
    };
    RunError::AgentGone { node: node.to_owned(), session: id.to_owned(), what }
}

/// The exit code `zerolab sandbox run` ends with: the guest's own when it exited by
/// itself, ZeroVM's return code when the session failed (as `zvsh` does).
pub fn exit_code(report: &Report) -> u8 {
    if report.return_code != 0 {
        report.return_code.clamp(1, 255) as u8
    } else {
        // A shell sees only the low 8 bits of an exit status.
        (report.user_code & 0xff) as u8
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::Method;

    fn report(user_code: i64, return_code: i32) -> Report {
        Report {
            text: String::new(),
            validator: 0,
            user_code,
            exit_state: "ok".into(),
            return_code,
            sys_s: 0.0,
            user_s: 0.0,
            local: [0; 4],
            net: [0; 4],
        }
    }

    #[test]
    fn an_agent_gone_mid_session_is_said_in_plain_words() {
        let gone = during_session("node-2", "7", AgentError::NotListening);
        assert_eq!(
            gone.to_string(),
            "node node-2: the agent went away while session 7 ran (nothing listens on its socket any more), and \
             the guest with it; `zerolab status` shows the agent and `zerolab up` restarts it, then run the guest \
             again"
        );
        assert!(std::error::Error::source(&gone).is_none());
        let lost = AgentError::Status {
            method: Method::GET,
            path: "/v1/sessions/7".into(),
            status: StatusCode::NOT_FOUND,
            message: "no session 7".into(),
        };
        assert!(matches!(during_session("node-2", "7", lost), RunError::AgentGone { .. }));
        let slow = AgentError::Timeout { method: Method::GET, path: "/v1/sessions/7".into(), timeout: POLL };
        assert!(matches!(during_session("node-2", "7", slow), RunError::Agent { .. }));
    }

    #[test]
    fn exit_code_is_the_guests_unless_the_session_failed() {
        assert_eq!(exit_code(&report(0, 0)), 0);
        assert_eq!(exit_code(&report(3, 0)), 3);
        assert_eq!(exit_code(&report(256 + 7, 0)), 7);
        assert_eq!(exit_code(&report(0, 8)), 8);
        assert_eq!(exit_code(&report(5, 4)), 4);
    }
}
