//! Taking a lab down: `zerolab down`. It always finishes.
//!
//! [`down`] holds the lab's lock ([`LabLock`]) and, in order: refuses while a run of the
//! lab is live ([`live`]: its driver holds `jobs/<id>/driver.lock`) unless
//! [`DownOptions::force`]; stops the keeper and the lab's services with it; has the
//! provider destroy what `up` made or installed ([`provider::Provider::destroy`]: `netns`
//! removes its hosts, `ssh` removes the agent from its machines, all at once, bounded as
//! `up` is); then removes the lab directory, all but `jobs/` (the collected results and run
//! records, unless [`DownOptions::purge`]). A node the provider could not clean, or whose
//! agent belongs to another lab, is in the [`DownReport`] with what to do there by hand:
//! it does not keep the lab, so a node that never answered (or never let zerolab in)
//! cannot make a lab impossible to take down.
//!
//! A lab directory that holds only `jobs/` is down: `up` of the same lab makes a new key
//! pair and state beside the old runs, and `jobs` and `logs` read them meanwhile.

pub mod live;

use std::path::{Path, PathBuf};

pub use self::live::{live_runs, LiveRun};
use crate::cluster::Cluster;
use crate::keeper;
use crate::lab::{io_error, Lab, LabError, LabLock, LockError, LockWait};
use crate::provider::{self, LeftNode, ProviderError};

/// The directory of a lab's runs, kept by `down` unless purged.
pub const JOBS: &str = "jobs";

