//! `zerolab sandbox run`: one guest on one node, as a one-instance job.
//!
//! [`run()`] checks the node, plans the guest as a job of one instance
//! ([`crate::run::plan::one`]: the program hashed once, with the lab's hash cache) and
//! drives it as `zerolab run` does ([`crate::run::run_followed`]), through the lab's
//! keeper: the program is uploaded only when the node lacks it (`HEAD`, then `PUT
//! /v1/blobs/{sha256}`), the session started, its stdout and stderr followed while it
//! runs and handed to a callback piece by piece, then its report collected. Following
//! reads each byte once (`?offset=N` on the agent's output routes), so a guest's output
//! costs its size on the wire whatever that size; the run's results directory
//! (`LAB/jobs/sandbox-<UTC time>-<random>/`, unique, see [`crate::run::run_dir`]) keeps
//! the outputs and the report, where `zerolab jobs` and `logs` find them. The session
//! carries a lease the run renews, so a guest whose `zerolab sandbox run` was killed
//! stops by itself.
//!
//! The guest's stdin is what the caller gives [`run()`] (the command's own stdin when it
//! is not a terminal): spooled to a file in the lab's directory while it is hashed, then
//! uploaded as the session's `stdin` blob like the program, so it is whole before the
//! guest starts and a retry can send it again. Empty, it is not sent at all.
//!
//! An agent that dies while its guest runs takes the guest with it (the guest's
//! parent-death signal); the next read of its output finds that out (nothing listens
//! on the socket, a dropped connection, or a restarted agent that does not know the
//! session) and the run ends with [`RunError::AgentGone`], in plain words, instead of
//! waiting.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use hyper::StatusCode;
use zerolab_agent_api::{DeviceName, DeviceSource, DeviceSpec, Hasher, Report};

use crate::agent_client::AgentError;
use crate::cluster::{Cluster, SelectorError};
use crate::keeper::KeeperError;
use crate::lab::Lab;
use crate::lab_handle::OpenError;
use crate::run::{self, plan, RunOptions};

pub use crate::run::follow::Stream;

/// The job name of a sandbox run, in its id and record.
pub const JOB: &str = "sandbox";

