//! `LAB/jobs/<id>/job.json`: a run as a record. Written (atomically: a temporary file
//! renamed over it, so a reader never sees half of one) before anything is sent, as
//! `running`; again once its sessions were started (with their ids), so `zerolab jobs`,
//! `logs`, `cancel` and `wait` find a run's instances while it runs and after its
//! `zerolab run` died; whenever an instance is placed again (its node and session are
//! then the new attempt's, and its `attempts` list the earlier ones) or ends (its
//! [`Outcome`]); and at the end with the run's [`RunState`] and cause. A failure at any
//! step is recorded as the run's state with its cause: a run is never left half-written.

use std::os::unix::fs::DirBuilderExt;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use zerolab_agent_api::Report;

use super::plan::{Collected, Plan};
use super::{InstanceResult, RunError};

/// The file's name in a run's directory.
pub const FILE: &str = "job.json";
/// A file `zerolab cancel` leaves in a run's directory before it kills the run's
/// sessions: the runner then places no instance again.
pub const CANCELLED: &str = "cancelled";

/// Where a run is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunState {
    /// Its driver (`zerolab run` or `zerolab wait`) follows it; a record that says so
    /// while no driver holds the run's lock was left behind: it reads `interrupted`.
    Running,
    /// Started with `--detach`: its guests run with nobody following them until
    /// `zerolab wait` collects them.
    Detached,
    /// Every instance exited 0.
    Ok,
    /// An instance failed, was lost with its node, or a step of the run failed.
    Failed,
    /// `zerolab cancel` stopped it.
    Cancelled,
    /// Ctrl-C or SIGTERM stopped it, or its guests were stopped because nobody renewed
    /// their leases (their `zerolab run` was killed).
    Interrupted,
}

impl RunState {
    /// Its name, as `zerolab jobs` shows it and the record stores it.
    pub fn name(self) -> &'static str {
        match self {
            RunState::Running => "running",
            RunState::Detached => "detached",
            RunState::Ok => "ok",
            RunState::Failed => "failed",
            RunState::Cancelled => "cancelled",
            RunState::Interrupted => "interrupted",
        }
    }

    /// True once the run ended (its record is final).
    pub fn is_final(self) -> bool {
        !matches!(self, RunState::Running | RunState::Detached)
    }
}

fn running() -> RunState {
    RunState::Running
}

/// One run of a job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobRecord {
    /// The run's id, also its directory's name.
    pub id: String,
    /// The job's name.
    pub job: String,
    /// The job file, as given.
    pub file: String,
    /// When the run started, in seconds since the epoch.
    pub started: u64,
    /// The same in milliseconds, which orders runs started within one second (0 in
    /// records of earlier builds).
    #[serde(default)]
    pub started_ms: u64,
    /// Where the run is.
    #[serde(default = "running")]
    pub state: RunState,
    /// Why it failed, was cancelled or interrupted (`fail exited 3`, `node node-2 lost: ...`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
    /// When it ended, in seconds since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended: Option<u64>,
    /// Every instance, in the job's order.
    pub instances: Vec<RecordedInstance>,
}

/// Where one instance runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordedInstance {
    /// The instance.
    pub name: String,
    /// Its node.
    pub node: String,
    /// Its session on that node's agent, once started.
    pub session: Option<String>,
    /// Every attempt, oldest first, when it was placed more than once (the last one's
    /// outcome is written when the run ends); empty otherwise.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attempts: Vec<Attempt>,
    /// The outputs its agent keeps, collected into the run's directory (and copied where
    /// the job says) when it ends: what `zerolab wait` collects for a run left behind.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub collect: Vec<RecordedOutput>,
    /// How it ended, once it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Outcome>,
}

/// An output an instance's agent keeps (see [`Collected`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedOutput {
    /// `stdout`, `stderr` or `output`.
    pub stream: String,
    /// Where the job wants a copy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub copy_to: Option<std::path::PathBuf>,
}

impl RecordedOutput {
    /// The output as the plan has it; `None` for a stream name no agent keeps.
    pub fn collected(&self) -> Option<Collected> {
        let stream = ["stdout", "stderr", "output"].into_iter().find(|s| *s == self.stream)?;
        Some(Collected { stream, copy_to: self.copy_to.clone() })
    }
}

/// How an instance ended: its report, when its session ended on a node that answered,
/// and why it has none or was stopped.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    /// Its report.
    pub report: Option<Report>,
    /// Why it has no report or failed anyway.
    pub cause: Option<String>,
}

impl Outcome {
    /// The outcome of `result`.
    pub fn of(result: &InstanceResult) -> Outcome {
        Outcome { report: result.report.clone(), cause: result.cause.clone() }
    }
}