/// What can stop `down` as a whole (a node's own failure does not: it is in the
/// [`DownReport`]).
#[derive(Debug, thiserror::Error)]
pub enum DownError {
    /// A run of the lab is live, and `--force` was not given; nothing was changed.
    #[error(
        "{}; wait for {}, cancel {} (`zerolab cancel FILE RUN`), or `zerolab down --force`",
        runs.iter().map(LiveRun::to_string).collect::<Vec<_>>().join("; "),
        if runs.len() == 1 { "it" } else { "them" },
        if runs.len() == 1 { "it" } else { "them" }
    )]
    RunsLive {
        /// Every live run.
        runs: Vec<LiveRun>,
    },
    /// The provider refused, or failed to remove the nodes.
    #[error(transparent)]
    Provider(#[from] ProviderError),
    /// A lab file.
    #[error(transparent)]
    Lab(#[from] LabError),
    /// Another command is changing the lab.
    #[error(transparent)]
    Lock(#[from] LockError),
}

/// Options of [`down`].
#[derive(Clone, Default)]
pub struct DownOptions {
    /// Go ahead while runs are live (their guests are stopped with the agents).
    pub force: bool,
    /// Remove the runs' collected results and records too.
    pub purge: bool,
    /// How long to wait for another command on the lab.
    pub lock: LockWait,
    /// The cluster file `down` was given (absolute): a lab brought up from another file
    /// of the same lab name is refused, naming that file.
    pub cluster_file: Option<PathBuf>,
}

/// What [`down`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DownReport {
    /// The runs that were live when `--force` went ahead (their guests stopped with the
    /// lab; their drivers see their nodes go).
    pub live: Vec<LiveRun>,
    /// Each node not cleaned, and why (in the cluster file's order).
    pub left: Vec<LeftNode>,
    /// How many runs were kept in [`DownReport::jobs`] (0: the lab directory is gone).
    pub runs_kept: usize,
    /// The lab's `jobs/` directory.
    pub jobs: PathBuf,
}

impl DownReport {
    /// Whether a node could not be cleaned (one left to another lab is not a failure).
    pub fn has_failures(&self) -> bool {
        self.left.iter().any(|left| left.why.is_failure())
    }
}

/// Takes the lab under `root` down (see the module doc). Idempotent. Holds the lab's
/// lock (waiting as `options.lock` says) when the lab directory exists; with none, there
/// is no lab to interleave with (what a provider finds by name alone is still removed).
pub async fn down(root: &Path, cluster: &Cluster, options: &DownOptions) -> Result<DownReport, DownError> {
    let provider = provider::of(cluster)?;
    let lab = Lab::at(root, cluster.name())?;
    let _lock = match lab.exists() {
        true => Some(LabLock::acquire(&lab, "zerolab down", &options.lock).await?),
        false => None,
    };
    if let (Some(file), true) = (&options.cluster_file, lab.state_path().exists()) {
        if let Some(identity) = lab.identity()? {
            identity.check_file(&lab, file)?;
        }
    }
    let jobs = lab.dir().join(JOBS);
    let live = live_runs(&jobs);
    if !live.is_empty() && !options.force {
        return Err(DownError::RunsLive { runs: live });
    }
    keeper::stop(lab.dir()).await;
    let nodes: Vec<String> = cluster.nodes().iter().map(|node| node.name.clone()).collect();
    crate::login::close_shared(lab.dir(), &nodes);
    let teardown = provider.destroy(&lab, cluster).await?;
    let runs_kept = remove_lab_dir(lab, options.purge)?;
    Ok(DownReport { live, left: teardown.left, runs_kept, jobs })
}

/// Removes the lab directory but for its runs in `jobs/` (unless `purge`); returns how
/// many runs were kept. With none kept, nothing of the directory is left.
fn remove_lab_dir(lab: Lab, purge: bool) -> Result<usize, LabError> {
    let jobs = lab.dir().join(JOBS);
    let runs = match std::fs::read_dir(&jobs) {
        Ok(entries) if !purge => entries.flatten().filter(|e| e.file_type().is_ok_and(|t| t.is_dir())).count(),
        _ => 0,
    };
    if runs == 0 {
        lab.remove()?;
        return Ok(0);
    }
    for entry in std::fs::read_dir(lab.dir()).map_err(io_error(lab.dir()))?.flatten() {
        let path = entry.path();
        if entry.file_name() == JOBS {
            continue;
        }
        let removed = match entry.file_type() {
            Ok(kind) if kind.is_dir() => std::fs::remove_dir_all(&path),
            _ => std::fs::remove_file(&path),
        };
        match removed {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io_error(&path)(e)),
            _ => {}
        }
    }
    Ok(runs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lab_directory_goes_but_for_its_runs_unless_purged() {
        let root = tempfile::tempdir().unwrap();
        let lab = Lab::open_or_create(root.path(), "demo").unwrap();
        std::fs::create_dir_all(lab.dir().join("jobs/wc-1/count-1")).unwrap();
        std::fs::write(lab.dir().join("jobs/wc-1/job.json"), "{}").unwrap();
        std::fs::create_dir_all(lab.nodes_dir().join("n1")).unwrap();
        assert_eq!(remove_lab_dir(lab.clone(), false).unwrap(), 1);
        let left: Vec<_> = std::fs::read_dir(lab.dir()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(left, ["jobs"]);
        assert!(lab.dir().join("jobs/wc-1/job.json").is_file());

        // Made again over the kept runs: a new key pair, the runs still there.
        let again = Lab::open_or_create(root.path(), "demo").unwrap();
        assert!(again.private_key().is_file() && again.dir().join("jobs/wc-1/job.json").is_file());

        assert_eq!(remove_lab_dir(again, true).unwrap(), 0);
        assert!(!lab.exists());
        // Nothing to keep: nothing left.
        let empty = Lab::open_or_create(root.path(), "demo").unwrap();
        std::fs::create_dir(empty.dir().join("jobs")).unwrap();
        assert_eq!(remove_lab_dir(empty, false).unwrap(), 0);
        assert!(!lab.exists());
    }

    #[test]
    fn a_live_run_is_named_with_what_to_do() {
        let run = LiveRun { id: "wc-7".into(), job: "wc".into(), pid: Some(42) };
        let err = DownError::RunsLive { runs: vec![run] };
        assert_eq!(
            err.to_string(),
            "run wc-7 of job wc is running (pid 42); wait for it, cancel it (`zerolab cancel FILE RUN`), or \
             `zerolab down --force`"
        );
    }
}
