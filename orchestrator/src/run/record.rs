//! `LAB/jobs/<id>/job.json`: what a run put where, written as soon as its sessions were
//! started (with their ids), so `zerolab jobs`, `logs` and `cancel` find a run's
//! instances while it runs, and after its `zerolab run` died.

use std::os::unix::fs::DirBuilderExt;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::plan::Plan;
use super::RunError;
use crate::job::Job;

/// The file's name in a run's directory.
pub const FILE: &str = "job.json";

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
}

impl JobRecord {
    /// The record of a run of `job` as `plan` places it, no session started yet.
    pub fn new(id: &str, job: &Job, plan: &Plan) -> JobRecord {
        JobRecord {
            id: id.to_owned(),
            job: job.name().to_owned(),
            file: job.file_name().to_owned(),
            started: SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs(),
            instances: plan
                .instances
                .iter()
                .map(|i| RecordedInstance { name: i.name.clone(), node: i.node.clone(), session: None })
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