/// One attempt of an instance that was placed again: where it ran and how it ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attempt {
    /// The node.
    pub node: String,
    /// Its session there, when one was started.
    pub session: Option<String>,
    /// ZeroVM's exit state (`ok`, `killed`, `session timeout`), when its report was read.
    pub exit_state: Option<String>,
    /// ZeroVM's return code, when its report was read.
    pub return_code: Option<i32>,
    /// The guest's exit code, when its report was read.
    pub user_code: Option<i64>,
    /// Why it has no report or failed anyway (`node node-2 lost: ...`).
    pub cause: Option<String>,
}

impl Attempt {
    /// The attempt that ended as `result`, in session `session`.
    pub fn of(result: &InstanceResult, session: Option<&str>) -> Attempt {
        let report = result.report.as_ref();
        Attempt {
            node: result.node.clone(),
            session: session.map(str::to_owned),
            exit_state: report.map(|r| r.exit_state.clone()),
            return_code: report.map(|r| r.return_code),
            user_code: report.map(|r| r.user_code),
            cause: result.cause.clone(),
        }
    }

    /// How it ended, in a few words: `ok`, `exited 3`, `killed`, `session timeout`, or
    /// its cause.
    pub fn how(&self) -> String {
        match (&self.cause, self.exit_state.as_deref(), self.user_code) {
            (Some(cause), _, _) => cause.clone(),
            (None, Some("ok"), Some(code)) if code != 0 => format!("exited {code}"),
            (None, Some(state), _) => state.to_owned(),
            (None, None, _) => "failed".to_owned(),
        }
    }
}

impl JobRecord {
    /// The record of a run of job `name` (from `file`) as `plan` places it, no session
    /// started yet.
    pub fn new(id: &str, name: &str, file: &str, plan: &Plan) -> JobRecord {
        let started_ms = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_millis() as u64;
        JobRecord {
            id: id.to_owned(),
            job: name.to_owned(),
            file: file.to_owned(),
            started: started_ms / 1000,
            started_ms,
            state: RunState::Running,
            cause: None,
            ended: None,
            instances: plan
                .instances
                .iter()
                .map(|i| RecordedInstance {
                    name: i.name.clone(),
                    node: i.node.clone(),
                    session: None,
                    attempts: Vec::new(),
                    collect: i
                        .collect
                        .iter()
                        .map(|c| RecordedOutput { stream: c.stream.to_owned(), copy_to: c.copy_to.clone() })
                        .collect(),
                    outcome: None,
                })
                .collect(),
        }
    }

    /// Marks the run ended as `state`, for `cause`.
    pub fn end(&mut self, state: RunState, cause: Option<String>) {
        self.state = state;
        self.cause = cause;
        self.ended = Some(now());
    }

    /// Writes the record into `dir` (made 0700 when missing), replacing it atomically.
    pub fn save(&self, dir: &Path) -> Result<(), RunError> {
        let failed = |source| RunError::Results { path: dir.to_path_buf(), source };
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(failed)?;
        let text = serde_json::to_vec_pretty(self).map_err(|e| failed(std::io::Error::other(e)))?;
        let tmp = dir.join(format!(".{FILE}.tmp"));
        std::fs::write(&tmp, text).map_err(failed)?;
        std::fs::rename(&tmp, dir.join(FILE)).map_err(failed)
    }

    /// Reads the record in `dir`.
    pub fn load(dir: &Path) -> Result<JobRecord, RunError> {
        let path = dir.join(FILE);
        let failed = |source| RunError::Results { path: path.clone(), source };
        let text = std::fs::read(&path).map_err(failed)?;
        serde_json::from_slice(&text).map_err(|e| failed(std::io::Error::new(std::io::ErrorKind::InvalidData, e)))
    }
}

/// Now, in seconds since the epoch.
fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_attempt_says_how_it_ended_and_is_left_out_of_the_record_when_there_is_one() {
        let attempt = |exit_state: Option<&str>, user_code, cause: Option<&str>| Attempt {
            node: "node-1".into(),
            session: None,
            exit_state: exit_state.map(String::from),
            return_code: exit_state.map(|_| 0),
            user_code,
            cause: cause.map(String::from),
        };
        assert_eq!(attempt(Some("ok"), Some(3), None).how(), "exited 3");
        assert_eq!(attempt(Some("ok"), Some(0), None).how(), "ok");
        assert_eq!(attempt(Some("killed"), Some(0), None).how(), "killed");
        assert_eq!(attempt(None, None, Some("node node-1 lost: gone")).how(), "node node-1 lost: gone");
        assert_eq!(attempt(None, None, None).how(), "failed");

        let entry = RecordedInstance {
            name: "a".into(),
            node: "node-1".into(),
            session: None,
            attempts: Vec::new(),
            collect: Vec::new(),
            outcome: None,
        };
        let json = serde_json::to_string(&entry).unwrap();
        assert_eq!(json, r#"{"name":"a","node":"node-1","session":null}"#);
        assert_eq!(serde_json::from_str::<RecordedInstance>(&json).unwrap(), entry);
    }
}
