//! Which runs of a lab are live: the process driving a run holds `flock(LOCK_EX)` on
//! `LAB/jobs/<RUN_ID>/driver.lock` for the run's whole life, so a run is live exactly when
//! a non-blocking `LOCK_EX` on that file fails. `down` refuses while one is (unless
//! `--force`), naming the run, its job and the process holding the lock.
//!
//! Design: the kernel holds the lock, not a pid file: a driver that dies (killed, crashed,
//! its machine's power cut) lets go of it at once, so a dead run never blocks `down`.

use std::fmt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use crate::run::run_dir::{driven, LOCK as DRIVER_LOCK};

/// A run whose driver holds its lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveRun {
    /// The run's id (its directory's name).
    pub id: String,
    /// Its job's name, from its `job.json` (the id when that cannot be read).
    pub job: String,
    /// The process holding the lock, when the kernel says (`/proc/locks`).
    pub pid: Option<u32>,
}

/// `run ID of job J is running (pid P)`.
impl fmt::Display for LiveRun {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "run {} of job {} is running", self.id, self.job)?;
        match self.pid {
            Some(pid) => write!(f, " (pid {pid})"),
            None => Ok(()),
        }
    }
}

/// The live runs under `jobs` (a lab's `jobs/` directory), by id; none when it is missing.
pub fn live_runs(jobs: &Path) -> Vec<LiveRun> {
    let Ok(entries) = std::fs::read_dir(jobs) else { return Vec::new() };
    let mut live: Vec<LiveRun> = entries
        .flatten()
        .filter_map(|entry| {
            let dir = entry.path();
            if !driven(&dir) {
                return None;
            }
            let inode = std::fs::metadata(dir.join(DRIVER_LOCK)).ok()?.ino();
            let id = entry.file_name().to_string_lossy().into_owned();
            Some(LiveRun { job: job_name(&dir).unwrap_or_else(|| id.clone()), pid: holder(inode), id })
        })
        .collect();
    live.sort_by(|a, b| a.id.cmp(&b.id));
    live
}

/// The `job` of a run's `job.json`.
fn job_name(dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(dir.join("job.json")).ok()?;
    let record: serde_json::Value = serde_json::from_str(&text).ok()?;
    Some(record.get("job")?.as_str()?.to_owned())
}

/// The process holding a `flock` on the file with inode `inode`, from `/proc/locks`
/// (`1: FLOCK  ADVISORY  WRITE 1234 08:01:5678 0 EOF`; waiters' lines hold `->`).
fn holder(inode: u64) -> Option<u32> {
    let locks = std::fs::read_to_string("/proc/locks").ok()?;
    locks.lines().filter(|line| !line.contains("->")).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [_, "FLOCK", _, _, pid, file, ..] = fields[..] else { return None };
        (file.rsplit(':').next()? == inode.to_string()).then(|| pid.parse().ok())?
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_is_live_while_its_lock_is_held_and_names_the_holder() {
        let jobs = tempfile::tempdir().unwrap();
        let run = jobs.path().join("wc-1");
        std::fs::create_dir(&run).unwrap();
        std::fs::write(run.join("job.json"), r#"{"id": "wc-1", "job": "wc"}"#).unwrap();
        std::fs::create_dir(jobs.path().join("old-2")).unwrap();
        std::fs::write(jobs.path().join("old-2").join(DRIVER_LOCK), "").unwrap();
        assert!(live_runs(jobs.path()).is_empty());

        let file = std::fs::File::create(run.join(DRIVER_LOCK)).unwrap();
        let held = nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock).unwrap();
        let live = live_runs(jobs.path());
        let expected = LiveRun { id: "wc-1".into(), job: "wc".into(), pid: Some(std::process::id()) };
        assert_eq!(live, [expected]);
        assert_eq!(live[0].to_string(), format!("run wc-1 of job wc is running (pid {})", std::process::id()));
        drop(held);
        assert!(live_runs(jobs.path()).is_empty());
        assert!(live_runs(&jobs.path().join("missing")).is_empty());
    }
}
