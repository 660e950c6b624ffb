//! `LAB/jobs/<id>/job.json`: what a run put where, written as soon as its sessions were
//! started (with their ids), so `zerolab jobs`, `logs` and `cancel` find a run's
//! instances while it runs, and after its `zerolab run` died. Written again whenever an
//! instance is placed again (its node and session are then the new attempt's, and its
//! `attempts` list the earlier ones), and at the end of a run that placed any again.

use std::os::unix::fs::DirBuilderExt;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::plan::Plan;
use super::{InstanceResult, RunError};

/// The file's name in a run's directory.
pub const FILE: &str = "job.json";
/// A file `zerolab cancel` leaves in a run's directory before it kills the run's
/// sessions: the runner then places no instance again.
pub const CANCELLED: &str = "cancelled";

/// One run of a job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobRecord {
    /// The run's id, also its directory's name.
    pub id: String,
    /// The job's name.
    pub job: String,
    /// The job file, as given.
    pub file: String,
    /// When the run started, in seconds since the epoch.
    pub started: u64,
    /// Every instance, in the job's order.
    pub instances: Vec<RecordedInstance>,
}

/// Where one instance runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
        JobRecord {
            id: id.to_owned(),
            job: name.to_owned(),
            file: file.to_owned(),
            started: SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs(),
            instances: plan
                .instances
                .iter()
                .map(|i| RecordedInstance {
                    name: i.name.clone(),
                    node: i.node.clone(),
                    session: None,
                    attempts: Vec::new(),
                })
                .collect(),
        }
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

        let entry = RecordedInstance { name: "a".into(), node: "node-1".into(), session: None, attempts: Vec::new() };
        let json = serde_json::to_string(&entry).unwrap();
        assert_eq!(json, r#"{"name":"a","node":"node-1","session":null}"#);
        assert_eq!(serde_json::from_str::<RecordedInstance>(&json).unwrap(), entry);
    }
}