/// Why the guest could not be run.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The node is not in the cluster file (with the closest name, when one is close).
    #[error(transparent)]
    UnknownNode(#[from] SelectorError),
    /// The lab is not up, or does not record the node as ready.
    #[error(transparent)]
    Open(#[from] OpenError),
    /// The local program could not be read.
    #[error("cannot read program {}", path.display())]
    Program {
        /// The program's path.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
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
        what: String,
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
    /// The session ended without a whole report and outputs.
    #[error("node {node}: the guest's session was lost ({cause}); `zerolab status` shows the agent and `zerolab up` restarts it, then run the guest again")]
    Lost {
        /// The node.
        node: String,
        /// Why, in a few words.
        cause: String,
    },
    /// The agent would not start the guest.
    #[error("node {node}: the guest could not be started: {cause}")]
    Start {
        /// The node.
        node: String,
        /// The agent's answer.
        cause: String,
    },
    /// The guest's stdin could not be read or spooled.
    #[error("cannot pass stdin to the guest (spooling it to {}); check the lab directory's free space, or run with stdin from a file", path.display())]
    Stdin {
        /// The spool file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The run: the lab's keeper, the upload, the results directory.
    #[error(transparent)]
    Run(Box<run::RunError>),
}

impl From<KeeperError> for RunError {
    fn from(error: KeeperError) -> RunError {
        RunError::Run(Box::new(error.into()))
    }
}

/// Runs the local guest `program` with `args` on `node` of `cluster` (lab under `root`;
/// `options.program` starts its keeper when none runs); `output` gets each new piece of
/// the guest's stdout and stderr as it arrives; the guest reads `stdin` to its end as
/// its `/dev/stdin` (empty without one). Returns the session's report.
#[allow(clippy::too_many_arguments)] // the command's own arguments, each used once
pub async fn run(
    root: &Path,
    cluster: &Cluster,
    node: &str,
    program: &Path,
    args: Vec<String>,
    stdin: Option<Box<dyn Read + Send>>,
    options: &RunOptions,
    mut output: impl FnMut(Stream, &[u8]),
) -> Result<Report, RunError> {
    cluster.find_node(node)?;
    let handle = Lab::open(root, cluster)?;
    let target = handle.ready(node)?.clone();
    let lab = handle.lab();
    let name = program.file_name().map_or_else(|| "guest".into(), |n| n.to_string_lossy().into_owned());
    let mut plan = plan::one(&name, node, program, args, lab.dir()).await.map_err(|e| match e {
        plan::PlanError::Read { source, .. } => RunError::Program { path: program.into(), source },
        other => RunError::Run(Box::new(other.into())),
    })?;
    // Kept until the run ends: the upload reads the spool.
    let _spool = match stdin {
        Some(reader) => Some(give_stdin(&mut plan, reader, lab.dir()).await?),
        None => None,
    };
    let mux = handle.keeper(&options.program).await?;
    let targets = HashMap::from([(node.to_owned(), target)]);
    let follow = Box::new(|_: usize, stream: Stream, bytes: &[u8]| output(stream, bytes));
    let file = program.display().to_string();
    let ran =
        run::run_followed(lab.dir(), mux, targets, plan, (JOB, &file), options, follow).await.map_err(|e| match e {
            run::RunError::Follow { node, session, source } => during_session(&node, &session, *source),
            run::RunError::Start { node, cause, .. } => RunError::Start { node, cause },
            other => RunError::Run(Box::new(other)),
        })?;
    let Some(result) = ran.instances.into_iter().next() else {
        return Err(RunError::Lost { node: node.to_owned(), cause: "the run has no instance".into() });
    };
    match (result.report, result.cause) {
        (Some(report), None) => Ok(report),
        (_, cause) => Err(RunError::Lost { node: node.to_owned(), cause: cause.unwrap_or_else(|| "no report".into()) }),
    }
}

/// The guest's stdin, spooled: the file is removed when this is dropped.
struct Spool(PathBuf);

impl Drop for Spool {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Spools `reader` into `lab_dir` while hashing it and, unless it is empty, gives it to
/// the plan's one instance as its `stdin` blob.
async fn give_stdin(plan: &mut plan::Plan, reader: Box<dyn Read + Send>, lab_dir: &Path) -> Result<Spool, RunError> {
    let spool = Spool(lab_dir.join(format!("stdin-{}.spool", std::process::id())));
    let path = spool.0.clone();
    let spooled = tokio::task::spawn_blocking(move || spool_to(reader, &path))
        .await
        .map_err(|e| std::io::Error::other(e.to_string()))
        .and_then(|spooled| spooled);
    let (sha256, size) = spooled.map_err(|source| RunError::Stdin { path: spool.0.clone(), source })?;
    if size > 0 {
        let blob = plan::Blob { sha256, path: spool.0.clone(), size };
        for instance in &mut plan.instances {
            instance
                .request
                .devices
                .push(DeviceSpec { name: DeviceName::Stdin, source: DeviceSource::Blob { sha256 } });
            plan.blobs.entry(instance.node.clone()).or_default().push(blob.clone());
        }
        for blobs in &mut plan.instance_blobs {
            blobs.push(blob.clone());
        }
    }
    Ok(spool)
}

/// Copies `reader` to a new private file at `path`; its SHA-256 and size.
fn spool_to(mut reader: Box<dyn Read + Send>, path: &Path) -> std::io::Result<(zerolab_agent_api::Sha256, u64)> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path)?;
    let mut hasher = Hasher::default();
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buf[..n]);
        file.write_all(&buf[..n])?;
        size += n as u64;
    }
    Ok((hasher.finish(), size))
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
    RunError::AgentGone { node: node.to_owned(), session: id.to_owned(), what: what.to_owned() }
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
        let slow = AgentError::Timeout { method: Method::GET, path: "/v1/sessions/7".into(), timeout: run::POLL };
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
