//! A run's directory, `LAB/jobs/<id>/`, and the lock of the process driving the run.
//!
//! Ids are unique, always: the job's name, the UTC time to the second and six random hex
//! digits (`wordcount-20261205-021430-3fa9c1`), and the directory is made with
//! `mkdir` (never reusing one that exists; another id is drawn then). So two runs of one
//! job started at the same moment get two directories, and two channel ids in the
//! agents (the run's id is its channels' job).
//!
//! The process that drives a run (`zerolab run`, `zerolab wait`, `zerolab sandbox run`)
//! holds `flock(LOCK_EX)` on `<id>/driver.lock` for its whole life ([`RunDir`]); the
//! kernel lets go when it exits, however it exits. So a record that says `running`
//! while nobody holds the lock was left behind ([`driven`]), and `zerolab down` can tell
//! a run under way from one that is over.

use std::fs::File;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use nix::fcntl::{Flock, FlockArg};
use ring::rand::{SecureRandom, SystemRandom};

use super::RunError;

/// The driver's lock file in a run's directory.
pub const LOCK: &str = "driver.lock";
/// How many ids are drawn before giving up (a clash is one in 16.7 million per second).
const TRIES: usize = 16;

/// A run's directory, locked by this process for as long as the value lives.
#[derive(Debug)]
pub struct RunDir {
    /// The run's id, the directory's name.
    pub id: String,
    /// The directory.
    pub path: PathBuf,
    _lock: Flock<File>,
}

impl RunDir {
    /// Makes a new run directory for job `job` in `lab_dir/jobs/` (0700), under a fresh id,
    /// and takes its lock.
    pub fn create(lab_dir: &Path, job: &str) -> Result<RunDir, RunError> {
        let jobs = lab_dir.join("jobs");
        let failed = |path: &Path| {
            let path = path.to_path_buf();
            move |source| RunError::Results { path, source }
        };
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(&jobs).map_err(failed(&jobs))?;
        let random = SystemRandom::new();
        for _ in 0..TRIES {
            let mut suffix = [0u8; 3];
            random.fill(&mut suffix).map_err(|_| failed(&jobs)(std::io::Error::other("no random source")))?;
            let id = run_id(job, SystemTime::now(), suffix);
            let path = jobs.join(&id);
            match std::fs::DirBuilder::new().mode(0o700).create(&path) {
                Ok(()) => {
                    let lock = lock(&path)?.ok_or_else(|| RunError::Driven { id: id.clone() })?;
                    return Ok(RunDir { id, path, _lock: lock });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(failed(&path)(e)),
            }
        }
        Err(failed(&jobs)(std::io::Error::other("every run id drawn was taken")))
    }

    /// Takes the lock of the existing run `id` in `path`, for a process that drives it
    /// on (`zerolab wait`); refused while another process drives it.
    pub fn attach(path: &Path, id: &str) -> Result<RunDir, RunError> {
        let lock = lock(path)?.ok_or_else(|| RunError::Driven { id: id.to_owned() })?;
        Ok(RunDir { id: id.to_owned(), path: path.to_path_buf(), _lock: lock })
    }
}

/// True while a process drives the run in `path` (holds its lock).
pub fn driven(path: &Path) -> bool {
    match File::open(path.join(LOCK)) {
        Ok(file) => match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(_unlocked_on_drop) => false,
            Err(_) => true,
        },
        Err(_) => false,
    }
}

/// `flock(LOCK_EX | LOCK_NB)` on `dir/driver.lock`, made 0600 when missing; `None` when
/// another process holds it.
fn lock(dir: &Path) -> Result<Option<Flock<File>>, RunError> {
    let path = dir.join(LOCK);
    crate::lab::lock::try_exclusive(&path).map_err(|source| RunError::Results { path: path.clone(), source })
}

/// `JOB-YYYYMMDD-HHMMSS-XXXXXX`: the job, `at` in UTC, `suffix` in hex.
pub fn run_id(job: &str, at: SystemTime, suffix: [u8; 3]) -> String {
    let secs = at.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
    let (days, time) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = civil(days as i64);
    let (hour, minute, second) = (time / 3600, time % 3600 / 60, time % 60);
    let hex: String = suffix.iter().map(|b| format!("{b:02x}")).collect();
    format!("{job}-{year:04}{month:02}{day:02}-{hour:02}{minute:02}{second:02}-{hex}")
}

/// The proleptic Gregorian date of `days` since 1970-01-01 (Howard Hinnant's
/// `civil_from_days`).
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn ids_carry_the_job_the_utc_second_and_the_random_suffix() {
        let at = UNIX_EPOCH + Duration::from_secs(1_796_437_870);
        assert_eq!(run_id("wordcount", at, [0x3f, 0xa9, 0xc1]), "wordcount-20261205-023110-3fa9c1");
        assert_eq!(run_id("j", UNIX_EPOCH, [0, 0, 1]), "j-19700101-000000-000001");
        assert_eq!(civil(11_016), (2000, 2, 29));
        assert_eq!(civil(-1), (1969, 12, 31));
    }

    #[test]
    fn two_runs_of_one_job_at_once_get_two_directories_each_locked_once() {
        let lab = tempfile::tempdir().unwrap();
        let runs: Vec<RunDir> = (0..50).map(|_| RunDir::create(lab.path(), "same").unwrap()).collect();
        let ids: std::collections::BTreeSet<&str> = runs.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids.len(), runs.len());
        assert!(driven(&runs[0].path));
        assert!(matches!(RunDir::attach(&runs[0].path, &runs[0].id), Err(RunError::Driven { .. })));
        let path = runs[0].path.clone();
        drop(runs);
        assert!(!driven(&path));
        let again = RunDir::attach(&path, "same").unwrap();
        assert!(driven(&again.path));
    }
}
