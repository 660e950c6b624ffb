//! The per-lab lock: two commands that change the same lab (`up`, `down`, and later power
//! and run starts) never interleave, whether they are two processes or two labs driven
//! from one process (the workshop runs many labs in one).
//!
//! The lock is `flock(2)` on `LAB/lab.lock`. flock locks belong to an open file
//! description, so two opens of the file conflict even inside one process, and the kernel
//! lets go when the holder exits, however it exits: a crashed command never leaves the
//! lab locked. The holder writes its pid and command into the file, so a second command
//! can say who it waits for.
//!
//! Decision: a second command **waits**, saying once whom it waits for (through
//! [`LockWait::waiting`]), and fails with [`LockError::Busy`] naming the holder after
//! [`LockWait::within`] (the `zerolab` binary: [`DEFAULT_WAIT`], or `ZEROLAB_LOCK_WAIT`
//! seconds). Waiting rather than failing at once, because the usual case is a user's
//! second command meeting a first one that ends soon (`down` while `up` finishes); a
//! bound, because a holder stuck on a dead machine must not hang scripts forever.
//!
//! `down` removes the lab directory, lock file included, while holding the lock: a
//! command that was waiting then holds a lock on a removed file, so after locking,
//! [`LabLock::acquire`] checks that the path still names the file it locked, and starts
//! over on the new file otherwise.

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use nix::fcntl::{Flock, FlockArg};

use super::{private_dir, Lab, LabError};
use crate::backoff::Backoff;

/// The lock file, in the lab directory.
pub const LOCK: &str = "lab.lock";
/// How long a command waits for another one on the same lab by default.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(600);
/// How often a waiting command tries the lock again.
const POLL: Duration = Duration::from_millis(50);

/// Who holds a lab's lock, as it wrote itself into the lock file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    /// Its process id (`None` when the file did not say).
    pub pid: Option<u32>,
    /// Its command (`zerolab up`), or what the file held.
    pub command: String,
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.pid {
            Some(pid) => write!(f, "pid {pid} ({})", self.command),
            None => write!(f, "{}", self.command),
        }
    }
}

impl Holder {
    fn parse(text: &str) -> Holder {
        let (pid, command) = text.trim().split_once(' ').unwrap_or((text.trim(), ""));
        match pid.parse() {
            Ok(pid) => Holder { pid: Some(pid), command: command.to_owned() },
            Err(_) => Holder { pid: None, command: "another command".to_owned() },
        }
    }
}

/// Told once, with the lab's name and the holder, that a command waits for the lock.
pub type Waiting = Arc<dyn Fn(&str, &Holder) + Send + Sync>;

/// How long to wait for the lock, and whom to tell that we wait.
#[derive(Clone)]
pub struct LockWait {
    /// The longest wait before [`LockError::Busy`].
    pub within: Duration,
    /// Called once, when the lock is found held, with its holder.
    pub waiting: Option<Waiting>,
}

impl Default for LockWait {
    /// [`DEFAULT_WAIT`], telling no one.
    fn default() -> LockWait {
        LockWait { within: DEFAULT_WAIT, waiting: None }
    }
}

impl std::fmt::Debug for LockWait {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LockWait").field("within", &self.within).finish_non_exhaustive()
    }
}

/// Why the lab's lock could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another command held the lab for longer than we were willing to wait.
    #[error(
        "lab {lab} is busy: {holder} has been changing it for more than {waited:?}; wait for it to finish, \
         or stop it (a killed command lets go of the lab at once)"
    )]
    Busy {
        /// The lab.
        lab: String,
        /// Who holds it.
        holder: Holder,
        /// How long we waited.
        waited: Duration,
    },
    /// The lock file could not be made or locked.
    #[error(transparent)]
    Lab(#[from] LabError),
}

/// The held lock of one lab; let go when dropped.
#[derive(Debug)]
pub struct LabLock {
    _lock: Flock<File>,
    path: PathBuf,
}

impl LabLock {
    /// Takes `lab`'s lock for `command`, creating the lab directory when missing, waiting
    /// as `wait` says while another command holds it.
    pub async fn acquire(lab: &Lab, command: &str, wait: &LockWait) -> Result<LabLock, LockError> {
        let path = lab.dir().join(LOCK);
        let mut backoff = Backoff::steady(POLL, wait.within);
        let mut told = false;
        loop {
            match try_lock(lab, &path, command)? {
                Ok(lock) => return Ok(lock),
                Err(holder) => {
                    if !told {
                        told = true;
                        if let Some(waiting) = &wait.waiting {
                            waiting(lab.name(), &holder);
                        }
                    }
                    if !backoff.wait().await {
                        return Err(LockError::Busy { lab: lab.name().to_owned(), holder, waited: wait.within });
                    }
                }
            }
        }
    }

    /// The lock file.
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }
}

/// One try: the lock, or who holds it.
fn try_lock(lab: &Lab, path: &std::path::Path, command: &str) -> Result<Result<LabLock, Holder>, LabError> {
    let io_error = super::io_error(path);
    loop {
        private_dir(lab.dir())?;
        let file = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(path)
            .map_err(super::io_error(path))?;
        let mut lock = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => lock,
            Err((mut file, nix::errno::Errno::EWOULDBLOCK)) => {
                let mut text = String::new();
                let _ = file.read_to_string(&mut text);
                return Ok(Err(Holder::parse(&text)));
            }
            Err((_, errno)) => return Err(io_error(errno.into())),
        };
        // `down` may have removed the file (and the lab) while we waited: a lock on a
        // removed file guards nothing, so take the one the path names now.
        let same = std::fs::metadata(path)
            .is_ok_and(|meta| lock.metadata().is_ok_and(|held| (held.dev(), held.ino()) == (meta.dev(), meta.ino())));
        if !same {
            continue;
        }
        lock.set_len(0).map_err(super::io_error(path))?;
        lock.rewind().map_err(super::io_error(path))?;
        lock.write_all(format!("{} {command}\n", std::process::id()).as_bytes()).map_err(super::io_error(path))?;
        return Ok(Ok(LabLock { _lock: lock, path: path.to_owned() }));
    }
}

/// The file at `path` (made 0600 when missing), locked `flock(LOCK_EX | LOCK_NB)`: `None`
/// when another process holds it. For a process that must be the only one of its kind on
/// a directory (a lab's keeper, a workshop's `serve`, a run's driver); kept until dropped.
pub fn try_exclusive(path: &std::path::Path) -> std::io::Result<Option<Flock<File>>> {
    let file = File::options().create(true).truncate(false).write(true).mode(0o600).open(path)?;
    Ok(Flock::lock(file, FlockArg::LockExclusiveNonblock).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wait(within: Duration) -> LockWait {
        LockWait { within, waiting: None }
    }

    #[test]
    fn a_second_exclusive_lock_on_the_same_file_fails() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keeper.lock");
        let first = try_exclusive(&path).unwrap();
        assert!(first.is_some());
        assert!(try_exclusive(&path).unwrap().is_none());
        drop(first);
        assert!(try_exclusive(&path).unwrap().is_some());
    }

    #[tokio::test]
    async fn two_holders_in_one_process_conflict_and_name_the_first() {
        let root = tempfile::tempdir().unwrap();
        let lab = Lab::at(root.path(), "demo").unwrap();
        let first = LabLock::acquire(&lab, "zerolab up", &wait(Duration::ZERO)).await.unwrap();
        let told = Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = told.clone();
        let waiting: Waiting =
            Arc::new(move |lab: &str, holder: &Holder| seen.lock().unwrap().push(format!("{lab}: {holder}")));
        let second = LabLock::acquire(
            &lab,
            "zerolab down",
            &LockWait { within: Duration::from_millis(100), waiting: Some(waiting) },
        )
        .await;
        let err = second.unwrap_err();
        let pid = std::process::id();
        assert_eq!(*told.lock().unwrap(), [format!("demo: pid {pid} (zerolab up)")]);
        assert!(
            err.to_string().starts_with(&format!("lab demo is busy: pid {pid} (zerolab up) has been changing it")),
            "{err}"
        );
        drop(first);
        let again = LabLock::acquire(&lab, "zerolab down", &wait(Duration::ZERO)).await.unwrap();
        assert_eq!(std::fs::read_to_string(again.path()).unwrap(), format!("{pid} zerolab down\n"));
    }

    #[tokio::test]
    async fn two_labs_in_one_process_do_not_conflict() {
        let root = tempfile::tempdir().unwrap();
        let a = LabLock::acquire(&Lab::at(root.path(), "a").unwrap(), "up", &wait(Duration::ZERO)).await;
        let b = LabLock::acquire(&Lab::at(root.path(), "b").unwrap(), "up", &wait(Duration::ZERO)).await;
        assert!(a.is_ok() && b.is_ok());
    }

    #[tokio::test]
    async fn a_waiter_takes_the_lock_of_a_lab_made_again_after_down() {
        let root = tempfile::tempdir().unwrap();
        let lab = Lab::at(root.path(), "demo").unwrap();
        let down = LabLock::acquire(&lab, "zerolab down", &wait(Duration::ZERO)).await.unwrap();
        let waiter = {
            let lab = lab.clone();
            tokio::spawn(async move { LabLock::acquire(&lab, "zerolab up", &wait(Duration::from_secs(5))).await })
        };
        tokio::time::sleep(Duration::from_millis(100)).await;
        // `down` removes the lab (its lock file with it), then lets go.
        std::fs::remove_dir_all(lab.dir()).unwrap();
        drop(down);
        let up = waiter.await.unwrap().unwrap();
        // The waiter holds the file the path names now, so a third command waits for it.
        assert!(up.path().exists());
        assert!(LabLock::acquire(&lab, "zerolab status", &wait(Duration::ZERO)).await.is_err());
    }
}
